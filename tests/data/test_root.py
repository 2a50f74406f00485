from pathlib import Path

import pytest

from diffresnet_pyg.data import DATA_ENV_VAR, resolve_root


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def test_env_var_name():
    assert DATA_ENV_VAR == "DIFFRESNET_PYG_DATA"


def test_home_cache_is_last_resort(clean_env, tmp_path):
    assert resolve_root() == tmp_path / "home" / ".cache" / "diffresnet_pyg"


def test_xdg_cache_beats_home(clean_env, tmp_path):
    clean_env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_root() == tmp_path / "xdg" / "diffresnet_pyg"


def test_env_var_beats_xdg(clean_env, tmp_path):
    clean_env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    clean_env.setenv(DATA_ENV_VAR, str(tmp_path / "env"))
    assert resolve_root() == tmp_path / "env"


def test_argument_beats_everything(clean_env, tmp_path):
    clean_env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    clean_env.setenv(DATA_ENV_VAR, str(tmp_path / "env"))
    assert resolve_root(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_root(str(tmp_path / "arg")) == tmp_path / "arg"


def test_empty_values_count_as_unset(clean_env, tmp_path):
    clean_env.setenv("XDG_CACHE_HOME", "")
    clean_env.setenv(DATA_ENV_VAR, "")
    assert resolve_root("") == tmp_path / "home" / ".cache" / "diffresnet_pyg"


def test_tilde_is_expanded(clean_env, tmp_path):
    clean_env.setenv(DATA_ENV_VAR, "~/datasets")
    assert resolve_root() == tmp_path / "home" / "datasets"
    assert resolve_root("~/other") == tmp_path / "home" / "other"


def test_resolving_creates_nothing(clean_env, tmp_path):
    root = resolve_root()
    assert isinstance(root, Path)
    assert not root.exists()

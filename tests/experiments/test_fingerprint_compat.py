"""Committed results folders keep their fingerprints as the schema grows.

``fingerprints_before_dataset_files.json`` holds the fingerprint of every
committed graph ``experiments/**/config.yaml`` and shipped ``configs/**``
file, computed by the code before ``dataset.path`` and its companions
existed. A results folder is refused on resume when its fingerprint
changes, so these must never drift through a change of the schema. (The
shipped ``configs/*/diffresnet.yaml`` carry the fingerprints of the general
model's current defaults, whose values changed on purpose.) Model parameters added later
(``register_model(added=...)``) are written only off their default for the
same reason. The depth sweep's config and its old results folder were
replaced on purpose (a new study) and are no longer listed.
"""

import json
from pathlib import Path

import pytest
import yaml

from diffresnet_pyg.experiments.models import build_model
from diffresnet_pyg.experiments.schema import (
    config_from_dict,
    config_to_dict,
    fingerprint,
)

REPO = Path(__file__).resolve().parents[2]
EXPECTED = json.loads(
    (Path(__file__).with_name("fingerprints_before_dataset_files.json")).read_text()
)


def graph_configs(folder: str, pattern: str) -> list[str]:
    """Graph experiment configs (with a ``dataset``; not few-shot, not spaces)."""
    paths = []
    for path in sorted((REPO / folder).rglob(pattern)):
        raw = yaml.safe_load(path.read_text())
        if isinstance(raw, dict) and "dataset" in raw and raw.get("task") != "fewshot":
            paths.append(str(path.relative_to(REPO)))
    return paths


def test_the_committed_results_configs_are_covered():
    # Folders written later get their fingerprint from the current code; the
    # ones committed before the new dataset keys must all be checked here.
    expected = [p for p in EXPECTED if p.startswith("experiments/")]
    assert len(expected) == 24
    assert all((REPO / p).is_file() for p in EXPECTED)


@pytest.mark.parametrize("path", sorted(EXPECTED))
def test_fingerprint_unchanged(path):
    raw = yaml.safe_load((REPO / path).read_text())
    assert fingerprint(config_from_dict(raw)) == EXPECTED[path]


@pytest.mark.parametrize("path", graph_configs("configs", "*.yaml"))
def test_shipped_configs_validate(path):
    config_from_dict(yaml.safe_load((REPO / path).read_text()))


def diffresnet_config(**model):
    return config_from_dict(
        {
            "output": "out",
            "dataset": {"name": "cora"},
            "model": {"name": "diffresnet", **model},
        }
    )


def test_added_model_parameter_is_written_only_off_its_default():
    # ``input_dropout`` of ``diffresnet`` came after results were written: at
    # its default it is neither in the written config nor in the fingerprint
    base = diffresnet_config()
    assert base.model.params["input_dropout"] == 0.0
    assert "input_dropout" not in config_to_dict(base)["model"]
    assert fingerprint(diffresnet_config(input_dropout=0.0)) == fingerprint(base)
    assert fingerprint(diffresnet_config(input_dropout=0)) == fingerprint(base)
    cfg = diffresnet_config(input_dropout=0.5)
    written = config_to_dict(cfg)
    assert written["model"]["input_dropout"] == 0.5
    assert fingerprint(cfg) != fingerprint(base)
    assert build_model(cfg.model, 1433, 7).input_dropout == 0.5
    for c in (base, cfg):
        d = config_to_dict(c)
        assert config_from_dict(yaml.safe_load(yaml.safe_dump(d))) == c
    # other models' parameters are all written, as before
    gcn = config_from_dict(
        {"output": "out", "dataset": {"name": "cora"}, "model": {"name": "gcn"}}
    )
    assert "input_dropout" in config_to_dict(gcn)["model"]


def test_added_must_name_a_configurable_parameter():
    from diffresnet_pyg.experiments.models.registry import _params
    from diffresnet_pyg.nn import DiffResNet

    with pytest.raises(TypeError, match="no parameter 'nope'"):
        _params("x", DiffResNet, {}, {}, (), {}, ("nope",))
    with pytest.raises(TypeError, match="added parameter 'cached' is hidden"):
        _params("x", DiffResNet, {}, {}, (), {"cached": True}, ("cached",))

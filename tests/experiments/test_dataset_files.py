"""Configs on dataset files: dataset.path, the given and public split schemes."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from diffresnet_pyg.cli import main
from diffresnet_pyg.data import load_dataset, split_seeds
from diffresnet_pyg.experiments.runner import (
    load_arguments,
    plan_runs,
    run_experiment,
)
from diffresnet_pyg.experiments.schema import (
    ConfigError,
    config_from_dict,
    config_to_dict,
    fingerprint,
)
from tests.fake_data import small_graph, write_graph_file, write_planetoid_raw

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def graph_file(tmp_path):
    return write_graph_file(tmp_path / "mygraph.npz", "heterophilous", small_graph())


def config(output, **sections):
    raw = {
        "output": str(output),
        "dataset": {"path": "unused"},
        "model": {"name": "mlp", "hidden_channels": 8},
        "train": {"max_epochs": 3, "batch_members": 2},
    }
    for key, value in sections.items():
        raw[key] = value if key == "dataset" else {**raw.get(key, {}), **value}
    return config_from_dict(raw)


def read_rows(folder):
    text = (Path(folder) / "runs.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_given_splits_end_to_end(tmp_path, graph_file):
    cfg = config(
        tmp_path / "res",
        dataset={"path": str(graph_file)},
        split={"scheme": "given", "num_splits": 2, "num_inits": 2},
    )
    summary = run_experiment(cfg, progress=False)
    assert summary["n_runs"] == 4 and summary["complete"] is True
    rows = read_rows(tmp_path / "res")
    assert {r["dataset"] for r in rows} == {"mygraph"}
    seeds = split_seeds(42, 2)
    assert sorted({(r["split"], r["split_seed"]) for r in rows}) == [
        (0, seeds[0]),
        (1, seeds[1]),
    ]
    for s, seed in enumerate(seeds):
        inits = np.random.RandomState(seed).randint(0, 1_000_000, 2).tolist()
        got = sorted((r["init"], r["init_seed"]) for r in rows if r["split"] == s)
        assert got == list(enumerate(inits))
    data = load_dataset(path=graph_file)
    runs = plan_runs(cfg, data)
    for run in runs:
        mask = data.train_mask[:, run.split]
        assert run.train_idx.equal(mask.nonzero().flatten())
        assert run.val_idx.equal(data.val_mask[:, run.split].nonzero().flatten())
    assert runs[0].train_idx.numel() == 6 and runs[0].val_idx.numel() == 6
    assert not runs[0].train_idx.equal(runs[2].train_idx)
    # growing num_inits keeps the planned seeds
    grown = plan_runs(config(tmp_path, **_given(graph_file, 2, 3)), data)
    assert [r.init_seed for r in grown if r.init < 2] == [r.init_seed for r in runs]
    written = yaml.safe_load((tmp_path / "res" / "config.yaml").read_text())
    assert written["dataset"] == {
        "name": None,
        "root": None,
        "standardize": True,
        "normalize_features": True,
        "path": str(graph_file),
        "edge_weights": "use",
    }


def _given(path, num_splits, num_inits=1):
    return {
        "dataset": {"path": str(path)},
        "split": {"scheme": "given", "num_splits": num_splits, "num_inits": num_inits},
    }


def test_given_needs_enough_mask_columns(tmp_path, graph_file):
    cfg = config(tmp_path, **_given(graph_file, 3))
    with pytest.raises(ValueError, match=r"num_splits is 3, but 'mygraph' has 2"):
        plan_runs(cfg, load_dataset(path=graph_file))


def test_given_needs_masks(tmp_path):
    path = write_graph_file(tmp_path / "g.npz", "gnnbench", small_graph())
    cfg = config(tmp_path, **_given(path, 1))
    with pytest.raises(ValueError, match="'g' has no train_mask, val_mask"):
        plan_runs(cfg, load_dataset(path=path))


@pytest.fixture(scope="module")
def planetoid_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("planetoid_root")
    write_planetoid_raw(
        root / "planetoid" / "Cora" / "raw", num_test=1000, num_isolated=30
    )
    return root


def test_public_split_is_planetoids_on_the_full_graph(tmp_path, planetoid_root):
    raw = {
        "dataset": {"name": "planetoid/cora", "root": str(planetoid_root)},
        "split": {"scheme": "public", "num_splits": 1, "num_inits": 2},
    }
    cfg = config(tmp_path, **raw)
    assert load_arguments(cfg)["largest_component"] is False
    data = load_dataset(**load_arguments(cfg))
    assert data.num_nodes == 140 + 500 + 60 + 1000
    runs = plan_runs(cfg, data)
    sizes = [(r.train_idx.numel(), r.val_idx.numel(), r.test_idx.numel()) for r in runs]
    assert sizes == [(140, 500, 1000)] * 2
    assert [r.init_seed for r in runs] == np.random.RandomState(42).randint(
        0, 1_000_000, 2
    ).tolist()
    # 'given' keeps the standardization: the 30 nodes without edges leave
    given = config(tmp_path, **{**raw, "split": {**raw["split"], "scheme": "given"}})
    (run, _) = plan_runs(given, load_dataset(**load_arguments(given)))
    assert run.test_idx.numel() == 1000 - 30
    with pytest.raises(ConfigError, match="^dataset.largest_component: the 'public'"):
        config(
            tmp_path,
            **{**raw, "dataset": {**raw["dataset"], "largest_component": True}},
        )


def test_public_split_end_to_end(tmp_path, planetoid_root):
    cfg = config(
        tmp_path / "res",
        dataset={"name": "planetoid/cora", "root": str(planetoid_root)},
        split={"scheme": "public", "num_splits": 1, "num_inits": 2},
    )
    assert run_experiment(cfg, progress=False)["n_runs"] == 2


def test_too_small_classes_are_named_and_can_be_dropped(tmp_path):
    path = write_graph_file(
        tmp_path / "small.npz", "csr", small_graph(class_sizes=(12, 4, 9, 3))
    )
    split = {"num_splits": 1, "num_inits": 1, "train_per_class": 3, "val_per_class": 2}
    cfg = config(
        tmp_path, dataset={"path": str(path), "largest_component": False}, split=split
    )
    with pytest.raises(ValueError) as info:
        plan_runs(cfg, load_dataset(**load_arguments(cfg)))
    message = str(info.value)
    assert "class 1: 4 nodes, class 3: 3 nodes" in message
    assert "dataset.min_class_size: 4" in message
    dropped = config(
        tmp_path,
        dataset={"path": str(path), "largest_component": False, "min_class_size": 4},
        split=split,
    )
    data = load_dataset(**load_arguments(dropped))
    assert data.num_nodes == 12 + 9 and int(data.y.max()) == 1
    (run,) = plan_runs(dropped, data)
    assert run.train_idx.numel() == 6 and run.val_idx.numel() == 4


def test_dataset_section_checks(tmp_path, graph_file):
    with pytest.raises(ConfigError, match="^dataset.path: give either"):
        config(tmp_path, dataset={"name": "cora", "path": "g.npz"})
    with pytest.raises(ConfigError, match=r"^dataset.name: required key is missing"):
        config(tmp_path, dataset={"standardize": True})
    with pytest.raises(ConfigError, match="^dataset.root: only used with dataset.name"):
        config(tmp_path, dataset={"path": "g.npz", "root": "/data"})
    with pytest.raises(ConfigError, match="^dataset.format: only used with"):
        config(tmp_path, dataset={"name": "cora", "format": "csr"})
    with pytest.raises(ConfigError, match="^dataset.format: expected one of 'auto'"):
        config(tmp_path, dataset={"path": "g.npz", "format": "npy"})
    with pytest.raises(
        ConfigError, match="^dataset.symmetrize: true is a step of the standard"
    ):
        config(
            tmp_path,
            dataset={"path": "g.npz", "standardize": False, "symmetrize": True},
        )
    with pytest.raises(ConfigError, match="^split.scheme: 'given' needs a dataset"):
        config(tmp_path, dataset={"name": "cora"}, split={"scheme": "given"})


def test_new_keys_are_written_only_when_set(tmp_path, graph_file):
    plain = config(tmp_path, dataset={"name": "cora"})
    assert list(config_to_dict(plain)["dataset"]) == [
        "name",
        "root",
        "standardize",
        "normalize_features",
        "edge_weights",  # always written (the fingerprint skips it at "use")
    ]
    for key, value in (
        ("largest_component", False),
        ("symmetrize", False),
        ("binarize", False),
        ("min_class_size", 3),
    ):
        changed = config(tmp_path, dataset={"name": "cora", key: value})
        assert config_to_dict(changed)["dataset"][key] == value
        assert fingerprint(changed) != fingerprint(plain)
        assert config_from_dict(config_to_dict(changed)) == changed


def test_cli_runs_a_shipped_config_on_a_file(tmp_path, graph_file, capsys):
    out = tmp_path / "out"
    argv = [
        "-q",
        "run",
        str(REPO / "configs" / "cora" / "gcn.yaml"),
        f"dataset.path={graph_file}",
        "split.scheme=given",
        "split.num_splits=1",
        "split.num_inits=1",
        "train.max_epochs=2",
        f"output={out}",
    ]
    assert main(argv) == 0
    (row,) = read_rows(out)
    assert row["dataset"] == "mygraph" and row["epochs"] == 2
    # an override of dataset.path replaces the config's named dataset; naming
    # both on the command line is refused
    assert main(argv[:3] + ["dataset.name=cora"] + argv[3:]) == 2
    assert "add dataset.name=null" in capsys.readouterr().err


@pytest.mark.real_data
def test_public_split_on_real_planetoid_cora(tmp_path, data_cache):
    cfg = config(
        tmp_path,
        dataset={"name": "planetoid/cora", "root": str(data_cache)},
        split={"scheme": "public", "num_splits": 1, "num_inits": 1},
    )
    (run,) = plan_runs(cfg, load_dataset(**load_arguments(cfg)))
    sizes = (run.train_idx.numel(), run.val_idx.numel(), run.test_idx.numel())
    assert sizes == (140, 500, 1000)

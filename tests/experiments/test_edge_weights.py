"""A graph's edge weights reach the models that take them."""

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import yaml

from diffresnet_pyg.cli import main
from diffresnet_pyg.experiments.models import get_model
from diffresnet_pyg.experiments.schema import config_from_dict, fingerprint
from tests.fake_data import small_graph


def _write_weighted(path: Path, weights: np.ndarray | None, drop=()) -> Path:
    """:func:`small_graph` as a ``csr`` file with ``weights`` per stored edge."""
    graph = small_graph(num_splits=2)
    edges = graph["edges"]
    keep = np.ones(len(edges), dtype=bool)
    keep[list(drop)] = False
    n = graph["y"].size
    data = np.ones(len(edges), np.float32) if weights is None else weights
    adj = sp.csr_matrix((data[keep], (edges[keep, 0], edges[keep, 1])), shape=(n, n))
    adj.sort_indices()
    arrays = dict(indptr=adj.indptr, indices=adj.indices, x=graph["x"], y=graph["y"])
    if weights is not None:
        arrays["data"] = adj.data
    masks = {k[:-1]: graph[k].T for k in ("train_masks", "val_masks", "test_masks")}
    np.savez(path, **arrays, **masks)
    return path


def _run(tmp: Path, graph: Path, out: str, model: dict, **dataset) -> list[dict]:
    raw = {
        "output": str(tmp / out),
        "dataset": {"path": str(graph), "standardize": False, **dataset},
        "split": {"scheme": "given", "num_splits": 2, "num_inits": 2},
        "model": model,
        "train": {"max_epochs": 10, "patience": 5, "batch_members": 2},
    }
    cfg = tmp / f"{out}.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    assert main(["-q", "run", str(cfg)]) == 0
    lines = (tmp / out / "runs.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    return sorted(rows, key=lambda r: (r["split"], r["init"]))


GCN = {"name": "gcn", "hidden_channels": 8, "dropout": 0.5}
DIFFRESNET = {"name": "diffresnet", "hidden_channels": 8, "diffusion_steps": 3}


def _weights(seed: int = 0) -> np.ndarray:
    num_edges = len(small_graph(num_splits=2)["edges"])
    return np.random.default_rng(seed).uniform(0.05, 3.0, num_edges).astype("f4")


@pytest.mark.parametrize("model", [GCN, DIFFRESNET], ids=["gcn", "diffresnet"])
def test_weights_change_training_unless_ignored(tmp_path, model):
    graph = _write_weighted(tmp_path / "weighted.npz", _weights())
    used = _run(tmp_path, graph, "used", model)
    ignored = _run(tmp_path, graph, "ignored", model, edge_weights="ignore")
    plain = _write_weighted(tmp_path / "plain.npz", None)
    unweighted = _run(tmp_path, plain, "unweighted", model)
    assert [r["val_loss"] for r in used] != [r["val_loss"] for r in ignored]
    assert [r["val_loss"] for r in ignored] == pytest.approx(
        [r["val_loss"] for r in unweighted], rel=1e-6
    )
    saved = yaml.safe_load((tmp_path / "ignored" / "config.yaml").read_text())
    assert saved["dataset"]["edge_weights"] == "ignore"


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("model", [GCN, DIFFRESNET], ids=["gcn", "diffresnet"])
def test_zero_weights_remove_their_edges(tmp_path, model, batch):
    edges = small_graph(num_splits=2)["edges"]
    drop = [3, 7, 11]
    weights = np.ones(len(edges), np.float32)
    weights[drop] = 0.0
    zeroed = _write_weighted(tmp_path / "zeroed.npz", weights)
    fewer = _write_weighted(tmp_path / "fewer.npz", np.ones_like(weights), drop)
    model = {**model, "name": model["name"]}
    a = _run(tmp_path, zeroed, f"zeroed{batch}", model)
    b = _run(tmp_path, fewer, f"fewer{batch}", model)
    for left, right in zip(a, b, strict=True):
        assert left["val_loss"] == pytest.approx(right["val_loss"], rel=1e-5)
        assert left["test_acc"] == right["test_acc"]


def test_a_model_without_weights_is_refused(tmp_path, capsys):
    graph = _write_weighted(tmp_path / "weighted.npz", _weights())
    assert not get_model("gat").edge_weights
    raw = {
        "output": str(tmp_path / "out"),
        "dataset": {"path": str(graph), "standardize": False},
        "split": {"scheme": "given", "num_splits": 2, "num_inits": 1},
        "model": {"name": "gat", "hidden_channels": 8},
        "train": {"max_epochs": 2},
    }
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    assert main(["-q", "run", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("diffresnet-pyg: error: ")
    assert "has edge weights, but model 'gat' takes none" in err
    assert "dataset.edge_weights=ignore" in err
    assert not (tmp_path / "out").exists()
    assert main(["-q", "run", str(cfg), "dataset.edge_weights=ignore"]) == 0


def test_the_default_keeps_fingerprints():
    raw = {"output": "a", "dataset": {"name": "cora"}, "model": {"name": "gcn"}}
    before = fingerprint(config_from_dict(raw))
    used = config_from_dict({**raw, "dataset": {"name": "cora", "edge_weights": "use"}})
    assert fingerprint(used) == before
    ignored = config_from_dict(
        {**raw, "dataset": {"name": "cora", "edge_weights": "ignore"}}
    )
    assert fingerprint(ignored) != before

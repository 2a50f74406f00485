import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torch_geometric.typing as pyg_typing
import yaml
from torch_geometric.data import Data
from torch_geometric.nn.models import GCN
from torch_geometric.utils import (
    dense_to_sparse,
    stochastic_blockmodel_graph,
    to_dense_adj,
    to_undirected,
)

from diffresnet_pyg import typing as dtyping
from diffresnet_pyg.cli import main
from diffresnet_pyg.experiments.minibatch import (
    _batch_step,
    batch_loader,
    cached_modules,
    evaluation_graph,
    seeded_generator,
    train_members_minibatch,
)
from diffresnet_pyg.experiments.runner import run_experiment
from diffresnet_pyg.experiments.schema import (
    BatchingConfig,
    ConfigError,
    config_from_dict,
    config_to_dict,
    load_config,
)
from diffresnet_pyg.experiments.training import SingleMember, train_members
from diffresnet_pyg.loader import (
    MissingBackendError,
    RandomPartitionLoader,
    has_metis,
    has_neighbor_sampler,
)
from diffresnet_pyg.nn import DiffResNet, knn_graph
from diffresnet_pyg.nn.batched import BatchedDiffResNet


def members(seeds, in_channels, out_channels, **kwargs) -> BatchedDiffResNet:
    kwargs = {
        "num_blocks": 1,
        "diffusion_steps": 3,
        "laplacian": "reference",
        "dropout": 0.2,
        "diffusion_dropout": 0.0,
        **kwargs,
    }
    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        models.append(DiffResNet(in_channels, 16, out_channels, **kwargs))
    return BatchedDiffResNet.from_modules(models)


def planted_partition(
    seed: int, per_class: int = 100, classes: int = 4, num_val: int = 100
):
    """Planted-partition graph: p_in 0.1, p_out 0.01; noisy class-mean features.

    Features alone give ~48% test accuracy, the graph lifts it to ~88%
    (measured over 30 graphs), so training that ignores the graph is caught.
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        probs = torch.full((classes, classes), 0.01).fill_diagonal_(0.1)
        edge_index = stochastic_blockmodel_graph([per_class] * classes, probs)
        y = torch.arange(classes).repeat_interleave(per_class)
        x = torch.randn(classes, 16)[y] + 2.5 * torch.randn(classes * per_class, 16)
        perm = torch.randperm(classes * per_class)
        train = torch.cat([perm[y[perm] == c][:5] for c in range(classes)])
        rest = perm[~torch.isin(perm, train)]
    return x, edge_index, y, train, rest[:num_val], rest[num_val:]


# --------------------------------------------------------------------------
# The training step
# --------------------------------------------------------------------------


def test_one_part_repeats_full_batch_training_exactly():
    x, edge_index, y, train, val, test = planted_partition(
        0, per_class=30, classes=2, num_val=20
    )
    idx = [torch.stack([i, i.roll(1)]) for i in (train, val, test)]
    torch.manual_seed(5)
    full = train_members(
        members([1, 2], 16, 2), x, edge_index, y, *idx, max_epochs=25, patience=5
    )
    torch.manual_seed(5)
    loader = RandomPartitionLoader(edge_index, 60, 1, generator=torch.Generator())
    mini = train_members_minibatch(
        members([1, 2], 16, 2),
        x,
        loader,
        y,
        *idx,
        eval_graph=edge_index,
        max_epochs=25,
        patience=5,
    )
    for a, b in zip(full, mini, strict=True):
        assert (a.epochs, a.best_epoch, a.val_loss, a.test_acc) == (
            b.epochs,
            b.best_epoch,
            b.val_loss,
            b.test_acc,
        )


@pytest.mark.parametrize("seed_nodes", [None, 5])
@pytest.mark.parametrize("sparse", [False, True])
def test_batch_step_is_each_members_own_loss_on_the_batch(seed_nodes, sparse):
    n, num_classes = 20, 3
    g = torch.Generator().manual_seed(0)
    upper = torch.rand(n, n, generator=g).triu(1) < 0.3
    adj = (upper | upper.t()).float()
    x = torch.rand(n, 6, generator=g)
    x[x < 0.5] = 0.0
    y = torch.randint(0, num_classes, (n,), generator=g)
    nodes = torch.tensor([1, 2, 4, 7, 8, 11, 12, 15, 17, 19])
    batch = Data(edge_index=dense_to_sparse(adj[nodes][:, nodes])[0], n_id=nodes)
    targets = nodes if seed_nodes is None else nodes[:seed_nodes]
    if seed_nodes is not None:
        batch.batch_size = seed_nodes
    # member 0: some training nodes in the batch (and some of them not targets
    # when seed_nodes is set); member 1: none at all
    train_idx = torch.tensor([[1, 7, 11, 3, 5, 19], [0, 3, 5, 6, 9, 10]])
    model = members([3, 4], 6, num_classes, dropout=0.0)
    expected = []
    for b in range(2):
        plain = model.unstack(b)
        inside = [i for i in train_idx[b].tolist() if i in targets.tolist()]
        if inside:
            pos = torch.tensor([nodes.tolist().index(i) for i in inside])
            out = plain(x[nodes], dense_to_sparse(adj[nodes][:, nodes])[0])
            F.cross_entropy(out[pos], y[inside]).backward()
            with torch.no_grad():
                for p in plain.parameters():
                    p -= p.grad
        expected.append(plain)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    features = x.to_sparse_csr() if sparse else x
    assert _batch_step(model, opt, batch, features, y, train_idx, n)
    for b in range(2):  # member 1 has no training node in the batch: unchanged
        got = model.unstack(b).state_dict()
        for name, value in expected[b].state_dict().items():
            torch.testing.assert_close(got[name], value, rtol=1e-5, atol=1e-6)


def test_a_batch_without_training_nodes_is_skipped():
    model = SingleMember(DiffResNet(4, 8, 2, num_blocks=1, diffusion_steps=1))
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    batch = Data(edge_index=torch.tensor([[0, 1], [1, 0]]), n_id=torch.tensor([2, 3]))
    took_step = _batch_step(
        model,
        opt,
        batch,
        torch.randn(6, 4),
        torch.zeros(6, dtype=torch.long),
        torch.tensor([[0, 1, 5]]),
        6,
    )
    assert took_step is False
    after = list(model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_cached_diffusion_follows_the_batch_graphs():
    # cached diffusion layers key their cache on the graph: a fresh Laplacian
    # for every training batch, the whole graph's for evaluation; same results
    # as uncached, and nothing outside the layers touches their settings
    x, edge_index, y, train, val, test = planted_partition(
        1, per_class=30, classes=2, num_val=20
    )
    idx = [torch.stack([i, i.roll(1)]) for i in (train, val, test)]
    results = []
    for cached in (False, True):
        model = members([1, 2], 16, 2, num_blocks=2, cached=cached)
        torch.manual_seed(3)
        loader = RandomPartitionLoader(
            edge_index, 60, 3, generator=torch.Generator().manual_seed(0)
        )
        results.append(
            train_members_minibatch(
                model, x, loader, y, *idx, eval_graph=edge_index, max_epochs=15
            )
        )
        assert all(conv.cached is cached for conv in model.convs)
        caches = [conv._cache.value for conv in model.convs]
        if cached:  # only the whole graph is still alive: its operators
            assert all(c is not None and c.laplacian.num_nodes == 60 for c in caches)
            assert all(len(conv._cache) == 1 for conv in model.convs)
        else:
            assert caches == [None, None]
    assert results[0] == [
        dataclasses.replace(r, train_seconds=a.train_seconds)
        for r, a in zip(results[1], results[0], strict=True)
    ]


def test_other_cached_graph_operators_are_refused():
    model = SingleMember(GCN(4, 8, num_layers=2, out_channels=2, cached=True))
    assert cached_modules(model) == ["module.convs.0", "module.convs.1"]
    x, edge_index = torch.randn(6, 4), torch.tensor([[0, 1], [1, 0]])
    idx = torch.tensor([[0, 1]])
    loader = RandomPartitionLoader(edge_index, 6, 2)
    with pytest.raises(ValueError, match="cache their graph operator.*module.convs.0"):
        train_members_minibatch(
            model,
            x,
            loader,
            torch.zeros(6, dtype=torch.long),
            idx,
            idx,
            idx,
            eval_graph=edge_index,
        )


def test_random_partitions_reach_full_batch_accuracy():
    """Mini-batch (2 random parts) vs full-batch Diff-ResNet, same inits.

    Tolerance: measured on 30 planted-partition graphs (this generator, seeds
    0-29) x 4 inits, the per-graph mean test accuracy was 88.25 +- 3.74
    full-batch and 87.66 +- 4.44 with 2 random parts; the paired difference
    (mini-batch - full) was -0.60 +- 1.32 points per graph. Over the 3 graphs
    here the mean difference has a standard deviation of about
    1.32 / sqrt(3) = 0.76, so a 3-point tolerance is the bias plus about 3
    standard deviations (these 3 graphs: 85.09 full-batch, 84.55 mini-batch).
    Features alone reach only ~48%, so mini-batch training that ignores the
    graph fails the 75% floor. With 4 parts (each node keeps about a quarter
    of its neighbours in its batch) the same measurement gave -3.08 +- 2.06:
    the gap grows with the number of parts, so 2 parts are tested.
    """
    full_acc, mini_acc = [], []
    for graph in range(3):
        x, edge_index, y, train, val, test = planted_partition(graph)
        idx = [i.expand(4, -1) for i in (train, val, test)]
        seeds = list(range(100 * graph, 100 * graph + 4))
        settings = {"max_epochs": 150, "patience": 20}
        full = train_members(
            members(seeds, 16, 4, diffusion_steps=5), x, edge_index, y, *idx, **settings
        )
        loader = RandomPartitionLoader(
            edge_index, y.numel(), 2, generator=seeded_generator(graph)
        )
        mini = train_members_minibatch(
            members(seeds, 16, 4, diffusion_steps=5),
            x,
            loader,
            y,
            *idx,
            eval_graph=edge_index,
            **settings,
        )
        full_acc += [r.test_acc for r in full]
        mini_acc += [r.test_acc for r in mini]
    full_mean = 100 * sum(full_acc) / len(full_acc)
    mini_mean = 100 * sum(mini_acc) / len(mini_acc)
    assert abs(mini_mean - full_mean) <= 3.0, (full_mean, mini_mean)
    assert mini_mean >= 75.0


# --------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------


def base_config(**train) -> dict:
    return {
        "output": "out",
        "dataset": {"name": "cora"},
        "model": {"name": "gcn"},
        "train": train,
    }


def test_batching_defaults_to_full_batch_and_round_trips():
    cfg = config_from_dict(base_config())
    assert (
        cfg.train.batching == BatchingConfig() and cfg.train.batching.method == "full"
    )
    cfg = config_from_dict(
        base_config(batching={"method": "neighbor", "num_neighbors": [15, 5]})
    )
    assert cfg.train.batching.num_neighbors == (15, 5)
    dumped = yaml.safe_dump(config_to_dict(cfg))
    assert config_from_dict(yaml.safe_load(dumped)) == cfg


def test_batching_cli_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(base_config()))
    cfg = load_config(
        path, ["train.batching.method=random_partition", "train.batching.num_parts=4"]
    )
    assert (cfg.train.batching.method, cfg.train.batching.num_parts) == (
        "random_partition",
        4,
    )


@pytest.mark.parametrize(
    "batching,message",
    [
        ({"method": "minibatch"}, "train.batching.method: expected one of 'full'"),
        ({"num_parts": 4}, "train.batching.num_parts: only used by methods"),
        (
            {"method": "cluster", "knn": 5},
            "train.batching.knn: only used by methods 'random_partition' "
            "(method is 'cluster')",
        ),
        (
            {"method": "random_partition", "batch_size": 5},
            "train.batching.batch_size: only used by methods 'neighbor'",
        ),
        (
            {"method": "random_partition", "parts_per_batch": 9},
            "train.batching.parts_per_batch: must be <= num_parts (8), got 9",
        ),
        (
            {"method": "neighbor", "num_neighbors": [10, 0]},
            "train.batching.num_neighbors[1]: expected an int >= 1 or -1",
        ),
        (
            {"method": "neighbor", "num_neighbors": []},
            "train.batching.num_neighbors: expected a non-empty list",
        ),
        (
            {"method": "random_partition", "num_parts": 0},
            "train.batching.num_parts: expected an int >= 1",
        ),
        ({"parts": 2}, "train.batching.parts: unknown key; allowed: method"),
        ("random_partition", "train.batching: expected a mapping"),
    ],
)
def test_batching_errors(batching, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from_dict(base_config(batching=batching))


def test_loader_and_evaluation_graph_of_a_config():
    n = 30
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(0))
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 0]])
    batching = BatchingConfig("random_partition", num_parts=3, knn=2)
    loader = batch_loader(
        batching,
        edge_index,
        n,
        x=x,
        train_nodes=torch.arange(5),
        generator=torch.Generator(),
    )
    assert isinstance(loader, RandomPartitionLoader) and loader.knn == 2
    graph = evaluation_graph(batching, x.to_sparse_csr(), edge_index)
    expected = to_undirected(knn_graph(x, 2), num_nodes=n)
    assert to_dense_adj(graph, max_num_nodes=n).equal(
        to_dense_adj(expected, max_num_nodes=n)
    )
    plain = BatchingConfig("random_partition")
    assert evaluation_graph(plain, x, edge_index) is edge_index


# --------------------------------------------------------------------------
# Runner
# --------------------------------------------------------------------------


def write_config(path: Path, root: Path, output: Path, batching: dict) -> Path:
    raw = {
        "output": str(output),
        "dataset": {"name": "cora", "root": str(root)},
        "split": {"num_splits": 1, "num_inits": 3},
        "model": {
            "name": "diffresnet",
            "hidden_channels": 8,
            "num_blocks": 1,
            "diffusion_steps": 2,
        },
        "train": {"max_epochs": 3, "batch_members": 2, "batching": batching},
    }
    path.write_text(yaml.safe_dump(raw))
    return path


def rows(folder: Path) -> list[dict]:
    return [
        json.loads(line) for line in (folder / "runs.jsonl").read_text().splitlines()
    ]


def test_runner_trains_on_random_partitions_and_resumes(tmp_path, fake_root):
    out = tmp_path / "res"
    batching = {"method": "random_partition", "num_parts": 4, "parts_per_batch": 2}
    cfg = write_config(tmp_path / "c.yaml", fake_root, out, batching)
    assert main(["-q", "run", str(cfg)]) == 0
    first = rows(out)
    assert [(r["split"], r["init"]) for r in first] == [(0, 0), (0, 1), (0, 2)]
    assert [r["batch_members"] for r in first] == [2, 2, 1]  # batched and single
    assert all(r["epochs"] == 3 and 0.0 <= r["test_acc"] <= 1.0 for r in first)
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["train"]["batching"]["method"] == "random_partition"
    # resuming: nothing is rerun; a lost row is rerun identically (seeded)
    assert main(["-q", "run", str(cfg)]) == 0
    assert rows(out) == first
    (out / "runs.jsonl").write_text(json.dumps(first[2]) + "\n")
    assert main(["-q", "run", str(cfg)]) == 0
    again = rows(out)
    assert len(again) == 3
    drop = ("seconds", "batch_seconds")
    strip = [{k: v for k, v in r.items() if k not in drop} for r in first]
    assert (
        sorted(
            [{k: v for k, v in r.items() if k not in drop} for r in again],
            key=lambda r: r["init"],
        )
        == strip
    )


def test_runner_refuses_a_folder_of_full_batch_results(tmp_path, fake_root, capsys):
    out = tmp_path / "res"
    cfg = write_config(tmp_path / "c.yaml", fake_root, out, {"method": "full"})
    assert main(["-q", "run", str(cfg), "split.num_inits=1"]) == 0
    overrides = ["split.num_inits=1", "train.batching.method=random_partition"]
    assert main(["-q", "run", str(cfg), *overrides]) == 2
    assert "train.batching" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["neighbor", "cluster"])
def test_runner_names_the_missing_backend(tmp_path, fake_root, monkeypatch, method):
    monkeypatch.setattr(dtyping, "WITH_PYG_LIB", False)
    monkeypatch.setattr(dtyping, "WITH_TORCH_SPARSE", False)
    monkeypatch.setattr(pyg_typing, "WITH_METIS", False)
    cfg = write_config(
        tmp_path / "c.yaml", fake_root, tmp_path / "r", {"method": method}
    )
    with pytest.raises(MissingBackendError, match="'pyg-lib'.*'torch-sparse'"):
        run_experiment(load_config(cfg), progress=False)


@pytest.mark.parametrize(
    "batching",
    [
        pytest.param(
            {"method": "neighbor", "num_neighbors": [5, 5], "batch_size": 64},
            marks=pytest.mark.skipif(
                not has_neighbor_sampler(), reason="needs pyg-lib or torch-sparse"
            ),
        ),
        pytest.param(
            {"method": "cluster", "num_parts": 8, "parts_per_batch": 2},
            marks=pytest.mark.skipif(not has_metis(), reason="needs METIS"),
        ),
    ],
)
def test_runner_with_compiled_loaders(tmp_path, fake_root, batching):
    out = tmp_path / "res"
    cfg = write_config(tmp_path / "c.yaml", fake_root, out, batching)
    try:
        summary = run_experiment(load_config(cfg), progress=False)
    except MissingBackendError as exc:  # torch-sparse built without METIS
        pytest.skip(str(exc))
    assert summary["n_runs"] == 3 and summary["complete"] is True
    assert all(0.0 <= r["test_acc"] <= 1.0 for r in rows(out))

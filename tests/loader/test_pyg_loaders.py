import pytest
import torch
import torch_geometric.typing as pyg_typing
from torch_geometric.utils import to_dense_adj

from diffresnet_pyg import typing as dtyping
from diffresnet_pyg.loader import (
    MissingBackendError,
    cluster_loader,
    has_metis,
    has_neighbor_sampler,
    neighbor_loader,
)


def random_graph(num_nodes: int = 40, p: float = 0.15, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    upper = torch.rand(num_nodes, num_nodes, generator=g).triu(1) < p
    return (upper | upper.t()).nonzero().t()


def dense(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    return to_dense_adj(edge_index, max_num_nodes=num_nodes)[0]


def test_neighbor_loader_names_the_missing_packages(monkeypatch):
    monkeypatch.setattr(dtyping, "WITH_PYG_LIB", False)
    monkeypatch.setattr(dtyping, "WITH_TORCH_SPARSE", False)
    assert not has_neighbor_sampler()
    with pytest.raises(MissingBackendError, match="'pyg-lib' or 'torch-sparse'"):
        neighbor_loader(random_graph(), 40, torch.arange(5), [5], 2)
    assert issubclass(MissingBackendError, ImportError)


def test_cluster_loader_names_the_missing_packages(monkeypatch):
    monkeypatch.setattr(pyg_typing, "WITH_METIS", False)
    monkeypatch.setattr(dtyping, "WITH_TORCH_SPARSE", False)
    assert not has_metis()
    with pytest.raises(MissingBackendError, match="METIS .*'pyg-lib'.*'torch-sparse'"):
        cluster_loader(random_graph(), 40, 4)


needs_sampler = pytest.mark.skipif(
    not has_neighbor_sampler(), reason="needs pyg-lib or torch-sparse"
)


@needs_sampler
def test_neighbor_batches_are_seed_first_subgraphs_of_the_graph():
    n = 40
    edge_index = random_graph(n)
    full = dense(edge_index, n)
    seeds = torch.tensor([1, 5, 8, 13, 21, 34, 39])
    loader = neighbor_loader(
        edge_index, n, seeds, [-1], 3, generator=torch.Generator().manual_seed(0)
    )
    covered = []
    for batch in loader:
        targets = batch.n_id[: batch.batch_size]
        covered += targets.tolist()
        # one hop with all neighbours: the seeds and exactly their neighbours
        expected = set(targets.tolist()) | set(full[targets].nonzero()[:, 1].tolist())
        assert set(batch.n_id.tolist()) == expected
        sub = dense(batch.edge_index, batch.num_nodes)
        assert sub.equal(sub.t())  # made undirected
        assert bool((sub <= full[batch.n_id][:, batch.n_id]).all())
        # every seed keeps all of its edges
        for a in range(batch.batch_size):
            assert sub[a].sum() == full[targets[a]].sum()
    assert sorted(covered) == seeds.tolist()


@pytest.mark.parametrize(
    "args,match",
    [
        (([0], 2), "'num_neighbors' must be a non-empty list"),
        (([], 2), "'num_neighbors' must be a non-empty list"),
        (([2], 0), "'batch_size' must be an integer >= 1"),
    ],
)
def test_neighbor_loader_argument_errors(args, match):
    with pytest.raises(ValueError, match=match):
        neighbor_loader(random_graph(), 40, torch.arange(5), *args)
    with pytest.raises(ValueError, match=r"'edge_index' must have shape \[2, E\]"):
        neighbor_loader(
            torch.zeros(3, 4, dtype=torch.long), 40, torch.arange(5), [2], 1
        )


def _cluster_loader_or_skip(*args, **kwargs):
    if not has_metis():
        pytest.skip("needs METIS (pyg-lib or torch-sparse)")
    try:
        return cluster_loader(*args, **kwargs)
    except MissingBackendError as exc:  # torch-sparse built without METIS
        pytest.skip(str(exc))


@pytest.mark.parametrize("parts_per_batch", [1, 2])
def test_cluster_batches_cover_the_nodes_with_induced_subgraphs(parts_per_batch):
    n = 40
    edge_index = random_graph(n)
    full = dense(edge_index, n)
    loader = _cluster_loader_or_skip(
        edge_index, n, 4, parts_per_batch, generator=torch.Generator().manual_seed(0)
    )
    batches = list(loader)
    assert len(batches) == 4 // parts_per_batch
    seen = torch.cat([b.n_id for b in batches])
    assert seen.sort().values.tolist() == list(range(n))
    for b in batches:
        assert dense(b.edge_index, b.num_nodes).equal(full[b.n_id][:, b.n_id])


def test_cluster_loader_argument_errors():
    with pytest.raises(ValueError, match=r"'parts_per_batch' \(3\) must not exceed"):
        cluster_loader(random_graph(), 40, 2, 3)
    with pytest.raises(ValueError, match="'num_parts' must be an integer >= 1"):
        cluster_loader(random_graph(), 40, 0)
    with pytest.raises(ValueError, match="'num_nodes' must be an integer >= 1"):
        cluster_loader(random_graph(), 0, 2)

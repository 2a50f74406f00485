import pytest
import torch
from torch_geometric.utils import to_dense_adj

from diffresnet_pyg.loader import (
    RandomPartitionLoader,
    induced_subgraph,
    random_partition,
)


def random_graph(num_nodes: int = 30, p: float = 0.2, seed: int = 0) -> torch.Tensor:
    """Undirected random graph, as edge_index, from a dense symmetric 0/1 matrix."""
    g = torch.Generator().manual_seed(seed)
    upper = torch.rand(num_nodes, num_nodes, generator=g).triu(1) < p
    adj = upper | upper.t()
    return adj.nonzero().t()


def dense(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    return to_dense_adj(edge_index, max_num_nodes=num_nodes)[0]


@pytest.mark.parametrize("num_nodes,num_parts", [(10, 3), (30, 30), (7, 1), (64, 8)])
def test_random_partition_covers_every_node_once(num_nodes, num_parts):
    parts = random_partition(num_nodes, num_parts, torch.Generator().manual_seed(1))
    assert len(parts) == num_parts
    joined = torch.cat(parts)
    assert joined.sort().values.tolist() == list(range(num_nodes))
    sizes = [p.numel() for p in parts]
    assert max(sizes) - min(sizes) <= 1
    assert all(p.tolist() == sorted(p.tolist()) for p in parts)


def test_random_partition_is_reproducible_and_seed_dependent():
    a = random_partition(50, 4, torch.Generator().manual_seed(7))
    b = random_partition(50, 4, torch.Generator().manual_seed(7))
    c = random_partition(50, 4, torch.Generator().manual_seed(8))
    assert all(x.equal(y) for x, y in zip(a, b, strict=True))
    assert not all(x.equal(y) for x, y in zip(a, c, strict=True))


@pytest.mark.parametrize(
    "args,match",
    [
        ((0, 1), "'num_nodes' must be an integer >= 1"),
        ((5, 0), "'num_parts' must be an integer >= 1"),
        ((5, 6), r"'num_parts' \(6\) must not exceed 'num_nodes' \(5\)"),
        ((5, 2.0), "'num_parts' must be an integer"),
        ((True, 1), "'num_nodes' must be an integer"),
    ],
)
def test_random_partition_errors(args, match):
    with pytest.raises(ValueError, match=match):
        random_partition(*args)


def test_induced_subgraph_equals_the_adjacency_submatrix():
    n = 30
    edge_index = random_graph(n)
    full = dense(edge_index, n)
    nodes = torch.tensor([0, 3, 4, 9, 17, 18, 25, 29])
    sub = induced_subgraph(edge_index, nodes, n)
    assert dense(sub, nodes.numel()).equal(full[nodes][:, nodes])


@pytest.mark.parametrize("num_parts,parts_per_batch", [(4, 1), (5, 2), (6, 3), (3, 3)])
def test_loader_epoch_covers_every_node_once_with_induced_subgraphs(
    num_parts, parts_per_batch
):
    n = 30
    edge_index = random_graph(n)
    full = dense(edge_index, n)
    loader = RandomPartitionLoader(
        edge_index,
        n,
        num_parts,
        parts_per_batch,
        generator=torch.Generator().manual_seed(3),
    )
    batches = list(loader)
    assert len(batches) == len(loader) == -(-num_parts // parts_per_batch)
    seen = torch.cat([b.n_id for b in batches])
    assert seen.sort().values.tolist() == list(range(n))
    for b in batches:
        assert b.n_id.tolist() == sorted(b.n_id.tolist())
        assert b.num_nodes == b.batch_size == b.n_id.numel()
        assert dense(b.edge_index, b.num_nodes).equal(full[b.n_id][:, b.n_id])


def test_resampling_draws_new_parts_and_a_fixed_partition_keeps_them():
    edge_index = random_graph(40)

    def epochs(resample: bool) -> list[set[tuple[int, ...]]]:
        loader = RandomPartitionLoader(
            edge_index,
            40,
            4,
            resample=resample,
            generator=torch.Generator().manual_seed(0),
        )
        return [{tuple(b.n_id.tolist()) for b in loader} for _ in range(3)]

    fixed = epochs(False)
    assert fixed[0] == fixed[1] == fixed[2]
    fresh = epochs(True)
    assert fresh[0] != fresh[1]


def test_loader_is_reproducible():
    edge_index = random_graph(40)

    def run(seed: int) -> list[list[int]]:
        loader = RandomPartitionLoader(
            edge_index, 40, 4, 2, generator=torch.Generator().manual_seed(seed)
        )
        return [b.n_id.tolist() for _ in range(2) for b in loader]

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_knn_batches_hold_the_undirected_knn_graph_of_their_features():
    n, k = 40, 3
    x = torch.randn(n, 4, generator=torch.Generator().manual_seed(0))
    loader = RandomPartitionLoader(
        None, n, 2, x=x, knn=k, generator=torch.Generator().manual_seed(1)
    )
    for b in loader:
        feats = x[b.n_id]
        dist = torch.cdist(feats, feats)
        dist.fill_diagonal_(float("inf"))
        nearest = dist.topk(k, largest=False).indices  # [n_b, k]
        expected = torch.zeros(b.num_nodes, b.num_nodes)
        rows = torch.arange(b.num_nodes).repeat_interleave(k)
        expected[rows, nearest.flatten()] = 1
        expected = ((expected + expected.t()) > 0).float()
        assert dense(b.edge_index, b.num_nodes).equal(expected)


def test_knn_batches_accept_sparse_features():
    n = 20
    x = torch.rand(n, 6, generator=torch.Generator().manual_seed(0))
    dense_loader = RandomPartitionLoader(
        None, n, 2, x=x, knn=2, generator=torch.Generator().manual_seed(4)
    )
    sparse_loader = RandomPartitionLoader(
        None,
        n,
        2,
        x=x.to_sparse_csr(),
        knn=2,
        generator=torch.Generator().manual_seed(4),
    )
    for a, b in zip(dense_loader, sparse_loader, strict=True):
        assert a.n_id.equal(b.n_id) and a.edge_index.equal(b.edge_index)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"num_parts": 0}, "'num_parts' must be an integer >= 1"),
        ({"num_parts": 31}, r"'num_parts' \(31\) must not exceed 'num_nodes' \(30\)"),
        ({"parts_per_batch": 5}, r"'parts_per_batch' \(5\) must not exceed"),
        ({"resample": 1}, "'resample' must be True or False"),
        ({"knn": 2}, "'knn' builds graphs from features: pass 'x'"),
        ({"knn": 0, "x": torch.zeros(30, 2)}, "'knn' must be an integer >= 1"),
        ({"knn": 7, "x": torch.zeros(30, 2)}, r"'knn' \(7\) must be smaller than"),
        ({"x": torch.zeros(29, 2), "knn": 2}, r"'x' must have shape \[num_nodes=30"),
        ({"edge_index": None}, "'edge_index' is required unless 'knn' is given"),
        ({"edge_index": torch.tensor([[0, 30]])}, r"must have shape \[2, E\]"),
        ({"edge_index": torch.tensor([[0], [30]])}, r"node ids outside \[0, 29\]"),
    ],
)
def test_loader_errors(kwargs, match):
    args = {"edge_index": random_graph(30), "num_nodes": 30, "num_parts": 4}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        RandomPartitionLoader(**args)

import doctest
import sys
import types

import pytest
import torch
from torch_geometric.utils import to_dense_adj

from diffresnet_pyg import typing as dtyping
from diffresnet_pyg.nn import knn as knn_module
from diffresnet_pyg.nn.knn import gaussian_knn_graph, gaussian_weight_matrix, knn_graph


@pytest.fixture
def pure_torch(monkeypatch):
    """Force the pure-PyTorch fallback, whatever is installed."""
    monkeypatch.setattr(dtyping, "WITH_TORCH_CLUSTER", False)
    monkeypatch.setattr(dtyping, "WITH_PYG_LIB", False)


# ---------------------------------------------------------------------------
# Reference implementations (dense, brute force)
# ---------------------------------------------------------------------------


def brute_force_neighbours(x, k, batch=None, loop=False, cosine=False):
    """{center: set of k nearest neighbours}, from a full distance matrix."""
    x = x.double()
    n = x.size(0)
    if cosine:
        xn = x / x.norm(dim=1, keepdim=True)
        dist = 1 - xn @ xn.t()
    else:
        dist = ((x.unsqueeze(1) - x.unsqueeze(0)) ** 2).sum(-1)
    if batch is not None:
        dist[batch.view(-1, 1) != batch.view(1, -1)] = float("inf")
    eye = torch.eye(n, dtype=torch.bool)
    dist[eye] = float("-inf") if loop else float("inf")
    order = dist.argsort(dim=1)
    return {i: set(order[i, :k].tolist()) for i in range(n)}


def neighbours_of(edge_index, num_nodes, flow="source_to_target"):
    src, dst = edge_index if flow == "source_to_target" else edge_index.flip(0)
    out = {i: set() for i in range(num_nodes)}
    counts = {i: 0 for i in range(num_nodes)}
    for j, i in zip(src.tolist(), dst.tolist(), strict=True):
        out[i].add(j)
        counts[i] += 1
    return out, counts


def authors_weight(inputs, n_top, sigma):
    """The authors' ``calculate_weight`` (fewshot/utils.py), dtype-preserving."""
    distance = torch.norm(inputs.unsqueeze(0) - inputs.unsqueeze(1), dim=-1)
    dist_n_top = torch.kthvalue(distance, n_top, dim=1, keepdim=True)[0]
    dist_sigma = torch.kthvalue(distance, sigma, dim=1, keepdim=True)[0]
    inf = torch.tensor(float("inf"), dtype=inputs.dtype)
    distance_truncated = distance.where(distance < dist_n_top, inf)
    weight = torch.exp(-(distance_truncated / dist_sigma).pow(2))
    d_inv_sqrt = torch.diag(weight.sum(dim=1).pow(-0.5))
    weight = d_inv_sqrt.mm(weight).mm(d_inv_sqrt)
    weight = (weight + weight.t()) / 2
    return weight


def kept_mask(inputs, n_top):
    distance = torch.norm(inputs.unsqueeze(0) - inputs.unsqueeze(1), dim=-1)
    dist_n_top = torch.kthvalue(distance, n_top, dim=1, keepdim=True)[0]
    return distance < dist_n_top


# ---------------------------------------------------------------------------
# knn_graph
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("loop", [False, True])
@pytest.mark.parametrize("cosine", [False, True])
@pytest.mark.parametrize("chunk_size", [None, 1, 3, 7, 1000])
def test_knn_graph_matches_brute_force(pure_torch, loop, cosine, chunk_size):
    torch.manual_seed(0)
    x = torch.randn(40, 5)
    k = 4
    edge_index = knn_graph(x, k, loop=loop, cosine=cosine, chunk_size=chunk_size)
    assert edge_index.dtype == torch.long
    assert edge_index.shape == (2, 40 * k)
    got, counts = neighbours_of(edge_index, 40)
    assert got == brute_force_neighbours(x, k, loop=loop, cosine=cosine)
    assert set(counts.values()) == {k}
    has_loop = bool((edge_index[0] == edge_index[1]).any())
    assert has_loop == loop


@pytest.mark.parametrize("loop", [False, True])
@pytest.mark.parametrize("cosine", [False, True])
@pytest.mark.parametrize("chunk_size", [None, 1, 2, 5, 13])
def test_knn_graph_batch(pure_torch, loop, cosine, chunk_size):
    torch.manual_seed(1)
    # graph ids with a gap (no node of graph 2) and unequal sizes
    batch = torch.tensor([0] * 9 + [1] * 6 + [3] * 12 + [4] * 5)
    x = torch.randn(batch.numel(), 3, dtype=torch.float64)
    k = 4
    edge_index = knn_graph(
        x, k, batch=batch, loop=loop, cosine=cosine, chunk_size=chunk_size
    )
    got, counts = neighbours_of(edge_index, x.size(0))
    assert got == brute_force_neighbours(x, k, batch, loop=loop, cosine=cosine)
    assert set(counts.values()) == {k}
    assert bool((batch[edge_index[0]] == batch[edge_index[1]]).all())


def test_knn_graph_output_convention(pure_torch):
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [7.0, 0.0]])
    # source_to_target: row 1 is the center, row 0 its neighbours, nearest first
    expected = torch.tensor([[1, 2, 0, 2, 1, 0, 2, 1], [0, 0, 1, 1, 2, 2, 3, 3]])
    assert torch.equal(knn_graph(x, 2), expected)
    assert torch.equal(knn_graph(x, 2, flow="target_to_source"), expected.flip(0))
    looped = knn_graph(x, 2, loop=True)
    assert torch.equal(looped[1], torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    assert torch.equal(looped[0, ::2], torch.arange(4))  # self comes first


def test_knn_graph_duplicates_give_exactly_k(pure_torch):
    x = torch.tensor([[0.0, 0.0]] * 3 + [[5.0, 5.0]])
    edge_index = knn_graph(x, 2)
    assert edge_index.size(1) == 8
    assert not bool((edge_index[0] == edge_index[1]).any())


def test_knn_graph_k_equals_available(pure_torch):
    x = torch.randn(6, 2)
    edge_index = knn_graph(x, 5)
    got, _ = neighbours_of(edge_index, 6)
    assert got == {i: set(range(6)) - {i} for i in range(6)}
    edge_index = knn_graph(x, 6, loop=True)
    got, _ = neighbours_of(edge_index, 6)
    assert got == {i: set(range(6)) for i in range(6)}


def test_knn_graph_empty(pure_torch):
    edge_index = knn_graph(torch.empty(0, 3), 2)
    assert edge_index.shape == (2, 0)
    assert edge_index.dtype == torch.long


def test_knn_graph_integer_features(pure_torch):
    x = torch.tensor([[0, 0], [1, 0], [5, 0], [7, 0]])
    got, _ = neighbours_of(knn_graph(x, 1), 4)
    assert got == {0: {1}, 1: {0}, 2: {3}, 3: {2}}


def test_knn_graph_default_chunk_is_bounded(pure_torch, monkeypatch):
    calls = []
    cdist = torch.cdist

    def spy(a, b, *args, **kwargs):
        calls.append(a.size(-2) * b.size(-2))
        return cdist(a, b, *args, **kwargs)

    monkeypatch.setattr(knn_module, "_DEFAULT_BLOCK_ENTRIES", 200)
    monkeypatch.setattr(torch, "cdist", spy)
    torch.manual_seed(2)
    x = torch.randn(50, 3)
    edge_index = knn_graph(x, 3)
    assert len(calls) == 13 and max(calls) <= 200  # 4 rows x 50 per chunk
    got, _ = neighbours_of(edge_index, 50)
    assert got == brute_force_neighbours(x, 3)


@pytest.mark.parametrize("loop", [False, True])
@pytest.mark.parametrize("with_batch", [False, True])
def test_knn_graph_same_as_torch_cluster(monkeypatch, loop, with_batch):
    torch_cluster = pytest.importorskip("torch_cluster")
    torch.manual_seed(3)
    x = torch.randn(60, 4)
    batch = torch.tensor([0] * 25 + [1] * 35) if with_batch else None
    monkeypatch.setattr(dtyping, "WITH_TORCH_CLUSTER", True)
    ours = knn_graph(x, 5, batch=batch, loop=loop)
    theirs = torch_cluster.knn_graph(x, 5, batch=batch, loop=loop)
    monkeypatch.setattr(dtyping, "WITH_TORCH_CLUSTER", False)
    monkeypatch.setattr(dtyping, "WITH_PYG_LIB", False)
    fallback = knn_graph(x, 5, batch=batch, loop=loop, chunk_size=7)
    assert neighbours_of(ours, 60) == neighbours_of(theirs, 60)
    assert neighbours_of(fallback, 60) == neighbours_of(theirs, 60)


@pytest.mark.parametrize("loop", [False, True])
def test_knn_graph_same_as_pyg_lib(monkeypatch, loop):
    pytest.importorskip("pyg_lib")
    import torch_geometric.typing

    if not torch_geometric.typing.WITH_KNN:
        pytest.skip("installed pyg-lib has no knn kernel")
    from torch_geometric.nn import knn_graph as pyg_knn_graph

    torch.manual_seed(4)
    x = torch.randn(60, 4)
    batch = torch.tensor([0] * 25 + [1] * 35)
    monkeypatch.setattr(dtyping, "WITH_TORCH_CLUSTER", False)
    monkeypatch.setattr(dtyping, "WITH_PYG_LIB", True)
    ours = knn_graph(x, 5, batch=batch, loop=loop)
    theirs = pyg_knn_graph(x, 5, batch=batch, loop=loop)
    monkeypatch.setattr(dtyping, "WITH_PYG_LIB", False)
    fallback = knn_graph(x, 5, batch=batch, loop=loop, chunk_size=7)
    assert neighbours_of(ours, 60) == neighbours_of(theirs, 60)
    assert neighbours_of(fallback, 60) == neighbours_of(theirs, 60)


def test_knn_graph_dispatches_to_torch_cluster(monkeypatch):
    # A stand-in module records the call; the flags are read at call time.
    calls = []

    def fake_knn_graph(x, k, batch=None, loop=False, flow="source_to_target", **kw):
        calls.append((k, batch, loop, flow, kw))
        return torch.zeros(2, 0, dtype=torch.long)

    stub = types.ModuleType("torch_cluster")
    stub.knn_graph = fake_knn_graph
    monkeypatch.setitem(sys.modules, "torch_cluster", stub)
    monkeypatch.setattr(dtyping, "WITH_TORCH_CLUSTER", True)
    batch = torch.tensor([0, 0, 0, 1, 1, 1])
    out = knn_graph(torch.randn(6, 2), 2, batch=batch, flow="target_to_source")
    assert out.shape == (2, 0)
    assert len(calls) == 1
    k, got_batch, loop, flow, kw = calls[0]
    assert (k, loop, flow, kw) == (2, False, "target_to_source", {"cosine": False})
    assert torch.equal(got_batch, batch)
    # validation still happens before dispatch
    with pytest.raises(ValueError, match="k=3 is larger"):
        knn_graph(torch.randn(6, 2), 3, batch=batch)
    monkeypatch.setattr(dtyping, "WITH_TORCH_CLUSTER", False)
    monkeypatch.setattr(dtyping, "WITH_PYG_LIB", False)
    assert knn_graph(torch.randn(6, 2), 2, batch=batch).shape == (2, 12)
    assert len(calls) == 1


def test_knn_graph_fallback_when_flags_say_installed_but_cosine_on_cpu(monkeypatch):
    # The compiled CPU kernels reject cosine=True; we never call them then.
    monkeypatch.setattr(dtyping, "WITH_TORCH_CLUSTER", True)
    monkeypatch.setattr(dtyping, "WITH_PYG_LIB", True)
    torch.manual_seed(5)
    x = torch.randn(20, 3)
    got, _ = neighbours_of(knn_graph(x, 3, cosine=True), 20)
    assert got == brute_force_neighbours(x, 3, cosine=True)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"x": torch.randn(5), "k": 2}, "2-D tensor"),
        ({"x": torch.randn(2, 5, 3), "k": 2}, "2-D tensor"),
        ({"x": torch.randn(5, 2), "k": 0}, "'k' must be an integer >= 1"),
        ({"x": torch.randn(5, 2), "k": 2.5}, "'k' must be an integer >= 1"),
        ({"x": torch.randn(5, 2), "k": 5}, "k=5 is larger than.*'x' has 5 nodes"),
        ({"x": torch.randn(5, 2), "k": 6, "loop": True}, "k=6 is larger"),
        (
            {"x": torch.randn(5, 2), "k": 2, "batch": torch.tensor([0, 0, 0, 1, 1])},
            "graph 1 has 2 nodes",
        ),
        (
            {"x": torch.randn(5, 2), "k": 1, "batch": torch.tensor([0, 0, 1, 1])},
            "one entry per node",
        ),
        (
            {"x": torch.randn(5, 2), "k": 1, "batch": torch.tensor([0, 1, 0, 1, 1])},
            "must be sorted",
        ),
        (
            {"x": torch.randn(4, 2), "k": 1, "batch": torch.tensor([-1, -1, 0, 0])},
            "negative",
        ),
        (
            {"x": torch.randn(4, 2), "k": 1, "batch": torch.zeros(4)},
            "integer tensor",
        ),
        ({"x": torch.randn(4, 2), "k": 1, "flow": "up"}, "'flow' must be one of"),
        ({"x": torch.randn(4, 2), "k": 1, "chunk_size": 0}, "'chunk_size'"),
        (
            {"x": torch.tensor([[0.0, 1.0], [float("nan"), 0.0]]), "k": 1},
            "NaN or infinite",
        ),
        (
            {"x": torch.tensor([[0.0, 0.0], [1.0, 0.0]]), "k": 1, "cosine": True},
            "all-zero",
        ),
    ],
)
def test_knn_graph_errors(pure_torch, kwargs, match):
    with pytest.raises(ValueError, match=match):
        knn_graph(**kwargs)


# ---------------------------------------------------------------------------
# gaussian_weight_matrix / gaussian_knn_graph
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [80, 100])
@pytest.mark.parametrize(("n_top", "sigma"), [(8, 4), (5, 2), (12, 9), (3, 6)])
def test_gaussian_weight_matrix_matches_authors(n, n_top, sigma):
    gen = torch.Generator().manual_seed(n + 7 * n_top + sigma)
    x = torch.randn(n, 64, dtype=torch.float64, generator=gen)
    expected = authors_weight(x, n_top, sigma)
    got = gaussian_weight_matrix(x, n_top=n_top, sigma=sigma)
    assert got.dtype == torch.float64 and got.shape == (n, n)
    torch.testing.assert_close(got, expected, atol=1e-10, rtol=0)
    assert torch.equal(got, got.t())
    # nonzero pattern: kept entries of each row, symmetrized
    mask = kept_mask(x, n_top)
    assert torch.equal(mask.sum(dim=1), torch.full((n,), n_top - 1))
    assert torch.equal(got != 0, mask | mask.t())
    assert bool((got.diagonal() > 0).all())


def test_gaussian_weight_matrix_fewshot_episode_features():
    # Episodes as in the protocol: centered, L2-normalized rows (5-way 1-shot
    # and 5-shot with 15 queries per class: 80 and 100 nodes).
    gen = torch.Generator().manual_seed(11)
    for n in (80, 100):
        x = torch.rand(n, 64, dtype=torch.float64, generator=gen)
        x = x - x.mean(dim=0)
        x = x / x.norm(dim=1, keepdim=True)
        torch.testing.assert_close(
            gaussian_weight_matrix(x), authors_weight(x, 8, 4), atol=1e-10, rtol=0
        )


@pytest.mark.parametrize("n", [80, 100])
def test_gaussian_weight_matrix_batched_equals_per_episode(n):
    gen = torch.Generator().manual_seed(n)
    x = torch.randn(6, n, 64, dtype=torch.float64, generator=gen)
    batched = gaussian_weight_matrix(x)
    assert batched.shape == (6, n, n)
    for b in range(6):
        torch.testing.assert_close(batched[b], gaussian_weight_matrix(x[b]))
        torch.testing.assert_close(
            batched[b], authors_weight(x[b], 8, 4), atol=1e-10, rtol=0
        )


def test_gaussian_weight_matrix_float32_and_laplacian():
    torch.manual_seed(12)
    x = torch.randn(80, 64)
    W = gaussian_weight_matrix(x)
    assert W.dtype == torch.float32
    torch.testing.assert_close(W, authors_weight(x, 8, 4), atol=1e-6, rtol=1e-5)
    L = torch.diag(W.sum(dim=1)) - W
    torch.testing.assert_close(L.sum(dim=1), torch.zeros(80), atol=1e-6, rtol=0)
    assert torch.linalg.eigvalsh(L.double()).min() > -1e-6  # PSD


def test_gaussian_weight_matrix_hand_computed():
    # 1-D points 0, 1, 3: distances rows [0,1,3], [1,0,2], [3,2,0].
    x = torch.tensor([[0.0], [1.0], [3.0]], dtype=torch.float64)
    # n_top=3 keeps d < 3rd smallest: row 0 {0,1}, row 1 {1,0}, row 2 {2,1}
    # sigma=2: sigma_0 = 1, sigma_1 = 1, sigma_2 = 2
    e = torch.exp
    w = torch.tensor(
        [
            [1.0, e(torch.tensor(-1.0)), 0.0],
            [e(torch.tensor(-1.0)), 1.0, 0.0],
            [0.0, e(torch.tensor(-1.0)), 1.0],
        ],
        dtype=torch.float64,
    )
    dis = w.sum(1).pow(-0.5)
    W = dis[:, None] * w * dis[None, :]
    expected = (W + W.t()) / 2
    torch.testing.assert_close(gaussian_weight_matrix(x, n_top=3, sigma=2), expected)


@pytest.mark.parametrize("batched", [False, True])
def test_gaussian_knn_graph_dense_round_trip(batched):
    gen = torch.Generator().manual_seed(13)
    B, n = (4, 80) if batched else (1, 100)
    shape = (B, n, 64) if batched else (n, 64)
    x = torch.randn(*shape, dtype=torch.float64, generator=gen)
    edge_index, edge_weight = gaussian_knn_graph(x)
    dense = gaussian_weight_matrix(x)
    dense = dense if batched else dense.unsqueeze(0)
    assert edge_index.dtype == torch.long
    assert edge_weight.dtype == torch.float64
    assert bool((edge_weight != 0).all())
    A = to_dense_adj(edge_index, edge_attr=edge_weight, max_num_nodes=B * n)[0]
    assert torch.equal(A, torch.block_diag(*dense))
    # coalesced: sorted by (row, col) without duplicates
    key = edge_index[0] * (B * n) + edge_index[1]
    assert bool((key[1:] > key[:-1]).all())
    # self loops present, graph symmetric
    loops = edge_index[:, edge_index[0] == edge_index[1]][0]
    assert torch.equal(loops, torch.arange(B * n))
    assert torch.equal(A, A.t())


def test_gaussian_knn_graph_matches_authors_laplacian():
    from torch_geometric.utils import get_laplacian

    gen = torch.Generator().manual_seed(14)
    x = torch.randn(80, 64, dtype=torch.float64, generator=gen)
    edge_index, edge_weight = gaussian_knn_graph(x)
    lap_index, lap_weight = get_laplacian(edge_index, edge_weight, normalization=None)
    L = to_dense_adj(lap_index, edge_attr=lap_weight, max_num_nodes=80)[0]
    W = authors_weight(x, 8, 4)
    torch.testing.assert_close(L, torch.diag(W.sum(dim=1)) - W, atol=1e-10, rtol=0)


@pytest.mark.parametrize("fn", [gaussian_weight_matrix, gaussian_knn_graph])
@pytest.mark.parametrize(
    ("x", "kwargs", "match"),
    [
        (torch.randn(10), {}, r"shape \(n, d\) or \(B, n, d\)"),
        (torch.randn(2, 3, 10, 4), {}, r"shape \(n, d\) or \(B, n, d\)"),
        (torch.randn(10, 3), {"n_top": 0}, r"'n_top' must lie in \[1, n\]"),
        (torch.randn(10, 3), {"n_top": 11}, r"'n_top' must lie in \[1, n\]"),
        (torch.randn(10, 3), {"sigma": 0}, r"'sigma' must lie in \[1, n\]"),
        (torch.randn(2, 10, 3), {"sigma": 11}, r"'sigma' must lie in \[1, n\]"),
        (torch.randn(10, 3), {"sigma": 2.0}, "'sigma' must be an integer"),
        (torch.randn(10, 3), {"sigma": 1}, "sigma=1 selects the self distance"),
        (torch.randn(10, 3), {"n_top": 1}, "n_top=1 keeps no entry"),
        (
            torch.tensor([[0.0, 1.0], [float("inf"), 0.0], [1.0, 1.0]]),
            {"n_top": 2, "sigma": 2},
            "NaN or infinite",
        ),
    ],
)
def test_gaussian_errors(fn, x, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fn(x, **kwargs)


def test_gaussian_duplicate_points():
    torch.manual_seed(15)
    x = torch.randn(20, 4, dtype=torch.float64)
    x[5] = x[3]
    x[9] = x[3]  # three copies: sigma=3 gives sigma_i = 0 for them
    with pytest.raises(ValueError, match=r"sigma_i = 0 at point 3.*coincide"):
        gaussian_weight_matrix(x, n_top=8, sigma=3)
    with pytest.raises(ValueError, match=r"point 3 of episode 1"):
        gaussian_weight_matrix(torch.stack([torch.randn(20, 4).double(), x]), 8, 3)
    with pytest.raises(ValueError, match=r"row of point 3 would be empty"):
        gaussian_weight_matrix(x, n_top=3, sigma=5)
    # two copies are fine with sigma >= 3 and match the authors' code
    x[9] = torch.randn(4, dtype=torch.float64)
    torch.testing.assert_close(
        gaussian_weight_matrix(x, 8, 4), authors_weight(x, 8, 4), atol=1e-10, rtol=0
    )


def test_docstring_examples():
    result = doctest.testmod(knn_module, raise_on_error=False)
    assert result.attempted > 0
    assert result.failed == 0

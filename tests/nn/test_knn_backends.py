"""knn_graph backends against an independent dense torch.cdist + topk search."""

import sys

import pytest
import torch

from diffresnet_pyg import typing as dtyping
from diffresnet_pyg.nn.knn import KNN_BACKENDS, knn_graph


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def pyg_lib_knn_available() -> bool:
    import torch_geometric.typing

    return dtyping.WITH_PYG_LIB and torch_geometric.typing.WITH_KNN


# Backends that run here; the others are collected and skipped.
BACKEND_PARAMS = [
    pytest.param("torch"),
    pytest.param(
        "faiss",
        marks=pytest.mark.skipif(not faiss_available(), reason="faiss not installed"),
    ),
    pytest.param(
        "torch_cluster",
        marks=pytest.mark.skipif(
            not dtyping.WITH_TORCH_CLUSTER, reason="torch_cluster not installed"
        ),
    ),
    pytest.param(
        "pyg_lib",
        marks=pytest.mark.skipif(
            not pyg_lib_knn_available(), reason="pyg-lib knn not installed"
        ),
    ),
]
COMPILED = ("torch_cluster", "pyg_lib")


def dense_knn(x, k, batch=None, loop=False, cosine=False):
    """[N, k] neighbour ids (nearest first) from one dense float64 distance matrix."""
    x = x.double()
    if cosine:
        x = x / x.norm(dim=1, keepdim=True)
    dist = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")
    if batch is not None:
        dist[batch.view(-1, 1) != batch.view(1, -1)] = float("inf")
    dist.fill_diagonal_(float("-inf") if loop else float("inf"))
    return dist.topk(k, dim=1, largest=False).indices


def as_lists(edge_index, num_nodes, k, flow="source_to_target"):
    """[N, k] neighbour ids of each center, in edge order."""
    src, dst = edge_index if flow == "source_to_target" else edge_index.flip(0)
    assert src.numel() == num_nodes * k
    order = torch.argsort(dst, stable=True)
    assert torch.equal(dst[order], torch.arange(num_nodes).repeat_interleave(k))
    return src[order].view(num_nodes, k)


def same_sets(a, b):
    return torch.equal(a.sort(dim=1).values, b.sort(dim=1).values)


def run(backend, x, k, **kwargs):
    if backend in COMPILED and kwargs.get("chunk_size") is not None:
        kwargs = {**kwargs, "chunk_size": None}
    return knn_graph(x, k, backend=backend, **kwargs)


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
@pytest.mark.parametrize("loop", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_backend_matches_dense(backend, loop, dtype):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(70, 6, generator=gen, dtype=dtype)
    for k in (1, 5):
        edge_index = run(backend, x, k, loop=loop)
        assert edge_index.dtype == torch.long
        got = as_lists(edge_index, 70, k)
        assert same_sets(got, dense_knn(x, k, loop=loop))
        assert bool((got == torch.arange(70).view(-1, 1)).any(dim=1).all()) == loop


@pytest.mark.parametrize(
    "backend", ["torch", pytest.param("faiss", marks=BACKEND_PARAMS[1].marks)]
)
@pytest.mark.parametrize("chunk_size", [None, 1, 4, 33])
def test_chunked_backends_match_dense(backend, chunk_size):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(50, 4, generator=gen)
    got = as_lists(knn_graph(x, 3, chunk_size=chunk_size, backend=backend), 50, 3)
    assert same_sets(got, dense_knn(x, 3))


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
@pytest.mark.parametrize("loop", [False, True])
def test_backend_batch_matches_dense(backend, loop):
    gen = torch.Generator().manual_seed(2)
    batch = torch.tensor([0] * 9 + [1] * 6 + [3] * 12 + [4] * 5)  # graph 2 empty
    x = torch.randn(batch.numel(), 3, generator=gen)
    edge_index = run(backend, x, 4, batch=batch, loop=loop, chunk_size=5)
    got = as_lists(edge_index, batch.numel(), 4)
    assert same_sets(got, dense_knn(x, 4, batch=batch, loop=loop))
    assert bool((batch[edge_index[0]] == batch[edge_index[1]]).all())


@pytest.mark.parametrize(
    "backend", ["torch", pytest.param("faiss", marks=BACKEND_PARAMS[1].marks)]
)
@pytest.mark.parametrize("loop", [False, True])
def test_cosine_matches_dense(backend, loop):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(40, 5, generator=gen) + 0.5
    got = as_lists(knn_graph(x, 4, cosine=True, loop=loop, backend=backend), 40, 4)
    assert same_sets(got, dense_knn(x, 4, loop=loop, cosine=True))


@pytest.mark.parametrize(
    "backend", ["torch", pytest.param("faiss", marks=BACKEND_PARAMS[1].marks)]
)
@pytest.mark.parametrize("flow", ["source_to_target", "target_to_source"])
def test_neighbours_listed_nearest_first(backend, flow):
    # distinct distances on a line: the order is unique
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0], [15.0]])
    expected = torch.tensor(
        [[1, 2, 0, 2, 1, 0, 2, 1, 3, 2], [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]]
    )
    out = knn_graph(x, 2, flow=flow, backend=backend)
    assert torch.equal(
        out, expected if flow == "source_to_target" else expected.flip(0)
    )
    looped = knn_graph(x, 3, loop=True, backend=backend)
    assert torch.equal(looped[0, ::3], torch.arange(5))  # self first
    assert torch.equal(looped[0, 1::3], torch.tensor([1, 0, 1, 2, 3]))


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_exact_ties_give_valid_lists(backend):
    # Integer grid points: many exactly equal distances. Any valid k-NN list
    # has exactly the true multiset of the k smallest distances.
    grid = torch.stack(
        torch.meshgrid(torch.arange(6), torch.arange(5), indexing="ij"), dim=-1
    )
    x = grid.reshape(-1, 2).float()
    x = torch.cat([x, x[:3]])  # and three duplicate points
    n, k = x.size(0), 6
    got = as_lists(run(backend, x, k), n, k)
    assert not bool((got == torch.arange(n).view(-1, 1)).any())
    dist = torch.cdist(
        x.double(), x.double(), compute_mode="donot_use_mm_for_euclid_dist"
    )
    dist.fill_diagonal_(float("inf"))
    true_k = dist.sort(dim=1).values[:, :k]
    listed = dist.gather(1, got).sort(dim=1).values
    assert torch.equal(listed, true_k)


@pytest.mark.parametrize(
    "backend", ["torch", pytest.param("faiss", marks=BACKEND_PARAMS[1].marks)]
)
def test_duplicates_exactly_k_without_self(backend):
    x = torch.tensor([[0.0, 0.0]] * 5 + [[5.0, 5.0], [5.0, 6.0]])
    for k, loop in ((2, False), (4, False), (3, True)):
        edge_index = knn_graph(x, k, loop=loop, backend=backend)
        got = as_lists(edge_index, 7, k)
        own = got == torch.arange(7).view(-1, 1)
        assert torch.equal(own.sum(dim=1), torch.full((7,), int(loop)))
        assert torch.equal(got[:5].clamp(max=5), got[:5])  # duplicates first
        assert len(set(got[0].tolist())) == k


@pytest.mark.parametrize(
    "backend", ["torch", pytest.param("faiss", marks=BACKEND_PARAMS[1].marks)]
)
def test_empty_and_integer_inputs(backend):
    out = knn_graph(torch.empty(0, 3), 2, backend=backend)
    assert out.shape == (2, 0) and out.dtype == torch.long
    x = torch.tensor([[0, 0], [1, 0], [5, 0], [7, 0]])
    got = as_lists(knn_graph(x, 1, backend=backend), 4, 1)
    assert got.flatten().tolist() == [1, 0, 3, 2]


@pytest.mark.skipif(not faiss_available(), reason="faiss not installed")
def test_faiss_and_torch_identical_on_separated_data():
    # Well-separated distances: both backends give the same lists, same order.
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(200, 16, generator=gen)
    a = knn_graph(x, 7, backend="torch")
    b = knn_graph(x, 7, backend="faiss")
    assert torch.equal(a, b)


def test_backends_tuple():
    assert KNN_BACKENDS == ("auto", "torch", "torch_cluster", "pyg_lib", "faiss")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"backend": "cuda"}, ValueError, "'backend' must be one of"),
        ({"backend": None}, ValueError, "'backend' must be one of"),
        (
            {"backend": "torch_cluster", "chunk_size": 8},
            ValueError,
            "'chunk_size' applies to the 'torch' and 'faiss' backends only",
        ),
        (
            {"backend": "pyg_lib", "chunk_size": 8},
            ValueError,
            "chunk_size=8 with backend='pyg_lib'",
        ),
        (
            {"backend": "torch_cluster", "cosine": True},
            ValueError,
            "no cosine distance on CPU",
        ),
        ({"backend": "faiss", "chunk_size": 0}, ValueError, "'chunk_size'"),
        ({"backend": "faiss", "k": 10}, ValueError, "k=10 is larger"),
    ],
)
def test_backend_argument_errors(kwargs, error, match):
    kwargs = {"x": torch.randn(6, 2), "k": 2, **kwargs}
    with pytest.raises(error, match=match):
        knn_graph(**kwargs)


def test_missing_compiled_backends_raise_import_error(monkeypatch):
    monkeypatch.setattr(dtyping, "WITH_TORCH_CLUSTER", False)
    monkeypatch.setattr(dtyping, "WITH_PYG_LIB", False)
    x = torch.randn(6, 2)
    with pytest.raises(ImportError, match="backend='torch_cluster' needs"):
        knn_graph(x, 2, backend="torch_cluster")
    with pytest.raises(ImportError, match="backend='pyg_lib' needs"):
        knn_graph(x, 2, backend="pyg_lib")


def test_missing_faiss_raises_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss -> ImportError
    with pytest.raises(ImportError, match="backend='faiss' needs the 'faiss'"):
        knn_graph(torch.randn(6, 2), 2, backend="faiss")


def test_explicit_torch_ignores_installed_flags(monkeypatch):
    # backend="torch" never dispatches, whatever the flags say.
    monkeypatch.setattr(dtyping, "WITH_TORCH_CLUSTER", True)
    monkeypatch.setitem(sys.modules, "torch_cluster", None)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(30, 3, generator=gen)
    got = as_lists(knn_graph(x, 3, backend="torch"), 30, 3)
    assert same_sets(got, dense_knn(x, 3))


@pytest.mark.parametrize(
    "backend", ["torch", pytest.param("faiss", marks=BACKEND_PARAMS[1].marks)]
)
def test_exact_lists_despite_float32_cancellation(backend):
    # Points far from the origin: float32 distances by matrix products
    # (|a|^2 + |b|^2 - 2 a.b, |a|^2 ~ 7e5) misrank many neighbours; the exact
    # re-ranking of the best candidates recovers the float64 brute force.
    gen = torch.Generator().manual_seed(0)
    x = 300.0 + torch.randn(300, 8, generator=gen)
    expected = dense_knn(x, 5)
    plain = torch.cdist(x, x).fill_diagonal_(float("inf"))
    plain = plain.topk(5, dim=1, largest=False).indices
    assert not same_sets(plain, expected)  # the case is a real test
    got = as_lists(knn_graph(x, 5, backend=backend), 300, 5)
    assert same_sets(got, expected)
    # listed nearest first by the exact distances
    dist = ((x.double().unsqueeze(1) - x.double()[got]) ** 2).sum(-1)
    assert bool((dist[:, 1:] >= dist[:, :-1]).all())


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
@pytest.mark.parametrize("position", [0, 37, -1])
def test_non_finite_values_rejected(bad, dtype, position):
    x = torch.randn(10, 4).to(dtype)
    x.view(-1)[position] = bad
    for backend in ("auto", "torch", "faiss"):
        with pytest.raises(ValueError, match="NaN or infinite"):
            knn_graph(x, 2, backend=backend)
    # finite extremes are fine
    x.view(-1)[position] = torch.finfo(dtype).max
    assert knn_graph(x, 2, backend="torch").shape == (2, 20)

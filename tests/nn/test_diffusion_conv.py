import pytest
import torch
from torch_geometric.utils import to_torch_coo_tensor, to_torch_csr_tensor

import diffresnet_pyg.nn.conv.diffusion_conv as conv_module
from diffresnet_pyg import typing as dtyping
from diffresnet_pyg.nn import (
    LAPLACIANS,
    DiffusionConv,
    diffusion,
    keep_mask,
    laplacian_max_eigenvalue,
    split_laplacian,
)


def dense_laplacian(edge_index, edge_weight, n, laplacian, add_self_loops):
    """Independent dense construction, straight from the formulas."""
    w = torch.ones(edge_index.size(1), dtype=torch.float64)
    if edge_weight is not None:
        w = edge_weight.double()
    a = torch.zeros(n, n, dtype=torch.float64)
    src, dst = edge_index
    for s, d, v in zip(src.tolist(), dst.tolist(), w.tolist(), strict=True):
        a[d, s] += v  # row = target
    if add_self_loops and laplacian != "combinatorial":
        has_loop = torch.zeros(n, dtype=torch.bool)
        has_loop[src[src == dst]] = True
        a = a + torch.diag((~has_loop).double())
    eye = torch.eye(n, dtype=torch.float64)
    deg = a.sum(1)
    if laplacian == "combinatorial":
        return torch.diag(a.sum(1)) - a
    if laplacian == "rw":
        dinv = torch.where(deg > 0, 1.0 / deg, torch.zeros_like(deg))
        return eye - torch.diag(dinv) @ a
    dis = torch.where(deg > 0, deg.rsqrt(), torch.zeros_like(deg))
    a_hat = torch.diag(dis) @ a @ torch.diag(dis)
    if laplacian == "sym":
        return eye - a_hat
    return torch.diag(a_hat.sum(1)) - a_hat  # reference


def random_graph(n=12, e=30, seed=0, self_loops=2, isolated=2):
    g = torch.Generator().manual_seed(seed)
    active = n - isolated  # the last `isolated` nodes get no edges
    src = torch.randint(0, active, (e,), generator=g)
    dst = torch.randint(0, active, (e,), generator=g)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    src, dst = torch.cat([src, dst]), torch.cat([dst, src])  # undirected
    loops = torch.arange(self_loops)
    edge_index = torch.stack([torch.cat([src, loops]), torch.cat([dst, loops])])
    weight = torch.rand(edge_index.size(1), generator=g, dtype=torch.float64) + 0.1
    # symmetric weights: weight of (i, j) equals weight of (j, i)
    m = src.numel()
    weight[m // 2 : m] = weight[: m // 2]
    return edge_index, weight, n


def euler_power(lap, x, step, num_steps):
    m = torch.eye(lap.size(0), dtype=torch.float64) - step * lap
    for _ in range(num_steps):
        x = m @ x
    return x


def layouts(edge_index, weight, n):
    """The same graph as edge_index and as every sparse adj_t layout."""
    out = {"edge_index": (edge_index, weight)}
    adj_t = edge_index.flip(0)
    out["coo"] = (to_torch_coo_tensor(adj_t, weight, size=(n, n)), None)
    out["csr"] = (to_torch_csr_tensor(adj_t, weight, size=(n, n)), None)
    if dtyping.WITH_TORCH_SPARSE:
        from torch_sparse import SparseTensor

        out["sparse_tensor"] = (
            SparseTensor.from_edge_index(adj_t, weight, sparse_sizes=(n, n)),
            None,
        )
    return out


@pytest.mark.parametrize("laplacian", LAPLACIANS)
@pytest.mark.parametrize("add_self_loops", [True, False])
@pytest.mark.parametrize("weighted", [True, False])
def test_split_laplacian_matches_dense(laplacian, add_self_loops, weighted):
    edge_index, weight, n = random_graph(seed=1)
    weight = weight if weighted else None
    expected = dense_laplacian(edge_index, weight, n, laplacian, add_self_loops)
    lap = split_laplacian(
        edge_index, weight, n, laplacian, add_self_loops, dtype=torch.float64
    )
    torch.testing.assert_close(lap.to_dense(), expected)


@pytest.mark.parametrize("laplacian", LAPLACIANS)
@pytest.mark.parametrize("add_self_loops", [True, False])
def test_conv_all_layouts_match_dense(laplacian, add_self_loops):
    edge_index, weight, n = random_graph(seed=2)
    x = torch.randn(n, 5, dtype=torch.float64)
    lap = dense_laplacian(edge_index, weight, n, laplacian, add_self_loops)
    expected = euler_power(lap, x, 0.3, 3)
    conv = DiffusionConv(0.3, 3, laplacian, add_self_loops=add_self_loops)
    for name, (graph, w) in layouts(edge_index, weight, n).items():
        out = conv(x, graph, w)
        torch.testing.assert_close(out, expected, msg=f"layout {name}")


def test_directed_graph_rows_are_targets():
    # edge 0 -> 1 only: node 1 receives from node 0, node 0 receives nothing
    edge_index = torch.tensor([[0], [1]])
    x = torch.tensor([[1.0], [0.0]])
    out = diffusion(x, edge_index, step_size=0.5, laplacian="combinatorial")
    torch.testing.assert_close(out, torch.tensor([[1.0], [0.5]]))


def test_hand_computed_reference_step():
    # path 0 - 1 - 2 with self loops: degrees (2, 3, 2)
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    x = torch.tensor([[1.0], [0.0], [0.0]], dtype=torch.float64)
    a01 = 1 / 6**0.5  # A_hat_01 = 1 / sqrt(2 * 3)
    expected = torch.tensor([[1 - 0.5 * a01], [0.5 * a01], [0.0]], dtype=torch.float64)
    out = diffusion(x, edge_index, step_size=0.5)
    torch.testing.assert_close(out, expected)


def test_num_steps_zero_is_identity():
    edge_index, weight, n = random_graph()
    x = torch.randn(n, 3)
    assert torch.equal(DiffusionConv(0.5, 0)(x, edge_index, weight.float()), x)


@pytest.mark.parametrize("laplacian", LAPLACIANS)
def test_gradcheck_x(laplacian):
    edge_index, weight, n = random_graph(n=8, e=14, seed=3)
    x = torch.randn(n, 3, dtype=torch.float64, requires_grad=True)
    conv = DiffusionConv(0.2, 2, laplacian)
    assert torch.autograd.gradcheck(lambda x: conv(x, edge_index, weight), (x,))


@pytest.mark.parametrize("laplacian", LAPLACIANS)
def test_gradcheck_edge_weight(laplacian):
    edge_index, weight, n = random_graph(n=8, e=14, seed=4)
    x = torch.randn(n, 3, dtype=torch.float64)
    weight = weight.clone().requires_grad_()
    conv = DiffusionConv(0.2, 2, laplacian)
    assert torch.autograd.gradcheck(lambda w: conv(x, edge_index, w), (weight,))


def test_dropout_before_every_step():
    edge_index, weight, n = random_graph(seed=5)
    weight = weight.float()
    x = torch.randn(n, 64)
    p = 0.25
    conv = DiffusionConv(0.3, 3, dropout=p).train()
    torch.manual_seed(7)
    out = conv(x, edge_index, weight)
    torch.manual_seed(7)
    lap = dense_laplacian(edge_index, weight, n, "reference", True).float()
    m = torch.eye(n) - 0.3 * lap
    expected = x
    for _ in range(3):
        expected = m @ (expected * keep_mask(expected.shape, p) / (1 - p))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    conv.eval()
    torch.testing.assert_close(
        conv(x, edge_index, weight),
        euler_power(lap.double(), x.double(), 0.3, 3).float(),
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize("p", [0.25, 0.3])  # fast byte masks; torch.rand masks
def test_dropout_backward_matches_dense_autograd(p):
    """Saved and recomputed masks both give dense autograd's gradient."""
    edge_index, weight, n = random_graph(seed=8)
    x = torch.randn(n, 5, dtype=torch.float64)
    seed_grad = torch.randn(n, 5, dtype=torch.float64)
    lap = dense_laplacian(edge_index, weight.double(), n, "reference", True)
    m = torch.eye(n, dtype=torch.float64) - 0.3 * lap
    torch.manual_seed(11)
    expected_in = x.clone().requires_grad_()
    expected = expected_in
    for _ in range(4):
        mask = keep_mask(x.shape, p).to(x.dtype)
        expected = m @ (expected * mask / (1 - p))
    expected.backward(seed_grad)
    for recompute in (False, True):
        conv = DiffusionConv(0.3, 4, dropout=p, recompute_masks=recompute).train()
        torch.manual_seed(11)
        x_in = x.clone().requires_grad_()
        out = conv(x_in, edge_index, weight.double())
        out.backward(seed_grad)
        torch.testing.assert_close(out, expected.detach())
        torch.testing.assert_close(x_in.grad, expected_in.grad)


def test_backward_saves_no_per_step_features():
    """Autograd keeps no N x F tensor per step (only seeds with recompute)."""
    edge_index, weight, n = random_graph(seed=9)
    x = torch.randn(n, 6, requires_grad=True)
    saved = []

    def pack(t):
        saved.append(t)
        return t

    for dropout, recompute, expected_count in ((0.0, False, 0), (0.5, True, 0)):
        saved.clear()
        conv = DiffusionConv(0.2, 16, dropout=dropout, recompute_masks=recompute)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            conv.train()(x, edge_index, weight.float())
        assert len(saved) == expected_count
    saved.clear()
    conv = DiffusionConv(0.2, 16, dropout=0.5)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        conv.train()(x, edge_index, weight.float())
    assert len(saved) == 16 and all(t.dtype == torch.uint8 for t in saved)


def test_normalization_once_per_call_and_cached(monkeypatch):
    calls = []
    original = conv_module.split_laplacian

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(conv_module, "split_laplacian", counting)
    edge_index, weight, n = random_graph(seed=6)
    x = torch.randn(n, 4, dtype=torch.float64)
    conv = DiffusionConv(0.2, 10)
    conv(x, edge_index, weight)
    conv(x, edge_index, weight)
    assert len(calls) == 2  # once per call, not once per step

    calls.clear()
    cached = DiffusionConv(0.2, 10, cached=True)
    first = cached(x, edge_index, weight)
    # a different graph of the same size still uses the cached operator
    other_index, other_weight, _ = random_graph(seed=7)
    torch.testing.assert_close(cached(x, other_index, other_weight), first)
    assert len(calls) == 1
    cached.reset_parameters()
    fresh = DiffusionConv(0.2, 10)(x, other_index, other_weight)
    torch.testing.assert_close(cached(x, other_index, other_weight), fresh)
    assert len(calls) == 3


def test_torch_compile_matches_eager():
    edge_index, weight, n = random_graph(seed=8)
    x = torch.randn(n, 4)
    conv = DiffusionConv(0.2, 4, "sym")
    compiled = torch.compile(conv)
    torch.testing.assert_close(
        compiled(x, edge_index, weight.float()), conv(x, edge_index, weight.float())
    )


def test_repr():
    assert repr(DiffusionConv(0.25, 20, dropout=0.25)) == (
        "DiffusionConv(step_size=0.25, num_steps=20, laplacian='reference', "
        "dropout=0.25)"
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"step_size": 0.0}, "step_size"),
        ({"step_size": -0.1}, "step_size"),
        ({"step_size": 0.1, "num_steps": -1}, "num_steps"),
        ({"step_size": 0.1, "laplacian": "normalized"}, "Unknown laplacian"),
        ({"step_size": 0.1, "dropout": 1.0}, "dropout"),
        ({"step_size": 0.1, "recompute_masks": 1}, "recompute_masks"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DiffusionConv(**kwargs)


def test_unstable_step_is_rejected():
    # star graph: the centre's reference-Laplacian diagonal is large
    leaves = torch.arange(1, 30)
    edge_index = torch.stack(
        [
            torch.cat([leaves, torch.zeros_like(leaves)]),
            torch.cat([torch.zeros_like(leaves), leaves]),
        ]
    )
    x = torch.randn(30, 2)
    lam = laplacian_max_eigenvalue(edge_index)
    with pytest.raises(ValueError, match="unstable"):
        DiffusionConv(2.0 / lam * 1.05)(x, edge_index)
    DiffusionConv(2.0 / lam * 1.05, check_stability=False)(x, edge_index)
    DiffusionConv(2.0 / lam * 0.95)(x, edge_index)


def test_bad_inputs():
    edge_index, weight, n = random_graph()
    conv = DiffusionConv(0.1)
    with pytest.raises(ValueError, match="only 3 nodes"):
        conv(torch.randn(3, 2), edge_index)
    with pytest.raises(ValueError, match=r"shape \[num_nodes, channels\]"):
        conv(torch.randn(n), edge_index)
    with pytest.raises(ValueError, match="one weight per edge"):
        conv(torch.randn(n, 2), edge_index, weight[:-1].float())
    with pytest.raises(ValueError, match=r"\[2, num_edges\]"):
        conv(torch.randn(n, 2), edge_index.t())
    with pytest.raises(ValueError, match="non-negative"):
        conv(torch.randn(n, 2), edge_index, -weight.float())
    with pytest.raises(ValueError, match="finite"):
        conv(torch.randn(n, 2), edge_index, weight.float() * float("nan"))
    adj = to_torch_csr_tensor(edge_index.flip(0), size=(n, n))
    with pytest.raises(ValueError, match="must be None"):
        conv(torch.randn(n, 2), adj, weight.float())
    with pytest.raises(ValueError, match="rows"):
        conv(torch.randn(n + 1, 2), adj)


@pytest.mark.parametrize("n", [10, 80])
@pytest.mark.parametrize("laplacian", LAPLACIANS)
def test_max_eigenvalue_matches_dense(n, laplacian):
    edge_index, weight, n = random_graph(n=n, e=3 * n, seed=9)
    expected = torch.linalg.eigvalsh(
        dense_laplacian(edge_index, weight, n, laplacian, True)
    ).max()
    if laplacian == "rw":  # not symmetric: eigenvalues of the similar sym matrix
        expected = torch.linalg.eigvals(
            dense_laplacian(edge_index, weight, n, laplacian, True)
        ).real.max()
    got = laplacian_max_eigenvalue(edge_index, weight, n, laplacian)
    assert got == pytest.approx(float(expected), rel=1e-6)

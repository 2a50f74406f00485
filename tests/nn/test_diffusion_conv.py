import copy
import pickle

import pytest
import torch
from torch_geometric.nn import APPNP, GCNConv
from torch_geometric.utils import coalesce, to_torch_coo_tensor, to_torch_csr_tensor

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


def dense_laplacian(
    edge_index, edge_weight, n, laplacian, add_self_loops, flow="source_to_target"
):
    """Independent dense construction, straight from the formulas."""
    w = torch.ones(edge_index.size(1), dtype=torch.float64)
    if edge_weight is not None:
        w = edge_weight.detach().double()
    a = torch.zeros(n, n, dtype=torch.float64)
    src, dst = edge_index
    if flow == "target_to_source":  # messages from edge_index[1] to edge_index[0]
        src, dst = dst, src
    for s, d, v in zip(src.tolist(), dst.tolist(), w.tolist(), strict=True):
        a[d, s] += v  # row = the node receiving the message
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
    # the formulas, not the dynamics: 0.3 is an unstable step for the weighted
    # combinatorial Laplacian of this graph (lambda_max = 7.6)
    conv = DiffusionConv(
        0.3, 3, laplacian, add_self_loops=add_self_loops, check_stability=False
    )
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


def count_laplacians(monkeypatch):
    calls = []
    original = conv_module.split_laplacian

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(conv_module, "split_laplacian", counting)
    return calls


def test_normalization_once_per_call_and_cached(monkeypatch):
    calls = count_laplacians(monkeypatch)
    edge_index, weight, n = random_graph(seed=6)
    x = torch.randn(n, 4, dtype=torch.float64)
    conv = DiffusionConv(0.2, 10)
    conv(x, edge_index, weight)
    conv(x, edge_index, weight)
    assert len(calls) == 2  # once per call, not once per step

    calls.clear()
    cached = DiffusionConv(0.2, 10, cached=True)
    first = cached(x, edge_index, weight)
    torch.testing.assert_close(cached(x, edge_index, weight), first)
    assert len(calls) == 1
    # a different graph of the same size is normalized, never served the old one
    other_index, other_weight, _ = random_graph(seed=7)
    fresh = DiffusionConv(0.2, 10)(x, other_index, other_weight)
    torch.testing.assert_close(cached(x, other_index, other_weight), fresh)
    assert len(calls) == 3
    cached.reset_parameters()
    torch.testing.assert_close(cached(x, other_index, other_weight), fresh)
    assert len(calls) == 4


def test_cache_is_keyed_on_the_graph(monkeypatch):
    calls = count_laplacians(monkeypatch)
    edge_index, weight, n = random_graph(seed=6)
    x = torch.randn(n, 4, dtype=torch.float64)

    def dense(w, flow="source_to_target", x=x):
        lap = dense_laplacian(edge_index, w, n, "reference", True, flow)
        return euler_power(lap, x.double(), 0.2, 3).to(x.dtype)

    conv = DiffusionConv(0.2, 3, cached=True)
    torch.testing.assert_close(conv(x, edge_index, weight), dense(weight))
    conv.eval()(x, edge_index, weight)  # same graph, evaluation scale
    assert len(calls) == 1
    # same contents in new tensors: rebuilt (the key is identity, not contents)
    torch.testing.assert_close(
        conv(x, edge_index.clone(), weight.clone()), dense(weight)
    )
    assert len(calls) == 2
    # in-place changes are noticed through the version counter
    weight = weight.clone()
    conv(x, edge_index, weight)
    weight.mul_(2.0)
    torch.testing.assert_close(conv(x, edge_index, weight), dense(weight))
    assert len(calls) == 4
    # the input's dtype, the number of nodes and the flow are part of the key
    x32 = x.float()
    torch.testing.assert_close(conv(x32, edge_index, weight), dense(weight, x=x32))
    conv(torch.randn(n + 2, 4, dtype=torch.float64), edge_index, weight)
    conv.flow = "target_to_source"
    torch.testing.assert_close(
        conv(x, edge_index, weight), dense(weight, "target_to_source")
    )
    assert len(calls) == 7
    # a sparse adjacency changed in place is noticed too
    adj = to_torch_csr_tensor(edge_index.flip(0), weight, size=(n, n))
    conv.flow = "source_to_target"
    conv(x, adj)
    adj.values().mul_(0.5)
    torch.testing.assert_close(conv(x, adj), dense(weight * 0.5))
    assert len(calls) == 9


def test_cached_layer_given_another_graph_is_never_stale(monkeypatch):
    calls = count_laplacians(monkeypatch)
    n = 12
    x = torch.randn(n, 3, dtype=torch.float64)
    edge_index, weight, _ = random_graph(n=n, seed=30)
    other_index, other_weight, _ = random_graph(n=n, seed=31)
    assert other_index.shape != edge_index.shape

    def fresh(index, w=None):  # independent of the layer (and not counted)
        lap = dense_laplacian(index, w, n, "reference", True)
        return euler_power(lap, x, 0.2, 3)

    conv = DiffusionConv(0.2, 3, cached=True)
    first = conv(x, edge_index, weight)
    # the same tensors again: served from the cache, not normalized again
    for _ in range(3):
        torch.testing.assert_close(conv(x, edge_index, weight), first)
    assert len(calls) == 1
    # a new edge_index of the same number of nodes: normalized afresh
    torch.testing.assert_close(conv(x, other_index), fresh(other_index))
    assert len(calls) == 2
    # the same tensor object modified in place (version counter) ...
    index = edge_index.clone()
    torch.testing.assert_close(conv(x, index), fresh(index))
    index[1, :4] = index[1, :4].flip(0)
    torch.testing.assert_close(conv(x, index), fresh(index))
    assert len(calls) == 4
    # ... or written around it: .data, NumPy sharing the memory
    index.data = other_index.clone()
    torch.testing.assert_close(conv(x, index), fresh(other_index))
    shared = edge_index.clone()
    conv(x, shared, weight)
    shared.numpy()[1, :5] = 11 - shared.numpy()[1, :5]
    torch.testing.assert_close(conv(x, shared, weight), fresh(shared, weight))
    assert len(calls) == 7
    conv(x, shared, weight)  # unchanged since: a cache hit again
    assert len(calls) == 7
    # the weights too
    scaled = weight.clone()
    conv(x, edge_index, scaled)
    scaled.numpy()[:] *= 3.0
    torch.testing.assert_close(
        conv(x, edge_index, scaled), fresh(edge_index, weight * 3.0)
    )
    assert len(calls) == 9


def test_cache_keeps_the_last_two_live_graphs(monkeypatch):
    calls = count_laplacians(monkeypatch)
    x = torch.randn(12, 3, dtype=torch.float64)
    graphs = [random_graph(seed=s)[0] for s in (20, 21, 22)]
    conv = DiffusionConv(0.2, 2, cached=True)
    outs = [conv(x, graphs[0]), conv(x, graphs[1])]
    for _ in range(3):  # e.g. a whole graph and a mini-batch's: no rebuild
        torch.testing.assert_close(conv(x, graphs[0]), outs[0])
        torch.testing.assert_close(conv(x, graphs[1]), outs[1])
    assert len(calls) == 2 and len(conv._cache) == 2
    conv(x, graphs[2])  # a third graph drops the least recently used
    conv(x, graphs[1])
    assert len(calls) == 3
    conv(x, graphs[0])
    assert len(calls) == 4
    # entries die with their graph: the cache never keeps a graph alive
    del graphs[2], graphs[1]
    assert len(conv._cache) == 1


def test_cache_never_holds_differentiable_operators(monkeypatch):
    calls = count_laplacians(monkeypatch)
    edge_index, weight, n = random_graph(n=8, e=14, seed=4)
    x = torch.randn(n, 3, dtype=torch.float64)
    weight = weight.clone().requires_grad_()
    conv = DiffusionConv(0.2, 2, cached=True)
    with torch.no_grad():  # constant here: may be cached ...
        expected = conv(x, edge_index, weight)
    grads = []
    for _ in range(2):  # ... but not served when gradients are needed
        out = conv(x, edge_index, weight)
        (grad,) = torch.autograd.grad(out.square().sum(), weight)
        grads.append(grad)
        torch.testing.assert_close(out.detach(), expected)
    assert len(calls) == 3
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[0], grads[1])
    uncached = DiffusionConv(0.2, 2)(x, edge_index, weight)
    (expected_grad,) = torch.autograd.grad(uncached.square().sum(), weight)
    torch.testing.assert_close(grads[0], expected_grad)


def cached_pair(dtype=torch.float32):
    """A GCNConv and a DiffusionConv, both cached=True, after one call each."""
    edge_index, weight, n = random_graph(seed=10)
    x = torch.randn(n, 4, dtype=dtype)
    torch.manual_seed(0)
    gcn = GCNConv(4, 4, cached=True).to(dtype)
    conv = DiffusionConv(0.3, 3, "sym", cached=True)
    gcn(x, edge_index)
    conv(x, edge_index)
    assert conv._cache.value is not None
    return gcn, conv, x, edge_index


@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(copy.deepcopy, id="deepcopy"),
        pytest.param(lambda m: pickle.loads(pickle.dumps(m)), id="pickle"),
        pytest.param(lambda m: m.double(), id="double"),
        pytest.param(lambda m: m.double().float(), id="double-float"),
        pytest.param(lambda m: m.to(torch.float64), id="to-dtype"),
        pytest.param(lambda m: m.to("cpu"), id="to-device"),
    ],
)
def test_cached_layer_copies_and_converts_like_gcn_conv(convert):
    gcn, conv, x, edge_index = cached_pair()
    gcn_copy, conv_copy = convert(gcn), convert(conv)
    dtype = gcn_copy.lin.weight.dtype  # the dtype the conversion asked for
    gcn_copy(x.to(dtype), edge_index)  # works for GCNConv(cached=True) ...
    out = conv_copy(x.to(dtype), edge_index)  # ... and for the diffusion layer
    assert out.dtype == dtype
    expected = DiffusionConv(0.3, 3, "sym")(x.to(dtype), edge_index)
    torch.testing.assert_close(out, expected)
    if conv_copy is not conv:  # copies start empty: the original is untouched
        assert conv._cache.value is not None
        torch.testing.assert_close(conv(x, edge_index), expected.to(x.dtype))


def test_cache_is_not_in_the_state_dict():
    gcn, conv, x, edge_index = cached_pair()
    # GCNConv keeps its cache out of the state dict: so does the diffusion layer
    assert set(gcn.state_dict()) == {n for n, _ in gcn.named_parameters()}
    assert conv.state_dict() == {}
    fresh = DiffusionConv(0.3, 3, "sym", cached=True)
    fresh.load_state_dict(conv.state_dict())
    torch.testing.assert_close(fresh(x, edge_index), conv(x, edge_index))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cached_layer_moves_to_cuda():
    gcn, conv, x, edge_index = cached_pair()
    expected = conv(x, edge_index)
    conv = conv.to("cuda")
    out = conv(x.cuda(), edge_index.cuda())
    torch.testing.assert_close(out.cpu(), expected)


def test_bipartite_input_is_refused():
    edge_index, weight, n = random_graph()
    x = torch.randn(n, 3)
    with pytest.raises(ValueError, match="one node set.*bipartite"):
        DiffusionConv(0.1)((x, x), edge_index)


@pytest.mark.parametrize("flow", ["source_to_target", "target_to_source"])
@pytest.mark.parametrize("weights", ["none", "constant", "differentiable"])
@pytest.mark.parametrize(
    "x, expected",
    [
        # one directed edge 0 -> 1, combinatorial Laplacian, step 0.5
        ((1.0, 0.0), {"source_to_target": (1.0, 0.5), "target_to_source": (0.5, 0.0)}),
        ((0.0, 1.0), {"source_to_target": (0.0, 0.5), "target_to_source": (0.5, 1.0)}),
    ],
)
def test_flow_hand_computed(flow, weights, x, expected):
    edge_index = torch.tensor([[0], [1]])
    weight = {
        "none": None,
        "constant": torch.ones(1),
        "differentiable": torch.ones(1, requires_grad=True),
    }[weights]
    conv = DiffusionConv(0.5, laplacian="combinatorial", flow=flow)
    out = conv(torch.tensor(x).view(2, 1), edge_index, weight)
    torch.testing.assert_close(out.detach().view(-1), torch.tensor(expected[flow]))


def directed_graph(n=10, e=25, seed=12):
    """A directed graph without repeated edges, with a loop and a sink."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, n - 1, (e,), generator=g)  # node n - 1 sends nothing
    dst = torch.randint(0, n, (e,), generator=g)
    keep = src != dst
    edge_index = torch.stack([src[keep], dst[keep]])
    edge_index = torch.cat([edge_index, torch.tensor([[2], [2]])], dim=1)  # a loop
    edge_index = coalesce(edge_index, num_nodes=n)  # unweighted adj_t sum no copies
    weight = torch.rand(edge_index.size(1), generator=g, dtype=torch.float64) + 0.1
    return edge_index, weight, n


def sparse_layouts(adj_t_index, weight, n):
    """The ``adj_t`` layouts with ``adj_t[i, j]`` for each column ``(i, j)``."""
    out = {
        "coo": to_torch_coo_tensor(adj_t_index, weight, size=(n, n)),
        "csr": to_torch_csr_tensor(adj_t_index, weight, size=(n, n)),
    }
    if dtyping.WITH_TORCH_SPARSE:
        from torch_sparse import SparseTensor

        out["sparse_tensor"] = SparseTensor.from_edge_index(
            adj_t_index, weight, sparse_sizes=(n, n)
        )
    return out


@pytest.mark.parametrize("flow", ["source_to_target", "target_to_source"])
@pytest.mark.parametrize("laplacian", LAPLACIANS)
@pytest.mark.parametrize("weights", ["none", "constant", "differentiable"])
def test_flow_every_layout_matches_dense(flow, laplacian, weights):
    edge_index, weight, n = directed_graph()
    weight = {
        "none": None,
        "constant": weight,
        "differentiable": weight.clone().requires_grad_(),
    }[weights]
    x = torch.randn(n, 3, dtype=torch.float64)
    lap = dense_laplacian(edge_index, weight, n, laplacian, True, flow)
    expected = euler_power(lap, x, 0.2, 3)
    conv = DiffusionConv(0.2, 3, laplacian, flow=flow)
    out = conv(x, edge_index, weight)
    torch.testing.assert_close(out, expected)
    assert out.requires_grad == (weights == "differentiable")
    # a sparse adj_t is already oriented: the flow cannot apply, as in PyG
    receivers = edge_index if flow == "target_to_source" else edge_index.flip(0)
    if flow == "target_to_source":
        for adj_t in sparse_layouts(edge_index.flip(0), weight, n).values():
            with pytest.raises(ValueError, match="target_to_source.*adj_t.t()"):
                conv(x, adj_t)
            with pytest.raises(ValueError, match="target_to_source"):
                APPNP(K=1, alpha=0.0, flow=flow)(x, adj_t)
    # the transposed adjacency with the default flow gives the reversed flow
    forward = DiffusionConv(0.2, 3, laplacian)
    for name, adj_t in sparse_layouts(receivers, weight, n).items():
        out = forward(x, adj_t)
        torch.testing.assert_close(out, expected, msg=f"layout {name}")
        assert out.requires_grad == (weights == "differentiable"), name


@pytest.mark.parametrize("flow", ["source_to_target", "target_to_source"])
@pytest.mark.parametrize("weighted", [True, False])
def test_flow_matches_appnp(flow, weighted):
    # gamma = 1 with the "sym" Laplacian and self loops is one step of PyG's
    # gcn_norm operator, i.e. APPNP(K=1, alpha=0), which honours the flow
    edge_index, weight, n = directed_graph(seed=13)
    weight = weight if weighted else None
    x = torch.randn(n, 4, dtype=torch.float64)
    expected = APPNP(K=1, alpha=0.0, flow=flow)(x, edge_index, weight)
    out = DiffusionConv(1.0, 1, "sym", flow=flow)(x, edge_index, weight)
    torch.testing.assert_close(out, expected)
    if weighted:
        w = weight.clone().requires_grad_()
        out = DiffusionConv(1.0, 1, "sym", flow=flow)(x, edge_index, w)
        torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("flow", ["source_to_target", "target_to_source"])
def test_gradcheck_flow(flow):
    edge_index, weight, n = directed_graph(n=7, e=12, seed=14)
    x = torch.randn(n, 2, dtype=torch.float64, requires_grad=True)
    conv = DiffusionConv(0.2, 2, "sym", flow=flow)
    assert torch.autograd.gradcheck(lambda x: conv(x, edge_index, weight), (x,))
    weight = weight.clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x, w: conv(x, edge_index, w), (x.detach(), weight)
    )


def test_sparse_differentiable_weights_use_message_and_aggregate(monkeypatch):
    edge_index, weight, n = directed_graph(n=7, e=12, seed=15)
    x = torch.randn(n, 2, dtype=torch.float64)
    conv = DiffusionConv(0.2, 2, "rw")
    calls = []
    original = DiffusionConv.message_and_aggregate

    def counting(self, adj_t, x):
        calls.append(adj_t.layout if isinstance(adj_t, torch.Tensor) else adj_t)
        return original(self, adj_t, x)

    monkeypatch.setattr(DiffusionConv, "message_and_aggregate", counting)
    for name in sparse_layouts(edge_index.flip(0), weight, n):
        calls.clear()

        def fn(w, name=name):
            return conv(x, sparse_layouts(edge_index.flip(0), w, n)[name])

        w = weight.clone().requires_grad_()
        assert torch.autograd.gradcheck(fn, (w,)), name
        assert calls, name
        expected = conv(x, edge_index, w)
        torch.testing.assert_close(fn(w), expected, msg=name)


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


def fused_conv(panel_width, **kwargs):
    conv = DiffusionConv(0.3, 5, **kwargs).train()
    conv.panel_width = panel_width
    return conv


@pytest.mark.parametrize("p", [0.0, 0.25, 0.3])  # none; byte masks; torch.rand
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_panel_path_equals_step_by_step_path_bitwise(p, dtype):
    """Same seed state: same masks, bit for bit the same output and gradient."""
    edge_index, weight, n = random_graph(seed=12)
    x = torch.randn(n, 23, dtype=dtype)  # panels of 4 or 3 columns
    seed_grad = torch.randn(n, 23, dtype=dtype)
    results = []
    for width in (0, 4, 7, 1):
        conv = fused_conv(width, dropout=p)
        torch.manual_seed(3)
        x_in = x.clone().requires_grad_()
        out = conv(x_in, edge_index, weight.to(dtype))
        out.backward(seed_grad)
        results.append((out.detach(), x_in.grad))
    for out, grad in results[1:]:
        assert torch.equal(out, results[0][0])
        assert torch.equal(grad, results[0][1])


@pytest.mark.parametrize("p", [0.0, 0.25])
def test_panel_path_matches_dense_autograd(p):
    edge_index, weight, n = random_graph(seed=13)
    x = torch.randn(n, 10, dtype=torch.float64)
    seed_grad = torch.randn(n, 10, dtype=torch.float64)
    lap = dense_laplacian(edge_index, weight, n, "reference", True)
    m = torch.eye(n, dtype=torch.float64) - 0.3 * lap
    torch.manual_seed(5)
    expected_in = x.clone().requires_grad_()
    expected = expected_in
    for _ in range(5):
        if p > 0:
            expected = expected * keep_mask(x.shape, p).to(x.dtype) / (1 - p)
        expected = m @ expected
    expected.backward(seed_grad)
    torch.manual_seed(5)
    x_in = x.clone().requires_grad_()
    out = fused_conv(3, dropout=p)(x_in, edge_index, weight)
    out.backward(seed_grad)
    torch.testing.assert_close(out, expected.detach())
    torch.testing.assert_close(x_in.grad, expected_in.grad)


@pytest.mark.parametrize("p", [0.0, 0.25])
def test_gradcheck_panel_path(p):
    edge_index, weight, n = random_graph(seed=14)
    conv = fused_conv(2, dropout=p)
    x = torch.randn(n, 5, dtype=torch.float64, requires_grad=True)

    def fn(x):
        torch.manual_seed(9)  # the same masks in every evaluation
        return conv(x, edge_index, weight)

    assert torch.autograd.gradcheck(fn, (x,))


def test_panel_path_only_where_it_applies(monkeypatch):
    calls = []
    original = conv_module._panel_steps

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(conv_module, "_panel_steps", counting)
    edge_index, weight, n = random_graph(seed=15)
    x = torch.randn(n, 8, requires_grad=True)
    weight = weight.float()
    fused_conv(4, dropout=0.25)(x, edge_index, weight).sum().backward()
    assert len(calls) == 2  # forward and backward
    calls.clear()
    fused_conv(4, dropout=0.25, recompute_masks=True)(x, edge_index, weight)
    fused_conv(5, dropout=0.25)(x, edge_index, weight)  # a single panel
    fused_conv(0, dropout=0.25)(x, edge_index, weight)  # turned off
    DiffusionConv(0.3, 1).train()(x, edge_index, weight)  # a single step
    assert not calls
    assert DiffusionConv(0.3).panel_width == conv_module.PANEL_WIDTH

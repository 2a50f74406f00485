"""Batched baselines: every member behaves exactly like its own PyG model."""

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call
from torch.nn import Parameter
from torch_geometric.utils import softmax

from diffresnet_pyg.nn.batched.gnn import (
    BatchedBaseline,
    BatchedGAT,
    BatchedGCN,
    BatchedGraphSAGE,
    BatchedMLP,
    stack_baselines,
)
from diffresnet_pyg.nn.models.baselines import BUILDERS, FAMILIES, gat, gcn, mlp

N, F_IN, C, B = 40, 24, 5, 3
CLASSES = {
    "gcn": BatchedGCN,
    "graph_sage": BatchedGraphSAGE,
    "gat": BatchedGAT,
    "mlp": BatchedMLP,
}
ATOL = 1e-5
RTOL = 1e-5


@pytest.fixture(scope="module")
def graph():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(N, F_IN, generator=gen)
    x = x * (torch.rand(N, F_IN, generator=gen) < 0.3)  # bag-of-words-like
    edge_index = torch.randint(0, N - 2, (2, 150), generator=gen)  # 2 isolated
    edge_index = torch.cat([edge_index, torch.tensor([[3, 3, 5], [3, 7, 7]])], 1)
    labels = torch.randint(0, C, (N,), generator=gen)
    return x, edge_index, labels


def members(family, num=B, **kwargs):
    out = []
    for seed in range(num):
        torch.manual_seed(100 + seed)
        out.append(BUILDERS[family](F_IN, C, **kwargs))
    return out


def assert_close(actual, expected, atol=ATOL, rtol=RTOL):
    torch.testing.assert_close(actual, expected, atol=atol, rtol=rtol)


def grads_as_batched(ms):
    """The members' gradients, stacked in the batched layout."""
    copies = []
    for m in ms:
        c = copy.deepcopy(m)
        for p, q in zip(c.parameters(), m.parameters(), strict=True):
            p.data = q.grad.clone()
        copies.append(c)
    return dict(stack_baselines(copies).named_parameters())


@pytest.mark.parametrize("family", FAMILIES)
def test_dispatch(family):
    model = stack_baselines(members(family))
    assert type(model) is CLASSES[family]
    assert model.num_members == B
    for p in model.parameters():
        assert p.size(0) == B


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_eval_outputs_match_members(graph, family, num_layers):
    x, edge_index, _ = graph
    ms = members(family, num_layers=num_layers)
    model = stack_baselines(ms).eval()
    out = model(x, edge_index)
    assert out.shape == (N, B, C)
    for b, m in enumerate(ms):
        assert_close(out[:, b], m.eval()(x, edge_index))


def test_gat_output_heads_and_single_layer(graph):
    x, edge_index, _ = graph
    for kwargs in ({"output_heads": 8}, {"num_layers": 1, "output_heads": 3}):
        ms = members("gat", **kwargs)
        out = stack_baselines(ms).eval()(x, edge_index)
        for b, m in enumerate(ms):
            assert_close(out[:, b], m.eval()(x, edge_index))


@pytest.mark.parametrize("family", FAMILIES)
def test_gradients_match_members(graph, family):
    x, edge_index, labels = graph
    ms = members(family)
    model = stack_baselines(ms).eval()
    out = model(x, edge_index)
    losses = [F.cross_entropy(out[:, b], labels) for b in range(B)]
    sum(losses).backward()
    for b, m in enumerate(ms):
        loss = F.cross_entropy(m.eval()(x, edge_index), labels)
        assert_close(losses[b], loss)
        loss.backward()
    expected = grads_as_batched(ms)
    for name, p in model.named_parameters():
        assert_close(p.grad, expected[name])


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("layout", ["csr", "coo"])
def test_sparse_x_equals_dense(graph, family, layout):
    x, edge_index, _ = graph
    x_sparse = x.to_sparse_csr() if layout == "csr" else x.to_sparse()
    model = stack_baselines(members(family, input_dropout=0.0))
    assert_close(model.eval()(x_sparse, edge_index), model(x, edge_index))
    model.train()  # the same later dropout masks under the same seed
    torch.manual_seed(7)
    dense = model(x, edge_index)
    dense.square().sum().backward()
    dense_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    torch.manual_seed(7)
    sparse = model(x_sparse, edge_index)
    sparse.square().sum().backward()
    assert_close(sparse, dense)
    for p, g in zip(model.parameters(), dense_grads, strict=True):
        assert_close(p.grad, g)


@pytest.mark.parametrize("family", FAMILIES)
def test_train_mode_single_member_equals_unbatched(graph, family):
    x, edge_index, labels = graph
    # defaults include all dropouts (GAT: input and attention dropout too)
    kwargs = {"input_dropout": 0.3} if family != "gat" else {}
    (m,) = members(family, num=1, **kwargs)
    model = stack_baselines([m]).train()
    m.train()
    for seed in (0, 1):
        torch.manual_seed(seed)
        out = model(x, edge_index)[:, 0]
        F.cross_entropy(out, labels).backward()
        torch.manual_seed(seed)
        expected = m(x, edge_index)
        F.cross_entropy(expected, labels).backward()
        assert_close(out, expected)
        assert not torch.allclose(out, m.eval()(x, edge_index))  # dropout active
        m.train()
    for name, p in model.named_parameters():
        assert_close(p.grad, grads_as_batched([m])[name])


@pytest.mark.parametrize("family", FAMILIES)
def test_members_draw_independent_masks(graph, family):
    x, edge_index, _ = graph
    (m,) = members(family, num=1, input_dropout=0.5)
    model = stack_baselines([m, m, m])
    for inputs in (x, x.to_sparse_csr()):
        out = model.train()(inputs, edge_index)
        assert not torch.allclose(out[:, 0], out[:, 1])
        assert not torch.allclose(out[:, 1], out[:, 2])
        same = model.eval()(inputs, edge_index)
        assert_close(same[:, 0], same[:, 1])


def test_sparse_input_dropout_is_per_member_on_values():
    # one nonzero feature per node: member b's output row n is either the bias
    # (feature dropped) or W_b[n] / (1 - p) + bias (kept)
    n, p = 400, 0.25
    x = torch.eye(n)
    torch.manual_seed(0)
    ms = [mlp(n, 3, num_layers=1, input_dropout=p) for _ in range(4)]
    model = stack_baselines(ms).train()
    out = model(x.to_sparse_csr())
    weight, bias = model.weights[0].detach(), model.biases[0].detach()
    kept_value = weight.transpose(0, 1) / (1 - p) + bias  # [n, B, 3]
    dropped = torch.isclose(out, bias.expand_as(out), atol=1e-6).all(-1)
    kept = torch.isclose(out, kept_value, atol=1e-6).all(-1)
    assert bool((dropped ^ kept).all())
    rate = dropped.float().mean(0)
    assert ((rate - p).abs() < 0.08).all(), rate
    assert (dropped[:, 0] != dropped[:, 1]).any()


@pytest.mark.parametrize("family", FAMILIES)
def test_unstack_round_trip(graph, family):
    x, edge_index, _ = graph
    ms = members(family)
    model = stack_baselines(ms).eval()
    state = torch.random.get_rng_state()
    copies = [model.unstack(i) for i in range(B)]
    assert torch.equal(state, torch.random.get_rng_state())
    for m, c in zip(ms, copies, strict=True):
        assert type(c) is type(m) and c.hparams == m.hparams
        assert not c.training
        for p, q in zip(c.parameters(), m.parameters(), strict=True):
            assert torch.equal(p, q)
    assert_close(model.unstack(-1)(x, edge_index), ms[-1].eval()(x, edge_index))
    out_1 = model(x, edge_index)[:, 1]
    again = stack_baselines(copies)
    for (name, p), (_, q) in zip(
        again.named_parameters(), model.named_parameters(), strict=True
    ):
        assert torch.equal(p, q), name
    with pytest.raises(IndexError):
        model.unstack(B)
    with pytest.raises(TypeError):
        model.unstack(0.0)
    assert_close(model.unstack(torch.tensor(1))(x, edge_index), out_1)


@pytest.mark.parametrize("family", FAMILIES)
def test_parameter_slicing_keeps_members(graph, family):
    x, edge_index, _ = graph
    model = stack_baselines(members(family)).eval()
    full = model(x, edge_index)
    index = torch.tensor([2, 0])
    for module in model.modules():
        for name, p in list(module.named_parameters(recurse=False)):
            setattr(module, name, Parameter(p.detach()[index]))
    assert model.num_members == 2
    assert_close(model(x, edge_index), full[:, index])
    assert_close(model(x.to_sparse_csr(), edge_index), full[:, index])
    assert model.unstack(0).hparams == model.hparams
    model.train()(x, edge_index).sum().backward()  # still trainable


@pytest.mark.parametrize("family", FAMILIES)
def test_constructor_initializes_like_builder(family):
    torch.manual_seed(5)
    model = CLASSES[family](B, F_IN, C, hidden_channels=16)
    torch.manual_seed(5)
    expected = stack_baselines(
        [BUILDERS[family](F_IN, C, hidden_channels=16) for _ in range(B)]
    )
    for p, q in zip(model.parameters(), expected.parameters(), strict=True):
        assert torch.equal(p, q)
    torch.manual_seed(5)
    model.reset_parameters()
    for p, q in zip(model.parameters(), expected.parameters(), strict=True):
        assert torch.equal(p, q)
    with pytest.raises(ValueError, match="num_members"):
        CLASSES[family](0, F_IN, C)


@pytest.mark.parametrize("family", ["gcn", "graph_sage", "gat", "mlp"])
def test_gradcheck_float64(family):
    gen = torch.Generator().manual_seed(1)
    n = 6
    x = torch.randn(n, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    edge_index = torch.tensor([[0, 1, 1, 2, 3, 4, 2], [1, 0, 2, 1, 4, 3, 2]])
    torch.manual_seed(0)
    ms = [BUILDERS[family](4, 3, hidden_channels=8, dropout=0.0) for _ in range(2)]
    model = stack_baselines(ms).double().eval()
    names = [name for name, _ in model.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in model.parameters()]

    def fn(x, *tensors):
        params = dict(zip(names, tensors, strict=True))
        return functional_call(model, params, (x, edge_index))

    assert torch.autograd.gradcheck(fn, (x, *params))
    x_sparse = x.detach().to_sparse_csr()
    assert torch.autograd.gradcheck(lambda *t: fn(x_sparse, *t), tuple(params))


def test_graph_cache(graph):
    x, edge_index, _ = graph
    model = stack_baselines(members("gcn")).eval()
    first = model(x, edge_index)
    operator = model._graph_cache.value
    assert model(x, edge_index.clone()) is not None
    assert model._graph_cache.value is not operator  # a new tensor: rebuilt
    model(x, edge_index)
    operator = model._graph_cache.value
    model(x, edge_index)
    assert model._graph_cache.value is operator
    other = edge_index.clone()
    out = model(x, other)
    other[:, :10] = other[:, :10].flip(0)  # in place: the cache must notice
    changed = model(x, other)
    assert not torch.allclose(changed, out)
    assert_close(changed[:, 1], model.unstack(1)(x, other))
    assert_close(model(x, edge_index), first)
    # the cache follows copies and pickles empty, and is not state
    assert copy.deepcopy(model)._graph_cache.value is None
    assert pickle.loads(pickle.dumps(model))._graph_cache.value is None
    assert set(model.state_dict()) == {n for n, _ in model.named_parameters()}
    model.clear_cache()
    assert model._graph_cache.value is None


def test_inference_mode(graph):
    x, edge_index, _ = graph
    model = stack_baselines(members("gat")).eval()
    expected = model(x, edge_index)
    model.clear_cache()
    with torch.inference_mode():
        ei = edge_index.clone()  # an inference tensor: never cached
        assert_close(model(x, ei), expected)
        assert model._graph_cache.value is None
        assert_close(model(x, edge_index), expected)


def test_state_dict_round_trip(graph):
    x, edge_index, _ = graph
    model = stack_baselines(members("gat")).eval()
    fresh = BatchedGAT(B, F_IN, C)
    fresh.load_state_dict(model.state_dict())
    assert_close(fresh.eval()(x, edge_index), model(x, edge_index))


def test_errors(graph):
    x, edge_index, _ = graph
    with pytest.raises(ValueError, match="at least one"):
        stack_baselines([])
    with pytest.raises(TypeError, match="different families"):
        stack_baselines([gcn(F_IN, C), mlp(F_IN, C)])
    with pytest.raises(TypeError, match="not a baseline model"):
        stack_baselines([gcn(F_IN, C), torch.nn.Linear(F_IN, C)])
    with pytest.raises(ValueError, match="hidden_channels"):
        stack_baselines([gcn(F_IN, C), gcn(F_IN, C, hidden_channels=8)])
    with pytest.raises(ValueError, match="attention_dropout"):
        stack_baselines([gat(F_IN, C), gat(F_IN, C, attention_dropout=0.1)])
    with pytest.raises(ValueError, match="dtype"):
        stack_baselines([gcn(F_IN, C), gcn(F_IN, C).double()])
    with pytest.raises(TypeError, match="Expected gcn"):
        BatchedGCN.from_modules([gat(F_IN, C)])
    assert type(BatchedBaseline.from_modules([gat(F_IN, C)])) is BatchedGAT
    with pytest.raises(TypeError, match="abstract"):
        BatchedBaseline(2, F_IN, C)
    model = stack_baselines([gcn(F_IN, C)])
    with pytest.raises(ValueError, match="'x'"):
        model(x[:, :-1], edge_index)
    with pytest.raises(ValueError, match="edge_index"):
        model(x)
    with pytest.raises(ValueError, match="edge_index"):
        model(x, edge_index.float())
    stack_baselines([mlp(F_IN, C)])(x)  # the MLP needs no graph
    for family in ("gcn", "graph_sage", "gat"):
        model = stack_baselines([BUILDERS[family](F_IN, C)])
        with pytest.raises(ValueError, match="outside"):
            model(x, torch.cat([edge_index, torch.tensor([[0], [N]])], 1))
        with pytest.raises(ValueError, match="outside"):
            model(x, torch.cat([edge_index, torch.tensor([[-1], [0]])], 1))


@pytest.mark.parametrize("family", FAMILIES)
def test_cora_sized_graph(cora_root, family):
    from diffresnet_pyg.data import load_dataset

    data = load_dataset("cora", cora_root)
    x, edge_index = data.x, data.edge_index
    torch.manual_seed(0)
    ms = [BUILDERS[family](x.size(1), int(data.y.max()) + 1) for _ in range(B)]
    model = stack_baselines(ms).eval()
    out = model(x.to_sparse_csr(), edge_index)
    for b, m in enumerate(ms):
        assert_close(out[:, b], m.eval()(x, edge_index))
    model.train()
    torch.manual_seed(1)
    model(x.to_sparse_csr(), edge_index).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("seed", range(5))
def test_gat_softmax_is_pygs_bit_for_bit(seed):
    """The segment maximum changes no bit of PyG's softmax, nor of its
    gradient: random multigraphs (repeated edges, isolated nodes, self-loops
    replaced), members and heads, logits of every scale."""
    gen = torch.Generator().manual_seed(seed)
    num_nodes = 40
    edge_index = torch.randint(0, num_nodes - 5, (2, 300), generator=gen)
    model = BatchedGAT.from_modules([gat(4, 3, hidden_channels=4, heads=2)] * 3)
    edges = model._edges(edge_index, num_nodes)
    assert int(edges.offsets[-1]) == edges.target.numel()
    for scale in (1e-3, 1.0, 80.0):
        logits = torch.randn(edges.target.numel(), 3, 2, generator=gen) * scale
        ours = logits.clone().requires_grad_()
        theirs = logits.clone().requires_grad_()
        out = BatchedGAT._softmax(ours, edges, num_nodes)
        expected = softmax(theirs, edges.target, num_nodes=num_nodes)
        assert torch.equal(out, expected)
        grad = torch.randn(out.shape, generator=gen)
        out.backward(grad)
        expected.backward(grad)
        assert torch.equal(ours.grad, theirs.grad)

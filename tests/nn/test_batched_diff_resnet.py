import pytest
import torch

import diffresnet_pyg.nn.batched.diff_resnet as batched_module
from diffresnet_pyg.nn import DiffResNet
from diffresnet_pyg.nn.batched import BatchedDiffResNet
from diffresnet_pyg.nn.batched.diff_resnet import (
    input_linear,
    member_input_dropout,
    stacked_linear,
)
from diffresnet_pyg.nn.cache import GraphCache


@pytest.fixture
def graph():
    gen = torch.Generator().manual_seed(0)
    n = 12
    adj = torch.rand(n, n, generator=gen) < 0.3
    adj = torch.triu(adj, 1)
    edge_index = (adj | adj.t()).nonzero().t()
    x = (torch.rand(n, 6, generator=gen) < 0.4).float()
    return x, edge_index


def members(kind, seeds, **kwargs):
    out = []
    for s in seeds:
        torch.manual_seed(s)
        if kind == "reference":
            out.append(DiffResNet.reference(6, 3, layer_num=3, **kwargs))
        else:
            out.append(DiffResNet(6, 8, 3, num_blocks=2, diffusion_steps=2, **kwargs))
    return out


@pytest.fixture(params=["stacked", "member_loop"])
def path(request, monkeypatch):
    """Both forward paths: stacked activations and members one by one."""
    if request.param == "member_loop":
        monkeypatch.setattr(batched_module, "MEMBER_LOOP_BYTES", 0)
    return request.param


@pytest.mark.parametrize("kind", ["reference", "general"])
@pytest.mark.parametrize("sparse", [False, True])
def test_each_member_computes_its_own_model(graph, path, kind, sparse):
    x, edge_index = graph
    ms = members(kind, [1, 2, 3])
    model = BatchedDiffResNet.from_modules(ms).eval()
    inp = x.to_sparse_csr() if sparse else x
    out = model(inp, edge_index)
    assert out.shape == (12, 3, 3)
    for b, m in enumerate(ms):
        torch.testing.assert_close(out[:, b], m.eval()(x, edge_index))


@pytest.mark.parametrize("kind", ["reference", "general"])
def test_gradients_are_each_members_own(graph, path, kind):
    x, edge_index = graph
    ms = members(kind, [4, 5])
    model = BatchedDiffResNet.from_modules(ms).eval()
    target = torch.randn(12, 2, 3)
    (model(x, edge_index) * target).sum().backward()
    for b, m in enumerate(ms):
        (m.eval()(x, edge_index) * target[:, b]).sum().backward()
        torch.testing.assert_close(
            model.lin_out_weight.grad[b], m.lin_out.weight.grad.t()
        )
        torch.testing.assert_close(
            model.block_weights[0].grad[b], m.blocks[0].lins[0].weight.grad.t()
        )


@pytest.mark.parametrize("kind", ["reference", "general"])
def test_one_member_repeats_the_unbatched_random_draws(graph, path, kind):
    x, edge_index = graph
    (m,) = (
        members(kind, [7], dropout=0.3)
        if kind == "reference"
        else members(kind, [7], dropout=0.3, diffusion_dropout=0.2)
    )
    model = BatchedDiffResNet.from_modules([m])
    torch.manual_seed(11)
    expected = m.train()(x, edge_index)
    torch.manual_seed(11)
    torch.testing.assert_close(model.train()(x, edge_index)[:, 0], expected)


def test_float64_gradcheck(graph, path):
    x, edge_index = graph
    ms = [m.double() for m in members("general", [1, 2])]
    model = BatchedDiffResNet.from_modules(ms).eval()
    names = [name for name, _ in model.named_parameters()]

    def forward(*params):
        weights = dict(zip(names, params, strict=True))
        return torch.func.functional_call(model, weights, (x.double(), edge_index))

    inputs = [p.detach().clone().requires_grad_() for p in model.parameters()]
    assert torch.autograd.gradcheck(forward, inputs, fast_mode=True)


def test_unstack_round_trip_and_selection(graph):
    x, edge_index = graph
    ms = members("general", [1, 2, 3])
    model = BatchedDiffResNet.from_modules(ms).eval()
    for b, m in enumerate(ms):
        torch.testing.assert_close(
            model.unstack(b).eval()(x, edge_index), m.eval()(x, edge_index)
        )
    keep = torch.tensor([2, 0])
    expected = model(x, edge_index)[:, keep]
    for module in model.modules():
        for name, p in list(module._parameters.items()):
            module._parameters[name] = torch.nn.Parameter(p.detach()[keep])
    assert model.num_members == 2
    torch.testing.assert_close(model(x, edge_index), expected)
    with pytest.raises(IndexError, match="member 5 out of range for 2 members"):
        model.unstack(5)


def test_bad_members(graph):
    with pytest.raises(ValueError, match="at least one member"):
        BatchedDiffResNet.from_modules([])
    with pytest.raises(TypeError, match="members must be DiffResNet"):
        BatchedDiffResNet.from_modules([torch.nn.Linear(2, 2)])
    a, b = members("general", [1]), members("reference", [1])
    with pytest.raises(ValueError, match="member 1 differs from member 0"):
        BatchedDiffResNet.from_modules(a + b)
    model = BatchedDiffResNet.from_modules(a)
    with pytest.raises(ValueError, match=r"'x' must have shape \[num_nodes, 6\]"):
        model(torch.zeros(12, 5), graph[1])


def input_dropout_members(projection, seeds, **kwargs):
    kwargs = {"dropout": 0.0, "diffusion_dropout": 0.0, **kwargs}  # input only
    out = []
    for s in seeds:
        torch.manual_seed(s)
        hidden = 8 if projection else 6
        out.append(
            DiffResNet(
                6, hidden, 3, diffusion_steps=2, input_projection=projection, **kwargs
            )
        )
    return out


@pytest.mark.parametrize("projection", [True, False])
@pytest.mark.parametrize("sparse", [False, True])
def test_input_dropout_eval_and_one_member_draws(graph, path, projection, sparse):
    x, edge_index = graph
    inp = x.to_sparse_csr() if sparse else x
    ms = input_dropout_members(projection, [1, 2, 3], input_dropout=0.4)
    model = BatchedDiffResNet.from_modules(ms).eval()
    out = model(inp, edge_index)
    for b, m in enumerate(ms):
        torch.testing.assert_close(out[:, b], m.eval()(x, edge_index))
    (m,) = input_dropout_members(
        projection, [7], input_dropout=0.4, dropout=0.3, diffusion_dropout=0.2
    )
    one = BatchedDiffResNet.from_modules([m])
    for _ in range(2):  # the second call uses the cached input structure
        torch.manual_seed(11)
        expected = m.train()(inp, edge_index)
        torch.manual_seed(11)
        torch.testing.assert_close(one.train()(inp, edge_index)[:, 0], expected)


@pytest.mark.parametrize("projection", [True, False])
@pytest.mark.parametrize("sparse", [False, True])
def test_input_dropout_masks_are_per_member(graph, path, projection, sparse):
    x, edge_index = graph
    inp = x.to_sparse_csr() if sparse else x
    ms = input_dropout_members(projection, [1, 1, 1], input_dropout=0.5)
    model = BatchedDiffResNet.from_modules(ms).train()
    torch.manual_seed(0)
    out = model(inp, edge_index)
    assert not torch.allclose(out[:, 0], out[:, 1])
    assert not torch.allclose(out[:, 1], out[:, 2])
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_input_dropout_unstack_and_signature(graph):
    ms = input_dropout_members(True, [1, 2], input_dropout=0.25)
    model = BatchedDiffResNet.from_modules(ms)
    assert model.input_dropout == 0.25
    assert model.unstack(1).input_dropout == 0.25
    other = input_dropout_members(True, [3])
    with pytest.raises(ValueError, match="member 2 differs from member 0"):
        BatchedDiffResNet.from_modules(ms + other)


@pytest.mark.parametrize("sparse", [False, True])
def test_member_input_dropout_is_what_input_linear_multiplies(graph, sparse):
    x, _ = graph
    inp = x.to_sparse_csr() if sparse else x
    weight, bias = torch.randn(3, 6, 4), torch.randn(3, 4)
    torch.manual_seed(0)
    out = input_linear(inp, weight, bias, 0.5, True, GraphCache())
    torch.manual_seed(0)
    dropped = member_input_dropout(inp, 3, 0.5, GraphCache())
    assert dropped.shape == (12, 3, 6)
    torch.testing.assert_close(out, stacked_linear(dropped, weight, bias))
    kept = dropped != 0
    assert not (kept & (x == 0).unsqueeze(1)).any()
    torch.testing.assert_close(dropped[kept], 2 * x.unsqueeze(1).expand_as(kept)[kept])
    assert not torch.equal(kept[:, 0], kept[:, 1])

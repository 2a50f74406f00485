"""BatchedDiffResNet on an explicit device: CPU always, CUDA where available.

Each test moves the model, the input and the graph to ``device`` and compares
with the same computation on the CPU. On the CPU that runs every path with an
explicit ``device="cpu"``; the CUDA cases are skipped (visibly) without a GPU.
"""

import pytest
import torch

import diffresnet_pyg.nn.batched.diff_resnet as batched_module
from diffresnet_pyg.experiments.training import train_members
from diffresnet_pyg.nn import DiffResNet
from diffresnet_pyg.nn.batched import BatchedDiffResNet
from diffresnet_pyg.nn.batched.diff_resnet import input_linear, member_input_dropout
from diffresnet_pyg.nn.cache import GraphCache

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
DEVICES = [pytest.param("cpu"), pytest.param("cuda", marks=CUDA)]
TOL = {"rtol": 1e-4, "atol": 1e-5}


@pytest.fixture
def graph():
    gen = torch.Generator().manual_seed(0)
    n = 12
    adj = torch.rand(n, n, generator=gen) < 0.3
    adj = torch.triu(adj, 1)
    edge_index = (adj | adj.t()).nonzero().t()
    x = (torch.rand(n, 6, generator=gen) < 0.4).float()
    return x, edge_index


@pytest.fixture(params=["stacked", "member_loop"])
def path(request, monkeypatch):
    """Both forward paths, on every device."""
    if request.param == "member_loop":
        monkeypatch.setattr(batched_module, "MEMBER_LOOP_BYTES", 0)
        monkeypatch.setattr(batched_module, "MEMBER_LOOP_DEVICES", ("cpu", "cuda"))
    return request.param


def members(kind, seeds, **kwargs):
    out = []
    for s in seeds:
        torch.manual_seed(s)
        if kind == "reference":
            out.append(DiffResNet.reference(6, 3, layer_num=3, **kwargs))
        else:
            out.append(DiffResNet(6, 8, 3, num_blocks=2, diffusion_steps=2, **kwargs))
    return out


def layout(x, sparse):
    return {"dense": x, "csr": x.to_sparse_csr(), "coo": x.to_sparse()}[sparse]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["reference", "general"])
@pytest.mark.parametrize("sparse", ["dense", "csr", "coo"])
def test_eval_outputs_equal_the_cpu_ones(graph, path, device, kind, sparse):
    x, edge_index = graph
    ms = members(kind, [1, 2, 3])
    expected = torch.stack([m.eval()(x, edge_index) for m in ms], dim=1)
    model = BatchedDiffResNet.from_modules(ms).eval().to(device)
    inp = layout(x, sparse).to(device)
    out = model(inp, edge_index.to(device))
    assert out.device.type == device
    torch.testing.assert_close(out.cpu(), expected, **TOL)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["reference", "general"])
@pytest.mark.parametrize("sparse", ["dense", "csr"])
def test_gradients_equal_the_cpu_ones(graph, path, device, kind, sparse):
    x, edge_index = graph
    ms = members(kind, [4, 5])
    target = torch.randn(12, 2, 3)
    cpu = BatchedDiffResNet.from_modules(ms).eval()
    (cpu(layout(x, sparse), edge_index) * target).sum().backward()
    model = BatchedDiffResNet.from_modules(ms).eval().to(device)
    out = model(layout(x, sparse).to(device), edge_index.to(device))
    (out * target.to(device)).sum().backward()
    for (name, p), q in zip(model.named_parameters(), cpu.parameters(), strict=True):
        assert p.grad.device.type == device, name
        torch.testing.assert_close(p.grad.cpu(), q.grad, **TOL, msg=name)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["reference", "general"])
def test_training_draws_repeat_on_the_device(graph, path, device, kind):
    """Dropout masks: a function of the seed on the device (see the class docs)."""
    x, edge_index = graph
    kwargs = {"dropout": 0.3}
    if kind == "general":
        kwargs["diffusion_dropout"] = 0.2
    x, edge_index = x.to(device), edge_index.to(device)
    model = BatchedDiffResNet.from_modules(members(kind, [1, 2], **kwargs))
    model = model.train().to(device)
    outs = []
    for _ in range(2):
        torch.manual_seed(11)
        outs.append(model(x, edge_index))
    assert outs[0].device.type == device
    torch.testing.assert_close(outs[0], outs[1])  # other masks: O(1) apart
    outs[0].sum().backward()
    assert all(p.grad.device.type == device for p in model.parameters())
    # one member repeats the unbatched model's draws on the same device
    (m,) = members(kind, [7], **kwargs)
    m = m.to(device).train()
    one = BatchedDiffResNet.from_modules([m]).train()
    torch.manual_seed(11)
    expected = m(x, edge_index)
    torch.manual_seed(11)
    torch.testing.assert_close(one(x, edge_index)[:, 0], expected)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("projection", [True, False])
@pytest.mark.parametrize("sparse", ["dense", "csr"])
def test_input_dropout_on_the_device(graph, path, device, projection, sparse):
    x, edge_index = graph
    ms = []
    for s in [1, 1, 1]:
        torch.manual_seed(s)
        ms.append(
            DiffResNet(
                6,
                8 if projection else 6,
                3,
                diffusion_steps=2,
                input_projection=projection,
                dropout=0.0,
                diffusion_dropout=0.0,
                input_dropout=0.5,
            )
        )
    model = BatchedDiffResNet.from_modules(ms).train().to(device)
    inp, edge_index = layout(x, sparse).to(device), edge_index.to(device)
    for _ in range(2):  # the second call uses the cached input structure
        torch.manual_seed(0)
        out = model(inp, edge_index)
        assert out.device.type == device
        assert not torch.allclose(out[:, 0], out[:, 1])
    out.sum().backward()
    assert all(p.grad.device.type == device for p in model.parameters())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("sparse", ["dense", "csr"])
def test_member_input_dropout_is_what_input_linear_multiplies(graph, device, sparse):
    from diffresnet_pyg.nn.batched import stacked_linear

    x, _ = graph
    inp = layout(x, sparse).to(device)
    weight = torch.randn(3, 6, 4, device=device)
    bias = torch.randn(3, 4, device=device)
    torch.manual_seed(0)
    out = input_linear(inp, weight, bias, 0.5, True, GraphCache())
    torch.manual_seed(0)
    dropped = member_input_dropout(inp, 3, 0.5, GraphCache())
    assert dropped.device.type == device
    torch.testing.assert_close(out, stacked_linear(dropped, weight, bias), **TOL)
    kept = (dropped != 0).cpu()
    assert not (kept & (x == 0).unsqueeze(1)).any()


@pytest.mark.parametrize("device", DEVICES)
def test_unstack_keeps_device_and_dtype(graph, device):
    x, edge_index = graph
    ms = [m.double() for m in members("general", [1, 2])]
    model = BatchedDiffResNet.from_modules(ms).eval().to(device)
    x, edge_index = x.double().to(device), edge_index.to(device)
    copy = model.unstack(1)
    assert all(p.device.type == device for p in copy.parameters())
    assert all(p.dtype == torch.float64 for p in copy.parameters())
    torch.testing.assert_close(copy.eval()(x, edge_index), model(x, edge_index)[:, 1])


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_members_loop_on_the_cpu_only(device):
    """Wide activations: one member after another on the CPU, stacked elsewhere."""
    (m,) = members("reference", [0])
    model = BatchedDiffResNet.from_modules([m, m])
    rows = batched_module.MEMBER_LOOP_BYTES // (6 * 4) + 1
    wide = torch.zeros(1, 6, device=device).expand(rows, 6)
    narrow = torch.zeros(4, 6, device=device)
    assert model._loops_members(wide) == (device == "cpu")
    assert not model._loops_members(narrow)


@CUDA
def test_members_are_stacked_on_cuda():
    (m,) = members("reference", [0])
    model = BatchedDiffResNet.from_modules([m, m]).cuda()
    rows = batched_module.MEMBER_LOOP_BYTES // (6 * 4) + 1
    assert not model._loops_members(torch.zeros(1, 6, device="cuda").expand(rows, 6))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("early_stopping", ["none", "loss_or_acc"])
def test_train_members_on_the_device(graph, device, early_stopping):
    """Without dropout, training on the device follows the CPU trajectory."""
    x, edge_index = graph
    y = torch.arange(12) % 3
    ms = members("reference", [1, 2, 3], dropout=0.0)
    idx = torch.arange(12)
    train_idx = torch.stack([idx[:6], idx[1:7], idx[2:8]])
    val_idx = torch.stack([idx[6:9], idx[7:10], idx[8:11]])
    test_idx = torch.stack([idx[9:], idx[9:], idx[9:]])
    kwargs = {"max_epochs": 6, "patience": 2, "early_stopping": early_stopping}
    results, params = [], []
    for dev in ("cpu", device):
        model = BatchedDiffResNet.from_modules(ms).to(dev)
        to = [t.to(dev) for t in (x, edge_index, y, train_idx, val_idx, test_idx)]
        results.append(train_members(model, *to, **kwargs))
        params.append([p.detach().cpu() for p in model.parameters()])
        assert all(p.device.type == dev for p in model.parameters())
    cpu, dev = results
    assert [r.epochs for r in dev] == [r.epochs for r in cpu]
    for a, b in zip(dev, cpu, strict=True):
        assert a.best_epoch == b.best_epoch
        assert a.val_acc == b.val_acc and a.test_acc == b.test_acc
        assert a.val_loss == pytest.approx(b.val_loss, rel=1e-4)
    if early_stopping == "none":  # every member kept: the same final weights
        for p, q in zip(*params, strict=True):
            torch.testing.assert_close(p, q, **TOL)

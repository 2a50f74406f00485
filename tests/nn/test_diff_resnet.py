import pytest
import torch
import torch.nn.functional as F
from torch import nn

from diffresnet_pyg.nn import DiffResNet, DiffusionConv, ResidualBlock, keep_mask
from diffresnet_pyg.nn.sparse import sparse_dropout
from tests.nn.test_diffusion_conv import dense_laplacian, random_graph


class AuthorsNet(nn.Module):
    """The authors' graph model, written from their description."""

    def __init__(self, f, c, step, layers, p, lap):
        super().__init__()
        self.linear = nn.Linear(f, f)
        self.classifier = nn.Linear(f, c)
        self.step, self.layers, self.p, self.lap = step, layers, p, lap

    def forward(self, x):
        x = x + F.relu(self.linear(x))
        for _ in range(self.layers):
            if self.training and self.p > 0:
                x = x * keep_mask(x.shape, self.p).to(x.dtype) / (1 - self.p)
            x = x - self.step * self.lap @ x
        return self.classifier(x)


def setup(seed=0, f=16, c=3, layers=5, p=0.25, dtype=torch.float64):
    edge_index, _, n = random_graph(n=20, e=50, seed=seed)
    lap = dense_laplacian(edge_index, None, n, "reference", True).to(dtype)
    torch.manual_seed(seed)
    authors = AuthorsNet(f, c, 0.25, layers, p, lap).to(dtype)
    torch.manual_seed(seed)
    ours = DiffResNet.reference(f, c, 0.25, layers, p).to(dtype)
    x = torch.rand(n, f, dtype=dtype)
    x = x * (x > 0.7)  # sparse-ish, like bag-of-words
    return authors, ours, x, edge_index


def test_reference_same_init_and_size():
    authors, ours, _, _ = setup(dtype=torch.float32)
    assert torch.equal(authors.linear.weight, ours.blocks[0].lins[0].weight)
    assert torch.equal(authors.classifier.bias, ours.lin_out.bias)
    assert sum(p.numel() for p in ours.parameters()) == sum(
        p.numel() for p in authors.parameters()
    )
    assert sum(p.numel() for p in DiffResNet.reference(1433, 7).parameters()) == (
        1433 * 1433 + 1433 + 1433 * 7 + 7
    )


@pytest.mark.parametrize("layout", ["dense", "csr", "coo"])
def test_reference_eval_matches_authors(layout):
    authors, ours, x, edge_index = setup()
    authors.eval()
    ours.eval()
    inp = {"dense": x, "csr": x.to_sparse_csr(), "coo": x.to_sparse()}[layout]
    torch.testing.assert_close(ours(inp, edge_index), authors(x))


@pytest.mark.parametrize("layout", ["dense", "csr"])
def test_reference_train_step_matches_authors(layout):
    authors, ours, x, edge_index = setup()
    y = torch.randint(0, 3, (x.size(0),), generator=torch.Generator().manual_seed(1))
    inp = x.to_sparse_csr() if layout == "csr" else x
    torch.manual_seed(11)
    out_a = authors.train()(x)
    torch.manual_seed(11)
    out_o = ours.train()(inp, edge_index)
    torch.testing.assert_close(out_o, out_a)
    F.cross_entropy(out_a, y).backward()
    F.cross_entropy(out_o, y).backward()
    torch.testing.assert_close(
        ours.blocks[0].lins[0].weight.grad, authors.linear.weight.grad
    )
    torch.testing.assert_close(ours.lin_out.weight.grad, authors.classifier.weight.grad)


def test_no_diff_resnet():
    _, ours, x, edge_index = setup(layers=0)
    ours.eval()
    block, lin = ours.blocks[0].lins[0], ours.lin_out
    torch.testing.assert_close(ours(x, edge_index), lin(x + F.relu(block(x))))


def test_general_variant_matches_composition():
    edge_index, weight, n = random_graph(n=15, e=40, seed=3)
    x = torch.randn(n, 6, dtype=torch.float64)
    torch.manual_seed(0)
    model = (
        DiffResNet(
            6, 8, 4, num_blocks=3, diffusion_steps=2, step_size=0.3, laplacian="sym"
        )
        .double()
        .eval()
    )
    h = model.lin_in(x)
    for block in model.blocks:
        lin1, lin2 = block.lins
        h = h + lin2(F.relu(lin1(h)))
        h = DiffusionConv(0.3, 2, "sym")(h, edge_index, weight)
    expected = model.lin_out(h)
    torch.testing.assert_close(model(x, edge_index, weight), expected)


def test_gradcheck_general_model():
    edge_index, weight, n = random_graph(n=8, e=14, seed=4)
    torch.manual_seed(0)
    model = DiffResNet(3, 4, 2, num_blocks=2, diffusion_steps=2).double().eval()
    x = torch.randn(n, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: model(x, edge_index, weight), (x,))


def test_reset_parameters_changes_weights():
    model = DiffResNet(4, 4, 2)
    before = model.lin_out.weight.clone()
    model.reset_parameters()
    assert not torch.equal(before, model.lin_out.weight)
    assert isinstance(model.blocks[0], ResidualBlock)


def test_bad_arguments():
    with pytest.raises(ValueError, match="hidden_channels"):
        DiffResNet(4, 8, 2, input_projection=False)
    with pytest.raises(ValueError, match="num_blocks"):
        DiffResNet(4, 8, 2, num_blocks=0)
    with pytest.raises(ValueError, match="1 or 2"):
        DiffResNet(4, 8, 2, block_layers=3)
    model = DiffResNet(4, 8, 2)
    edge_index = torch.tensor([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match=r"\[num_nodes, 4\]"):
        model(torch.randn(2, 5), edge_index)


def _bow(n=20, f=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, f, generator=gen)
    return x * (x > 0.7)


@pytest.mark.parametrize("input_projection", [True, False])
def test_input_dropout_zero_is_the_model_without_it(input_projection):
    edge_index, _, n = random_graph(n=20, e=50, seed=1)
    x = _bow(n)
    kwargs = dict(
        num_blocks=2,
        diffusion_steps=3,
        dropout=0.3,
        diffusion_dropout=0.2,
        input_projection=input_projection,
    )
    torch.manual_seed(0)
    plain = DiffResNet(16, 16, 3, **kwargs)
    torch.manual_seed(0)
    zero = DiffResNet(16, 16, 3, input_dropout=0.0, **kwargs)
    for mode in (False, True):
        torch.manual_seed(5)
        expected = plain.train(mode)(x, edge_index)
        torch.manual_seed(5)
        assert torch.equal(zero.train(mode)(x, edge_index), expected)
    assert DiffResNet.reference(16, 3).input_dropout == 0.0


@pytest.mark.parametrize("input_projection", [True, False])
@pytest.mark.parametrize("layout", ["dense", "csr", "coo"])
def test_input_dropout_acts_on_the_input_only(input_projection, layout):
    edge_index, _, n = random_graph(n=20, e=50, seed=2)
    x = _bow(n)
    inp = {"dense": x, "csr": x.to_sparse_csr(), "coo": x.to_sparse()}[layout]
    torch.manual_seed(0)
    model = DiffResNet(
        16,
        16,
        3,
        diffusion_steps=3,
        dropout=0.0,  # the only dropout is on the input
        diffusion_dropout=0.0,
        input_projection=input_projection,
        input_dropout=0.5,
    )
    expected_eval = model.eval()(x, edge_index)
    torch.testing.assert_close(model(inp, edge_index), expected_eval)
    torch.manual_seed(3)
    out = model.train()(inp, edge_index)
    torch.manual_seed(3)
    dropped = sparse_dropout(inp, 0.5)
    assert dropped.layout == inp.layout
    dropped = dropped.to_dense()
    torch.testing.assert_close(out, model.eval()(dropped, edge_index))
    # only stored entries change: zeroed or scaled by 1 / (1 - p)
    kept = dropped != 0
    assert torch.equal(kept & (x == 0), torch.zeros_like(kept))
    torch.testing.assert_close(dropped[kept], 2 * x[kept])
    assert not torch.equal(out, expected_eval)


def test_sparse_dropout_keeps_the_dense_distribution():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(400, 300, generator=gen)
    x = x * (x > 0.8)
    torch.manual_seed(0)
    for p in (0.25, 0.6):
        dense = F.dropout(x, p, True)
        sparse = sparse_dropout(x.to_sparse_csr(), p).to_dense()
        nnz = (x != 0).sum()
        for y in (dense, sparse):
            frac = ((y != 0).sum() / nnz).item()
            assert abs(frac - (1 - p)) < 0.02
            torch.testing.assert_close(y[y != 0], x[y != 0] / (1 - p))
    assert sparse_dropout(x.to_sparse_csr(), 0.5, training=False).layout == (
        torch.sparse_csr
    )


def test_bad_input_dropout():
    for p in (1.0, -0.1):
        with pytest.raises(ValueError, match="'input_dropout' must be in"):
            DiffResNet(4, 8, 2, input_dropout=p)
    with pytest.raises(ValueError, match="must be in"):
        sparse_dropout(torch.eye(2).to_sparse_csr(), 1.0)


def test_diffusion_time_sets_the_step_to_time_over_steps():
    import pytest
    import torch

    from diffresnet_pyg.nn import DiffResNet

    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    for steps in (2, 4, 8):
        torch.manual_seed(1)
        by_time = DiffResNet(4, 8, 2, diffusion_steps=steps, diffusion_time=2.0)
        torch.manual_seed(1)
        by_step = DiffResNet(4, 8, 2, diffusion_steps=steps, step_size=2.0 / steps)
        assert by_time.convs[0].step_size == pytest.approx(2.0 / steps)
        by_time.eval(), by_step.eval()
        torch.testing.assert_close(by_time(x, edge_index), by_step(x, edge_index))
    with pytest.raises(ValueError, match="not both"):
        DiffResNet(4, 8, 2, step_size=0.5, diffusion_time=2.0)
    with pytest.raises(ValueError, match="diffusion_steps' >= 1"):
        DiffResNet(4, 8, 2, diffusion_steps=0, diffusion_time=2.0)
    with pytest.raises(ValueError, match="number > 0"):
        DiffResNet(4, 8, 2, diffusion_time=-1.0)

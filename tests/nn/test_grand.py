import math

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from diffresnet_pyg.nn import GRAND
from diffresnet_pyg.nn.models.grand import (
    GRANDAttention,
    GRANDODEFunc,
    propagate,
    squareplus_normalize,
)

# Directed on purpose (0 -> 3 has no reverse edge), one existing self loop
# (2 -> 2), and node 5 without any edge.
EDGE_INDEX = torch.tensor(
    [
        [0, 1, 1, 2, 2, 3, 0, 4, 3, 2],
        [1, 0, 2, 1, 3, 2, 3, 3, 4, 2],
    ]
)
NUM_NODES = 6


@pytest.fixture(autouse=True)
def _single_thread():
    # Tiny tensors: thread start-up would dominate (and be erratic on a
    # busy CPU).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def randomize_attention(att: GRANDAttention, seed: int = 0, std: float = 0.7):
    """Replace the near-uniform reference init by random query/key weights."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for lin in (att.query, att.key):
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=g) * std)
            lin.bias.copy_(torch.randn(lin.bias.shape, generator=g) * std)


def dense_adjacency_mask(edge_index, n, self_loops):
    mask = torch.zeros(n, n, dtype=torch.bool)
    mask[edge_index[1], edge_index[0]] = True  # row = target, column = source
    if self_loops:
        mask |= torch.eye(n, dtype=torch.bool)
    return mask


def dense_attention(att, x, edge_index, self_loops=True, norm="softmax"):
    """Independent dense multi-head attention, averaged over heads."""
    n = x.size(0)
    h, d = att.heads, att.attention_channels // att.heads
    q = (x @ att.query.weight.T + att.query.bias).view(n, h, d).transpose(0, 1)
    k = (x @ att.key.weight.T + att.key.bias).view(n, h, d).transpose(0, 1)
    scores = q @ k.transpose(1, 2) / math.sqrt(d)  # [h, i, j]
    mask = dense_adjacency_mask(edge_index, n, self_loops)
    if norm == "softmax":
        scores = scores.masked_fill(~mask, float("-inf"))
        a = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    else:
        z = scores - scores[:, mask].max()
        s = 0.5 * (z + torch.sqrt(z * z + 4.0)) * mask
        a = s / (s.sum(-1, keepdim=True) + 1e-16)
    return a.mean(0)


def to_dense(edge_index, weight, n):
    a = torch.zeros(n, n, dtype=weight.dtype)
    a.index_put_((edge_index[1], edge_index[0]), weight, accumulate=True)
    return a


def with_loops(edge_index=EDGE_INDEX, n=NUM_NODES):
    from torch_geometric.utils import add_remaining_self_loops

    return add_remaining_self_loops(edge_index, num_nodes=n)[0]


def small_model(**kwargs):
    defaults = dict(heads=2, attention_channels=6, input_dropout=0.0, dropout=0.0)
    model = GRAND(4, 6, 3, **{**defaults, **kwargs}).double()
    randomize_attention(model.func.attention)
    with torch.no_grad():
        model.func.alpha_train.fill_(0.3)
        model.func.beta_train.fill_(0.7)
    return model


# (1) attention ---------------------------------------------------------------


@pytest.mark.parametrize("norm", ["softmax", "squareplus"])
def test_attention_row_stochastic_and_matches_dense(norm):
    torch.manual_seed(0)
    att = GRANDAttention(5, heads=3, attention_channels=6, normalization=norm)
    att = att.double()
    randomize_attention(att)
    x = torch.randn(NUM_NODES, 5, dtype=torch.float64)
    edge_index = with_loops()
    weights = att(x, edge_index)
    assert weights.shape == (edge_index.size(1), 3)
    assert (weights > 0).all()
    # every head is row-stochastic over each node's incoming edges + self loop
    for head in range(3):
        rows = to_dense(edge_index, weights[:, head], NUM_NODES).sum(1)
        torch.testing.assert_close(rows, torch.ones(NUM_NODES, dtype=torch.float64))
    dense = to_dense(edge_index, weights.mean(-1), NUM_NODES)
    expected = dense_attention(att, x, EDGE_INDEX, norm=norm)
    torch.testing.assert_close(dense, expected, rtol=1e-12, atol=1e-12)


def test_reference_init_gives_near_uniform_attention():
    att = GRANDAttention(5, heads=2, attention_channels=4)
    x = torch.randn(NUM_NODES, 5)
    edge_index = with_loops()
    a = to_dense(edge_index, att(x, edge_index).mean(-1), NUM_NODES)
    mask = dense_adjacency_mask(EDGE_INDEX, NUM_NODES, True).float()
    rw = mask / mask.sum(1, keepdim=True)  # random-walk normalized, self loops
    torch.testing.assert_close(a, rw, rtol=0, atol=1e-3)
    assert torch.equal(att.query.weight, torch.full_like(att.query.weight, 1e-5))


def test_propagate_row_is_target():
    edge_index = torch.tensor([[0], [1]])  # 0 -> 1
    x = torch.tensor([[2.0], [5.0]])
    out = propagate(edge_index, torch.tensor([1.0]), x)
    torch.testing.assert_close(out, torch.tensor([[0.0], [2.0]]))


def test_squareplus_normalize_groups_sum_to_one():
    src = torch.randn(7, 2)
    index = torch.tensor([0, 0, 1, 1, 1, 3, 3])
    out = squareplus_normalize(src, index, 4)
    sums = torch.zeros(4, 2).index_add_(0, index, out)
    torch.testing.assert_close(sums[[0, 1, 3]], torch.ones(3, 2))


# (2) right-hand side ---------------------------------------------------------


@pytest.mark.parametrize("add_source", [True, False])
@pytest.mark.parametrize("self_loops", [True, False])
def test_rhs_matches_dense(add_source, self_loops):
    torch.manual_seed(1)
    func = GRANDODEFunc(4, heads=2, attention_channels=4, add_source=add_source)
    func = func.double()
    randomize_attention(func.attention)
    with torch.no_grad():
        func.alpha_train.fill_(-0.4)
        func.beta_train.fill_(1.3)
    x0 = torch.randn(NUM_NODES, 4, dtype=torch.float64)
    x = torch.randn(NUM_NODES, 4, dtype=torch.float64)
    edge_index = with_loops() if self_loops else EDGE_INDEX
    func.set_state(x0, edge_index)
    out = func(torch.tensor(0.0), x)
    a = dense_attention(func.attention, x0, EDGE_INDEX, self_loops=self_loops)
    expected = torch.sigmoid(torch.tensor(-0.4, dtype=torch.float64)) * (a @ x - x)
    if add_source:
        expected = expected + 1.3 * x0
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    assert func.nfe == 1
    if not self_loops:  # node 5 has no incoming edge: pure decay
        torch.testing.assert_close(out[5], expected[5])
        assert a[5].abs().sum() == 0


def test_rhs_needs_state():
    func = GRANDODEFunc(4, heads=2, attention_channels=4)
    with pytest.raises(RuntimeError, match="set_state"):
        func(torch.tensor(0.0), torch.randn(3, 4))


# (3) integration against the matrix exponential ------------------------------


def dense_solution(model, x0, with_source):
    """exp(T M) x0 (+ the source term) for M = sigmoid(alpha) (A - I)."""
    func, t = model.func, model.time
    a = dense_attention(func.attention, x0, EDGE_INDEX)
    n = x0.size(0)
    eye = torch.eye(n, dtype=torch.float64)
    m = func.alpha.detach() * (a - eye)
    if not with_source:
        return torch.linalg.matrix_exp(m * t) @ x0
    # d/dt [X; C] = [[M, beta I], [0, 0]] [X; C] with C = X(0) constant
    block = torch.zeros(2 * n, 2 * n, dtype=torch.float64)
    block[:n, :n] = m
    block[:n, n:] = func.beta_train.detach() * eye
    return (torch.linalg.matrix_exp(block * t) @ torch.cat([x0, x0]))[:n]


@pytest.mark.parametrize("add_source", [False, True])
def test_dopri5_matches_matrix_exponential(add_source):
    model = small_model(
        time=1.5, rtol=1e-11, atol=1e-12, add_source=add_source, max_nfe=None
    )
    x0 = torch.randn(NUM_NODES, 6, dtype=torch.float64)
    with torch.no_grad():
        out = model.integrate(x0, EDGE_INDEX)
    expected = dense_solution(model, x0, add_source)
    torch.testing.assert_close(out, expected, rtol=1e-9, atol=1e-9)
    assert model.nfe > 6


def test_rk4_close_to_matrix_exponential():
    model = small_model(time=1.5, method="rk4", step_size=0.05, add_source=False)
    x0 = torch.randn(NUM_NODES, 6, dtype=torch.float64)
    with torch.no_grad():
        out = model.integrate(x0, EDGE_INDEX)
    expected = dense_solution(model, x0, False)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-7)
    assert model.nfe == 4 * 30  # 30 steps, 4 stages each


# (4) gradients ---------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(nonlinear=False, add_source=False),
        dict(nonlinear=True, add_source=True, detach_source=False),
    ],
)
def test_gradcheck_whole_model(kwargs):
    model = small_model(time=1.0, method="rk4", step_size=0.5, **kwargs).eval()
    x = torch.randn(NUM_NODES, 4, dtype=torch.float64, requires_grad=True)
    names = [name for name, _ in model.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in model.parameters()]

    def f(x, *ps):
        params = dict(zip(names, ps, strict=True))
        return functional_call(model, params, (x, EDGE_INDEX))

    assert torch.autograd.gradcheck(f, (x, *params))


def test_detached_source_stops_encoder_gradient_through_source():
    x = torch.randn(NUM_NODES, 4, dtype=torch.float64)
    grads = {}
    for detach in (True, False):
        torch.manual_seed(0)
        model = small_model(time=1.0, method="rk4", step_size=0.5, detach_source=detach)
        model(x, EDGE_INDEX).sum().backward()
        grads[detach] = model.lin1.weight.grad.clone()
    assert not torch.allclose(grads[True], grads[False])


# (5) GRAND-nl ----------------------------------------------------------------


def test_nonlinear_differs_and_matches_dense_rhs():
    torch.manual_seed(2)
    x0 = torch.randn(NUM_NODES, 6, dtype=torch.float64)
    x = torch.randn(NUM_NODES, 6, dtype=torch.float64)
    edge_index = with_loops()
    outs = {}
    for nonlinear in (False, True):
        model = small_model(nonlinear=nonlinear)
        model.func.set_state(x0, edge_index)
        outs[nonlinear] = model.func(torch.tensor(0.0), x)
    assert not torch.allclose(outs[False], outs[True])
    func = model.func
    a = dense_attention(func.attention, x, EDGE_INDEX)  # attention at X(t)
    expected = func.alpha * (a @ x - x) + func.beta_train * x0
    torch.testing.assert_close(outs[True], expected.detach(), rtol=1e-12, atol=1e-12)

    x_in = torch.randn(NUM_NODES, 4, dtype=torch.float64)
    lin = small_model(method="rk4", step_size=0.5, time=2.0)
    nonlin = small_model(method="rk4", step_size=0.5, time=2.0, nonlinear=True)
    assert not torch.allclose(lin(x_in, EDGE_INDEX), nonlin(x_in, EDGE_INDEX))


# (6) argument checks ---------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(method="rk45"), "Unknown ODE solver 'method' 'rk45'.*dopri5.*rk4"),
        (dict(time=0.0), "'time' must be a finite number > 0"),
        (dict(time=-1.0), "'time' must be a finite number > 0"),
        (dict(time=float("inf")), "'time' must be a finite number > 0"),
        (dict(input_dropout=1.0), r"'input_dropout' must be in \[0, 1\)"),
        (dict(dropout=-0.1), r"'dropout' must be in \[0, 1\)"),
        (dict(heads=3, attention_channels=8), "must be divisible by 'heads'"),
        (dict(heads=0), "'heads' must be an integer >= 1"),
        (dict(method="rk4"), "fixed-grid solver 'rk4' needs a 'step_size'"),
        (dict(method="euler", step_size=0.0), "'step_size' must be a finite"),
        (dict(rtol=0.0), "'rtol' must be a finite number > 0"),
        (dict(atol=-1.0), "'atol' must be a finite number > 0"),
        (dict(max_nfe=0), "'max_nfe' must be an integer >= 1"),
        (dict(max_num_steps=1.5), "'max_num_steps' must be an integer >= 1"),
        (dict(attention_norm="sparsemax"), "'attention_norm'.*must be one of"),
        (dict(hidden_channels=0), "'hidden_channels' must be an integer >= 1"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = dict(in_channels=4, hidden_channels=8, out_channels=2)
    with pytest.raises(ValueError, match=match):
        GRAND(**{**args, **kwargs})


def test_bad_inputs():
    model = GRAND(4, 8, 2, heads=2, attention_channels=4)
    with pytest.raises(ValueError, match=r"'x' must have shape \[num_nodes, 4\]"):
        model(torch.randn(3, 5), EDGE_INDEX)
    with pytest.raises(ValueError, match="'edge_index' must have shape"):
        model(torch.randn(3, 4), EDGE_INDEX.t())


def test_runaway_solver_is_stopped():
    x = torch.randn(NUM_NODES, 4, dtype=torch.float64)
    model = small_model(max_nfe=5)
    with pytest.raises(RuntimeError, match="max_nfe=5"):
        model(x, EDGE_INDEX)
    model = small_model(rtol=1e-12, atol=1e-12, max_num_steps=2, max_nfe=None)
    with pytest.raises(RuntimeError, match="max_num_steps"):
        model(x, EDGE_INDEX)
    # the stored state is released after a failure
    assert model.func.x0 is None


# (7) training ----------------------------------------------------------------


def two_communities(n=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    edges = []
    for offset in (0, n):
        for i in range(n):  # ring + chords inside each community
            edges += [(offset + i, offset + (i + 1) % n)]
            edges += [(offset + i, offset + (i + 3) % n)]
    edges += [(0, n), (n // 2, n + n // 2)]  # two bridges
    edge_index = torch.tensor(edges).t()
    edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    y = torch.cat([torch.zeros(n), torch.ones(n)]).long()
    x = torch.randn(2 * n, 6, generator=g) + 0.8 * F.one_hot(y, 6).float()
    train = torch.zeros(2 * n, dtype=torch.bool)
    train[torch.randperm(2 * n, generator=g)[:8]] = True
    return x, edge_index, y, train


@pytest.mark.parametrize("nonlinear", [False, True])
def test_training_reduces_loss(nonlinear):
    torch.manual_seed(0)
    x, edge_index, y, train = two_communities()
    model = GRAND(6, 8, 2, time=3.0, heads=2, attention_channels=4, nonlinear=nonlinear)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)

    def eval_loss():
        model.eval()
        with torch.no_grad():
            return F.cross_entropy(model(x, edge_index)[train], y[train]).item()

    before = eval_loss()
    for _ in range(12):
        model.train()
        opt.zero_grad()
        F.cross_entropy(model(x, edge_index)[train], y[train]).backward()
        opt.step()
    assert eval_loss() < 0.8 * before
    assert model.func.alpha_train.grad is not None
    assert model.func.attention.query.weight.grad is not None


# (8) parameters, shapes, inputs ----------------------------------------------


def test_reset_parameters_and_shapes():
    torch.manual_seed(0)
    model = GRAND(5, 8, 3, heads=2, attention_channels=4)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.reset_parameters()
    after = model.state_dict()
    for name in before:
        assert not torch.equal(before[name], after[name]), name
    assert model.func.alpha_train.item() == 0.0
    assert model.func.beta_train.item() == 0.0
    assert torch.equal(model.func.attention.key.weight, torch.full((4, 8), 1e-5))
    out = model(torch.randn(7, 5), torch.tensor([[0, 1, 2], [1, 2, 3]]))
    assert out.shape == (7, 3)
    assert out.isfinite().all()


def test_nfe_is_per_forward():
    model = small_model().eval()
    x = torch.randn(NUM_NODES, 4, dtype=torch.float64)
    model(x, EDGE_INDEX)
    first = model.nfe
    model(x, EDGE_INDEX)
    assert model.nfe == first > 0


def test_sparse_input_matches_dense():
    model = small_model(input_dropout=0.5, method="rk4", step_size=0.5, time=1.0)
    x = torch.rand(NUM_NODES, 4, dtype=torch.float64)
    x = x * (x > 0.5)
    model.eval()
    dense = model(x, EDGE_INDEX)
    for sparse in (x.to_sparse_csr(), x.to_sparse()):
        torch.testing.assert_close(model(sparse, EDGE_INDEX), dense)
    model.train()
    model(x.to_sparse_csr(), EDGE_INDEX).sum().backward()
    assert model.lin1.weight.grad is not None


def test_float32_default_setting_runs():
    torch.manual_seed(0)
    model = GRAND(6, 16, 3, heads=4, attention_channels=8, nonlinear=True)
    out = model(torch.randn(12, 6), torch.randint(0, 12, (2, 30)))
    assert out.shape == (12, 3)
    assert 0 < model.nfe <= 2000


def test_repr():
    model = GRAND(1433, 80, 7)
    assert repr(model) == (
        "GRAND(1433, 80, 7, time=18.2948, method='dopri5', heads=8, nonlinear=False)"
    )
    assert "GRANDAttention(80, heads=8, attention_channels=128" in repr(
        model.func.attention
    )

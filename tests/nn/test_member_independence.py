"""A stacked member's numbers do not depend on the members beside it.

A run's row must depend only on its seeds, not on how many runs share its
batch (``train.batch_members``, the chunking of a resume). Member ``b`` of a
stacked model therefore has to get bit for bit the same outputs and gradients
whether it is stacked with one other member or with many. Reductions over the
nodes of a ``[N, B, F]`` tensor are the trap: summed over ``N`` at once, the
vectorized loop's lanes (and its scalar tail) fall differently for each
``B * F``, so the sums round differently; the bias gradients are reduced per
member instead.
"""

import pytest
import torch

from diffresnet_pyg.nn import DiffResNet
from diffresnet_pyg.nn.batched import BatchedDiffResNet, per_member, stacked_linear
from diffresnet_pyg.nn.batched.gnn import stack_baselines
from diffresnet_pyg.nn.models.baselines import BUILDERS, FAMILIES

N, F_IN, HIDDEN, C = 2500, 20, 128, 7  # sizes at which the rounding differed


@pytest.fixture(scope="module")
def graph():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(N, F_IN, generator=gen)
    edge_index = torch.randint(0, N, (2, 4 * N), generator=gen)
    edge_index = torch.cat([edge_index, edge_index.flip(0)], 1)
    weights = torch.randn(N, 1, C, generator=gen)  # the same for every member
    return x, edge_index, weights


def build(family, seeds):
    modules = []
    for seed in seeds:
        torch.manual_seed(100 + seed)
        if family == "diffresnet":
            modules.append(DiffResNet(F_IN, HIDDEN, C, num_blocks=1, diffusion_steps=2))
        else:
            modules.append(BUILDERS[family](F_IN, C, hidden_channels=HIDDEN))
    if family == "diffresnet":
        return BatchedDiffResNet(modules)
    return stack_baselines(modules)


def members_0_and_1(family, seeds, graph):
    """Outputs and gradients of the members of seeds 0 and 1 in a stack."""
    x, edge_index, weights = graph
    model = build(family, seeds).eval()  # no dropout: only arithmetic
    out = model(x, edge_index)
    (out * weights).sum().backward()
    at = [seeds.index(0), seeds.index(1)]
    grads = {n: p.grad[at].clone() for n, p in model.named_parameters()}
    return out[:, at].detach(), grads


@pytest.mark.parametrize("family", ["diffresnet", *FAMILIES])
def test_a_members_numbers_do_not_depend_on_its_stack(graph, family):
    out, grads = members_0_and_1(family, [0, 1], graph)
    # more members after them, then before them (other positions, lanes)
    for seeds in ([0, 1, 2, 3, 4], [5, 2, 0, 1, 3, 4, 6, 7, 8, 9]):
        other_out, other_grads = members_0_and_1(family, seeds, graph)
        assert torch.equal(other_out, out), seeds
        for name, grad in other_grads.items():
            assert torch.equal(grad, grads[name]), (name, seeds)


def test_stacked_linear_does_not_depend_on_the_members_position():
    # torch.bmm rounded member 2 of 10 differently from member 0 of 2 at
    # these sizes (the output layer of Diff-ResNet on Cora)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2485, 10, 128, generator=gen).relu().requires_grad_()
    weight = torch.randn(10, 128, 7, generator=gen).requires_grad_()
    grad = torch.randn(2485, 10, 7, generator=gen)
    out = stacked_linear(x, weight, None)
    out.backward(grad)
    x2 = x.detach()[:, 2:4].clone().requires_grad_()
    weight2 = weight.detach()[2:4].clone().requires_grad_()
    out2 = stacked_linear(x2, weight2, None)
    out2.backward(grad[:, 2:4])
    assert torch.equal(out2, out[:, 2:4])
    assert torch.equal(x2.grad, x.grad[:, 2:4])
    assert torch.equal(weight2.grad, weight.grad[2:4])


def test_per_member_is_a_broadcast_whose_gradient_sums_the_rows():
    gen = torch.Generator().manual_seed(1)
    param = torch.randn(3, 2, 4, dtype=torch.float64, generator=gen)
    param.requires_grad_()
    grad = torch.randn(5, 3, 2, 4, dtype=torch.float64, generator=gen)
    out = per_member(param, 5)
    assert out.shape == (5, 3, 2, 4)
    assert torch.equal(out, param.detach().expand(5, 3, 2, 4))
    out.backward(grad)
    assert torch.allclose(param.grad, grad.sum(0))
    h = torch.randn(5, 3, 2, 4, dtype=torch.float64, generator=gen)
    h.requires_grad_()

    def f(h, p):
        return (h * per_member(p, 5)).sin()

    assert torch.autograd.gradcheck(f, (h, param))

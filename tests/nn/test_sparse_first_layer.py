"""The first linear layer on sparse input: values, gradients, no dense copies."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from diffresnet_pyg.nn import DiffResNet
from diffresnet_pyg.nn.batched.diff_resnet import (
    input_linear,
    member_input_dropout,
    shared_input_linear,
)
from diffresnet_pyg.nn.cache import GraphCache
from diffresnet_pyg.nn.models.diff_resnet import linear
from diffresnet_pyg.nn.sparse import (
    quiet_sparse_warnings,
    sparse_matmul,
    sparse_transpose,
)

N, F_IN, F_OUT = 23, 17, 5  # all different: a [N, F_IN] tensor is a copy of X


def bag_of_words(dtype=torch.float64, seed=0):
    """Sparse-ish [N, F_IN] features with an empty row and an empty column."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(N, F_IN, generator=g, dtype=dtype)
    x = torch.where(x < 0.2, torch.randn(N, F_IN, generator=g, dtype=dtype), 0.0)
    x[3] = 0.0
    x[:, 7] = 0.0
    return x


def to_layout(x, layout):
    with quiet_sparse_warnings():
        return x.to_sparse_csr() if layout == "csr" else x.to_sparse_coo()


#: Products of the sparse input with a dense matrix (their outputs can have the
#: input's shape when the layer keeps the width).
_PRODUCTS = {
    torch.ops.aten.addmm.default,
    torch.ops.aten.mm.default,
    torch.ops.aten._sparse_mm.default,
    torch.ops.aten._sparse_addmm.default,
}


def _is_sparse(t):
    return isinstance(t, torch.Tensor) and t.layout != torch.strided


class DenseCopies(TorchDispatchMode):
    """Records every aten op that returns a dense tensor of a forbidden shape.

    With ``from_sparse=True`` only ops with a sparse argument of a forbidden
    shape count, sparse-dense products and the residual ``dense + sparse``
    excepted: a densification of the sparse input, whatever else the model
    computes at that shape.
    """

    def __init__(self, shapes, from_sparse=False):
        super().__init__()
        self.shapes = {tuple(s) for s in shapes}
        self.from_sparse = from_sparse
        self.hits = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if self.from_sparse:
            flat = tree_flatten((args, kwargs))[0]
            if not any(_is_sparse(a) and tuple(a.shape) in self.shapes for a in flat):
                return out
            if func in _PRODUCTS:
                return out  # x W^T + b: the layer's output, not a copy of x
            if func is torch.ops.aten.add.Tensor and not _is_sparse(args[0]):
                return out  # out + x: the residual, not a copy of x
        for t in tree_flatten(out)[0]:
            if (
                isinstance(t, torch.Tensor)
                and t.layout == torch.strided
                and tuple(t.shape) in self.shapes
            ):
                self.hits.append((str(func), tuple(t.shape)))
        return out


@pytest.mark.parametrize("layout", ["csr", "coo"])
@pytest.mark.parametrize("bias", [True, False])
def test_gradcheck_weight_and_bias(layout, bias):
    x = to_layout(bag_of_words(), layout)
    w = torch.randn(F_OUT, F_IN, dtype=torch.float64, requires_grad=True)
    b = torch.randn(F_OUT, dtype=torch.float64, requires_grad=True)
    inputs = (w, b) if bias else (w,)
    assert torch.autograd.gradcheck(
        lambda w, b=None: sparse_matmul(x, w.t(), b), inputs
    )


@pytest.mark.parametrize("layout", ["csr", "coo"])
def test_matches_dense_linear(layout):
    dense = bag_of_words(torch.float32)
    lin = torch.nn.Linear(F_IN, F_OUT)
    grad = torch.randn(N, F_OUT)
    want = F.linear(dense, lin.weight, lin.bias)
    dw, db = torch.autograd.grad(want, (lin.weight, lin.bias), grad)
    got = linear(to_layout(dense, layout), lin)
    gw, gb = torch.autograd.grad(got, (lin.weight, lin.bias), grad)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(gw, dw)
    torch.testing.assert_close(gb, db)


def test_weight_gradient_accumulates_and_has_the_weight_layout():
    dense = bag_of_words(torch.float32)
    x = to_layout(dense, "csr")
    lin = torch.nn.Linear(F_IN, F_OUT)
    for _ in range(2):
        linear(x, lin).sum().backward()
    torch.testing.assert_close(lin.weight.grad, 2 * dense.sum(0).expand(F_OUT, -1))
    assert lin.weight.grad.stride() == lin.weight.stride()


def test_transpose_is_cached_per_input():
    x = to_layout(bag_of_words(), "csr")
    xt = sparse_transpose(x)
    assert xt.layout == torch.sparse_coo and xt.is_coalesced()
    assert torch.equal(xt.to_dense(), x.to_dense().t())
    assert sparse_transpose(x) is xt
    other = to_layout(bag_of_words(seed=1), "csr")
    assert sparse_transpose(other) is not xt


@pytest.mark.parametrize("layout", ["csr", "coo"])
def test_first_layer_backward_makes_no_dense_copy_of_x(layout):
    x = to_layout(bag_of_words(torch.float32), layout)
    lin = torch.nn.Linear(F_IN, F_OUT)
    with DenseCopies([(N, F_IN), (F_IN, N)]) as mode:
        linear(x, lin).square().sum().backward()
    assert mode.hits == []
    with DenseCopies([(N, F_IN)]) as control:  # the check sees a densification
        x.to_dense()
    assert control.hits


def test_model_epoch_makes_no_dense_copy_of_x():
    edge_index = torch.randint(
        0, N, (2, 60), generator=torch.Generator().manual_seed(1)
    )
    x = to_layout(bag_of_words(torch.float32), "csr")
    torch.manual_seed(0)
    model = DiffResNet(F_IN, 8, F_OUT, diffusion_steps=2, input_dropout=0.3)
    with DenseCopies([(N, F_IN), (F_IN, N)]) as mode:
        model(x, edge_index).sum().backward()
        model.eval()
        with torch.no_grad():
            model(x, edge_index)
    assert mode.hits == []


def test_reference_model_epoch_makes_no_dense_copy_of_x():
    # hidden width == F_in: every activation is [N, F_in]; none is a copy of x
    # (the residual x + ReLU(W x + b) adds the sparse x to a dense tensor)
    edge_index = torch.randint(
        0, N, (2, 60), generator=torch.Generator().manual_seed(1)
    )
    dense = bag_of_words(torch.float32)
    x = to_layout(dense, "csr")
    torch.manual_seed(0)
    model = DiffResNet.reference(F_IN, F_OUT, layer_num=2)
    torch.manual_seed(1)
    with DenseCopies([(N, F_IN), (F_IN, N)], from_sparse=True) as mode:
        out = model(x, edge_index)
        out.sum().backward()
    assert mode.hits == []
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    torch.manual_seed(1)
    want = model(dense, edge_index)
    want.sum().backward()
    torch.testing.assert_close(out, want)
    for got, p in zip(grads, model.parameters(), strict=True):
        torch.testing.assert_close(got, p.grad)


B = 3  # members of the batched first layer


def batched_reference(dense, weight, bias):
    """``Y[:, b] = X W_b + b_b`` (dense ``X``)."""
    return torch.einsum("nf,bfk->nbk", dense, weight) + bias


def batched_reference_members(dense, weight, bias):
    """``Y[:, b] = X_b W_b + b_b`` (dense ``[N, B, F]`` inputs)."""
    return torch.einsum("nbf,bfk->nbk", dense, weight) + bias


@pytest.mark.parametrize("layout", ["csr", "coo"])
def test_batched_first_layer_gradcheck(layout):
    x = to_layout(bag_of_words(), layout)
    w = torch.randn(B, F_IN, F_OUT, dtype=torch.float64, requires_grad=True)
    b = torch.randn(B, F_OUT, dtype=torch.float64, requires_grad=True)
    cache = GraphCache()

    def dropped(w, b):
        torch.manual_seed(0)  # the same dropout masks on every evaluation
        return input_linear(x, w, b, 0.3, True, cache)

    assert torch.autograd.gradcheck(lambda w, b: shared_input_linear(x, w, b), (w, b))
    assert torch.autograd.gradcheck(dropped, (w, b))


def test_batched_first_layer_matches_dense():
    dense = bag_of_words(torch.float32)
    x = to_layout(dense, "csr")
    w = torch.randn(B, F_IN, F_OUT, requires_grad=True)
    b = torch.randn(B, F_OUT, requires_grad=True)
    grad = torch.randn(N, B, F_OUT)
    want = batched_reference(dense, w, b)
    dw, db = torch.autograd.grad(want, (w, b), grad)
    got = shared_input_linear(x, w, b)
    gw, gb = torch.autograd.grad(got, (w, b), grad)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(gw, dw)
    torch.testing.assert_close(gb, db)
    # with input dropout: member b's gradient is G_b^T dropout_b(X)
    torch.manual_seed(0)
    got = input_linear(x, w, b, 0.5, True, GraphCache())
    gw, gb = torch.autograd.grad(got, (w, b), grad)
    torch.testing.assert_close(gb, db)
    torch.manual_seed(0)  # the same draw gives each member's dropped X
    dropped = member_input_dropout(x, B, 0.5, GraphCache())
    torch.testing.assert_close(got, batched_reference_members(dropped, w, b))
    torch.testing.assert_close(gw, torch.einsum("nbf,nbk->bfk", dropped, grad))


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_batched_first_layer_makes_no_dense_copy_of_x(p):
    x = to_layout(bag_of_words(torch.float32), "csr")
    w = torch.randn(B, F_IN, F_OUT, requires_grad=True)
    b = torch.randn(B, F_OUT, requires_grad=True)
    shapes = [(N, F_IN), (F_IN, N), (N, B, F_IN), (N * B, B * F_IN), (B * F_IN, N * B)]
    with DenseCopies(shapes) as mode:
        input_linear(x, w, b, p, True, GraphCache()).square().sum().backward()
    assert mode.hits == []

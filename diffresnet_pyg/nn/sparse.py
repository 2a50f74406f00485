"""Products with constant sparse matrices (bag-of-words features, graph operators)."""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.utils import to_torch_csr_tensor

from diffresnet_pyg.nn.cache import GraphCache

#: The sparse layouts accepted as constant inputs.
SPARSE_LAYOUTS = (torch.sparse_coo, torch.sparse_csr)

#: PyTorch's sparse warnings, each issued once per process: ``"beta"`` when the
#: first compressed (CSR/CSC) tensor is built, ``"invariants"`` when the first
#: sparse tensor is built without an explicit ``check_invariants``.
SPARSE_WARNINGS = {
    "beta": "Sparse CSR tensor support is in beta state",
    "invariants": "Sparse invariant checks are implicitly disabled",
}

#: The warnings of :data:`SPARSE_WARNINGS` already issued (and silenced).
_ISSUED: set[str] = set()


@contextlib.contextmanager
def quiet_sparse_warnings(unchecked: bool = False) -> Iterator[None]:
    """Silence PyTorch's sparse warnings about the library's own sparse tensors.

    Wraps exactly a statement that builds a compressed sparse tensor, with
    ``unchecked=True`` where it also builds one without an explicit
    ``check_invariants`` (PyG's ``to_torch_csr_tensor``): the warnings of
    :data:`SPARSE_WARNINGS` are ignored there and nowhere else, by message.
    Both come once per process, so once such a statement has run, a later
    block has nothing to silence and skips :func:`warnings.catch_warnings`
    (which would reset Python's memory of the warnings already shown, on
    every call of a training loop).

    Args:
        unchecked (bool, optional): The block builds a sparse tensor without
            an explicit ``check_invariants``. (default: :obj:`False`)

    Example:
        >>> with quiet_sparse_warnings():
        ...     x = torch.eye(2).to_sparse_csr()
        >>> x.layout
        torch.sparse_csr
    """
    kinds = ("beta", "invariants") if unchecked else ("beta",)
    if _ISSUED.issuperset(kinds):
        yield
        return
    with warnings.catch_warnings():
        for message in SPARSE_WARNINGS.values():
            warnings.filterwarnings(
                "ignore", message=re.escape(message), category=UserWarning
            )
        yield
    _ISSUED.update(kinds)


def is_sparse(x: Tensor) -> bool:
    """Whether ``x`` is a torch COO or CSR tensor."""
    return x.layout in SPARSE_LAYOUTS


#: Transposes :math:`X^T` (coalesced COO) of the sparse inputs of
#: :func:`sparse_matmul`, keyed on the input tensor: features are constant
#: across epochs, so each backward reuses the one built by the first.
_TRANSPOSES = GraphCache(max_entries=4)


def _transpose_coo(x: Tensor) -> Tensor:
    """``x.T`` of a CSR ``x`` as a coalesced COO tensor (entries sorted by row)."""
    crow, col = x.crow_indices(), x.col_indices()
    rows = torch.repeat_interleave(
        torch.arange(x.size(0), device=x.device, dtype=crow.dtype), crow.diff()
    )
    # A stable sort on the columns keeps the rows sorted within each column.
    perm = torch.argsort(col, stable=True)
    index = torch.stack([col[perm], rows[perm]]).long()
    size = (x.size(1), x.size(0))
    return torch.sparse_coo_tensor(
        index, x.values()[perm], size, is_coalesced=True, check_invariants=False
    )


def sparse_transpose(x: Tensor) -> Tensor:
    r""":math:`X^T` of a sparse CSR ``x`` for weight gradients, cached on ``x``.

    Returned as a coalesced COO tensor: PyTorch's CPU kernel for COO-dense
    products is about twice as fast as its CSR one (MKL) for
    :math:`X^T G` with bag-of-words :math:`X` (``benchmarks/sparse_first_layer.py``).
    Built once per input tensor (a transposition and a sort of the stored
    entries) and cached until ``x`` dies or changes (see
    :class:`~diffresnet_pyg.nn.cache.GraphCache`).

    Args:
        x (torch.Tensor): Sparse CSR ``[N, F]`` matrix.

    Returns:
        torch.Tensor: Coalesced COO ``[F, N]`` matrix with ``x``'s values.
    """
    return _TRANSPOSES.get(
        (x,), (x.dtype, x.device, tuple(x.shape)), lambda: _transpose_coo(x)
    )


class _SparseAddmm(torch.autograd.Function):
    """``bias + x @ weight`` for a constant sparse CSR ``x`` (see sparse_matmul)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.x = x
        ctx.has_bias = bias is not None
        if bias is None:
            return torch.sparse.mm(x, weight)
        return torch.addmm(bias, x, weight)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor | None, Tensor | None]:
        grad_weight = grad_bias = None
        if ctx.needs_input_grad[1]:
            grad_weight = torch.sparse.mm(sparse_transpose(ctx.x), grad.contiguous())
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad.sum(0)
        return None, grad_weight, grad_bias


def sparse_matmul(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    r"""``x @ weight + bias`` for a constant sparse (COO/CSR) ``x``.

    For the first linear layer of a model with sparse input features
    :math:`\mathbf{X} \in \mathbb{R}^{N \times F_{in}}` (pass
    ``lin.weight.t()`` as ``weight``):

    .. math::
        \mathbf{Y} = \mathbf{X} \mathbf{W} + \mathbf{b}, \qquad
        \frac{\partial \mathcal{L}}{\partial \mathbf{W}}
            = \mathbf{X}^T \mathbf{G}, \qquad
        \frac{\partial \mathcal{L}}{\partial \mathbf{b}}
            = \mathbf{1}^T \mathbf{G}

    with :math:`\mathbf{G} = \partial \mathcal{L} / \partial \mathbf{Y}`.
    Both products are sparse-dense (CSR :math:`\mathbf{X}` forward, the
    cached COO :math:`\mathbf{X}^T` of :func:`sparse_transpose` backward), so
    each costs :math:`O(\mathrm{nnz}(\mathbf{X}) \cdot F_{out})` instead of
    :math:`O(N F_{in} F_{out})`, and :math:`\mathbf{X}` is never densified.
    Gradients flow to ``weight`` and ``bias`` only (``x`` is a constant).

    Args:
        x (torch.Tensor): Sparse ``[N, F_in]`` matrix.
        weight (torch.Tensor): Dense ``[F_in, F_out]`` matrix.
        bias (torch.Tensor, optional): ``[F_out]``. (default: :obj:`None`)

    Example:
        >>> x = torch.eye(3).to_sparse_csr()
        >>> sparse_matmul(x, torch.ones(3, 2)).sum().item()
        6.0
        >>> sparse_matmul(x, torch.ones(3, 2), torch.ones(2)).sum().item()
        12.0
    """
    if x.layout == torch.sparse_coo:
        with quiet_sparse_warnings():
            x = x.to_sparse_csr()
    return _SparseAddmm.apply(x, weight, bias)


class _ConstantSpmm(torch.autograd.Function):
    """``adj @ h`` for a constant sparse CSR ``adj`` (its transpose is given)."""

    @staticmethod
    def forward(ctx: Any, adj: Tensor, adj_t: Tensor, h: Tensor) -> Tensor:
        ctx.adj_t = adj_t
        return torch.sparse.mm(adj, h)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, None, Tensor]:
        return None, None, torch.sparse.mm(ctx.adj_t, grad.contiguous())


def constant_spmm(operator: tuple[Tensor, Tensor], h: Tensor) -> Tensor:
    r""":math:`A H` for a constant sparse :math:`A`, with :math:`A^T` given.

    .. math::
        Y = A H, \qquad \frac{\partial \mathcal{L}}{\partial H} = A^T G

    with :math:`G = \partial \mathcal{L} / \partial Y`. ``torch.sparse.mm``
    alone would transpose :math:`A` on every backward; here the transpose of
    :func:`csr_with_transpose` (built once per graph) is applied. No gradient
    flows to :math:`A`.

    Args:
        operator (tuple[torch.Tensor, torch.Tensor]): :math:`A` and
            :math:`A^T`, sparse CSR ``[N, M]`` and ``[M, N]``.
        h (torch.Tensor): Dense ``[M, C]`` matrix.

    Returns:
        torch.Tensor: ``[N, C]``.

    Example:
        >>> adj, adj_t = csr_with_transpose(
        ...     torch.tensor([1]), torch.tensor([0]), torch.tensor([2.0]), 2
        ... )
        >>> constant_spmm((adj, adj_t), torch.tensor([[1.0], [5.0]])).flatten()
        tensor([0., 2.])
    """
    adj, adj_t = operator
    return _ConstantSpmm.apply(adj, adj_t, h.contiguous())


def sparse_dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    r"""Dropout on the stored values of a sparse (COO/CSR) ``x``.

    Each stored value is zeroed with probability ``p`` and the others are
    scaled by :math:`1 / (1 - p)`, as :func:`torch.nn.functional.dropout` does
    for a dense tensor (whose implicit zeros stay zero anyway). The sparsity
    pattern and the layout are kept (a COO ``x`` is coalesced first); nothing
    is densified. The random numbers are drawn over the values in row-major
    order, one per stored entry. Dense ``x`` gets plain
    :func:`~torch.nn.functional.dropout`.

    Args:
        x (torch.Tensor): Dense or sparse (COO/CSR) tensor.
        p (float): Drop probability in ``[0, 1)``.
        training (bool, optional): Apply dropout (else return ``x``).
            (default: :obj:`True`)

    Example:
        >>> x = torch.eye(3).to_sparse_csr()
        >>> _ = torch.manual_seed(0)
        >>> y = sparse_dropout(x, 0.5)
        >>> y.layout, torch.equal(y.col_indices(), x.col_indices())
        (torch.sparse_csr, True)
        >>> sorted(set(y.values().tolist()) - {0.0, 2.0})
        []
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"Dropout probability must be in [0, 1), got {p}")
    if not training or p == 0.0:
        return x
    if not is_sparse(x):
        return F.dropout(x, p, True)
    if x.layout == torch.sparse_csr:
        values = F.dropout(x.values(), p, True)
        with quiet_sparse_warnings():
            return torch.sparse_csr_tensor(
                x.crow_indices(),
                x.col_indices(),
                values,
                x.shape,
                check_invariants=False,
            )
    x = x.coalesce()
    return torch.sparse_coo_tensor(
        x.indices(),
        F.dropout(x.values(), p, True),
        x.shape,
        is_coalesced=True,
        check_invariants=False,
    )


def csr_with_transpose(
    row: Tensor, col: Tensor, value: Tensor, num_nodes: int
) -> tuple[Tensor, Tensor]:
    r"""The ``[N, N]`` CSR matrix ``A[row, col] = value`` and its transpose.

    Duplicate entries are summed once (PyG's ``to_torch_csr_tensor``), and
    :math:`A^T` is a permutation of :math:`A`'s stored entries (a stable sort
    of the column indices), so both hold exactly the same values. For constant
    operators whose backward applies the transpose: ``torch.sparse.mm`` would
    transpose and re-sort :math:`A` on every backward.

    Args:
        row (torch.Tensor): Row indices ``[E]`` (for graph operators: the
            targets).
        col (torch.Tensor): Column indices ``[E]`` (the sources).
        value (torch.Tensor): Entries ``[E]``.
        num_nodes (int): :math:`N`.

    Returns:
        tuple[torch.Tensor, torch.Tensor]: :math:`A` and :math:`A^T`, CSR with
        ``int64`` indices.

    Example:
        >>> adj, adj_t = csr_with_transpose(
        ...     torch.tensor([1, 2]), torch.tensor([0, 0]), torch.tensor([2.0, 3.0]), 3
        ... )
        >>> adj_t.to_dense()
        tensor([[0., 2., 3.],
                [0., 0., 0.],
                [0., 0., 0.]])
    """
    size = (num_nodes, num_nodes)
    with quiet_sparse_warnings(unchecked=True):
        adj = to_torch_csr_tensor(torch.stack([row, col]), value, size=size)
    crow, col_sorted, values = adj.crow_indices(), adj.col_indices(), adj.values()
    arange = torch.arange(num_nodes, device=crow.device)
    rows = torch.repeat_interleave(arange, crow.diff())
    perm = torch.argsort(col_sorted, stable=True)
    counts = torch.bincount(col_sorted, minlength=num_nodes)
    crow_t = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    with quiet_sparse_warnings():
        adj_t = torch.sparse_csr_tensor(
            crow_t, rows[perm], values[perm], size, check_invariants=False
        )
    return adj, adj_t

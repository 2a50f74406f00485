"""Products with constant sparse inputs (bag-of-words features)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

#: The sparse layouts accepted as constant inputs.
SPARSE_LAYOUTS = (torch.sparse_coo, torch.sparse_csr)


def is_sparse(x: Tensor) -> bool:
    """Whether ``x`` is a torch COO or CSR tensor."""
    return x.layout in SPARSE_LAYOUTS


class _SparseMatmul(torch.autograd.Function):
    """``x @ weight`` for a constant sparse CSR ``x``.

    The weight gradient is one sparse-dense product with ``x.T`` (CSR) instead
    of a dense one.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor) -> Tensor:
        ctx.x = x
        return torch.sparse.mm(x, weight)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor]:
        x_t = ctx.x.t().to_sparse_csr()
        return None, torch.sparse.mm(x_t, grad.contiguous())


def sparse_matmul(x: Tensor, weight: Tensor) -> Tensor:
    r"""``x @ weight`` for a constant sparse (COO/CSR) ``x`` and dense ``weight``.

    Costs :math:`O(\mathrm{nnz}(x) \cdot F_{out})` forward and backward instead
    of :math:`O(N F_{in} F_{out})`. Gradients flow to ``weight`` only.

    Args:
        x (torch.Tensor): Sparse ``[N, F_in]`` matrix.
        weight (torch.Tensor): Dense ``[F_in, F_out]`` matrix.

    Example:
        >>> x = torch.eye(3).to_sparse_csr()
        >>> sparse_matmul(x, torch.ones(3, 2)).sum().item()
        6.0
    """
    if x.layout == torch.sparse_coo:
        x = x.to_sparse_csr()
    return _SparseMatmul.apply(x, weight)

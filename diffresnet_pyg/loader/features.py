"""Rows of a dense or sparse feature matrix, for the nodes of a mini-batch."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["select_rows"]


def select_rows(x: Tensor, index: Tensor) -> Tensor:
    r"""``x[index]`` for a dense, sparse COO or sparse CSR matrix ``x``.

    The result has the layout of ``x``: a CSR input gives the CSR matrix of
    the selected rows (PyTorch has no ``index_select`` for CSR), built from
    ``crow_indices`` without densifying:
    row :math:`a` of the result holds the stored entries
    ``crow[index[a]] : crow[index[a] + 1]`` of ``x``.

    Args:
        x (torch.Tensor): ``[N, F]`` features.
        index (torch.Tensor): ``[K]`` row ids in ``[0, N)`` (repeats allowed).

    Returns:
        torch.Tensor: ``[K, F]``, same layout, dtype and device as ``x``.

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
        >>> select_rows(x.to_sparse_csr(), torch.tensor([2, 0])).to_dense()
        tensor([[3., 4.],
                [1., 0.]])
    """
    if x.dim() != 2:
        raise ValueError(f"'x' must be a matrix [N, F], got shape {tuple(x.shape)}")
    if index.dim() != 1 or index.dtype not in (torch.long, torch.int):
        raise ValueError(
            f"'index' must be a 1-D integer tensor, got shape {tuple(index.shape)} "
            f"and dtype {index.dtype}"
        )
    index = index.to(device=x.device, dtype=torch.long)
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= x.size(0)):
        raise ValueError(f"'index' holds row ids outside [0, {x.size(0) - 1}]")
    if x.layout == torch.strided or x.layout == torch.sparse_coo:
        return x.index_select(0, index)
    if x.layout != torch.sparse_csr:
        raise ValueError(f"unsupported layout {x.layout}: use dense, COO or CSR")
    crow, col, values = x.crow_indices(), x.col_indices(), x.values()
    starts = crow[index]
    counts = crow[index + 1] - starts
    new_crow = torch.zeros(index.numel() + 1, dtype=crow.dtype, device=x.device)
    torch.cumsum(counts, 0, out=new_crow[1:])
    total = int(new_crow[-1])
    # position of every kept entry in x: its row's start plus its rank in the row
    rank = torch.arange(total, device=x.device) - torch.repeat_interleave(
        new_crow[:-1], counts, output_size=total
    )
    pos = torch.repeat_interleave(starts, counts, output_size=total) + rank
    return torch.sparse_csr_tensor(
        new_crow,
        col[pos],
        values[pos],
        (index.numel(), x.size(1)),
        check_invariants=False,
    )

r"""The truncated Gaussian-kernel graph and the diffusion step of the toy studies.

The synthetic examples of `Wang et al. (TPAMI 2024)
<https://arxiv.org/abs/2105.03155>`_ use, for points :math:`x_1, \dots, x_N`,

.. math::
    \tilde w_{ij} = \exp\!\left(-\frac{\lVert x_i - x_j \rVert^2}{\sigma^2}
    \right) \text{ if } j \text{ is among the } n_{\mathrm{top}}
    \text{ largest entries of row } i \text{ (else } 0\text{)}, \qquad
    w_{ij} = \frac{\tilde w_{ij}}{\sum_k \tilde w_{ik}},

a row-stochastic ("random-walk") weight matrix :math:`W` whose rows keep the
point itself (:math:`\tilde w_{ii} = 1`) and its :math:`n_{\mathrm{top}} - 1`
nearest neighbours. :math:`W` is not symmetric. One diffusion step is

.. math::
    x \leftarrow x - \tau (I - W) x,

which for :math:`\tau = 1` is the averaging :math:`x \leftarrow W x`. This is
the library's :class:`~diffresnet_pyg.nn.DiffusionConv` with the
``"combinatorial"`` Laplacian :math:`L = \operatorname{diag}(W \mathbf 1) - W`
on the edge weights :math:`w_{ij}` and no added self loops: self loops cancel
in :math:`L` and the rows of :math:`W` sum to 1, so :math:`L = I - W`
(:func:`synthetic_diffusion_conv`). The dense helpers below are the same
operator for small studies that record every step.

Unlike the few-shot weight matrix of :func:`diffresnet_pyg.nn.gaussian_weight_matrix`
(per-row bandwidths, symmetric normalization), :math:`\sigma` here is one
global bandwidth and the normalization is by rows.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from diffresnet_pyg.nn.conv import DiffusionConv

__all__ = [
    "diffuse",
    "diffusion_step",
    "gaussian_kernel_graph",
    "gaussian_kernel_weights",
    "synthetic_diffusion_conv",
]


def _check_kernel_args(x: Tensor, sigma: float, n_top: int) -> None:
    if not isinstance(x, Tensor) or x.dim() != 2 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"'x' must be a floating tensor of shape [num_points, dim], got {shape}"
        )
    if not bool(torch.isfinite(x).all()):
        raise ValueError("'x' contains NaN or infinite values")
    if (
        isinstance(sigma, bool)
        or not isinstance(sigma, (int, float))
        or not math.isfinite(sigma)
        or sigma <= 0
    ):
        raise ValueError(f"'sigma' must be a finite number > 0, got {sigma!r}")
    if isinstance(n_top, bool) or not isinstance(n_top, int) or n_top < 1:
        raise ValueError(f"'n_top' must be an integer >= 1, got {n_top!r}")
    if n_top > x.size(0):
        raise ValueError(
            f"'n_top'={n_top} is larger than the number of points ({x.size(0)}); "
            "each row keeps n_top entries, the point itself included"
        )


def _top_entries(x: Tensor, sigma: float, n_top: int) -> tuple[Tensor, Tensor]:
    """Column indices and normalized weights of each row's kept entries."""
    sq_dist = (x.unsqueeze(1) - x.unsqueeze(0)).pow(2).sum(dim=-1)
    neg_sq, index = sq_dist.neg().topk(n_top, dim=1)
    kernel = (neg_sq / sigma**2).exp()
    return index, kernel / kernel.sum(dim=1, keepdim=True)


def gaussian_kernel_weights(x: Tensor, *, n_top: int, sigma: float = 0.5) -> Tensor:
    r"""The dense row-stochastic truncated Gaussian-kernel matrix :math:`W`.

    Args:
        x: Points, shape ``[N, d]``.
        n_top: Entries kept per row, the point itself included
            (:math:`1 \leq n_{\mathrm{top}} \leq N`).
        sigma: Kernel bandwidth :math:`\sigma > 0`. (default: :obj:`0.5`)

    Returns:
        :math:`W`, shape ``[N, N]``, in the dtype of ``x``; every row has
        ``n_top`` kept entries and sums to 1. Ties in distance are broken by
        :func:`torch.topk`.

    Raises:
        ValueError: On a malformed ``x``, ``sigma <= 0`` or ``n_top`` outside
            :math:`[1, N]`.

    Example:
        >>> x = torch.tensor([[0.0], [0.5], [3.0]])
        >>> gaussian_kernel_weights(x, n_top=2).round(decimals=4)
        tensor([[0.7311, 0.2689, 0.0000],
                [0.2689, 0.7311, 0.0000],
                [0.0000, 0.0000, 1.0000]])
    """
    _check_kernel_args(x, sigma, n_top)
    index, weight = _top_entries(x, sigma, n_top)
    out = torch.zeros(x.size(0), x.size(0), dtype=x.dtype, device=x.device)
    return out.scatter_(1, index, weight)


def gaussian_kernel_graph(
    x: Tensor, *, n_top: int, sigma: float = 0.5
) -> tuple[Tensor, Tensor]:
    r"""The truncated Gaussian-kernel weights as a sparse graph.

    The same :math:`W` as :func:`gaussian_kernel_weights`, in PyG's
    ``source_to_target`` convention: edge ``(j, i)`` carries :math:`w_{ij}`,
    so node :math:`i` receives :math:`\sum_j w_{ij} x_j`. Self loops
    (:math:`w_{ii}`) are part of the edge list.

    Args:
        x: Points, shape ``[N, d]``.
        n_top: Entries kept per row, the point itself included
            (:math:`1 \leq n_{\mathrm{top}} \leq N`).
        sigma: Kernel bandwidth :math:`\sigma > 0`. (default: :obj:`0.5`)

    Returns:
        ``(edge_index, edge_weight)`` of shapes ``[2, N * n_top]`` and
        ``[N * n_top]``, grouped by target node.

    Example:
        >>> x = torch.tensor([[0.0], [0.5], [3.0]])
        >>> edge_index, edge_weight = gaussian_kernel_graph(x, n_top=2)
        >>> edge_index[1].tolist()
        [0, 0, 1, 1, 2, 2]
        >>> float(edge_weight.view(3, 2).sum(dim=1).min())
        1.0
    """
    _check_kernel_args(x, sigma, n_top)
    index, weight = _top_entries(x, sigma, n_top)
    target = torch.arange(x.size(0), device=x.device).repeat_interleave(n_top)
    return torch.stack([index.reshape(-1), target]), weight.reshape(-1)


def _check_tau(tau: float) -> None:
    if (
        isinstance(tau, bool)
        or not isinstance(tau, (int, float))
        or not math.isfinite(tau)
        or tau <= 0
    ):
        raise ValueError(f"'tau' must be a finite number > 0, got {tau!r}")


def diffusion_step(x: Tensor, weight: Tensor, tau: float = 1.0) -> Tensor:
    r"""One explicit diffusion step :math:`x - \tau (I - W) x` (dense).

    Args:
        x: Features, shape ``[N, F]``.
        weight: A dense weight matrix :math:`W`, shape ``[N, N]``.
        tau: Step size :math:`\tau > 0`. (default: :obj:`1.0`)

    Returns:
        The new features, shape ``[N, F]``.

    Example:
        >>> w = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
        >>> diffusion_step(torch.tensor([[0.0], [2.0]]), w, tau=0.5).squeeze()
        tensor([0.5000, 1.5000])
    """
    if x.dim() != 2 or weight.dim() != 2 or weight.shape != (x.size(0), x.size(0)):
        raise ValueError(
            f"'weight' must have shape [N, N] for 'x' of shape [N, F], got "
            f"{tuple(weight.shape)} and {tuple(x.shape)}"
        )
    _check_tau(tau)
    return x - tau * (x - weight @ x)


def diffuse(
    x: Tensor,
    weight: Tensor,
    num_steps: int,
    *,
    tau: float = 1.0,
    return_trajectory: bool = False,
) -> Tensor:
    r"""``num_steps`` diffusion steps :math:`(I - \tau (I - W))^{r} x` (dense).

    Args:
        x: Features, shape ``[N, F]``.
        weight: A dense weight matrix :math:`W`, shape ``[N, N]``.
        num_steps: Number of steps :math:`r \geq 0`.
        tau: Step size :math:`\tau > 0`. (default: :obj:`1.0`)
        return_trajectory: Return every iterate, not only the last.
            (default: :obj:`False`)

    Returns:
        The features after ``num_steps`` steps, shape ``[N, F]``, or with
        ``return_trajectory=True`` all iterates ``0 .. num_steps``, shape
        ``[num_steps + 1, N, F]``.

    Example:
        >>> w = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
        >>> diffuse(torch.tensor([[0.0], [2.0]]), w, 3, return_trajectory=True)[:, 0, 0]
        tensor([0., 1., 1., 1.])
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 0:
        raise ValueError(f"'num_steps' must be an integer >= 0, got {num_steps!r}")
    iterates = [x]
    for _ in range(num_steps):
        x = diffusion_step(x, weight, tau)
        if return_trajectory:
            iterates.append(x)
    return torch.stack(iterates) if return_trajectory else x


def synthetic_diffusion_conv(num_steps: int, tau: float = 1.0) -> DiffusionConv:
    r"""The library's diffusion layer set up for the row-stochastic :math:`W`.

    A :class:`~diffresnet_pyg.nn.DiffusionConv` with the ``"combinatorial"``
    Laplacian and no added self loops; fed the graph of
    :func:`gaussian_kernel_graph` it computes :math:`(I - \tau (I - W))^{r} x`
    with sparse products.

    Args:
        num_steps: Number of steps :math:`r \geq 0`.
        tau: Step size :math:`\tau > 0`. (default: :obj:`1.0`)

    Returns:
        The layer (no parameters).

    Example:
        >>> x = torch.randn(30, 2, generator=torch.Generator().manual_seed(0))
        >>> edge_index, edge_weight = gaussian_kernel_graph(x, n_top=5)
        >>> w = gaussian_kernel_weights(x, n_top=5)
        >>> out = synthetic_diffusion_conv(4)(x, edge_index, edge_weight)
        >>> torch.allclose(out, diffuse(x, w, 4), atol=1e-6)
        True
    """
    _check_tau(tau)
    return DiffusionConv(
        step_size=float(tau),
        num_steps=num_steps,
        laplacian="combinatorial",
        add_self_loops=False,
    )

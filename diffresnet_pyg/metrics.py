r"""Over-smoothing metrics of node representations.

Over-smoothing is the collapse of node representations :math:`\mathbf{X} \in
\mathbb{R}^{N \times C}` towards a graph-constant matrix as layers are stacked.
Three measures, each computed in float64 from a detached copy:

* :func:`dirichlet_energy`, the graph energy of `Rusch, Bronstein and
  Mishra, "A Survey on Oversmoothing in Graph Neural Networks" (2023)
  <https://arxiv.org/abs/2303.10993>`_ (``normalization=None``) or of
  `Cai and Wang, "A Note on Over-Smoothing for Graph Neural Networks" (2020)
  <https://arxiv.org/abs/2006.13318>`_ (``normalization="sym"``): it is 0
  exactly when the representation is constant on every connected component
  (``None``) or proportional to :math:`\sqrt{d_i}` there (``"sym"``);
* :func:`mean_average_distance` (MAD) of `Chen et al., "Measuring and
  Relieving the Over-smoothing Problem for Graph Neural Networks from the
  Topological View" (AAAI 2020) <https://arxiv.org/abs/1909.03211>`_: the
  mean cosine distance between node pairs, 0 when every representation
  points the same way;
* :func:`distance_diameter_ratio` (from :mod:`diffresnet_pyg.synthetic`), the
  ratio :math:`L / D` of Proposition 1 of the Diff-ResNet paper between the
  smallest distance across classes and the largest diameter of a class.

:func:`representation_metrics` computes all three at once, as the depth
study records them for the final representation of every run.

Example:
    >>> import torch
    >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    >>> x = torch.tensor([[1.0], [1.0], [1.0]])
    >>> dirichlet_energy(x, edge_index)
    0.0
    >>> dirichlet_energy(torch.tensor([[0.0], [1.0], [0.0]]), edge_index)
    1.3333333333333333
"""

from __future__ import annotations

import torch
from torch import Tensor

from diffresnet_pyg.synthetic.metrics import distance_diameter_ratio

__all__ = [
    "DIRICHLET_NORMALIZATIONS",
    "dirichlet_energy",
    "distance_diameter_ratio",
    "mean_average_distance",
    "representation_metrics",
]

#: ``normalization`` values of :func:`dirichlet_energy`.
DIRICHLET_NORMALIZATIONS: tuple[str | None, ...] = (None, "sym")

#: Rows of the pairwise cosine-distance matrix computed at once by
#: :func:`mean_average_distance` (bounds its memory to about
#: ``_MAD_ROWS * N`` floats).
_MAD_ROWS = 1024

#: Cosine distances at or below this count as 0 in :func:`mean_average_distance`
#: (rounding leaves about 1e-16 between parallel vectors).
_MAD_ZERO = 1e-12


def _check_x(x: Tensor) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() != 2 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"'x' must be a floating tensor of shape [num_nodes, channels], got {shape}"
        )
    if not bool(torch.isfinite(x).all()):
        raise ValueError("'x' contains NaN or infinite values")
    return x.detach().to(torch.float64)


def _check_edges(edge_index: Tensor, num_nodes: int) -> Tensor:
    if (
        not isinstance(edge_index, Tensor)
        or edge_index.dim() != 2
        or edge_index.size(0) != 2
        or edge_index.is_floating_point()
        or edge_index.dtype == torch.bool
    ):
        shape = (
            tuple(edge_index.shape)
            if isinstance(edge_index, Tensor)
            else type(edge_index).__name__
        )
        raise ValueError(
            f"'edge_index' must be an integer tensor of shape [2, num_edges], "
            f"got {shape}"
        )
    if edge_index.numel() and (
        int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes
    ):
        raise ValueError(
            f"'edge_index' holds node indices outside [0, {num_nodes - 1}] "
            f"('x' has {num_nodes} rows)"
        )
    return edge_index.to(torch.long)


def _check_weights(edge_weight: Tensor | None, num_edges: int) -> Tensor | None:
    if edge_weight is None:
        return None
    if (
        not isinstance(edge_weight, Tensor)
        or edge_weight.dim() != 1
        or edge_weight.numel() != num_edges
    ):
        raise ValueError(
            f"'edge_weight' must be a 1-D tensor with one entry per edge ({num_edges})"
        )
    weight = edge_weight.detach().to(torch.float64)
    if not bool(torch.isfinite(weight).all()) or bool((weight < 0).any()):
        raise ValueError("'edge_weight' must be finite and non-negative")
    return weight


def dirichlet_energy(
    x: Tensor,
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    normalization: str | None = None,
) -> float:
    r"""The Dirichlet energy of node representations on a graph.

    With ``normalization=None`` (Rusch et al., 2023), the mean over nodes of
    the squared differences to their neighbours:

    .. math::
        E(\mathbf{X}) = \frac{1}{N} \sum_{(j, i) \in \mathcal{E}} w_{ji}
        \lVert \mathbf{x}_i - \mathbf{x}_j \rVert_2^2 .

    With ``normalization="sym"`` (Cai and Wang, 2020), the differences are
    scaled by the square roots of the degrees
    :math:`d_i = \sum_{(j, i) \in \mathcal{E}} w_{ji}`:

    .. math::
        E(\mathbf{X}) = \frac{1}{N} \sum_{(j, i) \in \mathcal{E}} w_{ji}
        \Bigl\lVert \frac{\mathbf{x}_i}{\sqrt{d_i}} -
        \frac{\mathbf{x}_j}{\sqrt{d_j}} \Bigr\rVert_2^2 ,

    which for an undirected graph is :math:`\frac{2}{N}
    \mathrm{tr}(\mathbf{X}^\top \mathbf{L}_{\mathrm{sym}} \mathbf{X})`.
    Every edge of ``edge_index`` counts once, so an undirected graph stored
    with both directions (PyG's convention) counts each pair twice; no self
    loops are added.

    Args:
        x (torch.Tensor): Node representations ``[N, C]``.
        edge_index (torch.Tensor): Edges ``[2, E]`` (source, target).
        edge_weight (torch.Tensor, optional): Non-negative edge weights
            ``[E]``. (default: :obj:`None`, all 1)
        normalization (str, optional): :obj:`None` or ``"sym"``.
            (default: :obj:`None`)

    Returns:
        float: :math:`E(\mathbf{X}) \ge 0`.

    Raises:
        ValueError: On a malformed ``x``, ``edge_index`` or ``edge_weight``, or
            an unknown ``normalization``.

    Example:
        >>> edge_index = torch.tensor([[0, 1], [1, 0]])
        >>> dirichlet_energy(torch.tensor([[0.0, 0.0], [3.0, 4.0]]), edge_index)
        25.0
        >>> dirichlet_energy(torch.tensor([[2.0], [2.0]]), edge_index, None, "sym")
        0.0
    """
    if normalization not in DIRICHLET_NORMALIZATIONS:
        raise ValueError(
            f"'normalization' must be None or 'sym', got {normalization!r}"
        )
    x = _check_x(x)
    edge_index = _check_edges(edge_index, x.size(0))
    weight = _check_weights(edge_weight, edge_index.size(1))
    if x.size(0) == 0:
        return 0.0
    src, dst = edge_index
    if weight is None:
        weight = torch.ones(src.numel(), dtype=torch.float64, device=x.device)
    weight = weight.to(x.device)
    if normalization == "sym":
        degree = torch.zeros(x.size(0), dtype=torch.float64, device=x.device)
        degree.index_add_(0, dst, weight)
        scale = torch.where(degree > 0, degree.rsqrt(), torch.zeros_like(degree))
        x = x * scale.unsqueeze(1)
    diff = x[dst] - x[src]
    return float((weight * diff.square().sum(1)).sum() / x.size(0))


def mean_average_distance(x: Tensor, edge_index: Tensor | None = None) -> float:
    r"""Mean average cosine distance (MAD) of node representations.

    With :math:`D_{ij} = 1 - \frac{\mathbf{x}_i^\top \mathbf{x}_j}
    {\lVert \mathbf{x}_i \rVert \lVert \mathbf{x}_j \rVert}` and the mask
    :math:`M` of the pairs that count (the edges of ``edge_index``, or every
    pair :math:`i \ne j` when it is :obj:`None`), as Chen et al. (2020)
    define it:

    .. math::
        \bar{d}_i = \frac{\sum_j M_{ij} D_{ij}}
        {\sum_j \mathbb{1}[M_{ij} D_{ij} > 0]}, \qquad
        \mathrm{MAD} = \frac{\sum_i \bar{d}_i}{\sum_i \mathbb{1}[\bar{d}_i > 0]},

    so pairs at distance 0 (below :math:`10^{-12}`, the rounding between
    parallel vectors) and nodes with no positive distance do not count (0 when
    there are none). A zero vector has cosine distance 1 to every
    other vector. The all-pairs form is computed in row blocks
    (:math:`O(N^2 C)` time, :math:`O(N)` extra memory per block row).

    Args:
        x (torch.Tensor): Node representations ``[N, C]``.
        edge_index (torch.Tensor, optional): The pairs ``(j, i)`` that count
            (:math:`M_{ij} = 1`); duplicates count once per occurrence.
            (default: :obj:`None`, all pairs)

    Returns:
        float: MAD in :math:`[0, 2]`.

    Raises:
        ValueError: On a malformed ``x`` or ``edge_index``.

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
        >>> mean_average_distance(x)
        1.0
        >>> mean_average_distance(torch.ones(4, 3))
        0.0
    """
    x = _check_x(x)
    norm = x.norm(dim=1, keepdim=True)
    unit = x / torch.where(norm > 0, norm, torch.ones_like(norm))
    n = x.size(0)
    if edge_index is not None:
        edge_index = _check_edges(edge_index, n)
        src, dst = edge_index
        dist = 1.0 - (unit[src] * unit[dst]).sum(1)
        dist = torch.where((src == dst) | (dist <= _MAD_ZERO), 0.0, dist)
        total = torch.zeros(n, dtype=torch.float64, device=x.device)
        count = torch.zeros_like(total)
        total.index_add_(0, dst, dist)
        count.index_add_(0, dst, (dist > 0).to(torch.float64))
    else:
        total = torch.empty(n, dtype=torch.float64, device=x.device)
        count = torch.empty_like(total)
        for start in range(0, n, _MAD_ROWS):
            rows = slice(start, min(start + _MAD_ROWS, n))
            dist = 1.0 - unit[rows] @ unit.t()
            index = torch.arange(rows.start, rows.stop, device=x.device)
            dist[index - start, index] = 0.0
            dist = torch.where(dist <= _MAD_ZERO, 0.0, dist)
            total[rows] = dist.sum(1)
            count[rows] = (dist > 0).sum(1).to(torch.float64)
    mean = torch.where(count > 0, total / count.clamp_min(1.0), 0.0)
    nodes = int((mean > 0).sum())
    return float(mean.sum() / nodes) if nodes else 0.0


def representation_metrics(
    x: Tensor,
    edge_index: Tensor,
    y: Tensor,
    edge_weight: Tensor | None = None,
) -> dict[str, float]:
    r"""The over-smoothing metrics of one representation, as a row's fields.

    Args:
        x (torch.Tensor): Node representations ``[N, C]``.
        edge_index (torch.Tensor): The graph ``[2, E]``.
        y (torch.Tensor): Node labels ``[N]`` (the classes of
            :func:`distance_diameter_ratio`).
        edge_weight (torch.Tensor, optional): Edge weights ``[E]``.
            (default: :obj:`None`)

    Returns:
        dict: ``dirichlet_energy`` (:func:`dirichlet_energy`, no
        normalization), ``dirichlet_energy_sym`` (``"sym"``), ``mad``
        (:func:`mean_average_distance` over all pairs), ``mad_neighbors``
        (over the edges) and ``distance_diameter_ratio``. A representation
        with non-finite entries gives an empty dict.

    Example:
        >>> edge_index = torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]])
        >>> x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
        >>> m = representation_metrics(x, edge_index, torch.tensor([0, 0, 1, 1]))
        >>> m["dirichlet_energy"], m["mad"], m["distance_diameter_ratio"]
        (0.0, 1.0, inf)
    """
    if not bool(torch.isfinite(x).all()):
        return {}
    return {
        "dirichlet_energy": dirichlet_energy(x, edge_index, edge_weight),
        "dirichlet_energy_sym": dirichlet_energy(x, edge_index, edge_weight, "sym"),
        "mad": mean_average_distance(x),
        "mad_neighbors": mean_average_distance(x, edge_index),
        "distance_diameter_ratio": distance_diameter_ratio(x.detach(), y),
    }

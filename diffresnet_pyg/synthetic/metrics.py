r"""Cluster geometry and linear separability of labelled point sets.

For clusters :math:`C_1, \dots, C_K` of points :math:`x_i`:

.. math::
    L = \min_{k \neq l} \min_{i \in C_k,\, j \in C_l} \lVert x_i - x_j \rVert,
    \qquad
    D = \max_k \max_{i, j \in C_k} \lVert x_i - x_j \rVert,

the minimum inter-cluster distance and the maximum intra-cluster diameter.
Their ratio :math:`L / D` is the quantity of Proposition 1 of `Wang et al.
(TPAMI 2024) <https://arxiv.org/abs/2105.03155>`_: diffusion makes it grow
exponentially, and once :math:`L / D > 1` every point is nearer to its own
cluster than to any other.

Linear separability is measured two ways: :func:`linear_separability` is the
training accuracy of a logistic (softmax) regression fitted with L-BFGS, and
:func:`is_linearly_separable` is an exact hard-margin feasibility check
(a linear program) for two classes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.optimize
import torch
import torch.nn.functional as F
from torch import Tensor

from diffresnet_pyg.evaluate import Evaluator

__all__ = [
    "cluster_diameters",
    "cluster_geometry",
    "distance_diameter_ratio",
    "fit_log_slope",
    "is_linearly_separable",
    "linear_separability",
    "max_intra_cluster_diameter",
    "min_inter_cluster_distance",
    "pairwise_distances",
]


def _check_points(x: Tensor) -> None:
    if not isinstance(x, Tensor) or x.dim() != 2 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"'x' must be a floating tensor of shape [num_points, dim], got {shape}"
        )
    if not bool(torch.isfinite(x).all()):
        raise ValueError("'x' contains NaN or infinite values")


def _check_labels(name: str, labels: Tensor, num_points: int) -> Tensor:
    if (
        not isinstance(labels, Tensor)
        or labels.dim() != 1
        or labels.is_floating_point()
        or labels.is_complex()
        or labels.dtype == torch.bool
    ):
        raise ValueError(f"'{name}' must be a 1-D integer tensor")
    if labels.numel() != num_points:
        raise ValueError(
            f"'{name}' has {labels.numel()} entries but 'x' has {num_points} points"
        )
    if num_points > 0 and int(labels.min()) < 0:
        raise ValueError(f"'{name}' must be non-negative")
    return labels.to(device=labels.device, dtype=torch.long)


def pairwise_distances(x: Tensor) -> Tensor:
    r"""All Euclidean distances :math:`\lVert x_i - x_j \rVert`, shape ``[N, N]``.

    Computed from coordinate differences (not :math:`\lVert x_i \rVert^2 +
    \lVert x_j \rVert^2 - 2 x_i^\top x_j`), so the diagonal is exactly 0 and
    tiny distances keep their relative precision (the XOR study measures
    diameters down to :math:`10^{-4}` next to coordinates of order 1).

    Args:
        x: Points, shape ``[N, d]``.

    Returns:
        The distance matrix, in the dtype of ``x``.

    Example:
        >>> pairwise_distances(torch.tensor([[0.0, 0.0], [3.0, 4.0]]))
        tensor([[0., 5.],
                [5., 0.]])
    """
    _check_points(x)
    return torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")


def cluster_geometry(x: Tensor, cluster: Tensor) -> tuple[float, Tensor]:
    r"""The minimum inter-cluster distance and every cluster's diameter at once.

    One pass over the pairwise distances (what :func:`min_inter_cluster_distance`
    and :func:`cluster_diameters` compute separately).

    Args:
        x: Points, shape ``[N, d]``.
        cluster: Cluster id of each point, shape ``[N]`` (at least two
            clusters with points).

    Returns:
        ``(L, diameters)``: :math:`L` as a float and the diameter of each
        cluster id ``0 .. max(cluster)``, shape ``[K]`` (0 for an id with
        fewer than two points).

    Raises:
        ValueError: If fewer than two clusters have points.

    Example:
        >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0], [5.0, 2.0]])
        >>> cluster_geometry(x, torch.tensor([0, 0, 1, 1]))
        (4.0, tensor([1., 2.]))
    """
    _check_points(x)
    cluster = _check_labels("cluster", cluster, x.size(0))
    if cluster.unique().numel() < 2:
        raise ValueError(
            "The inter-cluster distance needs points in at least two clusters"
        )
    dist = pairwise_distances(x)
    same = cluster.unsqueeze(0) == cluster.unsqueeze(1)
    num_clusters = int(cluster.max()) + 1
    row_max = torch.where(same, dist, 0.0).amax(dim=1)
    diameters = x.new_zeros(num_clusters).scatter_reduce(
        0, cluster, row_max, reduce="amax"
    )
    return float(torch.where(same, math.inf, dist).min()), diameters


def cluster_diameters(x: Tensor, cluster: Tensor) -> Tensor:
    r"""The diameter :math:`\max_{i,j \in C_k} \lVert x_i - x_j \rVert` of each cluster.

    Args:
        x: Points, shape ``[N, d]``.
        cluster: Cluster id of each point, shape ``[N]``.

    Returns:
        One diameter per cluster id ``0 .. max(cluster)``, shape ``[K]`` (0 for
        an id without points or with one point).

    Example:
        >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0], [5.0, 2.0]])
        >>> cluster_diameters(x, torch.tensor([0, 0, 1, 1]))
        tensor([1., 2.])
    """
    _check_points(x)
    cluster = _check_labels("cluster", cluster, x.size(0))
    num_clusters = int(cluster.max()) + 1 if cluster.numel() else 0
    out = x.new_zeros(num_clusters)
    for k in range(num_clusters):
        points = x[cluster == k]
        if points.size(0) > 1:
            out[k] = pairwise_distances(points).max()
    return out


def max_intra_cluster_diameter(x: Tensor, cluster: Tensor) -> float:
    r"""The largest cluster diameter :math:`D = \max_k \operatorname{diam}(C_k)`.

    Args:
        x: Points, shape ``[N, d]``.
        cluster: Cluster id of each point, shape ``[N]``.

    Returns:
        :math:`D` as a Python float.

    Example:
        >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0], [5.0, 2.0]])
        >>> max_intra_cluster_diameter(x, torch.tensor([0, 0, 1, 1]))
        2.0
    """
    diam = cluster_diameters(x, cluster)
    return float(diam.max()) if diam.numel() else 0.0


def min_inter_cluster_distance(x: Tensor, cluster: Tensor) -> float:
    r"""The smallest distance :math:`L` between two points of different clusters.

    Args:
        x: Points, shape ``[N, d]``.
        cluster: Cluster id of each point, shape ``[N]``.

    Returns:
        :math:`L` as a Python float.

    Raises:
        ValueError: If fewer than two clusters have points.

    Example:
        >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0], [5.0, 2.0]])
        >>> min_inter_cluster_distance(x, torch.tensor([0, 0, 1, 1]))
        4.0
    """
    _check_points(x)
    cluster = _check_labels("cluster", cluster, x.size(0))
    if cluster.unique().numel() < 2:
        raise ValueError(
            "The inter-cluster distance needs points in at least two clusters"
        )
    same = cluster.unsqueeze(0) == cluster.unsqueeze(1)
    return float(torch.where(same, math.inf, pairwise_distances(x)).min())


def distance_diameter_ratio(x: Tensor, cluster: Tensor) -> float:
    r"""The distance-diameter ratio :math:`L / D`.

    :math:`L` is :func:`min_inter_cluster_distance` and :math:`D`
    :func:`max_intra_cluster_diameter`.

    Args:
        x: Points, shape ``[N, d]``.
        cluster: Cluster id of each point, shape ``[N]`` (at least two
            clusters).

    Returns:
        :math:`L / D` (``inf`` when every cluster is a single point).

    Example:
        >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0], [5.0, 2.0]])
        >>> distance_diameter_ratio(x, torch.tensor([0, 0, 1, 1]))
        2.0
    """
    distance = min_inter_cluster_distance(x, cluster)
    diameter = max_intra_cluster_diameter(x, cluster)
    return distance / diameter if diameter > 0 else math.inf


def _standardize(x: Tensor) -> Tensor:
    x = x.detach().to(torch.float64)
    if x.size(0) == 0:
        return x
    x = x - x.mean(dim=0)
    scale = x.abs().amax(dim=0)
    return x / torch.where(scale > 0, scale, torch.ones_like(scale))


def linear_separability(
    x: Tensor,
    y: Tensor,
    *,
    max_iter: int = 200,
    weight_decay: float = 1e-8,
) -> float:
    r"""Training accuracy of a linear (softmax) classifier fitted to ``(x, y)``.

    Fits :math:`\min_{W, b} \frac1N \sum_i \mathrm{CE}(W x_i + b, y_i) +
    \frac{\lambda}{2} \lVert W \rVert^2` with L-BFGS (strong Wolfe line
    search, float64) on the features centred and scaled per dimension to
    :math:`[-1, 1]` (an affine change that does not change separability), and
    returns the fraction of points it classifies correctly. It is 1.0 for
    linearly separable data up to the optimizer's convergence; use
    :func:`is_linearly_separable` for an exact yes/no.

    Args:
        x: Features, shape ``[N, d]``.
        y: Class labels ``0 .. C-1``, shape ``[N]``.
        max_iter: L-BFGS iterations. (default: :obj:`200`)
        weight_decay: The ridge :math:`\lambda \geq 0` (a tiny default keeps
            the solution bounded on separable data). (default: :obj:`1e-8`)

    Returns:
        The training accuracy in :math:`[0, 1]`.

    Example:
        >>> x = torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
        >>> linear_separability(x, torch.tensor([0, 1, 1, 1]))
        1.0
        >>> x = torch.zeros(3, 2)  # one place, two classes: the majority wins
        >>> round(linear_separability(x, torch.tensor([0, 0, 1])), 4)
        0.6667
    """
    _check_points(x)
    y = _check_labels("y", y, x.size(0))
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"'max_iter' must be an integer >= 1, got {max_iter!r}")
    if not math.isfinite(weight_decay) or weight_decay < 0:
        raise ValueError(f"'weight_decay' must be >= 0, got {weight_decay!r}")
    if x.size(0) == 0:
        raise ValueError("'x' has no points")
    feats = _standardize(x).cpu()
    y = y.cpu()
    num_classes = int(y.max()) + 1
    weight = torch.zeros(x.size(1), num_classes, dtype=torch.float64)
    bias = torch.zeros(num_classes, dtype=torch.float64)
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=1e-10,
        tolerance_change=1e-14,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(feats @ weight + bias, y)
        loss = loss + 0.5 * weight_decay * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    with torch.no_grad():
        pred = (feats @ weight + bias).argmax(dim=1)
    return Evaluator("acc").eval({"y_true": y, "y_pred": pred})["acc"]


def is_linearly_separable(x: Tensor, y: Tensor, *, margin_tol: float = 1e-9) -> bool:
    r"""Whether two classes are strictly linearly separable (hard margin).

    Solves the feasibility linear program

    .. math::
        \exists\, w, b: \quad s_i (w^\top \tilde x_i + b) \geq 1
        \quad \text{for all } i, \qquad s_i = 2 y_i - 1,

    with HiGHS, on the features :math:`\tilde x` centred and scaled per
    dimension to :math:`[-1, 1]`. Classes that touch (a point of each class
    at the same place) are not separable.

    Args:
        x: Features, shape ``[N, d]``.
        y: Labels in :math:`\{0, 1\}`, shape ``[N]``.
        margin_tol: Slack allowed on each constraint (absorbs solver
            tolerances). (default: :obj:`1e-9`)

    Returns:
        ``True`` when a separating hyperplane exists (always for a single
        class).

    Raises:
        ValueError: If ``y`` has labels other than 0 and 1.

    Example:
        >>> x = torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
        >>> is_linearly_separable(x, torch.tensor([0, 0, 1, 1]))
        False
        >>> is_linearly_separable(x, torch.tensor([0, 1, 1, 1]))
        True
    """
    _check_points(x)
    y = _check_labels("y", y, x.size(0))
    if y.numel() and int(y.max()) > 1:
        raise ValueError("is_linearly_separable handles two classes (labels 0 and 1)")
    labels = y.cpu().numpy()
    if np.unique(labels).size < 2:
        return True
    feats = _standardize(x).cpu().numpy()
    sign = 2.0 * labels - 1.0
    a_ub = -sign[:, None] * np.hstack([feats, np.ones((feats.shape[0], 1))])
    b_ub = -np.ones(feats.shape[0]) + margin_tol
    result = scipy.optimize.linprog(
        np.zeros(feats.shape[1] + 1),
        A_ub=a_ub,
        b_ub=b_ub,
        bounds=[(None, None)] * (feats.shape[1] + 1),
        method="highs",
    )
    return bool(result.status == 0)


def fit_log_slope(
    values: Sequence[float] | Tensor, steps: Sequence[float] | Tensor | None = None
) -> tuple[float, float]:
    r"""Least-squares fit of :math:`\log v_t \approx a + s\, t`.

    Args:
        values: Positive values :math:`v_t`.
        steps: The :math:`t` of each value. (default: :obj:`0, 1, 2, ...`)

    Returns:
        ``(slope, intercept)`` :math:`(s, a)` in natural-log units; the
        growth factor per step is :math:`e^{s}`.

    Raises:
        ValueError: On fewer than two values, non-positive values, or
            mismatched lengths.

    Example:
        >>> slope, intercept = fit_log_slope([1.0, 2.0, 4.0, 8.0])
        >>> round(slope / math.log(2), 6), round(intercept, 6)
        (1.0, 0.0)
    """
    v = np.asarray(values.tolist() if isinstance(values, Tensor) else values, float)
    if steps is None:
        t = np.arange(v.size, dtype=float)
    else:
        t = np.asarray(steps.tolist() if isinstance(steps, Tensor) else steps, float)
    if v.ndim != 1 or v.size < 2 or t.shape != v.shape:
        raise ValueError(
            "fit_log_slope needs two or more values and one step per value, got "
            f"{v.size} values and {t.size} steps"
        )
    if not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise ValueError("fit_log_slope needs finite positive values")
    slope, intercept = np.polyfit(t, np.log(v), 1)
    return float(slope), float(intercept)

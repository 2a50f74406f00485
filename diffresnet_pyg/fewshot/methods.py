r"""Few-shot methods on batches of episodes: prototypes, LaplacianShot, Diff-ResNet.

Every method takes :math:`B` episodes at once, :obj:`support` :math:`(B, S, d)`
with :obj:`support_labels` :math:`(B, S)` in :math:`\{0, \ldots,
\mathrm{way} - 1\}` and :obj:`query` :math:`(B, Q, d)`, and returns query
scores :math:`(B, Q, \mathrm{way})` whose :obj:`argmax` is the prediction. The
episodes are processed by batched tensor operations (no Python loop over
episodes), with the arithmetic of the per-episode reference code of
`Wang et al., TPAMI 2024 <https://arxiv.org/abs/2105.03155>`_
(github shwangtangjun/Diff-ResNet, :obj:`fewshot/train.py` and
:obj:`fewshot/ablation.py`):

* :func:`nearest_prototype` (SimpleShot): the class means of the support.
* :func:`laplacian_shot` (LaplacianShot, the paper's "diffusion" baseline):
  bound updates of the query assignments with a kNN graph over the queries.
* :func:`train_episode_nets`: the per-episode residual network trained on the
  support nodes, transductively over support and query nodes: convection
  (:obj:`layer_num=0`), external convection-diffusion (:obj:`mu > 0`) and
  internal convection-diffusion = Diff-ResNet (:obj:`layer_num > 0`). All
  :math:`B` networks are trained together as stacked weights with a
  hand-written backward pass and the exact update of :class:`torch.optim.SGD`
  (momentum, weight decay) under a :class:`~torch.optim.lr_scheduler.MultiStepLR`
  schedule.

Preprocessing (centering, normalization, query shift) is not part of these
functions: see :mod:`diffresnet_pyg.fewshot.preprocess`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from diffresnet_pyg.nn.knn import gaussian_weight_matrix

__all__ = [
    "EpisodeNetConfig",
    "diffusion_operator",
    "init_episode_nets",
    "laplacian_shot",
    "nearest_prototype",
    "train_episode_nets",
]

logger = logging.getLogger(__name__)

#: Names and shapes (as functions of ``dim`` and ``way``) of the stacked
#: parameters of :func:`init_episode_nets`, in drawing order.
_PARAM_SHAPES = (
    ("fc1_weight", lambda d, w: (d, d)),
    ("fc1_bias", lambda d, w: (d,)),
    ("fc2_weight", lambda d, w: (d, d)),
    ("fc2_bias", lambda d, w: (d,)),
    ("classifier_weight", lambda d, w: (w, d)),
    ("classifier_bias", lambda d, w: (w,)),
)

_DEFAULT_MEMORY_BUDGET = 2**29  # bytes of working memory per chunk of episodes


# ---------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------


def _shape(value: object) -> object:
    return tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__


def _check_int(name: str, value: object, minimum: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"{where}: '{name}' must be an integer >= {minimum}, got {value!r}"
        )
    return value


def _check_number(
    name: str,
    value: object,
    where: str,
    *,
    low: float,
    strict: bool = False,
    high: float | None = None,
) -> float:
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and (value > low if strict else value >= low)
        and (high is None or value < high)
    )
    if not ok:
        bound = "" if low == -math.inf else f" > {low}" if strict else f" >= {low}"
        if high is not None:
            bound += f" and < {high}"
        raise ValueError(
            f"{where}: '{name}' must be a finite number{bound}, got {value!r}"
        )
    return float(value)


def _check_episodes(
    where: str,
    support: Tensor,
    support_labels: Tensor,
    query: Tensor,
    way: int,
    *,
    every_class: bool,
) -> None:
    """Validates the batched episode arguments shared by all methods."""
    _check_int("way", way, 2, where)
    for name, value in (("support", support), ("query", query)):
        if not isinstance(value, Tensor) or value.dim() != 3:
            raise ValueError(
                f"{where}: '{name}' must be a 3-D tensor (num_episodes, "
                f"num_{name}, dim), got {_shape(value)}"
            )
        if not value.is_floating_point():
            raise TypeError(
                f"{where}: '{name}' must be a floating point tensor, got {value.dtype}"
            )
        if value.size(1) == 0:
            raise ValueError(
                f"{where}: '{name}' has no points per episode "
                f"(shape {tuple(value.shape)})"
            )
    if query.size(0) != support.size(0) or query.size(2) != support.size(2):
        raise ValueError(
            f"{where}: 'query' must have the same number of episodes and "
            f"feature dimension as 'support' {tuple(support.shape)}, got "
            f"{tuple(query.shape)}"
        )
    if query.dtype != support.dtype or query.device != support.device:
        raise TypeError(
            f"{where}: 'query' must have the dtype and device of 'support' "
            f"({support.dtype}, {support.device}), got ({query.dtype}, "
            f"{query.device})"
        )
    if not isinstance(support_labels, Tensor) or tuple(support_labels.shape) != tuple(
        support.shape[:2]
    ):
        raise ValueError(
            f"{where}: 'support_labels' must be a tensor of shape "
            f"{tuple(support.shape[:2])} (num_episodes, num_support), got "
            f"{_shape(support_labels)}"
        )
    if support_labels.is_floating_point() or support_labels.dtype in (
        torch.bool,
        torch.complex64,
        torch.complex128,
    ):
        raise TypeError(
            f"{where}: 'support_labels' must be an integer tensor, got "
            f"{support_labels.dtype}"
        )
    if support_labels.device != support.device:
        raise TypeError(
            f"{where}: 'support_labels' must be on the device of 'support' "
            f"({support.device}), got {support_labels.device}"
        )
    if support_labels.numel() > 0:
        low, high = int(support_labels.min()), int(support_labels.max())
        if low < 0 or high >= way:
            raise ValueError(
                f"{where}: 'support_labels' must lie in [0, way) = [0, {way}), "
                f"got values in [{low}, {high}]"
            )
    if not bool(torch.isfinite(support).all() and torch.isfinite(query).all()):
        raise ValueError(
            f"{where}: 'support' or 'query' contains NaN or infinite values"
        )
    if every_class and support_labels.numel() > 0:
        counts = _one_hot(support_labels, way, support.dtype).sum(dim=1)
        empty = (counts == 0).nonzero()
        if empty.numel() > 0:
            episode, label = (int(i) for i in empty[0])
            raise ValueError(
                f"{where}: 'support_labels' of episode {episode} has no sample "
                f"of class {label}; every class 0..way-1 needs a support sample"
            )


def _one_hot(labels: Tensor, way: int, dtype: torch.dtype) -> Tensor:
    labels = labels.long()
    out = torch.zeros(*labels.shape, way, dtype=dtype, device=labels.device)
    return out.scatter_(-1, labels.unsqueeze(-1), 1.0)


def _prototypes(support: Tensor, support_labels: Tensor, way: int) -> Tensor:
    """Per-class means of the support, ``(B, way, d)``."""
    one_hot = _one_hot(support_labels, way, support.dtype)  # (B, S, way)
    sums = torch.bmm(one_hot.transpose(1, 2), support)
    return sums / one_hot.sum(dim=1).unsqueeze(-1)


def _distance(x: Tensor, y: Tensor) -> Tensor:
    """Euclidean distances from sums of squared differences (exact self = 0)."""
    return torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist")


# ---------------------------------------------------------------------------
# Nearest prototype (SimpleShot)
# ---------------------------------------------------------------------------


def nearest_prototype(
    support: Tensor, support_labels: Tensor, query: Tensor, way: int
) -> Tensor:
    r"""Nearest-prototype classification (SimpleShot) of a batch of episodes.

    The prototype of class :math:`c` is the mean of its support features and a
    query is scored by its negative Euclidean distance to each prototype:

    .. math::
        \mathbf{p}_c = \frac{1}{|S_c|} \sum_{i \in S_c} \mathbf{x}_i,
        \qquad
        \mathrm{score}_{qc} = -\lVert \mathbf{x}_q - \mathbf{p}_c \rVert_2 .

    Args:
        support (torch.Tensor): Support features :math:`(B, S, d)`.
        support_labels (torch.Tensor): Integer labels :math:`(B, S)` in
            :math:`[0, \mathrm{way})`; every class needs at least one sample.
        query (torch.Tensor): Query features :math:`(B, Q, d)`.
        way (int): The number of classes per episode (:math:`\geq 2`).

    Returns:
        torch.Tensor: Scores :math:`(B, Q, \mathrm{way})` (negative distances).

    Raises:
        ValueError: On shapes that do not match, labels outside
            :math:`[0, \mathrm{way})`, a class without support sample,
            :obj:`way < 2` or non-finite features.
        TypeError: On non-floating features or non-integer labels.

    Example:
        >>> import torch
        >>> from diffresnet_pyg.fewshot.methods import nearest_prototype
        >>> support = torch.tensor([[[0.0, 0.0], [0.0, 2.0], [4.0, 0.0]]])
        >>> labels = torch.tensor([[0, 0, 1]])
        >>> query = torch.tensor([[[0.0, 1.0], [3.0, 0.0]]])
        >>> nearest_prototype(support, labels, query, way=2)
        tensor([[[-0.0000, -4.1231],
                 [-3.1623, -1.0000]]])
    """
    _check_episodes(
        "nearest_prototype", support, support_labels, query, way, every_class=True
    )
    return -_distance(query, _prototypes(support, support_labels, way))


# ---------------------------------------------------------------------------
# LaplacianShot
# ---------------------------------------------------------------------------


def laplacian_shot(
    support: Tensor,
    support_labels: Tensor,
    query: Tensor,
    way: int,
    *,
    knn: int = 3,
    lam: float = 0.5,
    max_iter: int = 20,
    tol: float = 1e-6,
) -> Tensor:
    r"""LaplacianShot label assignment of the queries of a batch of episodes.

    As the authors' :obj:`laplacian_shot` (Ziko et al., ICML 2020, as run in
    the Diff-ResNet code): :math:`a_{qc} = \lVert \mathbf{x}_q - \mathbf{p}_c
    \rVert_2` with the prototypes :math:`\mathbf{p}_c` of
    :func:`nearest_prototype`; :math:`w_{qr} = 1` if query :math:`r` is at
    positions :math:`2, \ldots, \mathrm{knn}` of query :math:`q`'s row of
    query-query distances sorted ascending (position 1 is :math:`q` itself),
    else 0 (not symmetrized). Starting from :math:`Y = \mathrm{softmax}(-A)`,
    repeat at most :obj:`max_iter` times

    .. math::
        Y &\leftarrow \mathrm{softmax}\left(-A + \lambda W Y\right)
        \quad \text{(row-wise)},

        E(Y) &= \sum_{q, c} y_{qc} \left(\log y_{qc} + a_{qc}
        - \lambda (W Y)_{qc}\right),

    and stop after the update in which
    :math:`|E_\mathrm{new} - E_\mathrm{old}| / |E_\mathrm{old}| < \mathrm{tol}`.
    Each episode stops on its own (a converged episode is no longer
    updated), so the result equals running the episodes one by one. The
    prototype rectification of the authors' :obj:`train.py` variant is not
    applied (their :obj:`ablation.py` variant). :math:`0 \log 0` is taken as 0.

    Args:
        support (torch.Tensor): Support features :math:`(B, S, d)`.
        support_labels (torch.Tensor): Integer labels :math:`(B, S)` in
            :math:`[0, \mathrm{way})`; every class needs at least one sample.
        query (torch.Tensor): Query features :math:`(B, Q, d)`.
        way (int): The number of classes per episode (:math:`\geq 2`).
        knn (int, optional): Each query is linked to its :obj:`knn - 1`
            nearest other queries (:math:`1 \leq \mathrm{knn} \leq Q`).
            (default: :obj:`3`)
        lam (float, optional): The weight :math:`\lambda` of the Laplacian
            term. (default: :obj:`0.5`)
        max_iter (int, optional): The maximum number of updates.
            (default: :obj:`20`)
        tol (float, optional): Relative energy change that stops an episode.
            (default: :obj:`1e-6`)

    Returns:
        torch.Tensor: The soft assignments :math:`Y` :math:`(B, Q,
        \mathrm{way})` (rows sum to 1).

    Raises:
        ValueError: As :func:`nearest_prototype`, or if :obj:`knn`,
            :obj:`lam`, :obj:`max_iter` or :obj:`tol` is out of range.
        TypeError: On non-floating features or non-integer labels.

    Example:
        >>> import torch
        >>> from diffresnet_pyg.fewshot.methods import laplacian_shot
        >>> g = torch.Generator().manual_seed(0)
        >>> centers = 5 * torch.eye(3, 4)
        >>> support = centers.repeat_interleave(2, 0) + 0.1 * torch.randn(6, 4,
        ...     generator=g)
        >>> query = centers.repeat_interleave(4, 0) + 0.1 * torch.randn(12, 4,
        ...     generator=g)
        >>> labels = torch.arange(3).repeat_interleave(2)
        >>> y = laplacian_shot(support[None], labels[None], query[None], way=3)
        >>> y.argmax(-1)
        tensor([[0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]])
    """
    where = "laplacian_shot"
    _check_episodes(where, support, support_labels, query, way, every_class=True)
    num_query = query.size(1)
    _check_int("knn", knn, 1, where)
    if knn > num_query:
        raise ValueError(
            f"{where}: 'knn' must be at most the number of queries per episode "
            f"({num_query}), got {knn}"
        )
    lam = _check_number("lam", lam, where, low=-math.inf)
    _check_int("max_iter", max_iter, 0, where)
    tol = _check_number("tol", tol, where, low=0.0)

    # Kernel: rows sorted ascending, self first; keep positions 2..knn.
    order = _distance(query, query).topk(knn, dim=-1, largest=False, sorted=True)
    weight = torch.zeros(
        query.size(0), num_query, num_query, dtype=query.dtype, device=query.device
    )
    weight.scatter_(-1, order.indices[..., 1:], 1.0)

    unary = _distance(query, _prototypes(support, support_labels, way))  # A

    def energy(y: Tensor, pairwise: Tensor) -> Tensor:
        terms = torch.special.xlogy(y, y) + y * (unary - lam * pairwise)
        return terms.sum(dim=(1, 2))

    y = torch.softmax(-unary, dim=-1)
    old = energy(y, torch.bmm(weight, y))
    active = torch.ones(query.size(0), dtype=torch.bool, device=query.device)
    for _ in range(max_iter):
        new_y = torch.softmax(-unary + lam * torch.bmm(weight, y), dim=-1)
        y = torch.where(active.view(-1, 1, 1), new_y, y)
        new = energy(y, torch.bmm(weight, y))
        converged = ((new - old) / old).abs() < tol
        old = torch.where(active, new, old)
        active = active & ~converged
        if not bool(active.any()):
            break
    return y


# ---------------------------------------------------------------------------
# The per-episode network (convection / external / internal = Diff-ResNet)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EpisodeNetConfig:
    r"""Hyperparameters of the per-episode network and its training.

    The defaults are the authors' recipe (SGD with momentum 0.9 and weight
    decay :math:`10^{-4}`, learning rate 0.1 divided by 10 at epochs 50 and
    75 of 100, 6 diffusion layers of step 0.5, :math:`W` with
    :obj:`n_top=8`, :obj:`sigma=4`).

    Attributes:
        layer_num (int): Diffusion layers after the residual block; 0 is the
            convection (or, with :obj:`mu > 0`, external) variant.
            (default: :obj:`6`)
        step_size (float): Step :math:`\gamma` of each diffusion layer
            :math:`X \leftarrow X - \gamma L X`. (default: :obj:`0.5`)
        n_top (int): Truncation rank of :func:`gaussian_weight_matrix`.
            (default: :obj:`8`)
        sigma (int): Kernel-width rank of :func:`gaussian_weight_matrix`.
            (default: :obj:`4`)
        mu (float): Weight of the external Laplacian loss
            :math:`\mu \sum_{ij} W_{ij} \lVert \mathbf{o}_i - \mathbf{o}_j
            \rVert^2` on the classifier outputs of all nodes.
            (default: :obj:`0.0`)
        epochs (int): Full-batch training steps. (default: :obj:`100`)
        lr (float): Initial learning rate. (default: :obj:`0.1`)
        momentum (float): SGD momentum in :math:`[0, 1)`.
            (default: :obj:`0.9`)
        weight_decay (float): L2 weight decay of all parameters.
            (default: :obj:`1e-4`)
        milestones (tuple[int, ...]): Strictly increasing epochs
            (:math:`\geq 1`) at which the learning rate is multiplied by
            :obj:`gamma`. (default: :obj:`(50, 75)`)
        gamma (float): The learning-rate factor. (default: :obj:`0.1`)

    Raises:
        ValueError: If a value is out of range (the message names it).

    Example:
        >>> from diffresnet_pyg.fewshot.methods import EpisodeNetConfig
        >>> EpisodeNetConfig(layer_num=0, mu=0.1).milestones
        (50, 75)
    """

    layer_num: int = 6
    step_size: float = 0.5
    n_top: int = 8
    sigma: int = 4
    mu: float = 0.0
    epochs: int = 100
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    milestones: tuple[int, ...] = (50, 75)
    gamma: float = 0.1

    def __post_init__(self) -> None:
        where = "EpisodeNetConfig"
        _check_int("layer_num", self.layer_num, 0, where)
        _check_number("step_size", self.step_size, where, low=0.0)
        _check_int("n_top", self.n_top, 1, where)
        _check_int("sigma", self.sigma, 1, where)
        _check_number("mu", self.mu, where, low=0.0)
        _check_int("epochs", self.epochs, 0, where)
        _check_number("lr", self.lr, where, low=0.0, strict=True)
        _check_number("momentum", self.momentum, where, low=0.0, high=1.0)
        _check_number("weight_decay", self.weight_decay, where, low=0.0)
        _check_number("gamma", self.gamma, where, low=0.0, strict=True)
        milestones = self.milestones
        if isinstance(milestones, str | bytes) or not isinstance(
            milestones, tuple | list
        ):
            raise ValueError(
                f"{where}: 'milestones' must be a tuple of integers, got {milestones!r}"
            )
        for m in milestones:
            _check_int("milestones", m, 1, where)
        if any(b <= a for a, b in zip(milestones, milestones[1:], strict=False)):
            raise ValueError(
                f"{where}: 'milestones' must be strictly increasing, "
                f"got {tuple(milestones)}"
            )
        object.__setattr__(self, "milestones", tuple(milestones))


def diffusion_operator(weight: Tensor, step_size: float, layer_num: int) -> Tensor:
    r"""The linear map of :obj:`layer_num` explicit diffusion steps.

    With :math:`L = \operatorname{diag}(W \mathbf{1}) - W`, the diffusion
    layers :math:`X \leftarrow X - \gamma L X` applied :math:`r` times equal
    one product with

    .. math::
        P = (I - \gamma L)^{r},

    so :math:`r` steps of cost :math:`O(n^2 d)` each become one (the forward
    and the backward pass, :math:`\partial / \partial X = P^\top`, are exact
    up to rounding).

    Args:
        weight (torch.Tensor): Weight matrices :math:`(n, n)` or
            :math:`(B, n, n)`.
        step_size (float): The step :math:`\gamma`.
        layer_num (int): The number of steps :math:`r \geq 0`.

    Returns:
        torch.Tensor: :math:`P`, shaped like :obj:`weight`.

    Raises:
        ValueError: If :obj:`weight` is not square or :obj:`layer_num < 0`.

    Example:
        >>> import torch
        >>> from diffresnet_pyg.fewshot.methods import diffusion_operator
        >>> W = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
        >>> diffusion_operator(W, step_size=0.25, layer_num=2)
        tensor([[0.6250, 0.3750],
                [0.3750, 0.6250]])
    """
    where = "diffusion_operator"
    if (
        not isinstance(weight, Tensor)
        or weight.dim() not in (2, 3)
        or weight.size(-1) != weight.size(-2)
    ):
        raise ValueError(
            f"{where}: 'weight' must have shape (n, n) or (B, n, n), "
            f"got {_shape(weight)}"
        )
    _check_int("layer_num", layer_num, 0, where)
    step_size = _check_number("step_size", step_size, where, low=-math.inf)
    laplacian = torch.diag_embed(weight.sum(dim=-1)) - weight
    eye = torch.eye(weight.size(-1), dtype=weight.dtype, device=weight.device)
    return torch.linalg.matrix_power(eye - step_size * laplacian, layer_num)


def init_episode_nets(
    num_episodes: int,
    dim: int,
    way: int,
    generator: torch.Generator,
    dtype: torch.dtype | None = None,
) -> dict[str, Tensor]:
    r"""Stacked initial weights of :obj:`num_episodes` episode networks.

    Each episode's weights are drawn like :class:`torch.nn.Linear`'s default
    initialization (:obj:`kaiming_uniform_` with :math:`a = \sqrt{5}` for the
    weight, the same bound for the bias):

    .. math::
        W, \mathbf{b} \sim \mathcal{U}\left(-\tfrac{1}{\sqrt{d}},
        \tfrac{1}{\sqrt{d}}\right),

    episode after episode, each in the order :obj:`fc1` (weight, bias),
    :obj:`fc2`, :obj:`classifier`. So one episode drawn from a generator seeded
    with :obj:`s` equals :obj:`Linear(d, d)`, :obj:`Linear(d, d)`,
    :obj:`Linear(d, way)` created in that order after
    :obj:`torch.manual_seed(s)`, and drawing :math:`B_1 + B_2` episodes at
    once equals drawing :math:`B_1` then :math:`B_2` from the same generator.

    Args:
        num_episodes (int): :math:`B \geq 0`.
        dim (int): The feature dimension :math:`d \geq 1`.
        way (int): The number of classes (:math:`\geq 2`).
        generator (torch.Generator): The source of randomness; the tensors
            are created on its device.
        dtype (torch.dtype, optional): Floating dtype of the weights.
            (default: :obj:`torch.get_default_dtype()`)

    Returns:
        dict[str, torch.Tensor]: :obj:`fc1_weight` :math:`(B, d, d)`,
        :obj:`fc1_bias` :math:`(B, d)`, :obj:`fc2_weight` :math:`(B, d, d)`,
        :obj:`fc2_bias` :math:`(B, d)`, :obj:`classifier_weight`
        :math:`(B, \mathrm{way}, d)`, :obj:`classifier_bias`
        :math:`(B, \mathrm{way})` (weights as in :class:`torch.nn.Linear`,
        :math:`(\mathrm{out}, \mathrm{in})`).

    Raises:
        ValueError: If a size is out of range.
        TypeError: If :obj:`generator` is not a :class:`torch.Generator` or
            :obj:`dtype` is not a floating dtype.

    Example:
        >>> import torch
        >>> from diffresnet_pyg.fewshot.methods import init_episode_nets
        >>> params = init_episode_nets(3, 16, 5, torch.Generator().manual_seed(0))
        >>> params["fc1_weight"].shape, params["classifier_bias"].shape
        (torch.Size([3, 16, 16]), torch.Size([3, 5]))
    """
    where = "init_episode_nets"
    _check_int("num_episodes", num_episodes, 0, where)
    _check_int("dim", dim, 1, where)
    _check_int("way", way, 2, where)
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"{where}: 'generator' must be a torch.Generator, got "
            f"{type(generator).__name__}"
        )
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(
            f"{where}: 'dtype' must be a floating torch.dtype, got {dtype!r}"
        )
    # torch.nn.init.kaiming_uniform_(a=sqrt(5)) and Linear's bias bound.
    gain = math.sqrt(2.0 / (1 + math.sqrt(5) ** 2))
    weight_bound = math.sqrt(3.0) * (gain / math.sqrt(dim))
    bias_bound = 1 / math.sqrt(dim)
    params = {
        name: torch.empty(
            num_episodes, *shape(dim, way), dtype=dtype, device=generator.device
        )
        for name, shape in _PARAM_SHAPES
    }
    for b in range(num_episodes):
        for name, _ in _PARAM_SHAPES:
            bound = weight_bound if name.endswith("weight") else bias_bound
            params[name][b].uniform_(-bound, bound, generator=generator)
    return params


def _check_params(
    params: object, num_episodes: int, dim: int, way: int, like: Tensor
) -> dict[str, Tensor]:
    where = "train_episode_nets"
    names = [name for name, _ in _PARAM_SHAPES]
    if not isinstance(params, Mapping) or sorted(params) != sorted(names):
        got = sorted(params) if isinstance(params, Mapping) else type(params).__name__
        raise ValueError(
            f"{where}: 'params' must be a dict with keys {names}, got {got}"
        )
    for name, shape in _PARAM_SHAPES:
        value = params[name]
        expected = (num_episodes, *shape(dim, way))
        if not isinstance(value, Tensor) or tuple(value.shape) != expected:
            raise ValueError(
                f"{where}: 'params[{name!r}]' must have shape "
                f"{expected}, got {_shape(value)}"
            )
        if value.dtype != like.dtype:
            raise TypeError(
                f"{where}: 'params[{name!r}]' must have the dtype of "
                f"'support' ({like.dtype}), got {value.dtype}"
            )
    return dict(params)


def _episode_bytes(num_nodes: int, dim: int, way: int, itemsize: int) -> int:
    """A generous estimate of one episode's working memory during training."""
    n, d = num_nodes, dim
    return itemsize * (8 * d * d + 24 * n * d + 8 * n * n + 8 * way * (d + n))


def _sgd_step(param: Tensor, buf: Tensor, lr: float, weight_decay: float) -> None:
    """:class:`torch.optim.SGD`'s update once ``buf`` holds ``momentum * buf + grad``.

    Adds the weight decay to the buffer and steps: the result is torch's
    ``buf = momentum * buf + (grad + weight_decay * param)``,
    ``param -= lr * buf`` up to the order of the additions (the buffers start
    at 0, so the first step's buffer is the gradient, as in torch).
    """
    buf.add_(param, alpha=weight_decay)
    param.add_(buf, alpha=-lr)


class _DenseFc2:
    """The stacked weight :math:`W_2` of fc2, stored densely, with its SGD state."""

    def __init__(self, weight: Tensor, config: EpisodeNetConfig) -> None:
        self.weight = weight.clone()
        self.buf = torch.zeros_like(weight)
        self.config = config

    def forward(self, base: Tensor, mr: Tensor) -> Tensor:
        """``base + mr @ W^T``."""
        return torch.baddbmm(base, mr, self.weight.transpose(1, 2))

    def backward(self, g_y: Tensor) -> Tensor:
        """``g_y @ W`` (the gradient of ``mr``)."""
        return torch.bmm(g_y, self.weight)

    def accumulate(self, g_y: Tensor, mr: Tensor) -> None:
        """``buf <- momentum * buf + g_y^T mr`` (the gradient of ``W``)."""
        g_y_t = g_y.transpose(1, 2).contiguous()
        self.buf.baddbmm_(g_y_t, mr, beta=self.config.momentum)

    def step(self, lr: float) -> None:
        """The SGD update of ``W``."""
        _sgd_step(self.weight, self.buf, lr, self.config.weight_decay)

    def matrix(self) -> Tensor:
        """The weight ``W``."""
        return self.weight


class _LowRankFc2:
    r"""fc2's weight as its initial value plus the SGD history of gradients.

    Every gradient of :math:`W_2` is :math:`G_t = \partial_Y^\top (M R_t)`, of
    rank at most the number of loss rows :math:`r`, and SGD with momentum and
    weight decay is linear in the parameter, the buffer and the gradients with
    coefficients shared by all episodes, so

    .. math::
        W_2^{(t)} = c_t W_2^{(0)} + \sum_{k < t} \alpha^{(t)}_k G_k
        = c_t W_2^{(0)} + H_G^\top \operatorname{diag}(\alpha^{(t)}) H_M,

    with the stacked rows :math:`H_G` of the :math:`\partial_Y` and
    :math:`H_M` of the :math:`M R_k`. Products with :math:`W_2` cost
    :math:`O(r d^2 + r^2 t d)` reads instead of the :math:`O(d^2)` passes of
    a dense update; worth it while :math:`r \cdot \mathrm{epochs}` is small
    compared with :math:`d`.
    """

    def __init__(self, weight: Tensor, rows: int, config: EpisodeNetConfig) -> None:
        num_episodes, dim = weight.shape[:2]
        capacity = rows * config.epochs
        self.initial = weight
        self.hist_g = weight.new_empty(num_episodes, capacity, dim)
        self.hist_m = weight.new_empty(num_episodes, capacity, dim)
        self.rows, self.filled = rows, 0
        # Coefficients (shared by all episodes) of W^(0) and of each history
        # row in the parameter (c, alpha) and in the momentum buffer (e, beta).
        self.c, self.e = 1.0, 0.0
        self.alpha = torch.zeros(capacity, dtype=torch.float64)
        self.beta = torch.zeros(capacity, dtype=torch.float64)
        self.config = config

    def _weights(self) -> Tensor:
        alpha = self.alpha[: self.filled]
        return alpha.to(dtype=self.initial.dtype, device=self.initial.device)

    def forward(self, base: Tensor, mr: Tensor) -> Tensor:
        """``base + mr @ W^T``."""
        out = torch.baddbmm(base, mr, self.initial.transpose(1, 2), alpha=self.c)
        if self.filled:
            hist_m, hist_g = (
                self.hist_m[:, : self.filled],
                self.hist_g[:, : self.filled],
            )
            coef = torch.bmm(mr, hist_m.transpose(1, 2)).mul_(self._weights())
            out.baddbmm_(coef, hist_g)
        return out

    def backward(self, g_y: Tensor) -> Tensor:
        """``g_y @ W``."""
        out = torch.bmm(g_y, self.initial)
        if self.c != 1.0:
            out.mul_(self.c)
        if self.filled:
            hist_m, hist_g = (
                self.hist_m[:, : self.filled],
                self.hist_g[:, : self.filled],
            )
            coef = torch.bmm(g_y, hist_g.transpose(1, 2)).mul_(self._weights())
            out.baddbmm_(coef, hist_m)
        return out

    def accumulate(self, g_y: Tensor, mr: Tensor) -> None:
        """Appends the gradient ``g_y^T mr``: ``buf <- momentum * buf + G``."""
        start, stop = self.filled, self.filled + self.rows
        self.hist_g[:, start:stop] = g_y
        self.hist_m[:, start:stop] = mr
        self.e *= self.config.momentum
        self.beta[:start] *= self.config.momentum
        self.beta[start:stop] = 1.0
        self.filled = stop

    def step(self, lr: float) -> None:
        """``buf += weight_decay * W``, ``W -= lr * buf`` on the coefficients."""
        wd, n = self.config.weight_decay, self.filled
        self.e += wd * self.c
        self.beta[:n] += wd * self.alpha[:n]
        self.c -= lr * self.e
        self.alpha[:n] -= lr * self.beta[:n]

    def matrix(self) -> Tensor:
        """The dense weight ``W`` (for the final logits)."""
        hist_g = self.hist_g[:, : self.filled] * self._weights().unsqueeze(-1)
        return torch.baddbmm(
            self.initial,
            hist_g.transpose(1, 2),
            self.hist_m[:, : self.filled],
            beta=self.c,
        )


@torch.no_grad()
def _train_chunk(
    nodes: Tensor,
    num_support: int,
    targets: Tensor,
    config: EpisodeNetConfig,
    params: dict[str, Tensor],
    node_basis: bool | None,
    low_rank_fc2: bool | None,
) -> Tensor:
    """Trains one chunk of episode networks; returns the query logits.

    Notation (per episode): ``X`` the active nodes (all nodes, or only the
    support when neither diffusion nor the external loss couples them),
    ``M`` the readout of the rows the loss sees (``P[:r]`` with the diffusion
    operator ``P``, or the identity), ``H1 = X W1^T + b1``, ``R = relu(H1)``,
    ``Y = M X + (M R) W2^T + (M 1) b2^T``, ``out = Y Wc^T + bc``. The
    gradients are accumulated straight into the momentum buffers
    (``buf <- momentum * buf + grad``), then :func:`_sgd_step` finishes the
    update.
    """
    num_nodes, dim = nodes.shape[1:]
    mom, wd = config.momentum, config.weight_decay
    laplacian = readout = None
    if config.layer_num > 0 or config.mu > 0:
        weight = gaussian_weight_matrix(nodes, config.n_top, config.sigma)
        laplacian = torch.diag_embed(weight.sum(dim=-1)) - weight
        del weight
    prop = None
    if config.layer_num > 0:
        eye = torch.eye(num_nodes, dtype=nodes.dtype, device=nodes.device)
        prop = torch.linalg.matrix_power(
            eye - config.step_size * laplacian, config.layer_num
        )
    x = nodes if laplacian is not None else nodes[:, :num_support]
    rows = num_nodes if config.mu > 0 else num_support
    if prop is not None:
        readout = prop[:, :rows]
        readout_t = readout.transpose(1, 2).contiguous()
        mx = torch.bmm(readout, x)
        m1_t = readout.sum(dim=-1).unsqueeze(1)  # (M 1)^T
    else:
        mx = x
    if node_basis is None:
        node_basis = x.size(1) < 2 * dim
    if low_rank_fc2 is None:
        low_rank_fc2 = 2 * rows * config.epochs < 3 * dim

    w1 = params["fc1_weight"].clone()
    b1, b2 = params["fc1_bias"].clone(), params["fc2_bias"].clone()
    wc, bc = params["classifier_weight"].clone(), params["classifier_bias"].clone()
    if low_rank_fc2:
        fc2: _DenseFc2 | _LowRankFc2 = _LowRankFc2(params["fc2_weight"], rows, config)
    else:
        fc2 = _DenseFc2(params["fc2_weight"], config)
    buf_b1, buf_b2, buf_wc, buf_bc = (torch.zeros_like(p) for p in (b1, b2, wc, bc))
    if node_basis:
        # W1 = a * W1_0 + A X: SGD's gradients dH1^T X stay in the row space
        # of X, so only the scalar a and the coefficients A^T (n_a x d) move.
        h0 = torch.bmm(x, w1.transpose(1, 2))
        gram = torch.bmm(x, x.transpose(1, 2))
        coef = torch.zeros_like(h0)  # A^T
        buf_coef = torch.zeros_like(h0)
        scale, buf_scale = 1.0, 0.0
    else:
        buf_w1 = torch.zeros_like(w1)
    support_scale = 1.0 / num_support

    lr = config.lr
    milestones = set(config.milestones)
    for epoch in range(config.epochs):
        if epoch in milestones:
            lr = lr * config.gamma
        # Forward.
        if node_basis:
            h1 = torch.baddbmm(h0, gram, coef, beta=scale).add_(b1.unsqueeze(1))
        else:
            h1 = torch.baddbmm(b1.unsqueeze(1), x, w1.transpose(1, 2))
        r = h1.clamp_min_(0)
        mr = torch.bmm(readout, r) if readout is not None else r
        y = fc2.forward(mx, mr)
        if readout is not None:
            y.baddbmm_(m1_t.transpose(1, 2), b2.unsqueeze(1))
        else:
            y.add_(b2.unsqueeze(1))
        out = torch.baddbmm(bc.unsqueeze(1), y, wc.transpose(1, 2))
        # Backward of mean cross-entropy on the support rows (+ external loss).
        g_sup = torch.softmax(out[:, :num_support], dim=-1).sub_(targets)
        g_sup.mul_(support_scale)
        if rows > num_support:
            g_out = torch.zeros_like(out)
            g_out[:, :num_support] = g_sup
        else:
            g_out = g_sup
        if config.mu > 0:
            # d/do sum_ij W_ij |o_i - o_j|^2 = 4 L o  (W symmetric).
            g_out.baddbmm_(laplacian, out, alpha=4 * config.mu)
        buf_bc = g_out.sum(dim=1).add_(buf_bc, alpha=mom)
        buf_wc.baddbmm_(g_out.transpose(1, 2), y, beta=mom)
        g_y = torch.bmm(g_out, wc)
        if readout is not None:
            g_b2 = torch.bmm(m1_t, g_y).squeeze(1)
        else:
            g_b2 = g_y.sum(dim=1)
        buf_b2 = g_b2.add_(buf_b2, alpha=mom)
        g_r = fc2.backward(g_y)
        fc2.accumulate(g_y, mr)
        if readout is not None:
            g_r = torch.bmm(readout_t, g_r)
        g_h1 = g_r.mul_(r.sign())  # ReLU'(H1) = [H1 > 0] = sign(R)
        buf_b1 = g_h1.sum(dim=1).add_(buf_b1, alpha=mom)
        # SGD step.
        if node_basis:
            buf_scale = mom * buf_scale + wd * scale
            buf_coef = g_h1.add_(buf_coef, alpha=mom)
            _sgd_step(coef, buf_coef, lr, wd)
            scale = scale - lr * buf_scale
        else:
            buf_w1.baddbmm_(g_h1.transpose(1, 2), x, beta=mom)
            _sgd_step(w1, buf_w1, lr, wd)
        fc2.step(lr)
        for param, buf in ((b1, buf_b1), (b2, buf_b2), (wc, buf_wc), (bc, buf_bc)):
            _sgd_step(param, buf, lr, wd)

    if node_basis:
        w1 = torch.baddbmm(w1, coef.transpose(1, 2), x, beta=scale)
    # Query logits of the trained networks.
    inputs = nodes if prop is not None else nodes[:, num_support:]
    h = torch.baddbmm(b1.unsqueeze(1), inputs, w1.transpose(1, 2)).clamp_min_(0)
    w2 = fc2.matrix()
    z = torch.baddbmm(b2.unsqueeze(1), h, w2.transpose(1, 2)).add_(inputs)
    if prop is not None:
        z = torch.bmm(prop[:, num_support:], z)
    return torch.baddbmm(bc.unsqueeze(1), z, wc.transpose(1, 2))


def train_episode_nets(
    support: Tensor,
    support_labels: Tensor,
    query: Tensor,
    way: int,
    config: EpisodeNetConfig | None = None,
    *,
    params: Mapping[str, Tensor] | None = None,
    generator: torch.Generator | None = None,
    episodes_per_chunk: int | None = None,
    memory_budget: int = _DEFAULT_MEMORY_BUDGET,
    node_basis: bool | None = None,
    low_rank_fc2: bool | None = None,
    progress: bool = False,
) -> Tensor:
    r"""Trains one network per episode (batched) and returns the query logits.

    The network of the Diff-ResNet few-shot code, on the nodes
    :math:`X = [X_S; X_Q]` (support first) of one episode:

    .. math::
        Z &= X + \operatorname{ReLU}(X W_1^\top + \mathbf{b}_1) W_2^\top
        + \mathbf{b}_2,

        Z &\leftarrow Z - \gamma L Z \quad (\text{layer\_num times}),
        \qquad L = \operatorname{diag}(W \mathbf{1}) - W,

        O &= Z W_c^\top + \mathbf{b}_c,

    with :math:`W` = :func:`~diffresnet_pyg.nn.knn.gaussian_weight_matrix`
    of :math:`X` (:obj:`n_top`, :obj:`sigma`). It is trained for
    :obj:`epochs` full-batch steps on the loss

    .. math::
        \mathcal{L} = \frac{1}{|S|} \sum_{i \in S}
        \mathrm{CE}(\mathbf{o}_i, y_i)
        + \mu \sum_{i,j} W_{ij} \lVert \mathbf{o}_i - \mathbf{o}_j \rVert^2

    by :class:`torch.optim.SGD` (:obj:`lr`, :obj:`momentum`,
    :obj:`weight_decay` on all parameters) with a
    :class:`~torch.optim.lr_scheduler.MultiStepLR` schedule
    (:obj:`milestones`, :obj:`gamma`), and returns :math:`O_Q`. Variants:
    convection (:obj:`layer_num=0`, :obj:`mu=0`), external
    convection-diffusion (:obj:`mu > 0`) and internal = Diff-ResNet
    (:obj:`layer_num > 0`).

    Each episode's result equals training it alone (up to rounding): the
    :math:`B` networks are stacked weights, the gradients are written out
    by hand (the gradient of episode :math:`b` is that of its own loss) and
    the SGD update is :class:`torch.optim.SGD`'s (the gradients are
    accumulated straight into the momentum buffers, so only the order of
    floating-point additions differs). Exact rewrites keep it
    fast: the :obj:`layer_num` diffusion steps are one product with
    :math:`P = (I - \gamma L)^\mathrm{layer\_num}`
    (:func:`diffusion_operator`), of which only the rows the loss sees are
    used during training; the classifier and :math:`W_2` act on :math:`P_S
    \operatorname{ReLU}(\cdot)` (:math:`|S|` rows) instead of all nodes; with
    no diffusion and :obj:`mu=0` only the support nodes are computed; and
    with :obj:`node_basis` :math:`W_1` is kept as :math:`a_t W_1^{(0)} +
    A_t X` (the SGD gradient :math:`\partial \mathcal{L} / \partial W_1 =
    G^\top X` lies in the row space of :math:`X`), so a step costs
    :math:`O(n^2 d)` instead of :math:`O(n d^2)`; with :obj:`low_rank_fc2`
    :math:`W_2` is kept as :math:`c_t W_2^{(0)} + \sum_{k<t} \alpha_k G_k`
    over its past rank-:math:`|S|` gradients :math:`G_k` (SGD is linear, and
    :math:`c_t, \alpha_k` are the same for all episodes), which replaces the
    :math:`O(d^2)` update passes per step by products with the history.

    Episodes are processed in chunks of :obj:`episodes_per_chunk` (by default
    as many as fit in :obj:`memory_budget` bytes of working memory by a
    generous estimate, e.g. 631 episodes of 80 nodes at :math:`d = 64`, 29 at
    :math:`d = 640` or 8 at :math:`d = 1280` in float32 with the 512 MiB
    default). When :obj:`params` is :obj:`None` the initial weights are drawn
    chunk by chunk, so memory stays bounded for any :math:`B`.

    Args:
        support (torch.Tensor): Support features :math:`(B, S, d)`.
        support_labels (torch.Tensor): Integer labels :math:`(B, S)` in
            :math:`[0, \mathrm{way})`.
        query (torch.Tensor): Query features :math:`(B, Q, d)`.
        way (int): The number of classes (:math:`\geq 2`).
        config (EpisodeNetConfig, optional): The hyperparameters.
            (default: :obj:`EpisodeNetConfig()`)
        params (dict[str, torch.Tensor], optional): Initial weights as
            returned by :func:`init_episode_nets` (not modified).
            (default: :obj:`None`)
        generator (torch.Generator, optional): Used to draw the initial
            weights with :func:`init_episode_nets` chunk by chunk when
            :obj:`params` is :obj:`None` (the same weights as drawing all
            :math:`B` at once). (default: :obj:`None`)
        episodes_per_chunk (int, optional): Episodes trained together.
            (default: :obj:`None`, from :obj:`memory_budget`)
        memory_budget (int, optional): Bytes of working memory per chunk when
            :obj:`episodes_per_chunk` is :obj:`None`.
            (default: :obj:`2**29`)
        node_basis (bool, optional): Keep :math:`W_1` in the row space of the
            nodes during training. :obj:`None` uses it when the nodes that
            enter the loss (all nodes, or only the support for convection)
            are fewer than :math:`2d`. (default: :obj:`None`)
        low_rank_fc2 (bool, optional): Keep :math:`W_2` as its initial value
            plus the history of its (low-rank) gradients instead of a dense
            matrix. :obj:`None` uses it when :math:`2 r \cdot \mathrm{epochs}
            < 3 d` for :math:`r` loss rows (:math:`|S|`, or all nodes when
            :obj:`mu > 0`). (default: :obj:`None`)
        progress (bool, optional): Show a progress bar over the chunks.
            (default: :obj:`False`)

    Returns:
        torch.Tensor: Query logits :math:`(B, Q, \mathrm{way})`.

    Raises:
        ValueError: On mismatched shapes, labels outside
            :math:`[0, \mathrm{way})`, :obj:`way < 2`, neither :obj:`params`
            nor :obj:`generator` given, :obj:`params` with missing keys or
            wrong shapes, or (from
            :func:`~diffresnet_pyg.nn.knn.gaussian_weight_matrix`) fewer than
            :obj:`n_top` nodes or duplicate points.
        TypeError: On a wrong type of :obj:`config`, :obj:`generator` or the
            tensors' dtypes.

    Example:
        >>> import torch
        >>> from diffresnet_pyg.fewshot.methods import EpisodeNetConfig
        >>> from diffresnet_pyg.fewshot.methods import train_episode_nets
        >>> g = torch.Generator().manual_seed(0)
        >>> centers = 3 * torch.eye(3, 8)
        >>> support = centers + 0.1 * torch.randn(2, 3, 8, generator=g)
        >>> query = centers.repeat_interleave(4, 0) + 0.1 * torch.randn(
        ...     2, 12, 8, generator=g)
        >>> labels = torch.arange(3).expand(2, 3)
        >>> config = EpisodeNetConfig(layer_num=2, epochs=20, milestones=(10,))
        >>> logits = train_episode_nets(support, labels, query, 3, config,
        ...                             generator=g)
        >>> logits.argmax(-1)
        tensor([[0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2],
                [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]])
    """
    where = "train_episode_nets"
    _check_episodes(where, support, support_labels, query, way, every_class=False)
    config = EpisodeNetConfig() if config is None else config
    if not isinstance(config, EpisodeNetConfig):
        raise TypeError(
            f"{where}: 'config' must be an EpisodeNetConfig, got "
            f"{type(config).__name__}"
        )
    num_episodes, num_support, dim = support.shape
    num_nodes = num_support + query.size(1)
    if params is not None:
        params = _check_params(params, num_episodes, dim, way, support)
    elif generator is None:
        raise ValueError(
            f"{where}: pass 'params' (see init_episode_nets) or a "
            "'generator' to draw them from"
        )
    elif not isinstance(generator, torch.Generator):
        raise TypeError(
            f"{where}: 'generator' must be a torch.Generator, got "
            f"{type(generator).__name__}"
        )
    for name, flag in (("node_basis", node_basis), ("low_rank_fc2", low_rank_fc2)):
        if flag is not None and not isinstance(flag, bool):
            raise TypeError(f"{where}: '{name}' must be None or a bool, got {flag!r}")
    if episodes_per_chunk is None:
        _check_int("memory_budget", memory_budget, 1, where)
        per_episode = _episode_bytes(num_nodes, dim, way, support.element_size())
        episodes_per_chunk = max(1, memory_budget // per_episode)
    _check_int("episodes_per_chunk", episodes_per_chunk, 1, where)
    logger.debug(
        "train_episode_nets: %d episodes in chunks of %d",
        num_episodes,
        episodes_per_chunk,
    )

    targets = _one_hot(support_labels, way, support.dtype)
    logits = []
    starts = range(0, num_episodes, episodes_per_chunk)
    for start in tqdm(starts, disable=not progress, desc="episode nets"):
        stop = min(start + episodes_per_chunk, num_episodes)
        if params is not None:
            chunk_params = {k: v[start:stop] for k, v in params.items()}
        else:  # generator was checked above
            chunk_params = init_episode_nets(
                stop - start, dim, way, generator, support.dtype
            )
        chunk_params = {k: v.to(device=support.device) for k, v in chunk_params.items()}
        nodes = torch.cat([support[start:stop], query[start:stop]], dim=1)
        logits.append(
            _train_chunk(
                nodes,
                num_support,
                targets[start:stop],
                config,
                chunk_params,
                node_basis,
                low_rank_fc2,
            )
        )
    if not logits:
        return query.new_zeros(0, query.size(1), way)
    return torch.cat(logits)

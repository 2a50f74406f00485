r"""The synthetic studies of Diff-ResNet, as functions that return data.

Two studies of section V.A of `Wang et al. (TPAMI 2024)
<https://arxiv.org/abs/2105.03155>`_, with the parameters of the authors'
scripts (github.com/shwangtangjun/Diff-ResNet, ``synthetic/``):

* **XOR collapse** (:func:`run_xor_diffusion`): pure diffusion
  :math:`x \leftarrow x - \tau (I - W) x` (:math:`\tau = 1`,
  :math:`n_{\mathrm{top}} = 20`, :math:`\sigma = 0.5`, :math:`W` built once
  from the initial points) on the four XOR discs for 200 steps. Each disc
  collapses towards a point and the ratio :math:`L / D` of the minimum
  inter-disc distance to the maximum disc diameter grows exponentially
  (Proposition 1). When no edge of :math:`W` joins two discs, :math:`W` is
  block diagonal and every block is row-stochastic, so the diameters decay
  like :math:`|\lambda_2|^t` with :math:`\lambda_2` the second largest
  eigenvalue (in modulus) of the slowest block, and :math:`\log(L/D)` grows
  with asymptotic slope :math:`-\log|\lambda_2|`; the study reports both
  the fitted and this predicted slope.
* **Tiny nets** (:func:`run_net_study`): the 18-parameter network
  :class:`SyntheticNet` (``fc1`` 2->2, ReLU, ``fc2`` 2->2 with a residual
  connection, :math:`r` diffusion steps, a 2->2 classifier) trained briefly
  with SGD on two circles, two moons and two spirals, with :math:`r` layers
  and with none, from the same initial weights.

:func:`make_figures` runs everything and writes the figures and a
``results.json``.

Differences from the authors' scripts (all deliberate, none changes the
method): our own seeded generators (so the exact points and initial weights
differ); the authors build a fresh ``SGD(momentum=0.9)`` for every step, so its
momentum buffer never acts and each step is a plain SGD step with weight
decay, which is what we run; the diffusion runs as sparse products with the
library's :class:`~diffresnet_pyg.nn.DiffusionConv` instead of dense
:math:`N \times N` products.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Linear, Module
from tqdm.auto import tqdm

from diffresnet_pyg.evaluate import Evaluator
from diffresnet_pyg.synthetic.datasets import (
    SyntheticData,
    make_two_circles,
    make_two_moons,
    make_two_spirals,
    make_xor_discs,
    resolve_generator,
)
from diffresnet_pyg.synthetic.graph import (
    diffuse,
    gaussian_kernel_graph,
    gaussian_kernel_weights,
    synthetic_diffusion_conv,
)
from diffresnet_pyg.synthetic.metrics import (
    cluster_geometry,
    fit_log_slope,
    is_linearly_separable,
    linear_separability,
)

__all__ = [
    "NET_STUDIES",
    "XOR_SNAPSHOT_STEPS",
    "NetRunResult",
    "NetStudyConfig",
    "NetStudyResult",
    "SyntheticNet",
    "XorDiffusionResult",
    "derive_seeds",
    "make_figures",
    "run_net_study",
    "run_xor_diffusion",
    "train_synthetic_net",
]

logger = logging.getLogger(__name__)

XOR_SNAPSHOT_STEPS: tuple[int, ...] = (0, 1, 10, 20, 200)
"""Steps of the XOR diffusion shown in the snapshot figure."""


def derive_seeds(seed: int, count: int) -> list[int]:
    """``count`` integer seeds drawn from a generator seeded with ``seed``.

    Args:
        seed: The master seed (``>= 0``).
        count: How many seeds to draw.

    Returns:
        Seeds in :math:`[0, 2^{31} - 1)`.

    Example:
        >>> derive_seeds(0, 3) == derive_seeds(0, 3)
        True
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"'count' must be an integer >= 0, got {count!r}")
    master = resolve_generator(seed)
    return torch.randint(0, 2**31 - 1, (count,), generator=master).tolist()


# ---------------------------------------------------------------------------
# XOR: pure diffusion
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class XorDiffusionResult:
    r"""Pure diffusion on the XOR discs, recorded at every step.

    Attributes:
        data: The initial points (``cluster`` = disc).
        trajectory: The points at steps ``0 .. num_steps``, shape
            ``[num_steps + 1, N, 2]``.
        distance: :math:`L_t`, the minimum inter-disc distance per step.
        diameter: :math:`D_t`, the maximum disc diameter per step.
        disc_diameters: Each disc's diameter per step, shape
            ``[num_steps + 1, 4]``.
        ratio: :math:`L_t / D_t` per step.
        log_slope: Least-squares slope of :math:`\log(L_t/D_t)` over all steps.
        log_intercept: Its intercept.
        early_slope: The same fit over steps ``0 .. early_steps``.
        asymptotic_slope: The same fit over the second half of the steps.
        predicted_slope: :math:`-\log|\lambda_2|` with :math:`|\lambda_2|` the
            largest second eigenvalue modulus of the diagonal disc blocks of
            the step matrix :math:`(1 - \tau) I + \tau W` (the asymptotic
            slope when ``cross_disc_edges == 0``).
        cross_disc_edges: Non-zero entries of :math:`W` joining two discs
            (0 is the structured-data case of the theory).
        params: The study's parameters.
    """

    data: SyntheticData
    trajectory: Tensor
    distance: list[float]
    diameter: list[float]
    disc_diameters: Tensor
    ratio: list[float]
    log_slope: float
    log_intercept: float
    early_slope: float
    asymptotic_slope: float
    predicted_slope: float
    cross_disc_edges: int
    params: dict[str, Any]

    def to_dict(self, per_step: bool = True) -> dict[str, Any]:
        """JSON-ready numbers (no point coordinates).

        Args:
            per_step: Include the per-step series (ratio, L, D, disc
                diameters), not only the scalars.
        """
        out = {
            "params": self.params,
            "cross_disc_edges": self.cross_disc_edges,
            "initial_distance_L": self.distance[0],
            "initial_diameter_D": self.diameter[0],
            "initial_ratio": self.ratio[0],
            "final_ratio": self.ratio[-1],
            "first_step_ratio_above_1": next(
                (t for t, r in enumerate(self.ratio) if r > 1.0), None
            ),
            "final_distance_L": self.distance[-1],
            "final_diameter_D": self.diameter[-1],
            "log_slope_per_step": self.log_slope,
            "log_intercept": self.log_intercept,
            "growth_factor_per_step": math.exp(self.log_slope),
            "early_log_slope_per_step": self.early_slope,
            "asymptotic_log_slope_per_step": self.asymptotic_slope,
            "predicted_asymptotic_log_slope": self.predicted_slope,
        }
        if per_step:
            out["ratio"] = self.ratio
            out["distance_L"] = self.distance
            out["diameter_D"] = self.diameter
            out["disc_diameters"] = self.disc_diameters.tolist()
        return out


def _slowest_block_rate(weight: Tensor, cluster: Tensor, tau: float) -> float:
    """``-log |lambda_2|`` of the slowest diagonal block of the step matrix."""
    eye = torch.eye(weight.size(0), dtype=weight.dtype, device=weight.device)
    step = (1.0 - tau) * eye + tau * weight
    modulus = 0.0
    for k in cluster.unique().tolist():
        idx = (cluster == k).nonzero().flatten()
        block = step[idx][:, idx].double().cpu().numpy()
        eig = np.sort(np.abs(np.linalg.eigvals(block)))[::-1]
        if eig.size > 1:
            modulus = max(modulus, float(eig[1]))
    return -math.log(modulus) if modulus > 0 else math.inf


def run_xor_diffusion(
    *,
    num_per_disc: int = 100,
    n_top: int = 20,
    sigma: float = 0.5,
    tau: float = 1.0,
    num_steps: int = 200,
    early_steps: int = 20,
    seed: int | torch.Generator = 0,
    progress: bool = False,
) -> XorDiffusionResult:
    r"""Pure diffusion on the four XOR discs (float64).

    Builds :math:`W` once from the initial points
    (:func:`~diffresnet_pyg.synthetic.gaussian_kernel_weights`), applies
    :math:`x \leftarrow x - \tau (I - W) x` ``num_steps`` times and records
    :math:`L_t`, :math:`D_t` and :math:`L_t / D_t` after every step.

    Args:
        num_per_disc: Points per disc. (default: :obj:`100`)
        n_top: Entries kept per row of :math:`W`. (default: :obj:`20`)
        sigma: Kernel bandwidth. (default: :obj:`0.5`)
        tau: Diffusion step size. (default: :obj:`1.0`)
        num_steps: Number of steps (``>= 1``). (default: :obj:`200`)
        early_steps: Steps of the early-growth fit. (default: :obj:`20`)
        seed: Seed of the XOR points. (default: :obj:`0`)
        progress: Show a progress bar. (default: :obj:`False`)

    Returns:
        The :class:`XorDiffusionResult`.

    Example:
        >>> res = run_xor_diffusion(num_per_disc=30, n_top=8, num_steps=10)
        >>> res.ratio[0] < 1 < res.ratio[-1], res.log_slope > 0
        (True, True)
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"'num_steps' must be an integer >= 1, got {num_steps!r}")
    if (
        isinstance(early_steps, bool)
        or not isinstance(early_steps, int)
        or early_steps < 1
    ):
        raise ValueError(f"'early_steps' must be an integer >= 1, got {early_steps!r}")
    data = make_xor_discs(num_per_disc, seed=seed)
    weight = gaussian_kernel_weights(data.x, n_top=n_top, sigma=sigma)
    cross = int(((weight > 0) & (data.cluster[:, None] != data.cluster[None])).sum())
    trajectory = diffuse(data.x, weight, num_steps, tau=tau, return_trajectory=True)
    distance, diameter, discs = [], [], []
    for x in tqdm(trajectory, disable=not progress, desc="XOR diffusion", leave=False):
        dist, diam = cluster_geometry(x, data.cluster)
        discs.append(diam)
        distance.append(dist)
        diameter.append(float(diam.max()))
    ratio = [
        dist / diam if diam > 0 else math.inf
        for dist, diam in zip(distance, diameter, strict=True)
    ]
    finite = [t for t, r in enumerate(ratio) if math.isfinite(r)]
    slope, intercept = fit_log_slope([ratio[t] for t in finite], finite)
    early = [t for t in finite if t <= early_steps]
    early_slope = fit_log_slope([ratio[t] for t in early], early)[0]
    late = [t for t in finite if t >= num_steps // 2]
    asymptotic = (
        fit_log_slope([ratio[t] for t in late], late)[0] if len(late) > 1 else slope
    )
    result = XorDiffusionResult(
        data=data,
        trajectory=trajectory,
        distance=distance,
        diameter=diameter,
        disc_diameters=torch.stack(discs),
        ratio=ratio,
        log_slope=slope,
        log_intercept=intercept,
        early_slope=early_slope,
        asymptotic_slope=asymptotic,
        predicted_slope=_slowest_block_rate(weight, data.cluster, tau),
        cross_disc_edges=cross,
        params={
            "num_per_disc": num_per_disc,
            "diameter": 1.5,
            "n_top": n_top,
            "sigma": sigma,
            "tau": tau,
            "num_steps": num_steps,
            "seed": seed if isinstance(seed, int) else None,
        },
    )
    logger.info(
        "XOR diffusion (seed %s, %d inter-disc edges): L/D %.3f -> %.4g in %d "
        "steps, log-slope %.4f per step (asymptotic %.4f, predicted %.4f)",
        result.params["seed"],
        cross,
        ratio[0],
        ratio[-1],
        num_steps,
        slope,
        asymptotic,
        result.predicted_slope,
    )
    return result


# ---------------------------------------------------------------------------
# The 18-parameter network
# ---------------------------------------------------------------------------


class SyntheticNet(Module):
    r"""The tiny residual network of the synthetic examples (18 parameters).

    .. math::
        h = x + \mathrm{fc}_2(\mathrm{ReLU}(\mathrm{fc}_1(x))), \qquad
        z = (I - \tau (I - W))^{r} h, \qquad
        \mathrm{logits} = \mathrm{classifier}(z),

    with ``fc1``, ``fc2`` and ``classifier`` linear 2->2 maps and the
    diffusion run by :func:`~diffresnet_pyg.synthetic.synthetic_diffusion_conv`
    on the graph given to :meth:`forward` (never stored in the module).
    ``num_layers=0`` is the same net without diffusion.

    Args:
        num_layers (int): Diffusion steps :math:`r \geq 0`.
        tau (float, optional): Diffusion step size. (default: :obj:`1.0`)

    Shapes:
        - **input:** points :math:`(N, 2)`, the graph of
          :func:`~diffresnet_pyg.synthetic.gaussian_kernel_graph`
        - **output:** logits :math:`(N, 2)` and features :math:`z` :math:`(N, 2)`

    Example:
        >>> net = SyntheticNet(num_layers=3)
        >>> sum(p.numel() for p in net.parameters())
        18
        >>> x = torch.randn(10, 2)
        >>> logits, feats = net(x, *gaussian_kernel_graph(x, n_top=3))
        >>> logits.shape, feats.shape
        (torch.Size([10, 2]), torch.Size([10, 2]))
    """

    def __init__(self, num_layers: int, tau: float = 1.0) -> None:
        super().__init__()
        self.fc1 = Linear(2, 2)
        self.fc2 = Linear(2, 2)
        self.classifier = Linear(2, 2)
        self.diffusion = synthetic_diffusion_conv(num_layers, tau)

    @property
    def num_layers(self) -> int:
        """Number of diffusion steps."""
        return self.diffusion.num_steps

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        r"""Draw every weight and bias from :math:`U(-1/\sqrt{2}, 1/\sqrt{2})`.

        The distribution of :class:`torch.nn.Linear`'s default initialization,
        drawn from ``generator`` (the global generator when ``None``).
        """
        with torch.no_grad():
            for lin in (self.fc1, self.fc2, self.classifier):
                bound = 1.0 / math.sqrt(lin.in_features)
                for p in (lin.weight, lin.bias):
                    p.uniform_(-bound, bound, generator=generator)

    def forward(
        self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Logits and the 2-D features before the classifier."""
        h = x + self.fc2(F.relu(self.fc1(x)))
        z = self.diffusion(h, edge_index, edge_weight)
        return self.classifier(z), z

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(num_layers={self.num_layers}, "
            f"tau={self.diffusion.step_size})"
        )


@dataclasses.dataclass(frozen=True)
class NetStudyConfig:
    """One tiny-net study: data set, graph, depth and SGD schedule.

    Attributes:
        name: ``"two_circles"``, ``"two_moons"`` or ``"two_spirals"``.
        n_top: Entries kept per row of :math:`W`.
        num_layers: Diffusion steps of the "with diffusion" net.
        lr: SGD learning rate.
        num_epochs: Full-batch SGD steps.
        weight_decay: SGD weight decay (on all 18 parameters).
        num_per_class: Points per class.
        sigma: Kernel bandwidth.
        tau: Diffusion step size.
    """

    name: str
    n_top: int
    num_layers: int
    lr: float
    num_epochs: int = 20
    weight_decay: float = 5e-4
    num_per_class: int = 500
    sigma: float = 0.5
    tau: float = 1.0


_GENERATORS: dict[str, Callable[..., SyntheticData]] = {
    "two_circles": make_two_circles,
    "two_moons": make_two_moons,
    "two_spirals": make_two_spirals,
}

NET_STUDIES: dict[str, NetStudyConfig] = {
    "two_circles": NetStudyConfig("two_circles", n_top=50, num_layers=200, lr=1.0),
    "two_moons": NetStudyConfig("two_moons", n_top=25, num_layers=60, lr=1.0),
    "two_spirals": NetStudyConfig("two_spirals", n_top=25, num_layers=900, lr=0.8),
}
"""The authors' settings (data noise is each generator's default)."""


@dataclasses.dataclass
class NetRunResult:
    """One training run of :class:`SyntheticNet`.

    Attributes:
        num_layers: Diffusion steps (0 = without diffusion).
        init_seed: Seed of the initial weights (``None``: global generator).
        accuracy: Training accuracy after ``0 .. num_epochs`` SGD steps.
        loss: Cross-entropy after ``0 .. num_epochs`` SGD steps.
        features: The final features before the classifier, shape ``[N, 2]``.
        feature_linear_accuracy: :func:`linear_separability` of ``features``.
        features_separable: :func:`is_linearly_separable` of ``features``.
        seconds: Wall time of the run.
    """

    num_layers: int
    init_seed: int | None
    accuracy: list[float]
    loss: list[float]
    features: Tensor
    feature_linear_accuracy: float
    features_separable: bool
    seconds: float

    @property
    def final_accuracy(self) -> float:
        """Training accuracy after the last SGD step."""
        return self.accuracy[-1]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready numbers (no features)."""
        return {
            "num_layers": self.num_layers,
            "init_seed": self.init_seed,
            "final_accuracy": self.final_accuracy,
            "best_accuracy": max(self.accuracy),
            "feature_linear_accuracy": self.feature_linear_accuracy,
            "features_linearly_separable": self.features_separable,
            "accuracy": self.accuracy,
            "loss": self.loss,
            "seconds": self.seconds,
        }


def train_synthetic_net(
    data: SyntheticData,
    edge_index: Tensor,
    edge_weight: Tensor,
    *,
    num_layers: int,
    lr: float,
    num_epochs: int = 20,
    weight_decay: float = 5e-4,
    tau: float = 1.0,
    init_seed: int | None = 0,
    dtype: torch.dtype = torch.float32,
    progress: bool = False,
) -> NetRunResult:
    r"""Train :class:`SyntheticNet` full batch with plain SGD, as the authors.

    ``num_epochs`` steps :math:`\theta \leftarrow \theta - \eta (\nabla
    \mathrm{CE} + \lambda \theta)` on all points; the accuracy is the
    training accuracy (the studies have no held-out points), recorded before
    the first and after every step.

    Args:
        data: The points and labels.
        edge_index: Graph of :func:`~diffresnet_pyg.synthetic.gaussian_kernel_graph`.
        edge_weight: Its weights.
        num_layers: Diffusion steps (0 = without diffusion).
        lr: Learning rate :math:`\eta`.
        num_epochs: SGD steps. (default: :obj:`20`)
        weight_decay: :math:`\lambda`. (default: :obj:`5e-4`)
        tau: Diffusion step size. (default: :obj:`1.0`)
        init_seed: Seed of the initial weights; ``None`` keeps PyTorch's
            default initialization drawn from the global generator when the
            net is built (what the authors' scripts do after
            ``torch.manual_seed``). (default: :obj:`0`)
        dtype: Training dtype. (default: :obj:`torch.float32`)
        progress: Show a progress bar. (default: :obj:`False`)

    Returns:
        The :class:`NetRunResult`.
    """
    if (
        isinstance(num_epochs, bool)
        or not isinstance(num_epochs, int)
        or num_epochs < 0
    ):
        raise ValueError(f"'num_epochs' must be an integer >= 0, got {num_epochs!r}")
    if not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"'lr' must be a finite number > 0, got {lr!r}")
    start = time.perf_counter()
    model = SyntheticNet(num_layers, tau).to(dtype)
    if init_seed is not None:
        model.reset_parameters(resolve_generator(init_seed))
    x = data.x.to(dtype)
    weight = edge_weight.to(dtype)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=weight_decay)
    accuracy, losses = [], []
    evaluator = Evaluator("acc")
    bar = tqdm(range(num_epochs + 1), disable=not progress, desc="SGD", leave=False)
    for epoch in bar:
        with torch.set_grad_enabled(epoch < num_epochs):
            logits, features = model(x, edge_index, weight)
            loss = F.cross_entropy(logits, data.y)
        scores = {"y_true": data.y, "y_pred": logits.detach()}
        accuracy.append(evaluator.eval(scores)["acc"])
        losses.append(float(loss.detach()))
        if epoch < num_epochs:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    features = features.detach()
    return NetRunResult(
        num_layers=num_layers,
        init_seed=init_seed,
        accuracy=accuracy,
        loss=losses,
        features=features,
        feature_linear_accuracy=linear_separability(features, data.y),
        features_separable=is_linearly_separable(features, data.y),
        seconds=time.perf_counter() - start,
    )


@dataclasses.dataclass
class NetStudyResult:
    """The same net trained without and with diffusion on one data set.

    Attributes:
        config: The study's settings.
        data_seed: Seed of the points.
        data: The points.
        without_diffusion: The run with ``num_layers=0``.
        with_diffusion: The run with ``config.num_layers``.
        diffused_input_linear_accuracy: :func:`linear_separability` of the raw
            points after ``config.num_layers`` diffusion steps (no net), a
            reference for how much diffusion alone separates.
    """

    config: NetStudyConfig
    data_seed: int
    data: SyntheticData
    without_diffusion: NetRunResult
    with_diffusion: NetRunResult
    diffused_input_linear_accuracy: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready numbers."""
        return {
            "data_seed": self.data_seed,
            "diffused_input_linear_accuracy": self.diffused_input_linear_accuracy,
            "without_diffusion": self.without_diffusion.to_dict(),
            "with_diffusion": self.with_diffusion.to_dict(),
        }


def run_net_study(
    config: NetStudyConfig | str,
    *,
    data_seed: int = 0,
    init_seed: int = 0,
    progress: bool = False,
) -> NetStudyResult:
    r"""Train :class:`SyntheticNet` without and with diffusion on one data set.

    Both nets start from the same weights (``init_seed``) and follow the same
    SGD schedule; only the number of diffusion layers differs.

    Args:
        config: A :class:`NetStudyConfig` or a key of :data:`NET_STUDIES`.
        data_seed: Seed of the points. (default: :obj:`0`)
        init_seed: Seed of the initial weights. (default: :obj:`0`)
        progress: Show progress bars. (default: :obj:`False`)

    Returns:
        The :class:`NetStudyResult`.

    Example:
        >>> import dataclasses
        >>> cfg = dataclasses.replace(
        ...     NET_STUDIES["two_moons"], num_per_class=40, n_top=6, num_layers=5,
        ...     num_epochs=2,
        ... )
        >>> res = run_net_study(cfg)
        >>> len(res.with_diffusion.accuracy), res.without_diffusion.num_layers
        (3, 0)
    """
    if isinstance(config, str):
        if config not in NET_STUDIES:
            raise ValueError(
                f"Unknown study {config!r}; allowed: {', '.join(NET_STUDIES)}"
            )
        config = NET_STUDIES[config]
    if config.name not in _GENERATORS:
        raise ValueError(
            f"Unknown data set {config.name!r}; allowed: {', '.join(_GENERATORS)}"
        )
    data = _GENERATORS[config.name](config.num_per_class, seed=data_seed)
    edge_index, edge_weight = gaussian_kernel_graph(
        data.x, n_top=config.n_top, sigma=config.sigma
    )
    runs = []
    for num_layers in (0, config.num_layers):
        runs.append(
            train_synthetic_net(
                data,
                edge_index,
                edge_weight,
                num_layers=num_layers,
                lr=config.lr,
                num_epochs=config.num_epochs,
                weight_decay=config.weight_decay,
                tau=config.tau,
                init_seed=init_seed,
                progress=progress,
            )
        )
        logger.info(
            "%s (data seed %d, init seed %d), %d diffusion layers: accuracy "
            "%.3f after %d SGD steps (%.1fs)",
            config.name,
            data_seed,
            init_seed,
            num_layers,
            runs[-1].final_accuracy,
            config.num_epochs,
            runs[-1].seconds,
        )
    with torch.no_grad():
        diffused = synthetic_diffusion_conv(config.num_layers, config.tau)(
            data.x, edge_index, edge_weight
        )
    return NetStudyResult(
        config=config,
        data_seed=data_seed,
        data=data,
        without_diffusion=runs[0],
        with_diffusion=runs[1],
        diffused_input_linear_accuracy=linear_separability(diffused, data.y),
    )


# ---------------------------------------------------------------------------
# Everything at once
# ---------------------------------------------------------------------------


def _summary(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=float)
    return {
        "mean": float(arr.mean()),
        "min": float(arr.min()),
        "max": float(arr.max()),
        "count": int(arr.size),
    }


def make_figures(
    output_dir: str | Path,
    *,
    seed: int = 0,
    num_seeds: int = 5,
    num_xor_seeds: int = 10,
    progress: bool = True,
) -> list[Path]:
    r"""Run both synthetic studies and write every figure and ``results.json``.

    Writes into ``output_dir`` (created if needed):

    * ``xor_diffusion.png``: the XOR points at steps
      :data:`XOR_SNAPSHOT_STEPS` (the featured XOR seed);
    * ``xor_ratio.png``: :math:`L_t / D_t` (log scale) for every XOR seed with
      the fitted exponential of the featured one, and its :math:`L_t`,
      :math:`D_t` and disc diameters;
    * ``two_circles.png``, ``two_moons.png``, ``two_spirals.png``: the data
      and the learned features without and with diffusion (first seed);
    * ``training_accuracy.png``: training accuracy per SGD step, every seed;
    * ``results.json``: every number, seed and setting.

    Seeds: ``derive_seeds(seed, num_xor_seeds + 2 * num_seeds)`` gives the XOR
    seeds, then per repetition a data seed and an init seed (shared by the
    three data sets and by the with/without runs); all are recorded. The
    featured XOR seed is the first one whose :math:`W` has no inter-disc edge
    (the structured-data case of Proposition 1); the others are plotted too.

    Args:
        output_dir: Folder of the outputs.
        seed: Master seed. (default: :obj:`0`)
        num_seeds: Repetitions of each tiny-net study. (default: :obj:`5`)
        num_xor_seeds: XOR data sets diffused. (default: :obj:`10`)
        progress: Show progress bars. (default: :obj:`True`)

    Returns:
        The paths written (figures, then ``results.json``).
    """
    from diffresnet_pyg.synthetic import plots

    for name, value in (("num_seeds", num_seeds), ("num_xor_seeds", num_xor_seeds)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"'{name}' must be an integer >= 1, got {value!r}")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    seeds = derive_seeds(seed, num_xor_seeds + 2 * num_seeds)
    xor_seeds, rest = seeds[:num_xor_seeds], seeds[num_xor_seeds:]
    pairs = list(zip(rest[0::2], rest[1::2], strict=True))

    xors = [
        run_xor_diffusion(seed=s)
        for s in tqdm(xor_seeds, disable=not progress, desc="XOR diffusion")
    ]
    featured = next((r for r in xors if r.cross_disc_edges == 0), xors[0])
    paths = [
        plots.plot_xor_snapshots(
            featured, out / "xor_diffusion.png", XOR_SNAPSHOT_STEPS
        ),
        plots.plot_xor_ratio(featured, out / "xor_ratio.png", others=xors),
    ]

    studies: dict[str, list[NetStudyResult]] = {name: [] for name in NET_STUDIES}
    jobs = [(name, pair) for pair in pairs for name in NET_STUDIES]
    for name, (data_seed, init_seed) in tqdm(
        jobs, disable=not progress, desc="tiny nets"
    ):
        studies[name].append(
            run_net_study(name, data_seed=data_seed, init_seed=init_seed)
        )
    for name, results in studies.items():
        paths.append(plots.plot_net_features(results[0], out / f"{name}.png"))
    paths.append(plots.plot_training_curves(studies, out / "training_accuracy.png"))

    nets: dict[str, Any] = {}
    for name, results in studies.items():
        nets[name] = {
            "config": dataclasses.asdict(results[0].config),
            "summary": {
                key: {
                    "final_accuracy": _summary(
                        [getattr(r, key).final_accuracy for r in results]
                    ),
                    "feature_linear_accuracy": _summary(
                        [getattr(r, key).feature_linear_accuracy for r in results]
                    ),
                    "features_linearly_separable": sum(
                        getattr(r, key).features_separable for r in results
                    ),
                }
                for key in ("without_diffusion", "with_diffusion")
            },
            "diffused_input_linear_accuracy": _summary(
                [r.diffused_input_linear_accuracy for r in results]
            ),
            "runs": [r.to_dict() for r in results],
        }
    results_path = out / "results.json"
    payload = {
        "master_seed": seed,
        "num_seeds": num_seeds,
        "xor_seeds": xor_seeds,
        "seed_pairs_data_init": pairs,
        "torch_threads": torch.get_num_threads(),
        "seconds": time.perf_counter() - start,
        "xor": featured.to_dict(),
        "xor_all_seeds": [r.to_dict(per_step=False) for r in xors],
        "nets": nets,
    }
    results_path.write_text(json.dumps(payload, indent=2) + "\n")
    paths.append(results_path)
    logger.info("Synthetic studies written to %s in %.1fs", out, payload["seconds"])
    return paths

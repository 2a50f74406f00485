"""PNG figures of the synthetic studies (matplotlib, Agg canvas, no display).

Every function draws on its own :class:`matplotlib.figure.Figure` (no
``pyplot`` state), writes one PNG and returns its path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

if TYPE_CHECKING:
    from diffresnet_pyg.synthetic.studies import NetStudyResult, XorDiffusionResult

__all__ = [
    "plot_net_features",
    "plot_training_curves",
    "plot_xor_ratio",
    "plot_xor_snapshots",
]

CLASS_COLORS: tuple[str, str] = ("tab:red", "tab:blue")
"""Colour of class 0 and class 1 (the authors use red and blue)."""


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=110)
    return path


def _scatter(ax: Axes, x: Tensor, y: Tensor) -> None:
    points = x.detach().cpu().double().numpy()
    labels = y.cpu().numpy()
    for c, color in enumerate(CLASS_COLORS):
        sel = labels == c
        ax.scatter(points[sel, 0], points[sel, 1], s=4, c=color, label=f"class {c}")


def _layers(result: NetStudyResult) -> str:
    return f"{result.with_diffusion.num_layers} layers"


def plot_xor_snapshots(
    result: XorDiffusionResult, path: str | Path, steps: Sequence[int]
) -> Path:
    """The XOR points at the given diffusion steps, side by side.

    Args:
        result: The output of :func:`~diffresnet_pyg.synthetic.run_xor_diffusion`.
        path: The PNG to write.
        steps: Steps to show (each ``<= num_steps``).

    Returns:
        ``path``.
    """
    num_steps = result.trajectory.size(0) - 1
    bad = [t for t in steps if not 0 <= t <= num_steps]
    if bad:
        raise ValueError(f"Steps {bad} are outside the recorded 0..{num_steps}")
    fig = Figure(figsize=(3.0 * len(steps), 3.3), layout="constrained")
    axes = fig.subplots(1, len(steps), squeeze=False)[0]
    for ax, t in zip(axes, steps, strict=True):
        _scatter(ax, result.trajectory[t], result.data.y)
        ax.set_xlim(-1.0, 3.0)
        ax.set_ylim(-1.0, 3.0)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"step {t}: L/D = {result.ratio[t]:.3g}")
    fig.suptitle(
        "Pure diffusion on XOR discs (x <- x - (I - W) x, n_top = "
        f"{result.params['n_top']}, sigma = {result.params['sigma']})"
    )
    return _save(fig, Path(path))


def plot_xor_ratio(
    result: XorDiffusionResult,
    path: str | Path,
    others: Sequence[XorDiffusionResult] = (),
) -> Path:
    r"""The ratio :math:`L_t/D_t` (log scale) and :math:`L_t`, :math:`D_t`.

    Args:
        result: The featured output of
            :func:`~diffresnet_pyg.synthetic.run_xor_diffusion`.
        path: The PNG to write.
        others: More runs (other seeds) drawn thin in the ratio panel, green
            when their :math:`W` has no inter-disc edge, orange otherwise.

    Returns:
        ``path``.
    """
    steps = np.arange(len(result.ratio))
    fig = Figure(figsize=(11.0, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    labelled = set()
    for other in others:
        if other is result:
            continue
        clean = other.cross_disc_edges == 0
        label = (
            "other seeds, no inter-disc edge"
            if clean
            else ("other seeds, inter-disc edges in W")
        )
        left.semilogy(
            np.arange(len(other.ratio)),
            other.ratio,
            lw=0.8,
            alpha=0.8,
            color="tab:green" if clean else "tab:orange",
            label=None if label in labelled else label,
        )
        labelled.add(label)
    left.semilogy(
        steps,
        result.ratio,
        lw=2.2,
        color="tab:blue",
        label=f"seed {result.params['seed']} (shown in the snapshots)",
    )
    fit = np.exp(result.log_intercept + result.log_slope * steps)
    left.semilogy(
        steps,
        fit,
        "--",
        color="k",
        label=f"fit exp({result.log_intercept:.2f} + {result.log_slope:.4f} t)",
    )
    left.axhline(1.0, color="grey", lw=0.8, ls=":")
    left.set_xlabel("diffusion step t")
    left.set_ylabel("min inter-disc distance / max disc diameter")
    left.set_title("Distance-diameter ratio L/D")
    left.legend(fontsize=8)

    right.semilogy(steps, result.distance, lw=2, label="L: min inter-disc distance")
    right.semilogy(steps, result.diameter, lw=2, label="D: max disc diameter")
    discs = result.disc_diameters.double().cpu().numpy()
    for k in range(discs.shape[1]):
        right.semilogy(steps, discs[:, k], lw=0.7, color="grey")
    if math.isfinite(result.predicted_slope):
        last = steps[-1]
        anchor = result.diameter[-1]
        pred = anchor * np.exp(-result.predicted_slope * (steps - last))
        half = steps >= last // 2
        right.semilogy(
            steps[half],
            pred[half],
            ":",
            color="k",
            label=f"|lambda_2|^t slope {-result.predicted_slope:.4f}",
        )
    right.set_xlabel("diffusion step t")
    right.set_title(f"seed {result.params['seed']}: L, D and each disc (grey)")
    right.legend()
    return _save(fig, Path(path))


def plot_net_features(result: NetStudyResult, path: str | Path) -> Path:
    """The data and the learned 2-D features without and with diffusion.

    Args:
        result: The output of :func:`~diffresnet_pyg.synthetic.run_net_study`.
        path: The PNG to write.

    Returns:
        ``path``.
    """
    cfg = result.config
    fig = Figure(figsize=(12.0, 4.2), layout="constrained")
    axes = fig.subplots(1, 3)
    _scatter(axes[0], result.data.x, result.data.y)
    axes[0].set_aspect("equal")
    axes[0].set_title(f"{cfg.name}: input ({result.data.x.size(0)} points)")
    for ax, run, label in (
        (axes[1], result.without_diffusion, "without diffusion"),
        (axes[2], result.with_diffusion, f"with diffusion ({_layers(result)})"),
    ):
        _scatter(ax, run.features, result.data.y)
        separable = "yes" if run.features_separable else "no"
        ax.set_title(
            f"{label}: net accuracy {100 * run.final_accuracy:.1f}%\n"
            f"features linearly separable: {separable} "
            f"(logistic fit {100 * run.feature_linear_accuracy:.1f}%)",
            fontsize=10,
        )
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        f"18-parameter net, learned features before the classifier after "
        f"{cfg.num_epochs} SGD steps (n_top = {cfg.n_top}, lr = {cfg.lr})"
    )
    return _save(fig, Path(path))


def plot_training_curves(
    studies: Mapping[str, Sequence[NetStudyResult]], path: str | Path
) -> Path:
    """Training accuracy per SGD step, every seed, without and with diffusion.

    Args:
        studies: Results per data set (one entry per seed).
        path: The PNG to write.

    Returns:
        ``path``.
    """
    fig = Figure(figsize=(4.0 * len(studies), 3.8), layout="constrained")
    axes = fig.subplots(1, len(studies), squeeze=False)[0]
    for ax, (name, results) in zip(axes, studies.items(), strict=True):
        for i, res in enumerate(results):
            for run, color, label in (
                (res.without_diffusion, "tab:orange", "without diffusion"),
                (res.with_diffusion, "tab:green", f"with diffusion ({_layers(res)})"),
            ):
                ax.plot(
                    run.accuracy,
                    color=color,
                    alpha=0.7,
                    lw=1.2,
                    label=label if i == 0 else None,
                )
        ax.set_ylim(0.0, 1.02)
        ax.set_xlabel("SGD step")
        ax.set_ylabel("training accuracy")
        ax.set_title(f"{name} ({len(results)} seeds)")
        ax.legend(loc="lower right", fontsize=8)
    return _save(fig, Path(path))

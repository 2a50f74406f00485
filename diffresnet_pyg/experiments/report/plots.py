"""The sweep figure: test accuracy against the swept value, one line per method.

:func:`plot_sweep` reads a sweep folder and writes ``sweep.png``;
:func:`plot_sweep_summary` draws a
:func:`~diffresnet_pyg.experiments.report.sweeps.sweep_summary` that is
already computed. matplotlib is imported on first use and renders with its
Agg canvas, so no display is needed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from diffresnet_pyg.experiments.report.layout import SWEEP_PNG, PathLike
from diffresnet_pyg.experiments.report.sweeps import (
    is_finite_number,
    sweep_columns,
    sweep_summary,
    sweep_value_key,
)

__all__ = ["error_bar", "plot_sweep", "plot_sweep_summary"]

# One logger for the whole package, so log lines name the report package.
logger = logging.getLogger("diffresnet_pyg.experiments.report")


def error_bar(summary: Mapping[str, Any]) -> float:
    """The error bar of a point: one population std; NaN (none) for one run.

    Example:
        >>> error_bar({"n": 4, "std": 0.5}), error_bar({"n": 1, "std": 0.0})
        (0.5, nan)
    """
    return math.nan if summary["n"] == 1 else float(summary["std"])


def _sweep_title(summary: Mapping[str, Any]) -> str:
    title = f"{summary['dataset'] or 'unknown dataset'}"
    split = summary.get("split") or {}
    if split.get("num_splits") is not None and split.get("num_inits") is not None:
        title += f", {split['num_splits']} splits × {split['num_inits']} inits"
    return title


def plot_sweep(
    sweep_dir: PathLike,
    path: PathLike | None = None,
    *,
    figsize: tuple[float, float] = (6.4, 4.8),
    dpi: int = 100,
) -> Path:
    r"""Plot test accuracy against the swept value, one line per method.

    Points are means with error bars of one population standard deviation
    (none for a point of a single run); missing points are left out. When
    every value is a positive number and :math:`\max / \min \geq 4`, the x
    axis is :math:`\log_2`-scaled; values that are not numbers are placed at
    equal distances in sweep order. The figure is rendered with matplotlib's
    Agg canvas (no display is needed).

    Args:
        sweep_dir (str or os.PathLike): The folder holding ``sweep.yaml``.
        path (str or os.PathLike, optional): The PNG file to write.
            (default: ``sweep_dir / "sweep.png"``)
        figsize (tuple[float, float], optional): Figure size in inches.
            (default: :obj:`(6.4, 4.8)`)
        dpi (int, optional): Resolution; the image is
            ``figsize * dpi`` pixels. (default: :obj:`100`)

    Returns:
        pathlib.Path: The written PNG file.

    Raises:
        ValueError: If no point of the sweep has any runs.
    """
    sweep_dir = Path(sweep_dir)
    summary = sweep_summary(sweep_dir)
    out = Path(path) if path is not None else sweep_dir / SWEEP_PNG
    plot_sweep_summary(summary, out, figsize=figsize, dpi=dpi)
    return out


def plot_sweep_summary(
    summary: Mapping[str, Any],
    path: Path,
    *,
    figsize: tuple[float, float] = (6.4, 4.8),
    dpi: int = 100,
) -> None:
    """Draw a computed sweep summary as :func:`plot_sweep` does.

    Args:
        summary (dict): The output of
            :func:`~diffresnet_pyg.experiments.report.sweeps.sweep_summary`.
        path (pathlib.Path): The PNG file to write.
        figsize (tuple[float, float], optional): Figure size in inches.
            (default: :obj:`(6.4, 4.8)`)
        dpi (int, optional): Resolution. (default: :obj:`100`)

    Raises:
        ValueError: If no point of the sweep has any runs.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if all(p["missing"] for m in summary["methods"] for p in m["points"]):
        raise ValueError("no point of the sweep has any runs; nothing to plot")
    columns = sweep_columns(summary)
    numeric = all(is_finite_number(value) for _, _, value in columns)
    if numeric:
        position = {key: float(value) for key, _, value in columns}
    else:
        position = {key: float(i) for i, (key, _, _) in enumerate(columns)}
    xs = [position[key] for key, _, _ in columns]
    log2 = numeric and min(xs) > 0 and max(xs) / min(xs) >= 4

    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for method in summary["methods"]:
        present = [p for p in method["points"] if not p["missing"]]
        if not present:
            logger.warning("method %s has no runs; left out", method["label"])
            continue
        present.sort(key=lambda p: position[sweep_value_key(p["value"])])
        ax.errorbar(
            [position[sweep_value_key(p["value"])] for p in present],
            [p["test_acc"]["mean"] for p in present],
            yerr=[error_bar(p["test_acc"]) for p in present],
            marker="o",
            capsize=3,
            label=method["label"],
        )
    if log2:
        ax.set_xscale("log", base=2)
    if len(columns) <= 12 or not numeric:
        ax.set_xticks(xs, [text for _, text, _ in columns])
        ax.minorticks_off()
    ax.set_xlabel(summary["axis"] + (" (log scale)" if log2 else ""))
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(_sweep_title(summary))
    ax.grid(True, alpha=0.3)
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    logger.info("wrote %s", path)

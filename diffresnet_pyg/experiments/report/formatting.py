"""Compact text of config values and of accuracy statistics.

Shared by the Markdown reports and the sweep axis (table columns, plot ticks):
:func:`format_value` writes a config or sweep value, :func:`format_params` a
mapping of them, :func:`format_mean_std`, :func:`format_ci95` and
:func:`format_over_runs` a
:meth:`~diffresnet_pyg.experiments.report.stats.Summary.to_dict` with two
decimals, and :func:`format_max_epochs` the count of runs that reached
``train.max_epochs``. A single run has no spread and no interval: it is
written as ``80.10 (1 run)``, never with ``± 0.00``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "NO_INTERVAL",
    "format_ci95",
    "format_max_epochs",
    "format_mean_std",
    "format_over_runs",
    "format_params",
    "format_value",
]

#: The interval cell of a single run.
NO_INTERVAL = "–"


def _single(summary: Mapping[str, Any]) -> bool:
    """Whether the statistics are of one value (no spread, no interval)."""
    return summary.get("n") == 1


def format_value(value: Any) -> str:
    """Format a config or sweep value compactly.

    Example:
        >>> [format_value(v) for v in (True, 3, 0.0005, "cora", None, [1, 2])]
        ['true', '3', '0.0005', 'cora', 'null', '[1, 2]']
    """
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (int, str)):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def format_params(params: Mapping[str, Any]) -> str:
    """Format a mapping as ``key=value`` pairs, values as :func:`format_value`.

    Example:
        >>> format_params({"lr": 0.01, "bias": False})
        'lr=0.01, bias=false'
    """
    return ", ".join(f"{k}={format_value(v)}" for k, v in params.items())


def format_mean_std(summary: Mapping[str, Any]) -> str:
    """Format ``mean ± std`` with two decimals; one run: ``mean (1 run)``.

    Example:
        >>> format_mean_std({"mean": 82.7412, "std": 0.9634})
        '82.74 ± 0.96'
        >>> format_mean_std({"n": 1, "mean": 80.1, "std": 0.0})
        '80.10 (1 run)'
    """
    if _single(summary):
        return f"{summary['mean']:.2f} (1 run)"
    return f"{summary['mean']:.2f} ± {summary['std']:.2f}"


def format_ci95(summary: Mapping[str, Any]) -> str:
    """Format the 95% confidence interval ``[lo, hi]`` with two decimals.

    A single run has none: :data:`NO_INTERVAL`.

    Example:
        >>> format_ci95({"ci95": [81.123, 84.5]})
        '[81.12, 84.50]'
        >>> format_ci95({"n": 1, "ci95": [80.1, 80.1]})
        '–'
    """
    if _single(summary):
        return NO_INTERVAL
    lo, hi = summary["ci95"]
    return f"[{lo:.2f}, {hi:.2f}]"


def format_over_runs(summary: Mapping[str, Any], plus: str = "±") -> str:
    """Format ``mean ± std over n runs``; one run: ``mean (1 run)``.

    Args:
        summary (dict): A ``Summary.to_dict()`` (``n``, ``mean``, ``std``).
        plus (str, optional): The plus-minus sign (``"+-"`` for ASCII text).
            (default: ``"±"``)

    Returns:
        str: The text, with two decimals.

    Example:
        >>> format_over_runs({"n": 20, "mean": 81.234, "std": 0.5}, plus="+-")
        '81.23 +- 0.50 over 20 runs'
        >>> format_over_runs({"n": 1, "mean": 80.1, "std": 0.0})
        '80.10 (1 run)'
    """
    if _single(summary):
        return format_mean_std(summary)
    return f"{summary['mean']:.2f} {plus} {summary['std']:.2f} over {summary['n']} runs"


def format_max_epochs(count: Mapping[str, Any] | None) -> str | None:
    """The sentence on runs that reached ``train.max_epochs``, if any.

    Args:
        count (dict, optional): ``stopped_at_max_epochs`` of a summary:
            ``n`` of ``of`` runs reached ``max_epochs``; ``early_stopping``
            is the rule (``"none"``: no rule, every run trains ``max_epochs``).

    Returns:
        str or None: The sentence; :obj:`None` when ``count`` is :obj:`None`.

    Example:
        >>> format_max_epochs({"n": 3, "of": 20, "max_epochs": 200})
        '3 of 20 runs stopped at max_epochs=200 (not converged by the early-stopping rule).'
        >>> format_max_epochs({"n": 0, "of": 20, "max_epochs": 200})
        'No run reached max_epochs=200.'
    """  # noqa: E501
    if count is None:
        return None
    n, of, limit = count["n"], count["of"], count["max_epochs"]
    if count.get("early_stopping") == "none":
        return f"Early stopping is off: every run trains max_epochs={limit} epochs."
    if n == 0:
        return f"No run reached max_epochs={limit}."
    runs = "run" if of == 1 else "runs"
    return (
        f"{n} of {of} {runs} stopped at max_epochs={limit} (not converged by the "
        "early-stopping rule)."
    )

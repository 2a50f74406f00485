"""Compact text of config values and of accuracy statistics.

Shared by the Markdown reports and the sweep axis (table columns, plot ticks):
:func:`format_value` writes a config or sweep value, :func:`format_params` a
mapping of them, :func:`format_mean_std` and :func:`format_ci95` a
:meth:`~diffresnet_pyg.experiments.report.stats.Summary.to_dict` with two
decimals.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["format_ci95", "format_mean_std", "format_params", "format_value"]


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
    """Format ``mean ± std`` with two decimals.

    Example:
        >>> format_mean_std({"mean": 82.7412, "std": 0.9634})
        '82.74 ± 0.96'
    """
    return f"{summary['mean']:.2f} ± {summary['std']:.2f}"


def format_ci95(summary: Mapping[str, Any]) -> str:
    """Format the 95% confidence interval ``[lo, hi]`` with two decimals.

    Example:
        >>> format_ci95({"ci95": [81.123, 84.5]})
        '[81.12, 84.50]'
    """
    lo, hi = summary["ci95"]
    return f"[{lo:.2f}, {hi:.2f}]"

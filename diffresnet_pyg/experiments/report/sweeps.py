"""Sweeps: the ``sweep.yaml`` spec, the summary of every point, the value axis.

A sweep folder holds ``sweep.yaml`` (the swept ``axis`` and, per method, its
``label``, ``values`` and one results folder per value in ``dir``).
:func:`sweep_summary` summarizes every (method, value) point, reporting
points without runs as missing; :func:`sweep_columns` lays the swept values
out along one axis, shared by the sweep table and the sweep plot.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from diffresnet_pyg.experiments.report.folder import collect_summary
from diffresnet_pyg.experiments.report.formatting import format_value
from diffresnet_pyg.experiments.report.layout import RUNS_FILE, SWEEP_FILE, PathLike
from diffresnet_pyg.experiments.report.rows import read_rows
from diffresnet_pyg.experiments.schema import read_yaml_file

__all__ = [
    "is_finite_number",
    "sweep_columns",
    "sweep_summary",
    "sweep_value_key",
]

# One logger for the whole package, so log lines name the report package.
logger = logging.getLogger("diffresnet_pyg.experiments.report")


def _read_sweep(sweep_dir: Path) -> dict[str, Any]:
    path = sweep_dir / SWEEP_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {SWEEP_FILE} in {sweep_dir}")
    spec = read_yaml_file(path, aliases=True)
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: expected a mapping")
    if not isinstance(spec.get("axis"), str):
        raise ValueError(f"{path}: 'axis' must be a string")
    methods = spec.get("methods")
    if not isinstance(methods, list) or not methods:
        raise ValueError(f"{path}: 'methods' must be a non-empty list")
    for i, method in enumerate(methods):
        where = f"{path}: methods[{i}]"
        if not isinstance(method, dict):
            raise ValueError(f"{where} must be a mapping")
        for key in ("label", "values", "dir"):
            if key not in method:
                raise ValueError(f"{where} lacks {key!r}")
        if not isinstance(method["values"], list) or not isinstance(
            method["dir"], list
        ):
            raise ValueError(f"{where}: 'values' and 'dir' must be lists")
        if len(method["values"]) != len(method["dir"]):
            raise ValueError(
                f"{where}: {len(method['values'])} values but {len(method['dir'])} dirs"
            )
    return spec


def sweep_summary(sweep_dir: PathLike) -> dict[str, Any]:
    """Summarize every (method, value) point of a sweep folder.

    A point whose folder or ``runs.jsonl`` is missing, or holds no runs yet, is
    reported as missing rather than raising, so that partial sweeps can be
    reported. The dataset and protocol are read from the first point that has
    a ``config.yaml``.

    Args:
        sweep_dir (str or os.PathLike): The folder holding ``sweep.yaml``.

    Returns:
        dict: ``axis``; ``dataset``; ``split`` (the split protocol of the
        config); ``methods``, a list of ``label``, ``key`` and ``points``, where
        each point holds ``value``, ``dir``, ``missing``, ``n`` (0 when
        missing), ``expected_runs``, ``complete`` and ``test_acc``/``val_acc``
        (:meth:`~diffresnet_pyg.experiments.report.stats.Summary.to_dict` in
        percent, :obj:`None` when missing); and ``missing``, a list of
        ``label``, ``value`` and ``dir``.

    Raises:
        FileNotFoundError: If there is no ``sweep.yaml``.
        ValueError: If ``sweep.yaml`` is invalid, or a point holds invalid runs.
    """
    sweep_dir = Path(sweep_dir)
    spec = _read_sweep(sweep_dir)
    dataset: str | None = None
    split: dict[str, Any] | None = None
    methods = []
    missing = []
    for method in spec["methods"]:
        points = []
        for value, sub in zip(method["values"], method["dir"], strict=True):
            point: dict[str, Any] = {"value": value, "dir": str(sub)}
            results_dir = sweep_dir / str(sub)
            runs_path = results_dir / RUNS_FILE
            rows = read_rows(runs_path) if runs_path.is_file() else []
            if not rows:
                logger.info("sweep point %s=%s has no runs", method["label"], value)
                missing.append(
                    {"label": str(method["label"]), "value": value, "dir": str(sub)}
                )
                point.update(
                    missing=True,
                    n=0,
                    expected_runs=None,
                    complete=False,
                    test_acc=None,
                    val_acc=None,
                )
                points.append(point)
                continue
            s = collect_summary(results_dir)
            point.update(
                missing=False,
                n=s["n_runs"],
                expected_runs=s["expected_runs"],
                complete=s["complete"],
                test_acc=s["test_acc"],
                val_acc=s["val_acc"],
            )
            points.append(point)
            protocol = {
                k: s["split"].get(k)
                for k in ("scheme", "master_seed", "num_splits", "num_inits")
            }
            if dataset is None and split is None:
                dataset, split = s["dataset"], protocol
            elif (s["dataset"], protocol) != (dataset, split):
                logger.warning(
                    "sweep point %s has dataset/protocol %s %s, unlike %s %s",
                    results_dir,
                    s["dataset"],
                    protocol,
                    dataset,
                    split,
                )
        methods.append(
            {"label": str(method["label"]), "key": method.get("key"), "points": points}
        )
    return {
        "axis": spec["axis"],
        "dataset": dataset,
        "split": split or {},
        "methods": methods,
        "missing": missing,
    }


def sweep_value_key(value: Any) -> str:
    """A column key for a sweep value; equal numbers share a key (``1 == 1.0``).

    Example:
        >>> sweep_value_key(1) == sweep_value_key(1.0)
        True
        >>> sweep_value_key("a") == sweep_value_key(1)
        False
    """
    if is_finite_number(value):
        return f"num:{float(value)!r}"
    return f"other:{format_value(value)}"


def sweep_columns(summary: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """The union of all methods' values as (key, text, value).

    Sorted by value when every value is a number, else in first-seen order.
    """
    seen: dict[str, tuple[str, Any]] = {}
    for method in summary["methods"]:
        for point in method["points"]:
            value = point["value"]
            seen.setdefault(sweep_value_key(value), (format_value(value), value))
    items = [(key, text, value) for key, (text, value) in seen.items()]
    if all(is_finite_number(value) for _, _, value in items):
        items.sort(key=lambda item: float(item[2]))
    return items


def is_finite_number(value: Any) -> bool:
    """Whether a value is a finite ``int`` or ``float`` (not a ``bool``).

    Example:
        >>> [is_finite_number(v) for v in (2, 0.5, True, float("nan"), "2")]
        [True, True, False, False, False]
    """
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )

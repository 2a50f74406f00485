"""The per-run rows of a results folder: reading ``runs.jsonl``, reducing rows.

The runner appends one JSON object per (split, init) run to ``runs.jsonl``.
:func:`read_rows` reads them back (tolerating a last line cut short by an
interrupted write) and :func:`summarize_runs` validates them and reduces them
to accuracy statistics in percent, epochs, time and per-split means.
:func:`hit_max_epochs` tells a run that reached ``train.max_epochs`` from one
its early-stopping rule stopped.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from diffresnet_pyg.experiments import results
from diffresnet_pyg.experiments.report.layout import RUNS_FILE, PathLike
from diffresnet_pyg.experiments.report.stats import summarize
from diffresnet_pyg.experiments.results import RUN_STATUSES, row_status, run_identity

__all__ = [
    "REQUIRED_KEYS",
    "distinct_runs",
    "hit_max_epochs",
    "read_rows",
    "status_counts",
    "summarize_runs",
]

# One logger for the whole package, so log lines name the report package.
logger = logging.getLogger("diffresnet_pyg.experiments.report")

#: Keys every row of ``runs.jsonl`` must have for :func:`summarize_runs`.
REQUIRED_KEYS = (
    "split",
    "split_seed",
    "init",
    "epochs",
    "val_acc",
    "test_acc",
    "seconds",
)


def read_rows(path: PathLike) -> list[dict[str, Any]]:
    """Read the per-run rows of a ``runs.jsonl`` file.

    Blank lines are skipped. A last line that is not valid JSON is taken to be
    a write that was interrupted: it is dropped and a warning is logged. Any
    other line that is not a JSON object is an error.

    Args:
        path (str or os.PathLike): The ``runs.jsonl`` file, or a results folder
            holding one.

    Returns:
        list[dict]: The rows, in file order.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If a line other than the last is malformed, or a line holds
            valid JSON that is not an object. The message names the file and
            the line number.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RUNS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no run results at {path}")
    return results.read_rows(path)


def hit_max_epochs(row: Mapping[str, Any], max_epochs: int | None) -> bool:
    """Whether a run trained ``max_epochs`` epochs without being stopped early.

    A run its early-stopping rule stopped has restored an earlier checkpoint
    (``best_epoch < epochs``), also when it stopped at the last epoch; a run
    that reached ``max_epochs`` keeps its final weights (``best_epoch ==
    epochs``). Rows without ``best_epoch`` are judged by ``epochs`` alone.

    Args:
        row (dict): A row of ``runs.jsonl`` (``epochs``, ``best_epoch``).
        max_epochs (int, optional): ``train.max_epochs`` of the run's config;
            :obj:`None` (unknown) gives :obj:`False`.

    Returns:
        bool: Whether the run stopped at ``max_epochs``.

    Example:
        >>> hit_max_epochs({"epochs": 200, "best_epoch": 200}, 200)
        True
        >>> hit_max_epochs({"epochs": 200, "best_epoch": 150}, 200)
        False
        >>> hit_max_epochs({"epochs": 120}, 200)
        False
    """
    if max_epochs is None:
        return False
    epochs = int(row["epochs"])
    best = row.get("best_epoch")
    return epochs >= max_epochs and (best is None or int(best) >= epochs)


def status_counts(
    rows: Sequence[Mapping[str, Any]], max_epochs: int | None = None
) -> dict[str, int]:
    """How many rows have each run status (``ok``, ``diverged``, ``max_epochs``).

    The status is the row's ``status``, or derived for rows written without
    one (:func:`~diffresnet_pyg.experiments.results.row_status`).

    Example:
        >>> status_counts([{"epochs": 9, "val_loss": None}, {"epochs": 9}], 10)
        {'ok': 1, 'diverged': 1, 'max_epochs': 0}
    """
    counts = dict.fromkeys(RUN_STATUSES, 0)
    for row in rows:
        counts[row_status(row, max_epochs)] += 1
    return counts


def distinct_runs(
    rows: Sequence[Mapping[str, Any]], scheme: str | None = None
) -> tuple[list[Mapping[str, Any]], int]:
    """One row per distinct run: rows that repeat an earlier run's seeds are dropped.

    Seeds are drawn from 0 to 999,999, so a long protocol holds splits (or
    inits) with the seeds of an earlier one: the same run
    (:func:`~diffresnet_pyg.experiments.results.run_identity`). Of each
    group the row with the smallest ``(split, init)`` is kept.

    Args:
        rows (sequence of dict): Rows with at most one row per (split, init).
        scheme (str, optional): ``split.scheme`` of the config.
            (default: :obj:`None`)

    Returns:
        tuple[list[dict], int]: The kept rows, sorted by ``(split, init)``,
        and how many rows were dropped.

    Example:
        >>> rows = [dict(split=s, split_seed=7, init=0, init_seed=1) for s in (0, 1)]
        >>> [r["split"] for r in distinct_runs(rows)[0]], distinct_runs(rows)[1]
        ([0], 1)
    """
    kept: dict[tuple[int, int], Mapping[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (int(r["split"]), int(r["init"]))):
        init_seed = row.get("init_seed", row["init"])  # old rows: the init index
        identity = run_identity(scheme, row["split"], row["split_seed"], init_seed)
        kept.setdefault(identity, row)
    return list(kept.values()), len(rows) - len(kept)


def _missing_score(value: Any) -> bool:
    """A score written as ``null`` or (in old rows) as a non-finite number."""
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _finite(row: Mapping[str, Any], key: str, where: str) -> float:
    value = row[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: {key!r} must be a number (got {value!r})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{where}: {key!r} must be finite (got {value})")
    return value


def _accuracy(row: Mapping[str, Any], key: str, where: str) -> float:
    value = _finite(row, key, where)
    if not 0.0 <= value <= 1.0:
        raise ValueError(
            f"{where}: {key!r} must be a fraction in [0, 1] (got {value}); "
            "accuracies are stored as fractions, not percent"
        )
    return value


def _check_rows(
    rows: Sequence[Mapping[str, Any]],
) -> tuple[list[Mapping[str, Any]], int]:
    """Validated rows, the first of each (split, init); and how many were dropped."""
    for i, row in enumerate(rows):
        where = f"row {i + 1}"
        if not isinstance(row, Mapping):
            raise ValueError(f"{where}: expected a mapping (got {type(row).__name__})")
        missing = [key for key in REQUIRED_KEYS if key not in row]
        if missing:
            raise ValueError(f"{where}: missing key(s) {', '.join(missing)}")
        try:
            int(row["split"]), int(row["init"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: 'split' and 'init' must be integers") from exc
    kept, dropped = results.unique_rows(
        rows, lambda row: (int(row["split"]), int(row["init"]))
    )
    if dropped:
        logger.warning(
            "%d duplicate row(s) of a (split, init) run ignored; the first row of "
            "each run is kept (two processes wrote to the folder at once?)",
            dropped,
        )
    return kept, dropped


def summarize_runs(
    rows: Sequence[Mapping[str, Any]],
    *,
    max_epochs: int | None = None,
    scheme: str | None = None,
) -> dict[str, Any]:
    """Reduce the per-run rows of one experiment to summary statistics.

    Accuracies are reported in percent (see
    :func:`~diffresnet_pyg.experiments.report.stats.summarize` for the statistics).
    When the same (split, init) pair occurs more than once (two processes
    wrote to one folder at once), the first row counts, the others are
    ignored (``duplicate_rows`` says how many) and a warning is logged.

    Every run counts in ``n_runs``, ``status_counts``, epochs and time. The
    accuracy statistics and ``per_split`` are over one row per distinct run
    (:func:`distinct_runs`: a run that repeats the split seed and init seed
    of an earlier one is counted once) with a test accuracy (a ``null`` or
    non-finite one is left out); ``excluded_from_mean`` says how many rows
    each rule left out.

    Args:
        rows (sequence of dict): Rows as returned by :func:`read_rows`; each
            needs the keys ``split``, ``split_seed``, ``init``, ``epochs``,
            ``val_acc``, ``test_acc`` (fractions in :math:`[0, 1]`) and
            ``seconds``.
        max_epochs (int, optional): ``train.max_epochs`` of the runs'
            config, to count the runs that reached it
            (:func:`hit_max_epochs`). (default: :obj:`None`)
        scheme (str, optional): ``split.scheme`` of the runs' config, to
            tell repeated runs (:func:`distinct_runs`). (default: :obj:`None`)

    Returns:
        dict: ``n_runs``, ``n_splits``, ``test_acc`` and ``val_acc``
        (:meth:`~diffresnet_pyg.experiments.report.stats.Summary.to_dict` in
        percent), ``epochs`` (``mean``, ``median``, ``min``, ``max``),
        ``seconds`` (``total``, ``mean``), ``per_split`` (a list of
        ``split``, ``split_seed``, ``n`` and ``test_acc_mean`` in percent,
        sorted by split) and ``stopped_at_max_epochs`` (``n`` runs that
        reached ``max_epochs`` of ``of`` runs, and ``max_epochs``;
        :obj:`None` without ``max_epochs``), ``status_counts`` (runs per
        status: ``ok``, ``diverged``, ``max_epochs``), ``num_distinct_splits``
        (distinct split seeds; split indices for the ``"given"`` scheme),
        ``excluded_from_mean`` (``repeated_seeds``: rows of a run counted
        already; ``non_finite_test_acc``: rows without a finite test
        accuracy) and ``duplicate_rows`` (rows of a (split, init) run after
        its first, ignored).

    Raises:
        ValueError: If there are no rows, no row has a finite test accuracy,
            or a row lacks a key or holds an invalid value.

    Example:
        >>> rows = [
        ...     dict(split=s, split_seed=10 + s, init=i, epochs=100 + i,
        ...          val_acc=0.8, test_acc=0.8 + 0.01 * s, seconds=2.0)
        ...     for s in range(2) for i in range(2)
        ... ]
        >>> out = summarize_runs(rows)
        >>> out["n_runs"], out["n_splits"], round(out["test_acc"]["mean"], 2)
        (4, 2, 80.5)
        >>> [round(p["test_acc_mean"], 2) for p in out["per_split"]]
        [80.0, 81.0]
    """
    if not rows:
        raise ValueError("no runs to summarize")
    checked, duplicates = _check_rows(rows)
    distinct, repeated = distinct_runs(checked, scheme)
    counted = [r for r in distinct if not _missing_score(r["test_acc"])]
    if not counted:
        raise ValueError(
            f"none of the {len(checked)} runs has a finite test accuracy "
            "(diverged runs are written with 'test_acc': null)"
        )
    test = [100.0 * _accuracy(r, "test_acc", f"run {_label(r)}") for r in counted]
    val = [
        100.0 * _accuracy(r, "val_acc", f"run {_label(r)}")
        for r in counted
        if not _missing_score(r["val_acc"])
    ]
    if not val:
        raise ValueError(
            f"none of the {len(counted)} runs with a test accuracy has a finite "
            "validation accuracy"
        )
    epochs = np.asarray([_finite(r, "epochs", f"run {_label(r)}") for r in checked])
    seconds = np.asarray([_finite(r, "seconds", f"run {_label(r)}") for r in checked])
    # the split part of a run's identity: its seed (its index for "given")
    identities = {
        run_identity(scheme, r["split"], r["split_seed"], 0)[0] for r in checked
    }

    splits: dict[int, list[int]] = {}
    for i, row in enumerate(counted):
        splits.setdefault(int(row["split"]), []).append(i)
    per_split = []
    for split in sorted(splits):
        idx = splits[split]
        seeds = {counted[i]["split_seed"] for i in idx}
        if len(seeds) > 1:
            logger.warning("split %d has several split seeds: %s", split, seeds)
        per_split.append(
            {
                "split": split,
                "split_seed": counted[idx[0]]["split_seed"],
                "n": len(idx),
                "test_acc_mean": float(np.mean([test[i] for i in idx])),
            }
        )
    return {
        "n_runs": len(checked),
        "n_splits": len({int(r["split"]) for r in checked}),
        "num_distinct_splits": len(identities),
        "test_acc": summarize(test).to_dict(),
        "val_acc": summarize(val).to_dict(),
        "epochs": {
            "mean": float(np.mean(epochs)),
            "median": float(np.median(epochs)),
            "min": int(np.min(epochs)),
            "max": int(np.max(epochs)),
        },
        "seconds": {"total": float(np.sum(seconds)), "mean": float(np.mean(seconds))},
        "per_split": per_split,
        "stopped_at_max_epochs": None
        if max_epochs is None
        else {
            "n": sum(hit_max_epochs(r, max_epochs) for r in checked),
            "of": len(checked),
            "max_epochs": max_epochs,
        },
        "status_counts": status_counts(checked, max_epochs),
        "excluded_from_mean": {
            "repeated_seeds": repeated,
            "non_finite_test_acc": len(distinct) - len(counted),
        },
        "duplicate_rows": duplicates,
    }


def _label(row: Mapping[str, Any]) -> str:
    return f"split {row.get('split')} init {row.get('init')}"

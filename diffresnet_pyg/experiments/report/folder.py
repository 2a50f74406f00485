"""The summary of one results folder: its runs plus the settings of its config.

:func:`collect_summary` reduces ``runs.jsonl`` with
:func:`~diffresnet_pyg.experiments.report.rows.summarize_runs` and adds the
dataset, model, split protocol and training settings of ``config.yaml`` and
whether the experiment is complete. It writes nothing: this is what
``summary.json`` holds, and what the tables of several folders are made of.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from diffresnet_pyg.experiments.report.layout import CONFIG_FILE, RUNS_FILE, PathLike
from diffresnet_pyg.experiments.report.rows import read_rows, summarize_runs
from diffresnet_pyg.experiments.schema import read_yaml_file

__all__ = ["collect_summary"]

# One logger for the whole package, so log lines name the report package.
logger = logging.getLogger("diffresnet_pyg.experiments.report")


def _read_config(results_dir: Path) -> dict[str, Any]:
    path = results_dir / CONFIG_FILE
    if not path.is_file():
        return {}
    config = read_yaml_file(path, aliases=True)
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a mapping (got {type(config).__name__})")
    return config


def _section(config: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = config.get(key)
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    if key in ("dataset", "model") and isinstance(value, str):
        return {"name": value}
    raise ValueError(f"config key {key!r} must be a mapping (got {value!r})")


def _unique(rows: Sequence[Mapping[str, Any]], key: str) -> str | None:
    values = sorted({str(r[key]) for r in rows if r.get(key) is not None})
    if len(values) > 1:
        logger.warning("runs disagree on %s: %s", key, ", ".join(values))
    return ", ".join(values) if values else None


def _max_epochs(train: Mapping[str, Any]) -> int | None:
    value = train.get("max_epochs")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _expected_from_split(split: Mapping[str, Any]) -> int | None:
    num_splits, num_inits = split.get("num_splits"), split.get("num_inits")
    if isinstance(num_splits, int) and isinstance(num_inits, int):
        return num_splits * num_inits
    return None


def _planned_rows(
    rows: Sequence[Mapping[str, Any]], split: Mapping[str, Any]
) -> tuple[list[Mapping[str, Any]], int]:
    """The rows of the runs ``split`` plans, and how many rows it does not plan.

    The config's plan is every ``(split, init)`` with ``split <
    split.num_splits`` and ``init < split.num_inits`` (in every scheme).
    Without both counts every row is kept. A row whose ``split`` or ``init``
    is not an integer is kept, for the summary to refuse it by name.
    """
    num_splits, num_inits = split.get("num_splits"), split.get("num_inits")
    if not (isinstance(num_splits, int) and isinstance(num_inits, int)):
        return list(rows), 0
    kept = []
    for row in rows:
        try:
            planned = 0 <= int(row["split"]) < num_splits
            planned = planned and 0 <= int(row["init"]) < num_inits
        except (KeyError, TypeError, ValueError):
            planned = True
        if planned:
            kept.append(row)
    return kept, len(rows) - len(kept)


def collect_summary(
    results_dir: PathLike, expected_runs: int | None = None
) -> dict[str, Any]:
    """Build the summary of a results folder without writing anything.

    Args:
        results_dir (str or os.PathLike): The results folder.
        expected_runs (int, optional): The number of runs of the complete
            experiment; defaults to ``split.num_splits * split.num_inits`` of
            the config. (default: :obj:`None`)

    Returns:
        dict: What ``summary.json`` holds; see
        :func:`~diffresnet_pyg.experiments.report.writing.write_summary`.
        Rows of runs the folder's config does not plan (``split`` at least
        ``split.num_splits`` or ``init`` at least ``split.num_inits``, e.g.
        after the counts were lowered) stay in ``runs.jsonl`` but are left
        out, with a warning; ``ignored_rows`` counts them
        (``{"not_planned": k}``).

    Raises:
        FileNotFoundError: If the folder has no ``runs.jsonl``.
        ValueError: If ``runs.jsonl`` holds no runs or invalid rows.
    """
    results_dir = Path(results_dir)
    rows = read_rows(results_dir / RUNS_FILE)
    if not rows:
        raise ValueError(f"{results_dir / RUNS_FILE} holds no runs")
    config = _read_config(results_dir)
    dataset = _section(config, "dataset")
    model = _section(config, "model")
    split = _section(config, "split")
    train = _section(config, "train")
    planned, not_planned = _planned_rows(rows, split)
    if not_planned:
        logger.warning(
            "%s: ignoring %d of %d rows outside the plan of %s (split.num_splits "
            "= %s, split.num_inits = %s); they stay in %s and count again once "
            "the config plans them",
            results_dir,
            not_planned,
            len(rows),
            CONFIG_FILE,
            split.get("num_splits"),
            split.get("num_inits"),
            RUNS_FILE,
        )
    if not planned:
        raise ValueError(
            f"{results_dir / RUNS_FILE}: none of its {len(rows)} rows is a run "
            f"that {CONFIG_FILE} plans (split.num_splits = "
            f"{split.get('num_splits')}, split.num_inits = {split.get('num_inits')})"
        )
    try:
        runs = summarize_runs(
            planned, max_epochs=_max_epochs(train), scheme=split.get("scheme")
        )
    except ValueError as exc:
        raise ValueError(f"{results_dir / RUNS_FILE}: {exc}") from exc
    if runs["stopped_at_max_epochs"] is not None:
        runs["stopped_at_max_epochs"]["early_stopping"] = train.get("early_stopping")
    if expected_runs is None:
        expected_runs = _expected_from_split(split)
    complete = None if expected_runs is None else runs["n_runs"] == expected_runs
    if expected_runs is not None and runs["n_runs"] > expected_runs:
        logger.warning(
            "%s: %d runs but only %d expected",
            results_dir,
            runs["n_runs"],
            expected_runs,
        )
    out: dict[str, Any] = {
        "name": config.get("name") or results_dir.name,
        "dataset": dataset.get("name") or _unique(rows, "dataset"),
        "model": model.get("name") or _unique(rows, "model"),
        "dataset_params": {
            k: v for k, v in dataset.items() if k not in ("name", "root")
        },
        "model_params": {k: v for k, v in model.items() if k != "name"},
        "split": split,
        "train": train,
        "expected_runs": expected_runs,
        "complete": complete,
    }
    out.update(runs)
    out["ignored_rows"] = {"not_planned": not_planned}
    return out

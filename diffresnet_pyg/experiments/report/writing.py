"""Writing report files: one results folder, a sweep, or a tree of them.

:func:`write_summary` writes ``summary.json`` and ``summary.md`` of one
results folder, :func:`write_sweep_report` the reports of a sweep, and
:func:`report_directory` (what ``diffresnet-pyg report DIR`` runs) decides
which of them a folder needs. Files are written atomically.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from diffresnet_pyg.experiments.report.folder import collect_summary
from diffresnet_pyg.experiments.report.formatting import format_max_epochs
from diffresnet_pyg.experiments.report.layout import (
    RESULTS_MD,
    RUNS_FILE,
    SUMMARY_JSON,
    SUMMARY_MD,
    SWEEP_FILE,
    SWEEP_MD,
    SWEEP_PNG,
    PathLike,
)
from diffresnet_pyg.experiments.report.markdown import (
    results_markdown,
    results_table,
    summary_markdown,
    sweep_markdown,
)
from diffresnet_pyg.experiments.report.plots import plot_sweep_summary
from diffresnet_pyg.experiments.report.rows import read_rows
from diffresnet_pyg.experiments.report.sweeps import sweep_summary
from diffresnet_pyg.experiments.results import write_atomic

__all__ = ["report_directory", "write_summary", "write_sweep_report"]

# One logger for the whole package, so log lines name the report package.
logger = logging.getLogger("diffresnet_pyg.experiments.report")


def write_summary(
    results_dir: PathLike, expected_runs: int | None = None
) -> dict[str, Any]:
    """Summarize a results folder into ``summary.json`` and ``summary.md``.

    The rows of ``runs.jsonl`` are reduced with
    :func:`~diffresnet_pyg.experiments.report.rows.summarize_runs`; the dataset,
    model, split protocol and training settings come from ``config.yaml`` when
    it exists (otherwise dataset and model names are taken from the rows).

    Args:
        results_dir (str or os.PathLike): The results folder.
        expected_runs (int, optional): The number of runs of the complete
            experiment. Defaults to ``split.num_splits * split.num_inits`` of the
            config; when neither is known, ``complete`` is :obj:`None`.
            (default: :obj:`None`)

    Returns:
        dict: The :func:`~diffresnet_pyg.experiments.report.rows.summarize_runs`
        output plus ``name``, ``dataset``, ``model``, ``dataset_params``
        (without ``root``), ``model_params``, ``split``, ``train``,
        ``expected_runs`` and ``complete``
        (whether ``n_runs == expected_runs``) and ``ignored_rows``
        (``{"not_planned": k}``: rows of runs ``config.yaml`` does not plan,
        left out); ``stopped_at_max_epochs`` also holds the config's
        ``early_stopping`` rule. This is what ``summary.json`` holds. A
        warning is logged when runs reached ``train.max_epochs`` with early
        stopping on, and when rows were left out as not planned.

    Raises:
        FileNotFoundError: If the folder has no ``runs.jsonl``.
        ValueError: If ``runs.jsonl`` holds no runs or invalid rows.
    """
    results_dir = Path(results_dir)
    summary = collect_summary(results_dir, expected_runs)
    write_atomic(results_dir / SUMMARY_JSON, json.dumps(summary, indent=2) + "\n")
    write_atomic(results_dir / SUMMARY_MD, summary_markdown(summary))
    logger.info("wrote %s and %s", results_dir / SUMMARY_JSON, SUMMARY_MD)
    at_max = summary["stopped_at_max_epochs"]
    if at_max and at_max["n"] and at_max.get("early_stopping") != "none":
        logger.warning("%s: %s", results_dir, format_max_epochs(at_max))
    return summary


def _has_runs(results_dir: Path) -> bool:
    runs = results_dir / RUNS_FILE
    return runs.is_file() and bool(read_rows(runs))


def write_sweep_report(sweep_dir: Path) -> list[Path]:
    """Write the reports of a sweep folder.

    Every point with runs gets ``summary.json`` and ``summary.md``; the sweep
    folder gets ``sweep.md`` and ``sweep.png``.

    Args:
        sweep_dir (pathlib.Path): The folder holding ``sweep.yaml``.

    Returns:
        list[pathlib.Path]: The written files.

    Raises:
        ValueError: If no point of the sweep has any runs.
    """
    summary = sweep_summary(sweep_dir)
    if all(p["missing"] for m in summary["methods"] for p in m["points"]):
        raise ValueError(f"no runs found in any point of the sweep {sweep_dir}")
    written: list[Path] = []
    done: set[Path] = set()
    for method in summary["methods"]:
        for point in method["points"]:
            sub = (sweep_dir / point["dir"]).resolve()
            if point["missing"] or sub in done:
                continue
            done.add(sub)
            write_summary(sweep_dir / point["dir"])
            written += [
                sweep_dir / point["dir"] / f for f in (SUMMARY_JSON, SUMMARY_MD)
            ]
    write_atomic(sweep_dir / SWEEP_MD, sweep_markdown(summary, with_plot=True))
    written.append(sweep_dir / SWEEP_MD)
    plot_sweep_summary(summary, sweep_dir / SWEEP_PNG)
    written.append(sweep_dir / SWEEP_PNG)
    return written


def report_directory(path: PathLike) -> list[Path]:
    """Write the reports of a sweep, a results folder, or a tree of them.

    This is what ``diffresnet-pyg report DIR`` runs:

    1. If :obj:`path` holds ``sweep.yaml``: ``summary.json``/``summary.md`` for
       every point with runs, ``sweep.md`` (protocol line and
       :func:`~diffresnet_pyg.experiments.report.markdown.sweep_table`) and
       ``sweep.png`` (:func:`~diffresnet_pyg.experiments.report.plots.plot_sweep`).
    2. Else, if it holds ``runs.jsonl``: :func:`write_summary`.
    3. Else every results folder (``runs.jsonl``) below it gets its summary,
       and ``results.md`` in :obj:`path` gets a
       :func:`~diffresnet_pyg.experiments.report.markdown.results_table` of all
       of them, sorted by path and labelled by their relative paths. Sweep
       folders found on the way also get ``sweep.md`` and ``sweep.png``.
       Folders whose ``runs.jsonl`` holds no runs yet are skipped with a
       warning.

    A path to a ``sweep.yaml`` or ``runs.jsonl`` file stands for its folder.

    Args:
        path (str or os.PathLike): The folder to report.

    Returns:
        list[pathlib.Path]: The written files.

    Raises:
        FileNotFoundError: If :obj:`path` does not exist or holds no results.
        ValueError: If the results are invalid or hold no runs.
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist")
    if root.is_file():
        if root.name not in (SWEEP_FILE, RUNS_FILE):
            raise ValueError(
                f"{root} is a file; expected a folder, {SWEEP_FILE} or {RUNS_FILE}"
            )
        root = root.parent
    if (root / SWEEP_FILE).is_file():
        return write_sweep_report(root)
    if (root / RUNS_FILE).is_file():
        write_summary(root)
        return [root / SUMMARY_JSON, root / SUMMARY_MD]

    found = sorted(p.parent for p in root.rglob(RUNS_FILE) if p.is_file())
    results = []
    for results_dir in found:
        if _has_runs(results_dir):
            results.append(results_dir)
        else:
            logger.warning("skipping %s: no runs yet", results_dir / RUNS_FILE)
    if not results:
        raise FileNotFoundError(
            f"no results found under {root}: no {SWEEP_FILE}, and no "
            f"{RUNS_FILE} with runs in it or any sub-folder"
        )
    written: list[Path] = []
    for results_dir in results:
        write_summary(results_dir)
        written += [results_dir / SUMMARY_JSON, results_dir / SUMMARY_MD]
    for sweep_file in sorted(root.rglob(SWEEP_FILE)):
        sweep_dir = sweep_file.parent
        summary = sweep_summary(sweep_dir)
        has_runs = not all(
            p["missing"] for m in summary["methods"] for p in m["points"]
        )
        if not has_runs:
            logger.warning("no plot for the sweep %s: no runs yet", sweep_dir)
        write_atomic(sweep_dir / SWEEP_MD, sweep_markdown(summary, has_runs))
        written.append(sweep_dir / SWEEP_MD)
        if has_runs:
            plot_sweep_summary(summary, sweep_dir / SWEEP_PNG)
            written.append(sweep_dir / SWEEP_PNG)
    labels = [d.relative_to(root).as_posix() for d in results]
    table = results_table(results, labels=labels)
    write_atomic(root / RESULTS_MD, results_markdown(root.name or str(root), table))
    written.append(root / RESULTS_MD)
    logger.info("wrote %d files under %s", len(written), root)
    return written

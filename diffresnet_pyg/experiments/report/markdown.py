"""The Markdown reports: ``summary.md``, ``sweep.md``, ``results.md`` and tables.

Every function here turns summaries into text and writes nothing:
:func:`summary_markdown` is ``summary.md`` of one results folder,
:func:`results_table` compares several folders, :func:`sweep_table` and
:func:`sweep_markdown` report a sweep, and :func:`results_markdown` is the
``results.md`` of a parent folder. Accuracies are reported in percent as
mean ± population standard deviation; a single run as ``mean (1 run)``, with
no spread or interval.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from diffresnet_pyg.experiments.report.folder import collect_summary
from diffresnet_pyg.experiments.report.formatting import (
    format_ci95,
    format_max_epochs,
    format_mean_std,
    format_params,
    format_value,
)
from diffresnet_pyg.experiments.report.layout import SWEEP_PNG, PathLike
from diffresnet_pyg.experiments.report.sweeps import (
    sweep_columns,
    sweep_summary,
    sweep_value_key,
)

__all__ = [
    "MISSING",
    "escape_markdown",
    "format_sweep_table",
    "markdown_table",
    "protocol_line",
    "results_markdown",
    "results_table",
    "rows_note",
    "runs_cell",
    "summary_markdown",
    "sweep_markdown",
    "sweep_table",
]

#: Placeholder for a missing table cell.
MISSING = "–"


def escape_markdown(text: str) -> str:
    r"""Escape ``|`` and join lines, so that text fits in a table cell or heading.

    Example:
        >>> escape_markdown("a|b\nc")
        'a\\|b c'
    """
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(
    header: Sequence[str], rows: Iterable[Sequence[str]], align: str
) -> str:
    """Render a Markdown table; :obj:`align` holds ``l`` or ``r`` per column.

    Example:
        >>> print(markdown_table(["a", "b"], [["x", "1"]], "lr"))
        | a | b |
        | --- | ---: |
        | x | 1 |
    """
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def protocol_line(summary: Mapping[str, Any]) -> str:
    """One line describing dataset, split protocol, model and training."""
    parts = []
    dataset = str(summary.get("dataset") or "unknown dataset")
    if summary.get("dataset_params"):
        dataset += f" ({format_params(summary['dataset_params'])})"
    parts.append(f"dataset {dataset}")
    split = dict(summary.get("split") or {})
    if split:
        scheme = split.pop("scheme", None)
        seed = split.pop("master_seed", None)
        num_splits = split.pop("num_splits", None)
        num_inits = split.pop("num_inits", None)
        text = f"split scheme {scheme if scheme is not None else 'unknown'}"
        if seed is not None:
            text += f" (master seed {seed})"
        if num_splits is not None and num_inits is not None:
            text += f", {num_splits} splits × {num_inits} inits"
            text += f" = {num_splits * num_inits} runs"
        if split:
            text += f" ({format_params(split)})"
        parts.append(text)
    model = str(summary.get("model") or "unknown model")
    if summary.get("model_params"):
        model += f" ({format_params(summary['model_params'])})"
    parts.append(f"model {model}")
    if summary.get("train"):
        parts.append(f"train: {format_params(summary['train'])}")
    return "; ".join(parts)


def runs_cell(summary: Mapping[str, Any]) -> str:
    """The runs cell of a results table: ``n``, or ``n/expected`` if incomplete.

    Example:
        >>> runs_cell({"n_runs": 7, "expected_runs": 10})
        '7/10'
    """
    n, expected = summary["n_runs"], summary.get("expected_runs")
    if expected is not None and n != expected:
        return f"{n}/{expected}"
    return str(n)


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def rows_note(summary: Mapping[str, Any]) -> str | None:
    """Sentences on the runs' statuses and on rows left out of the statistics.

    Says, when runs diverged, how many runs have each status (from
    ``status_counts``), how many rows of runs the config does not plan were
    ignored (``ignored_rows``), and how many rows the means leave out
    (``excluded_from_mean``); :obj:`None` when there is nothing to say.

    Example:
        >>> rows_note({"status_counts": {"ok": 3, "diverged": 1, "max_epochs": 0},
        ...            "ignored_rows": {"not_planned": 2}})  # doctest: +ELLIPSIS
        'Status: 3 ok, 1 diverged... 2 rows of runs.jsonl are runs config.yaml...'
    """
    parts = []
    counts = summary.get("status_counts")
    if counts and counts.get("diverged"):
        text = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
        parts.append(
            f"Status: {text} (diverged: a non-finite validation loss or "
            "accuracy, written as null; max_epochs: not stopped early)."
        )
    ignored = (summary.get("ignored_rows") or {}).get("not_planned")
    if ignored:
        parts.append(
            f"{_plural(ignored, 'row', 'rows')} of runs.jsonl "
            f"{'is a run' if ignored == 1 else 'are runs'} config.yaml does not "
            "plan (split or init index beyond split.num_splits × split.num_inits): "
            "left out of this summary, kept in the file."
        )
    excluded = summary.get("excluded_from_mean") or {}
    repeated = excluded.get("repeated_seeds")
    if repeated:
        parts.append(
            f"{_plural(repeated, 'run repeats', 'runs repeat')} the split seed and "
            "init seed of an earlier run (seeds are drawn from 0 to 999,999) and "
            f"{'is' if repeated == 1 else 'are'} counted once in the statistics; "
            f"{summary.get('num_distinct_splits')} distinct split seeds."
        )
    missing = excluded.get("non_finite_test_acc")
    if missing:
        parts.append(
            f"{_plural(missing, 'run has', 'runs have')} no finite test accuracy "
            f"and {'is' if missing == 1 else 'are'} left out of the statistics."
        )
    return " ".join(parts) or None


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """The ``summary.md`` of one results folder.

    Args:
        summary (dict): A results folder's summary, as
            :func:`~diffresnet_pyg.experiments.report.writing.write_summary`
            returns it: protocol line, accuracy statistics, completeness,
            epochs (and how many runs reached ``train.max_epochs``) and time,
            and the per-split test accuracy.

    Returns:
        str: The Markdown document.
    """
    stat_rows = []
    for key, label in (("test_acc", "test acc (%)"), ("val_acc", "val acc (%)")):
        s = summary[key]
        stat_rows.append(
            [
                label,
                format_mean_std(s),
                format_ci95(s),
                f"{s['min']:.2f}",
                f"{s['median']:.2f}",
                f"{s['max']:.2f}",
                str(s["n"]),
            ]
        )
    complete = summary.get("complete")
    expected = summary.get("expected_runs")
    if complete is None:
        complete_line = f"complete: unknown ({summary['n_runs']} runs)"
    else:
        complete_line = (
            f"complete: {'true' if complete else 'false'} "
            f"({summary['n_runs']} of {expected} expected runs)"
        )
    if summary.get("duplicate_rows"):
        complete_line += (
            f"; {summary['duplicate_rows']} duplicate rows of a (split, init) run "
            "ignored (the first row of each run counts)"
        )
    epochs, seconds = summary["epochs"], summary["seconds"]
    epochs_line = (
        f"Epochs: mean {epochs['mean']:.1f}, median {epochs['median']:g}, "
        f"range {epochs['min']}–{epochs['max']}. "
        f"Time: {seconds['total']:.1f} s in total, {seconds['mean']:.1f} s per run."
    )
    at_max = summary.get("stopped_at_max_epochs")
    if format_max_epochs(at_max) is not None:
        text = format_max_epochs(at_max)
        flag = at_max["n"] > 0 and at_max.get("early_stopping") != "none"
        epochs_line += " " + (f"**{text}**" if flag else text)
    note = (
        "std is the population standard deviation (ddof=0); the 95% CI is the "
        "t interval of the mean."
    )
    if summary["test_acc"]["n"] == 1:
        note += " A single run has no spread and no interval."
    rows_text = rows_note(summary)
    split_rows = [
        [
            str(p["split"]),
            str(p["split_seed"]),
            str(p["n"]),
            f"{p['test_acc_mean']:.2f}",
        ]
        for p in summary["per_split"]
    ]
    lines = [
        f"# {escape_markdown(str(summary['name']))}",
        "",
        f"Protocol: {protocol_line(summary)}.",
        "",
        markdown_table(
            ["metric", "mean ± std", "95% CI", "min", "median", "max", "n"],
            stat_rows,
            "lrrrrrr",
        ),
        "",
        note,
        "",
        complete_line,
        "",
        epochs_line,
        "",
        *([rows_text, ""] if rows_text else []),
        "## Per split",
        "",
        markdown_table(
            ["split", "split seed", "runs", "test acc (%)"], split_rows, "rrrr"
        ),
        "",
    ]
    return "\n".join(lines)


def results_table(
    results_dirs: Sequence[PathLike], labels: Sequence[str] | None = None
) -> str:
    """Compare results folders in a Markdown table, one row per folder.

    Summaries are recomputed from each ``runs.jsonl`` (nothing is written).
    The runs column reads ``n/expected`` for an incomplete experiment.

    Args:
        results_dirs (sequence of str or os.PathLike): The results folders.
        labels (sequence of str, optional): Row labels, one per folder.
            Defaults to the model names. (default: :obj:`None`)

    Returns:
        str: The table with columns label, dataset, runs, test acc (%) as
        mean ± population std, its 95% CI, val acc (%) and median epochs
        (followed by ``(k at max)`` when ``k`` runs reached
        ``train.max_epochs`` with early stopping on).

    Raises:
        ValueError: If :obj:`labels` does not match :obj:`results_dirs` in
            length, or a folder holds no or invalid runs.
        FileNotFoundError: If a folder has no ``runs.jsonl``.
    """
    if labels is not None and len(labels) != len(results_dirs):
        raise ValueError(
            f"got {len(labels)} labels for {len(results_dirs)} results folders"
        )
    rows = []
    for i, results_dir in enumerate(results_dirs):
        s = collect_summary(results_dir)
        label = labels[i] if labels is not None else str(s["model"] or "?")
        rows.append(
            [
                escape_markdown(label),
                escape_markdown(str(s["dataset"] or "?")),
                runs_cell(s),
                format_mean_std(s["test_acc"]),
                format_ci95(s["test_acc"]),
                format_mean_std(s["val_acc"]),
                _epochs_cell(s),
            ]
        )
    header = [
        "label",
        "dataset",
        "runs",
        "test acc (%)",
        "95% CI",
        "val acc (%)",
        "median epochs",
    ]
    return markdown_table(header, rows, "llrrrrr") + "\n"


def _epochs_cell(summary: Mapping[str, Any]) -> str:
    """Median epochs, and how many runs reached ``max_epochs`` (if any did)."""
    text = f"{summary['epochs']['median']:g}"
    at_max = summary.get("stopped_at_max_epochs")
    if at_max and at_max["n"] and at_max.get("early_stopping") != "none":
        text += f" ({at_max['n']} at max)"
    return text


def format_sweep_table(summary: Mapping[str, Any]) -> str:
    """The table of :func:`sweep_table`, made from a computed sweep summary.

    Args:
        summary (dict): The output of
            :func:`~diffresnet_pyg.experiments.report.sweeps.sweep_summary`.

    Returns:
        str: The Markdown table, ending in a newline.
    """
    columns = sweep_columns(summary)
    rows = []
    for method in summary["methods"]:
        cells = {sweep_value_key(p["value"]): p for p in method["points"]}
        row = [escape_markdown(method["label"])]
        for key, _, _ in columns:
            point = cells.get(key)
            if point is None or point["missing"]:
                row.append(MISSING)
            elif point["n"] == 1:
                row.append(format_mean_std(point["test_acc"]))
            else:
                row.append(f"{format_mean_std(point['test_acc'])} ({point['n']})")
        rows.append(row)
    header = [f"method \\ {escape_markdown(summary['axis'])}"]
    header += [escape_markdown(text) for _, text, _ in columns]
    return markdown_table(header, rows, "l" + "r" * len(columns)) + "\n"


def sweep_table(sweep_dir: PathLike) -> str:
    """Tabulate a sweep in Markdown: one row per method, one column per value.

    Columns are the union of all methods' values (sorted when all are numbers).
    Cells read ``mean ± std (n)``: test accuracy in percent, population
    standard deviation and number of runs (``mean (1 run)`` for a single
    run); ``–`` marks a missing point.

    Args:
        sweep_dir (str or os.PathLike): The folder holding ``sweep.yaml``.

    Returns:
        str: The Markdown table.
    """
    return format_sweep_table(sweep_summary(sweep_dir))


def sweep_markdown(summary: Mapping[str, Any], with_plot: bool) -> str:
    """The ``sweep.md`` of a sweep folder: protocol line, table, missing points.

    Args:
        summary (dict): The output of
            :func:`~diffresnet_pyg.experiments.report.sweeps.sweep_summary`.
        with_plot (bool): Whether to link ``sweep.png`` below the table.

    Returns:
        str: The Markdown document.
    """
    split = summary.get("split") or {}
    protocol = f"dataset {summary['dataset'] or 'unknown'}"
    if split.get("scheme") is not None:
        protocol += f", split scheme {split['scheme']}"
    if split.get("master_seed") is not None:
        protocol += f" (master seed {split['master_seed']})"
    if split.get("num_splits") is not None and split.get("num_inits") is not None:
        protocol += f", {split['num_splits']} splits × {split['num_inits']} inits"
        protocol += " per point"
    lines = [
        f"# Sweep over {escape_markdown(summary['axis'])}",
        "",
        f"Protocol: {protocol}. Cells: test accuracy (%) as mean ± population "
        f"std (number of runs); {MISSING} marks a point without runs.",
        "",
        format_sweep_table(summary).rstrip("\n"),
        "",
    ]
    if summary["missing"]:
        lines.append(
            "Missing: "
            + ", ".join(
                f"{m['label']} at {format_value(m['value'])} ({m['dir']})"
                for m in summary["missing"]
            )
            + "."
        )
        lines.append("")
    if with_plot:
        lines += [f"![test accuracy vs {summary['axis']}]({SWEEP_PNG})", ""]
    return "\n".join(lines)


def results_markdown(name: str, table: str) -> str:
    """The ``results.md`` of a parent folder: a heading and a results table.

    Args:
        name (str): The folder's name, for the heading.
        table (str): The :func:`results_table` of the folders below it.

    Returns:
        str: The Markdown document.
    """
    return (
        f"# Results in {escape_markdown(name)}\n\n"
        "Test and validation accuracy (%) as mean ± population std; the 95% CI is "
        "the t interval of the mean (none for a single run); runs reads "
        "n/expected when incomplete.\n\n" + table
    )

r"""Summaries, Markdown tables and plots computed from experiment results.

The runner stores results as data: one JSON object per (split, init) run in
``runs.jsonl`` next to the resolved ``config.yaml``. Everything in this module is
derived from those rows, so a report can be regenerated at any time (also while
an experiment is still running, or after it was interrupted):

* :func:`summarize` reduces a list of numbers to a :class:`Summary` (mean,
  population standard deviation, 95% confidence interval of the mean, ...).
* :func:`read_rows` and :func:`summarize_runs` read and reduce one results
  folder; :func:`write_summary` writes ``summary.json`` and ``summary.md``.
* :func:`results_table` compares several results folders in one Markdown table.
* :func:`sweep_summary`, :func:`sweep_table` and :func:`plot_sweep` report a
  sweep folder (``sweep.yaml`` plus one results folder per method and value).
* :func:`report_directory` is what ``diffresnet-pyg report DIR`` runs.

Accuracies are stored as fractions in :math:`[0, 1]` and reported in percent.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy import stats

__all__ = [
    "Summary",
    "plot_sweep",
    "read_rows",
    "report_directory",
    "results_table",
    "summarize",
    "summarize_runs",
    "sweep_summary",
    "sweep_table",
    "write_summary",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

#: File names of the on-disk layout.
RUNS_FILE = "runs.jsonl"
CONFIG_FILE = "config.yaml"
SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
SWEEP_FILE = "sweep.yaml"
SWEEP_MD = "sweep.md"
SWEEP_PNG = "sweep.png"
RESULTS_MD = "results.md"

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

#: Placeholder for a missing table cell.
MISSING = "–"


# ---------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    r"""Descriptive statistics of a sample :math:`x_1, \dots, x_n`.

    Attributes:
        n (int): The sample size :math:`n`.
        mean (float): The mean :math:`\bar x = \frac{1}{n} \sum_i x_i`.
        std (float): The population standard deviation
            :math:`\sigma = \sqrt{\frac{1}{n} \sum_i (x_i - \bar x)^2}`
            (``ddof=0``), the spread the Diff-ResNet authors report.
        ci95 (tuple[float, float]): The 95% confidence interval of the mean
            :math:`\bar x \pm t_{0.975,\,n-1} \, s / \sqrt{n}` with the sample
            standard deviation :math:`s = \sqrt{\frac{1}{n-1} \sum_i (x_i -
            \bar x)^2}` (``ddof=1``) and Student's :math:`t` quantile. It is
            the degenerate interval :math:`(\bar x, \bar x)` when :math:`n = 1`.
        min (float): The smallest value.
        max (float): The largest value.
        median (float): The median.
    """

    n: int
    mean: float
    std: float
    ci95: tuple[float, float]
    min: float
    max: float
    median: float

    def to_dict(self) -> dict[str, Any]:
        """Return the statistics as a JSON-serializable dictionary.

        Example:
            >>> summarize([1.0, 3.0]).to_dict()["ci95"][0] < 1.0
            True
        """
        out = asdict(self)
        out["ci95"] = [self.ci95[0], self.ci95[1]]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Summary:
        """Rebuild a :class:`Summary` from :meth:`to_dict` output.

        Example:
            >>> s = summarize([1.0, 2.0, 4.0])
            >>> Summary.from_dict(s.to_dict()) == s
            True
        """
        lo, hi = data["ci95"]
        return cls(
            n=int(data["n"]),
            mean=float(data["mean"]),
            std=float(data["std"]),
            ci95=(float(lo), float(hi)),
            min=float(data["min"]),
            max=float(data["max"]),
            median=float(data["median"]),
        )


def summarize(values: Sequence[float] | np.ndarray) -> Summary:
    r"""Compute mean, population std, 95% CI, min, max and median of values.

    The confidence interval is the :math:`t` interval of the mean,

    .. math::
        \bar x \pm t_{0.975,\,n-1} \frac{s}{\sqrt{n}}, \qquad
        s = \sqrt{\frac{1}{n-1} \sum_{i=1}^n (x_i - \bar x)^2},

    while :attr:`Summary.std` is the population standard deviation
    (``ddof=0``). With a single value the interval is :math:`(x_1, x_1)`.

    Args:
        values (sequence of float): The sample, a 1-D sequence of finite numbers.

    Returns:
        Summary: The statistics.

    Raises:
        ValueError: If :obj:`values` is empty, not 1-D, or holds a non-finite
            value.

    Example:
        >>> s = summarize([80.0, 82.0, 84.0])
        >>> s.n, s.mean, round(s.std, 4)
        (3, 82.0, 1.633)
        >>> [round(b, 2) for b in s.ci95]
        [77.03, 86.97]
        >>> summarize([83.0]).ci95
        (83.0, 83.0)
    """
    try:
        x = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"values must be numbers ({exc})") from exc
    if x.ndim != 1:
        raise ValueError(f"values must be a 1-D sequence (got shape {x.shape})")
    if x.size == 0:
        raise ValueError("cannot summarize an empty sequence of values")
    if not np.all(np.isfinite(x)):
        bad = [i for i, v in enumerate(x.tolist()) if not math.isfinite(v)]
        raise ValueError(
            f"values must be finite (found {x[bad[0]]} at index {bad[0]}"
            + (f" and {len(bad) - 1} more" if len(bad) > 1 else "")
            + ")"
        )
    n = int(x.size)
    mean = float(np.mean(x))
    if n == 1:
        ci95 = (mean, mean)
    else:
        half = float(stats.t.ppf(0.975, n - 1)) * float(np.std(x, ddof=1)) / n**0.5
        ci95 = (mean - half, mean + half)
    return Summary(
        n=n,
        mean=mean,
        std=float(np.std(x, ddof=0)),
        ci95=ci95,
        min=float(np.min(x)),
        max=float(np.max(x)),
        median=float(np.median(x)),
    )


# ---------------------------------------------------------------------------
# One results folder
# ---------------------------------------------------------------------------


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
    lines = path.read_text(encoding="utf-8").splitlines()
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    rows: list[dict[str, Any]] = []
    for k, (lineno, line) in enumerate(numbered):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            if k == len(numbered) - 1:
                logger.warning(
                    "%s:%d: ignoring a truncated last line (interrupted write?): %s",
                    path,
                    lineno,
                    exc,
                )
                break
            raise ValueError(f"{path}:{lineno}: malformed JSON line: {exc}") from exc
        if not isinstance(row, dict):
            raise ValueError(
                f"{path}:{lineno}: expected a JSON object per line "
                f"(got {type(row).__name__})"
            )
        rows.append(row)
    return rows


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


def _check_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Validate rows and drop earlier duplicates of a (split, init) pair."""
    by_key: dict[tuple[int, int], Mapping[str, Any]] = {}
    for i, row in enumerate(rows):
        where = f"row {i + 1}"
        if not isinstance(row, Mapping):
            raise ValueError(f"{where}: expected a mapping (got {type(row).__name__})")
        missing = [key for key in REQUIRED_KEYS if key not in row]
        if missing:
            raise ValueError(f"{where}: missing key(s) {', '.join(missing)}")
        try:
            key = (int(row["split"]), int(row["init"]))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: 'split' and 'init' must be integers") from exc
        if key in by_key:
            logger.warning(
                "duplicate run for split %d init %d; keeping the later row", *key
            )
        by_key[key] = row
    return list(by_key.values())


def summarize_runs(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Reduce the per-run rows of one experiment to summary statistics.

    Accuracies are reported in percent (see :func:`summarize` for the
    statistics). When the same (split, init) pair occurs more than once (an
    experiment resumed after an interruption), the later row wins and a
    warning is logged.

    Args:
        rows (sequence of dict): Rows as returned by :func:`read_rows`; each
            needs the keys ``split``, ``split_seed``, ``init``, ``epochs``,
            ``val_acc``, ``test_acc`` (fractions in :math:`[0, 1]`) and
            ``seconds``.

    Returns:
        dict: ``n_runs``, ``n_splits``, ``test_acc`` and ``val_acc``
        (:meth:`Summary.to_dict` in percent), ``epochs`` (``mean``, ``median``,
        ``min``, ``max``), ``seconds`` (``total``, ``mean``) and ``per_split``
        (a list of ``split``, ``split_seed``, ``n`` and ``test_acc_mean`` in
        percent, sorted by split).

    Raises:
        ValueError: If there are no rows, or a row lacks a key or holds an
            invalid value.

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
    checked = _check_rows(rows)
    test = [100.0 * _accuracy(r, "test_acc", f"run {_label(r)}") for r in checked]
    val = [100.0 * _accuracy(r, "val_acc", f"run {_label(r)}") for r in checked]
    epochs = np.asarray([_finite(r, "epochs", f"run {_label(r)}") for r in checked])
    seconds = np.asarray([_finite(r, "seconds", f"run {_label(r)}") for r in checked])

    splits: dict[int, list[int]] = {}
    for i, row in enumerate(checked):
        splits.setdefault(int(row["split"]), []).append(i)
    per_split = []
    for split in sorted(splits):
        idx = splits[split]
        seeds = {checked[i]["split_seed"] for i in idx}
        if len(seeds) > 1:
            logger.warning("split %d has several split seeds: %s", split, seeds)
        per_split.append(
            {
                "split": split,
                "split_seed": checked[idx[0]]["split_seed"],
                "n": len(idx),
                "test_acc_mean": float(np.mean([test[i] for i in idx])),
            }
        )
    return {
        "n_runs": len(checked),
        "n_splits": len(splits),
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
    }


def _label(row: Mapping[str, Any]) -> str:
    return f"split {row.get('split')} init {row.get('init')}"


def _read_config(results_dir: Path) -> dict[str, Any]:
    path = results_dir / CONFIG_FILE
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8") as f:
        config = yaml.safe_load(f)
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


def _expected_from_split(split: Mapping[str, Any]) -> int | None:
    num_splits, num_inits = split.get("num_splits"), split.get("num_inits")
    if isinstance(num_splits, int) and isinstance(num_inits, int):
        return num_splits * num_inits
    return None


def _collect(results_dir: PathLike, expected_runs: int | None = None) -> dict[str, Any]:
    """Build the summary of a results folder without writing anything."""
    results_dir = Path(results_dir)
    rows = read_rows(results_dir / RUNS_FILE)
    if not rows:
        raise ValueError(f"{results_dir / RUNS_FILE} holds no runs")
    try:
        runs = summarize_runs(rows)
    except ValueError as exc:
        raise ValueError(f"{results_dir / RUNS_FILE}: {exc}") from exc
    config = _read_config(results_dir)
    dataset = _section(config, "dataset")
    model = _section(config, "model")
    split = _section(config, "split")
    train = _section(config, "train")
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
    return out


def write_summary(
    results_dir: PathLike, expected_runs: int | None = None
) -> dict[str, Any]:
    """Summarize a results folder into ``summary.json`` and ``summary.md``.

    The rows of ``runs.jsonl`` are reduced with :func:`summarize_runs`; the
    dataset, model, split protocol and training settings come from
    ``config.yaml`` when it exists (otherwise dataset and model names are
    taken from the rows).

    Args:
        results_dir (str or os.PathLike): The results folder.
        expected_runs (int, optional): The number of runs of the complete
            experiment. Defaults to ``split.num_splits * split.num_inits`` of the
            config; when neither is known, ``complete`` is :obj:`None`.
            (default: :obj:`None`)

    Returns:
        dict: The :func:`summarize_runs` output plus ``name``, ``dataset``,
        ``model``, ``dataset_params`` (without ``root``), ``model_params``,
        ``split``, ``train``, ``expected_runs`` and ``complete``
        (whether ``n_runs == expected_runs``). This is what ``summary.json``
        holds.

    Raises:
        FileNotFoundError: If the folder has no ``runs.jsonl``.
        ValueError: If ``runs.jsonl`` holds no runs or invalid rows.
    """
    results_dir = Path(results_dir)
    summary = _collect(results_dir, expected_runs)
    _write_text(results_dir / SUMMARY_JSON, json.dumps(summary, indent=2) + "\n")
    _write_text(results_dir / SUMMARY_MD, _summary_markdown(summary))
    logger.info("wrote %s and %s", results_dir / SUMMARY_JSON, SUMMARY_MD)
    return summary


# ---------------------------------------------------------------------------
# Formatting helpers
# ---------------------------------------------------------------------------


def _write_text(path: Path, text: str) -> None:
    """Write a file atomically (readers never see a half-written report)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _fmt_value(value: Any) -> str:
    """Format a config or sweep value compactly.

    Example:
        >>> [_fmt_value(v) for v in (True, 3, 0.0005, "cora", None, [1, 2])]
        ['true', '3', '0.0005', 'cora', 'null', '[1, 2]']
    """
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (int, str)):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def _fmt_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt_value(v)}" for k, v in params.items())


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _pm(summary: Mapping[str, Any]) -> str:
    """Format ``mean ± std`` with two decimals.

    Example:
        >>> _pm({"mean": 82.7412, "std": 0.9634})
        '82.74 ± 0.96'
    """
    return f"{summary['mean']:.2f} ± {summary['std']:.2f}"


def _ci(summary: Mapping[str, Any]) -> str:
    lo, hi = summary["ci95"]
    return f"[{lo:.2f}, {hi:.2f}]"


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str) -> str:
    """Render a Markdown table; :obj:`align` holds ``l`` or ``r`` per column.

    Example:
        >>> print(_md_table(["a", "b"], [["x", "1"]], "lr"))
        | a | b |
        | --- | ---: |
        | x | 1 |
    """
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _protocol_line(summary: Mapping[str, Any]) -> str:
    """One line describing dataset, split protocol, model and training."""
    parts = []
    dataset = str(summary.get("dataset") or "unknown dataset")
    if summary.get("dataset_params"):
        dataset += f" ({_fmt_params(summary['dataset_params'])})"
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
            text += f" ({_fmt_params(split)})"
        parts.append(text)
    model = str(summary.get("model") or "unknown model")
    if summary.get("model_params"):
        model += f" ({_fmt_params(summary['model_params'])})"
    parts.append(f"model {model}")
    if summary.get("train"):
        parts.append(f"train: {_fmt_params(summary['train'])}")
    return "; ".join(parts)


def _runs_cell(summary: Mapping[str, Any]) -> str:
    n, expected = summary["n_runs"], summary.get("expected_runs")
    if expected is not None and n != expected:
        return f"{n}/{expected}"
    return str(n)


def _summary_markdown(summary: Mapping[str, Any]) -> str:
    stat_rows = []
    for key, label in (("test_acc", "test acc (%)"), ("val_acc", "val acc (%)")):
        s = summary[key]
        stat_rows.append(
            [
                label,
                _pm(s),
                _ci(s),
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
    epochs, seconds = summary["epochs"], summary["seconds"]
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
        f"# {_md_escape(str(summary['name']))}",
        "",
        f"Protocol: {_protocol_line(summary)}.",
        "",
        _md_table(
            ["metric", "mean ± std", "95% CI", "min", "median", "max", "n"],
            stat_rows,
            "lrrrrrr",
        ),
        "",
        "std is the population standard deviation (ddof=0); the 95% CI is the "
        "t interval of the mean.",
        "",
        complete_line,
        "",
        f"Epochs: mean {epochs['mean']:.1f}, median {epochs['median']:g}, "
        f"range {epochs['min']}–{epochs['max']}. "
        f"Time: {seconds['total']:.1f} s in total, {seconds['mean']:.1f} s per run.",
        "",
        "## Per split",
        "",
        _md_table(["split", "split seed", "runs", "test acc (%)"], split_rows, "rrrr"),
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Several results folders
# ---------------------------------------------------------------------------


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
        mean ± population std, its 95% CI, val acc (%) and median epochs.

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
        s = _collect(results_dir)
        label = labels[i] if labels is not None else str(s["model"] or "?")
        rows.append(
            [
                _md_escape(label),
                _md_escape(str(s["dataset"] or "?")),
                _runs_cell(s),
                _pm(s["test_acc"]),
                _ci(s["test_acc"]),
                _pm(s["val_acc"]),
                f"{s['epochs']['median']:g}",
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
    return _md_table(header, rows, "llrrrrr") + "\n"


# ---------------------------------------------------------------------------
# Sweeps
# ---------------------------------------------------------------------------


def _read_sweep(sweep_dir: Path) -> dict[str, Any]:
    path = sweep_dir / SWEEP_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {SWEEP_FILE} in {sweep_dir}")
    with path.open(encoding="utf-8") as f:
        spec = yaml.safe_load(f)
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
        (:meth:`Summary.to_dict` in percent, :obj:`None` when missing); and
        ``missing``, a list of ``label``, ``value`` and ``dir``.

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
            s = _collect(results_dir)
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


def _value_key(value: Any) -> str:
    """A column key for a sweep value; equal numbers share a key (``1 == 1.0``).

    Example:
        >>> _value_key(1) == _value_key(1.0), _value_key("a") == _value_key(1)
        (True, False)
    """
    if _is_number(value):
        return f"num:{float(value)!r}"
    return f"other:{_fmt_value(value)}"


def _columns(summary: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """The union of all methods' values as (key, text, value).

    Sorted by value when every value is a number, else in first-seen order.
    """
    seen: dict[str, tuple[str, Any]] = {}
    for method in summary["methods"]:
        for point in method["points"]:
            value = point["value"]
            seen.setdefault(_value_key(value), (_fmt_value(value), value))
    items = [(key, text, value) for key, (text, value) in seen.items()]
    if all(_is_number(value) for _, _, value in items):
        items.sort(key=lambda item: float(item[2]))
    return items


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _sweep_table(summary: Mapping[str, Any]) -> str:
    columns = _columns(summary)
    rows = []
    for method in summary["methods"]:
        cells = {_value_key(p["value"]): p for p in method["points"]}
        row = [_md_escape(method["label"])]
        for key, _, _ in columns:
            point = cells.get(key)
            if point is None or point["missing"]:
                row.append(MISSING)
            else:
                row.append(f"{_pm(point['test_acc'])} ({point['n']})")
        rows.append(row)
    header = [f"method \\ {_md_escape(summary['axis'])}"]
    header += [_md_escape(text) for _, text, _ in columns]
    return _md_table(header, rows, "l" + "r" * len(columns)) + "\n"


def sweep_table(sweep_dir: PathLike) -> str:
    """Tabulate a sweep in Markdown: one row per method, one column per value.

    Columns are the union of all methods' values (sorted when all are numbers).
    Cells read ``mean ± std (n)``: test accuracy in percent, population
    standard deviation and number of runs; ``–`` marks a missing point.

    Args:
        sweep_dir (str or os.PathLike): The folder holding ``sweep.yaml``.

    Returns:
        str: The Markdown table.
    """
    return _sweep_table(sweep_summary(sweep_dir))


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

    Points are means with error bars of one population standard deviation;
    missing points are left out. When every value is a positive number and
    :math:`\max / \min \geq 4`, the x axis is :math:`\log_2`-scaled; values
    that are not numbers are placed at equal distances in sweep order. The
    figure is rendered with matplotlib's Agg canvas (no display is needed).

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
    _plot_sweep(summary, out, figsize=figsize, dpi=dpi)
    return out


def _plot_sweep(
    summary: Mapping[str, Any],
    path: Path,
    *,
    figsize: tuple[float, float] = (6.4, 4.8),
    dpi: int = 100,
) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if all(p["missing"] for m in summary["methods"] for p in m["points"]):
        raise ValueError("no point of the sweep has any runs; nothing to plot")
    columns = _columns(summary)
    numeric = all(_is_number(value) for _, _, value in columns)
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
        present.sort(key=lambda p: position[_value_key(p["value"])])
        ax.errorbar(
            [position[_value_key(p["value"])] for p in present],
            [p["test_acc"]["mean"] for p in present],
            yerr=[p["test_acc"]["std"] for p in present],
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


def _sweep_markdown(summary: Mapping[str, Any], with_plot: bool) -> str:
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
        f"# Sweep over {_md_escape(summary['axis'])}",
        "",
        f"Protocol: {protocol}. Cells: test accuracy (%) as mean ± population "
        f"std (number of runs); {MISSING} marks a point without runs.",
        "",
        _sweep_table(summary).rstrip("\n"),
        "",
    ]
    if summary["missing"]:
        lines.append(
            "Missing: "
            + ", ".join(
                f"{m['label']} at {_fmt_value(m['value'])} ({m['dir']})"
                for m in summary["missing"]
            )
            + "."
        )
        lines.append("")
    if with_plot:
        lines += [f"![test accuracy vs {summary['axis']}]({SWEEP_PNG})", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Whole directories
# ---------------------------------------------------------------------------


def _has_runs(results_dir: Path) -> bool:
    runs = results_dir / RUNS_FILE
    return runs.is_file() and bool(read_rows(runs))


def _report_sweep(sweep_dir: Path) -> list[Path]:
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
    _write_text(sweep_dir / SWEEP_MD, _sweep_markdown(summary, with_plot=True))
    written.append(sweep_dir / SWEEP_MD)
    _plot_sweep(summary, sweep_dir / SWEEP_PNG)
    written.append(sweep_dir / SWEEP_PNG)
    return written


def report_directory(path: PathLike) -> list[Path]:
    """Write the reports of a sweep, a results folder, or a tree of them.

    This is what ``diffresnet-pyg report DIR`` runs:

    1. If :obj:`path` holds ``sweep.yaml``: ``summary.json``/``summary.md`` for
       every point with runs, ``sweep.md`` (protocol line and
       :func:`sweep_table`) and ``sweep.png`` (:func:`plot_sweep`).
    2. Else, if it holds ``runs.jsonl``: :func:`write_summary`.
    3. Else every results folder (``runs.jsonl``) below it gets its summary,
       and ``results.md`` in :obj:`path` gets a :func:`results_table` of all
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
        return _report_sweep(root)
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
        _write_text(sweep_dir / SWEEP_MD, _sweep_markdown(summary, has_runs))
        written.append(sweep_dir / SWEEP_MD)
        if has_runs:
            _plot_sweep(summary, sweep_dir / SWEEP_PNG)
            written.append(sweep_dir / SWEEP_PNG)
    labels = [d.relative_to(root).as_posix() for d in results]
    table = results_table(results, labels=labels)
    _write_text(
        root / RESULTS_MD,
        f"# Results in {_md_escape(root.name or str(root))}\n\n"
        "Test and validation accuracy (%) as mean ± population std; the 95% CI is "
        "the t interval of the mean; runs reads n/expected when incomplete.\n\n"
        + table,
    )
    written.append(root / RESULTS_MD)
    logger.info("wrote %d files under %s", len(written), root)
    return written

r"""Summaries, Markdown tables and plots computed from experiment results.

The runner stores results as data: one JSON object per (split, init) run in
``runs.jsonl`` next to the resolved ``config.yaml``. Everything in this package
is derived from those rows, so a report can be regenerated at any time (also
while an experiment is still running, or after it was interrupted):

* :func:`summarize` reduces a list of numbers to a :class:`Summary` (mean,
  population standard deviation, 95% confidence interval of the mean, ...).
* :func:`read_rows` and :func:`summarize_runs` read and reduce one results
  folder; :func:`write_summary` writes ``summary.json`` and ``summary.md``.
* :func:`results_table` compares several results folders in one Markdown table.
* :func:`sweep_summary`, :func:`sweep_table` and :func:`plot_sweep` report a
  sweep folder (``sweep.yaml`` plus one results folder per method and value).
* :func:`report_directory` is what ``diffresnet-pyg report DIR`` runs.

Accuracies are stored as fractions in :math:`[0, 1]` and reported in percent.

The modules, each with one job (lower ones never import higher ones):

* :mod:`~diffresnet_pyg.experiments.report.layout`: file names of a results
  folder and of the report (files are written with
  :func:`~diffresnet_pyg.experiments.results.write_atomic`).
* :mod:`~diffresnet_pyg.experiments.report.stats`: :func:`summarize`.
* :mod:`~diffresnet_pyg.experiments.report.rows`: reading ``runs.jsonl`` and
  reducing its rows.
* :mod:`~diffresnet_pyg.experiments.report.folder`: the summary of one results
  folder (runs plus ``config.yaml``).
* :mod:`~diffresnet_pyg.experiments.report.formatting`: text of config values
  and of statistics.
* :mod:`~diffresnet_pyg.experiments.report.sweeps`: ``sweep.yaml``, the sweep
  summary and its value axis.
* :mod:`~diffresnet_pyg.experiments.report.markdown`: the Markdown reports.
* :mod:`~diffresnet_pyg.experiments.report.plots`: the sweep figure.
* :mod:`~diffresnet_pyg.experiments.report.writing`: writing the report files,
  and :func:`report_directory`.
"""

from diffresnet_pyg.experiments.report.layout import (
    CONFIG_FILE,
    RESULTS_MD,
    RUNS_FILE,
    SUMMARY_JSON,
    SUMMARY_MD,
    SWEEP_FILE,
    SWEEP_MD,
    SWEEP_PNG,
)
from diffresnet_pyg.experiments.report.markdown import results_table, sweep_table
from diffresnet_pyg.experiments.report.plots import plot_sweep
from diffresnet_pyg.experiments.report.rows import (
    REQUIRED_KEYS,
    read_rows,
    summarize_runs,
)
from diffresnet_pyg.experiments.report.stats import Summary, summarize
from diffresnet_pyg.experiments.report.sweeps import sweep_summary
from diffresnet_pyg.experiments.report.writing import report_directory, write_summary

__all__ = [
    "CONFIG_FILE",
    "REQUIRED_KEYS",
    "RESULTS_MD",
    "RUNS_FILE",
    "SUMMARY_JSON",
    "SUMMARY_MD",
    "SWEEP_FILE",
    "SWEEP_MD",
    "SWEEP_PNG",
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

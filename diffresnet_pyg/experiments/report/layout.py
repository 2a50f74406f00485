"""The report's files, next to those of the results store.

A results folder holds ``runs.jsonl`` (one JSON object per run) next to the
resolved ``config.yaml``; the report adds ``summary.json`` and ``summary.md``.
A sweep folder holds ``sweep.yaml`` and gets ``sweep.md`` and ``sweep.png``;
a parent folder reported as a whole gets ``results.md``. The results folder's
own names are those of :mod:`diffresnet_pyg.experiments.results`.
"""

from __future__ import annotations

from diffresnet_pyg.experiments.results import (
    CONFIG_FILE,
    RUNS_FILE,
    SUMMARY_JSON,
    SUMMARY_MD,
    SWEEP_FILE,
)
from diffresnet_pyg.typing import PathLike

__all__ = [
    "CONFIG_FILE",
    "RESULTS_MD",
    "RUNS_FILE",
    "SUMMARY_JSON",
    "SUMMARY_MD",
    "SWEEP_FILE",
    "SWEEP_MD",
    "SWEEP_PNG",
    "PathLike",
]


#: File names the report adds.
SWEEP_MD = "sweep.md"
SWEEP_PNG = "sweep.png"
RESULTS_MD = "results.md"

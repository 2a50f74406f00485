"""The on-disk layout of results: file names, and writing a report file.

A results folder holds ``runs.jsonl`` (one JSON object per run) next to the
resolved ``config.yaml``; the report adds ``summary.json`` and ``summary.md``.
A sweep folder holds ``sweep.yaml`` and gets ``sweep.md`` and ``sweep.png``;
a parent folder reported as a whole gets ``results.md``.
"""

from __future__ import annotations

import os
from pathlib import Path

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
    "write_text",
]

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


def write_text(path: Path, text: str) -> None:
    """Write a file atomically (readers never see a half-written report)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)

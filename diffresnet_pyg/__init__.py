"""Diffusion residual networks (Diff-ResNet) for PyTorch Geometric."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "data", "nn"]

# ``data`` and ``nn`` import torch and PyG: loaded on first use, so that the
# command line answers ``--help`` without them.
_SUBMODULES = (
    "data",
    "nn",
    "experiments",
    "fewshot",
    "synthetic",
    "loader",
    "metrics",
)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

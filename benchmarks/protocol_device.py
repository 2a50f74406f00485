r"""Wall time of the authors' Cora protocol on one device, a split per model.

The authors' protocol (``configs/cora/diffresnet_reference.yaml``: 100 splits
x 20 inits of ``DiffResNet.reference(1433, 7, step_size=0.25, layer_num=20,
dropout=0.25)``, Adam 0.01 / 5e-4, early stopping ``loss_or_acc`` with
patience 50) run by the library's runner (:func:`run_experiment`) on
``--device``, with all inits of a split trained as one batched model
(``train.batch_members`` = ``--inits``,
:class:`~diffresnet_pyg.nn.batched.BatchedDiffResNet`), each member with its
own early stopping. The rows are the protocol's rows (``runs.jsonl`` in the
results folder), from the first ``--splits`` splits and ``--inits`` inits
(the seeds of a split and an init do not depend on how many are drawn).
The chunks are trained one after another in this process
(``executor.kind=local``), so the time is that of one device.

Printed: the wall time (the whole :func:`run_experiment` call: data, stability
check, training, summary), the training seconds (the rows' ``seconds``
summed), runs/s, the time projected for the full 100 x 20 protocol, and the
mean test accuracy with its 95% confidence interval. The projection scales
the wall time per split to 100 splits when ``--inits`` is 20 (a split's batch
is then exactly the protocol's), and otherwise the run rate to 2000 runs; it
is the protocol's own time only without ``--max-epochs`` (early stopping
decides the epochs).

The full protocol on a GPU::

    python benchmarks/protocol_device.py --device cuda --output results/gpu_protocol

A small fraction on the CPU::

    python benchmarks/protocol_device.py --device cpu --splits 1 --inits 4 \
        --max-epochs 20

Usage::

    python benchmarks/protocol_device.py [--device cuda|cpu] [--splits 100]
        [--inits 20] [--max-epochs N] [--output DIR] [--config CONFIG]
        [--progress log|bar|none] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from diffresnet_pyg.experiments.results import RUNS_FILE, read_rows
from diffresnet_pyg.experiments.runner import run_experiment
from diffresnet_pyg.experiments.schema import load_config

HERE = Path(__file__).resolve().parent
CONFIG = HERE.parent / "configs" / "cora" / "diffresnet_reference.yaml"

#: The authors' protocol: splits x inits.
PROTOCOL_SPLITS = 100
PROTOCOL_INITS = 20

#: torch's notices about sparse tensors (the runner's CSR features).
SPARSE_NOTICES = (
    "Sparse CSR tensor support is in beta state",
    "Sparse invariant checks are implicitly disabled",
)

#: The record written next to the rows.
RECORD_FILE = "protocol_device.json"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument("--splits", type=int, default=PROTOCOL_SPLITS)
    parser.add_argument(
        "--inits", type=int, default=PROTOCOL_INITS, help="inits per split (batched)"
    )
    parser.add_argument(
        "--max-epochs", type=int, default=None, help="(default: the config's)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="results folder, new or empty (default: a temporary one)",
    )
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--progress", choices=("log", "bar", "none"), default="log")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another config override (repeatable), e.g. model.layer_num=2",
    )
    args = parser.parse_args(argv)
    for name in ("splits", "inits", "max_epochs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    return args


def overrides(args: argparse.Namespace, output: Path) -> list[str]:
    """The config overrides of this benchmark."""
    out = [
        f"output={output}",
        f"train.device={args.device}",
        f"train.batch_members={args.inits}",
        f"split.num_splits={args.splits}",
        f"split.num_inits={args.inits}",
        "executor.kind=local",
    ]
    if args.max_epochs is not None:
        out.append(f"train.max_epochs={args.max_epochs}")
    return out + list(args.set)


def projected_seconds(wall: float, splits: int, inits: int) -> float:
    """Seconds of the full protocol at the measured pace (see the docstring).

    Example:
        >>> projected_seconds(10.0, 2, 20), projected_seconds(10.0, 2, 4)
        (500.0, 2500.0)
    """
    if inits == PROTOCOL_INITS:
        return wall / splits * PROTOCOL_SPLITS
    runs = splits * inits
    return wall / runs * PROTOCOL_SPLITS * PROTOCOL_INITS


def _duration(seconds: float) -> str:
    """``"12.3 s"``, ``"4.5 min"`` or ``"1.2 h"``."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def run(args: argparse.Namespace, output: Path) -> dict[str, Any]:
    """Run the protocol fraction into ``output``; return the record."""
    if output.exists() and any(output.iterdir()):
        raise SystemExit(
            f"{output} is not empty: the timing needs a fresh results folder "
            "(a folder with rows would be resumed, not rerun)"
        )
    config = load_config(args.config, overrides(args, output))
    protocol = load_config(args.config)
    progress: Any = False if args.progress == "none" else args.progress
    if args.device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    summary = run_experiment(config, progress=progress)
    wall = time.perf_counter() - start
    rows = read_rows(output / RUNS_FILE)
    train_seconds = math.fsum(float(r["seconds"]) for r in rows)
    epochs = [int(r["epochs"]) for r in rows]
    test = summary["test_acc"]
    record = {
        "config": str(args.config),
        "device": args.device,
        "device_name": (
            torch.cuda.get_device_name(torch.device(args.device))
            if args.device.startswith("cuda")
            else "cpu"
        ),
        "torch_threads": config.executor.threads or torch.get_num_threads(),
        "splits": args.splits,
        "inits": args.inits,
        "batch_members": config.train.batch_members,
        "max_epochs": config.train.max_epochs,
        "protocol_epochs": config.train.max_epochs == protocol.train.max_epochs,
        "runs": len(rows),
        "epochs_mean": sum(epochs) / len(epochs),
        "epochs_max": max(epochs),
        "wall_seconds": wall,
        "train_seconds": train_seconds,
        "runs_per_second": len(rows) / wall,
        "projected_protocol_seconds": projected_seconds(wall, args.splits, args.inits),
        "test_acc_mean": test["mean"],
        "test_acc_ci95": list(test["ci95"]),
    }
    (output / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return record


def report(record: dict[str, Any]) -> str:
    """The printed lines of a record."""
    lo, hi = record["test_acc_ci95"]
    mean = record["test_acc_mean"]
    basis = (
        "wall per split x 100"
        if record["inits"] == PROTOCOL_INITS
        else "wall per run x 2000"
    )
    full = (
        ""
        if record["protocol_epochs"]
        else f"; max_epochs={record['max_epochs']}: not the protocol's epochs"
    )
    return "\n".join(
        [
            f"device {record['device']} ({record['device_name']}), "
            f"{record['torch_threads']} torch threads: {record['splits']} splits x "
            f"{record['inits']} inits, {record['batch_members']} members per batched "
            "model",
            f"runs: {record['runs']}, epochs mean {record['epochs_mean']:.1f} "
            f"max {record['epochs_max']}",
            f"wall time: {record['wall_seconds']:.2f} s "
            f"(training {record['train_seconds']:.2f} s)",
            f"runs/s: {record['runs_per_second']:.3f}",
            f"projected 100 x 20 protocol: "
            f"{_duration(record['projected_protocol_seconds'])} ({basis}{full})",
            f"test accuracy: {mean:.2f} +- {(hi - lo) / 2:.2f} % "
            f"(95% CI [{lo:.2f}, {hi:.2f}], {record['runs']} runs)",
        ]
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; print and return its record."""
    args = parse_args(argv)
    for message in SPARSE_NOTICES:
        warnings.filterwarnings("ignore", message=message)
    if args.output is not None:
        record = run(args, args.output)
        where = args.output
    else:
        with tempfile.TemporaryDirectory() as tmp:
            record = run(args, Path(tmp) / "results")
        where = None
    print(report(record), flush=True)
    if where is not None:
        print(f"rows: {where / RUNS_FILE}; record: {where / RECORD_FILE}")
    return record


if __name__ == "__main__":
    main(sys.argv[1:])

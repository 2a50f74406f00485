"""Runs per hour of the authors' Diff-ResNet protocol under each executor.

The authors' protocol (``configs/cora/diffresnet_reference.yaml``: 100 splits
x 20 inits, one run per chunk, ``train.batch_members: 1``) is thousands of
unbatched runs of a wide model whose epoch is 20 sparse propagations. Sparse
products scale poorly over torch threads, so the cores are better spent on
runs side by side (one worker process per core, one thread each) than on one
run with every core. This script measures it: the first ``--runs`` runs of
the config (split 0, its first inits), each exactly ``--epochs`` epochs with
early stopping off (every run does the same work), run from scratch with
``run_experiment`` under each setting:

* ``local x1``: in this process with one torch thread (the reference of the
  ratios, and of the bit-identity check);
* ``local x{cores}``: in this process with one thread per core;
* ``processes {cores}x1``: a pool of one worker process per core, one thread
  each (what ``executor.kind: processes`` chooses on its own).

The settings are interleaved repeat by repeat (``--repeats``), so a change of
the machine's load falls on all of them alike. ``wall runs/h`` counts the
whole study, worker start-up included; ``steady runs/h`` is the rate once the
workers run (workers / seconds of a run, from the rows: the median over the
repeats of each study's mean), the rate of a long protocol. Both are medians
over the repeats, so one study slowed by another job on the machine does not
decide. ``protocol h`` scales the steady rate to the full protocol:
``--protocol-runs`` runs of ``--protocol-epochs`` epochs (default 2000 runs x
300 epochs: the mean epochs of the committed Cora runs of this config,
``experiments/protocol/results/cora/diffresnet_reference``). ``rows = x1``
says whether every row (epochs, validation and test accuracy and loss) is
bit-identical to the ``local x1`` row of the same run (expected at one thread
per worker).

Usage::

    python benchmarks/protocol_throughput.py [--config CONFIG] [--runs 4]
        [--epochs 20] [--repeats 2] [--output FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from diffresnet_pyg.experiments.executors import available_cpus
from diffresnet_pyg.experiments.results import RUNS_FILE, read_rows
from diffresnet_pyg.experiments.runner import run_experiment
from diffresnet_pyg.experiments.schema import load_config

HERE = Path(__file__).resolve().parent
CONFIG = HERE.parent / "configs" / "cora" / "diffresnet_reference.yaml"
RESULT_KEYS = ("split", "init", "epochs", "val_acc", "val_loss", "test_acc")


def settings(cores: int) -> list[tuple[str, dict, int]]:
    """``(label, executor section, runs trained at once)``, reference first."""
    out = [("local x1", {"kind": "local", "threads": 1}, 1)]
    if cores > 1:
        out += [
            (f"local x{cores}", {"kind": "local", "threads": cores}, 1),
            (
                f"processes {cores}x1",
                {"kind": "processes", "workers": cores, "threads": 1},
                cores,
            ),
        ]
    return out


def run_study(
    args: argparse.Namespace, executor: dict, output: Path
) -> tuple[float, list[float], list[tuple]]:
    """Wall seconds, each run's training seconds, and the sorted result rows."""
    overrides = [
        f"output={output}",
        "split.num_splits=1",
        f"split.num_inits={args.runs}",
        "train.batch_members=1",
        f"train.max_epochs={args.epochs}",
        "train.early_stopping=none",
        *(f"executor.{key}={value}" for key, value in executor.items()),
    ]
    config = load_config(args.config, overrides)
    start = time.perf_counter()
    run_experiment(config, progress=False)
    wall = time.perf_counter() - start
    rows = read_rows(output / RUNS_FILE)
    seconds = [float(row["seconds"]) for row in rows]
    return wall, seconds, sorted(tuple(row[k] for k in RESULT_KEYS) for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--runs", type=int, default=4, help="runs per study")
    parser.add_argument("--epochs", type=int, default=20, help="epochs per run")
    parser.add_argument("--repeats", type=int, default=2, help="studies per setting")
    parser.add_argument("--protocol-runs", type=int, default=2000)
    parser.add_argument("--protocol-epochs", type=int, default=300)
    parser.add_argument("--output", type=Path, default=None, help="JSON record")
    args = parser.parse_args()
    for message in (  # torch's notices about sparse tensors (also in the workers)
        "Sparse CSR tensor support is in beta state",
        "Sparse invariant checks are implicitly disabled",
    ):
        warnings.filterwarnings("ignore", message=message)

    cores = available_cpus()
    measured = settings(cores)
    load = [round(x, 2) for x in os.getloadavg()]
    print(
        f"{args.config.name}: {cores} cores, {args.runs} runs x {args.epochs} "
        f"epochs per study (early stopping off), {args.repeats} repeats "
        f"interleaved; load average {load}",
        flush=True,
    )
    walls: dict[str, list[float]] = {label: [] for label, _, _ in measured}
    runs: dict[str, list[float]] = {label: [] for label, _, _ in measured}  # means
    same = {label: True for label, _, _ in measured}
    reference = None
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for label, executor, _ in measured:
                out = Path(tmp) / f"{label.replace(' ', '_')}_{repeat}"
                wall, seconds, rows = run_study(args, executor, out)
                walls[label].append(wall)
                runs[label].append(statistics.mean(seconds))
                reference = rows if reference is None else reference
                same[label] = same[label] and rows == reference
                print(f"  {label}: {wall:.1f} s", flush=True)
    load_after = [round(x, 2) for x in os.getloadavg()]
    results = []
    for label, executor, parallel in measured:
        wall = statistics.median(walls[label])
        run_s = statistics.median(runs[label])
        steady = 3600 * parallel / run_s
        scale = args.protocol_epochs / args.epochs
        results.append(
            {
                "label": label,
                "executor": executor,
                "wall_seconds": walls[label],
                "run_seconds": run_s,
                "wall_runs_per_hour": 3600 * args.runs / wall,
                "steady_runs_per_hour": steady,
                "protocol_hours": args.protocol_runs * scale / steady,
                "rows_equal_local_x1": same[label],
            }
        )
    base = results[0]["steady_runs_per_hour"]
    print(
        f"{'executor':<16} {'median s':>8} {'run s':>6} {'wall runs/h':>11} "
        f"{'steady runs/h':>13} {'vs x1':>6} {'protocol h':>10}  rows = x1"
    )
    for r in results:
        print(
            f"{r['label']:<16} {statistics.median(r['wall_seconds']):>8.1f} "
            f"{r['run_seconds']:>6.1f} {r['wall_runs_per_hour']:>11.0f} "
            f"{r['steady_runs_per_hour']:>13.0f} "
            f"{r['steady_runs_per_hour'] / base:>5.2f}x "
            f"{r['protocol_hours']:>10.1f}  {r['rows_equal_local_x1']}"
        )
    print(
        f"protocol h: {args.protocol_runs} runs x {args.protocol_epochs} epochs at "
        f"the steady rate; load average after: {load_after}"
    )
    if args.output is not None:
        record = {
            "config": str(args.config),
            "cores": cores,
            "runs": args.runs,
            "epochs": args.epochs,
            "repeats": args.repeats,
            "load_average_before": load,
            "load_average_after": load_after,
            "results": results,
        }
        args.output.write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

"""Runs per minute of one small study under each executor.

The same study (``configs/cora/gcn.yaml``: PyG's GCN with gnn-benchmark's
tuned hyperparameters, split 0 of the authors' Cora protocol, its first
``--inits`` init seeds, ``train.batch_members: 1``, exactly ``--epochs``
epochs per run with early stopping off, so every run does the same work) is
run from scratch with ``run_experiment`` under each executor, every worker
with ``--threads`` torch threads (default 1):

* ``local``: in this process (the baseline of the ratios); also ``local, all
  cores``: with one thread per core, the default of a plain ``local`` run;
* ``processes xN``: N = 1 .. ``--max-workers`` (default: the cores) worker
  processes;
* ``ray xN``: at most N tasks in flight on a local Ray instance with all
  cores, each task reserving ``--threads`` CPUs.

Each wall time covers the whole study, worker start-up (spawning processes,
importing torch in them) included; starting the Ray instance is a
once-per-session cost, timed separately (Ray keeps its worker processes, so
later studies in the session start warm). ``work s`` is the training time
measured inside the tasks, summed over runs. Prints seconds, runs per minute
and the ratio to ``local`` side by side, and whether every row (epochs,
validation loss and accuracy, test accuracy) is bit-identical to the
``local`` row of the same run; writes ``throughput.json`` and
``throughput.png`` to ``--output``.

Usage::

    python benchmarks/sweep_throughput.py [--inits 8] [--epochs 40]
        [--repeats 2] [--threads 1] [--max-workers 2] [--no-ray] [--output DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from diffresnet_pyg.experiments.executors import available_cpus  # noqa: E402
from diffresnet_pyg.experiments.results import RUNS_FILE, read_rows  # noqa: E402
from diffresnet_pyg.experiments.runner import run_experiment  # noqa: E402
from diffresnet_pyg.experiments.schema import load_config  # noqa: E402

HERE = Path(__file__).resolve().parent
CONFIG = HERE.parent / "configs" / "cora" / "gcn.yaml"
OUTPUT = HERE.parent / "experiments" / "scale" / "executors"
RESULT_KEYS = ("split", "init", "init_seed", "epochs", "val_acc", "val_loss")
RESULT_KEYS += ("test_acc",)


def executors(
    cores: int, threads: int, max_workers: int, ray: bool
) -> list[tuple[str, dict]]:
    """``(label, executor section)`` of every setting measured, baseline first."""
    out = [("local", {"kind": "local", "threads": threads})]
    if cores != threads:
        out.append(("local, all cores", {"kind": "local", "threads": cores}))
    counts = range(1, max_workers + 1)
    for n in counts:
        section = {"kind": "processes", "workers": n, "threads": threads}
        out.append((f"processes x{n}", section))
    for n in counts if ray else ():
        section = {
            "kind": "ray",
            "workers": n,
            "threads": threads,
            "num_cpus_per_task": threads,
        }
        out.append((f"ray x{n}", section))
    return out


def run_study(args: argparse.Namespace, executor: dict, output: Path) -> tuple:
    """Wall seconds, in-task training seconds and the sorted result rows."""
    overrides = [
        f"output={output}",
        "split.num_splits=1",
        f"split.num_inits={args.inits}",
        "train.batch_members=1",
        f"train.max_epochs={args.epochs}",
        "train.early_stopping=none",
        *(f"executor.{key}={value}" for key, value in executor.items()),
    ]
    if args.root is not None:
        overrides.append(f"dataset.root={args.root}")
    config = load_config(CONFIG, overrides)
    start = time.perf_counter()
    run_experiment(config, progress=False)
    seconds = time.perf_counter() - start
    found = read_rows(output / RUNS_FILE)
    work = sum(row["batch_seconds"] for row in found)  # one run per chunk
    return seconds, work, sorted(tuple(row[k] for k in RESULT_KEYS) for row in found)


def plot(results: list[dict], path: Path, title: str) -> None:
    labels = [r["label"].replace(", ", ",\n") for r in results]
    rates = [r["runs_per_minute"] for r in results]
    colors = {"local": "tab:gray", "processes": "tab:blue", "ray": "tab:orange"}
    fig, ax = plt.subplots(figsize=(8, 3.8))
    bars = ax.bar(labels, rates, color=[colors[r["kind"]] for r in results])
    for bar, r in zip(bars, results, strict=True):
        ax.annotate(
            f"{r['runs_per_minute']:.1f}\n({r['ratio']:.2f}x)",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_ylabel("runs per minute (median)")
    ax.set_ylim(0, max(rates) * 1.3)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def measure(args: argparse.Namespace, settings: list, tmp: Path) -> list[dict]:
    results: list[dict] = []
    reference = None  # the rows of the first setting (``local``)
    for label, executor in settings:
        times, work, same = [], [], True
        for repeat in range(args.repeats):
            out = tmp / f"{label.replace(' ', '_').replace(',', '')}_{repeat}"
            seconds, busy, rows = run_study(args, executor, out)
            times.append(seconds)
            work.append(busy)
            reference = rows if reference is None else reference
            same = same and rows == reference
        median = statistics.median(times)
        results.append(
            {
                "label": label,
                "kind": executor["kind"],
                "executor": executor,
                "seconds": times,
                "work_seconds": work,
                "median_seconds": median,
                "runs_per_minute": 60 * args.inits / median,
                "rows_equal_local": same,
            }
        )
        print(f"  {label}: {', '.join(f'{t:.1f}' for t in times)} s", flush=True)
    for r in results:
        r["ratio"] = r["runs_per_minute"] / results[0]["runs_per_minute"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inits", type=int, default=8, help="runs in the study")
    parser.add_argument("--epochs", type=int, default=40, help="epochs per run")
    parser.add_argument("--repeats", type=int, default=2, help="studies per setting")
    parser.add_argument("--threads", type=int, default=1, help="per worker")
    parser.add_argument("--max-workers", type=int, default=available_cpus())
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray executor")
    parser.add_argument("--root", default=None, help="dataset root")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()

    cores = available_cpus()
    ray = not args.no_ray
    ray_start = None
    if ray:
        import ray as ray_module

        start = time.perf_counter()
        ray_module.init(num_cpus=cores, include_dashboard=False, logging_level="ERROR")
        ray_start = time.perf_counter() - start
    load = [round(x, 2) for x in os.getloadavg()]
    print(
        f"{cores} cores, {args.inits} runs x {args.epochs} epochs (Cora GCN, "
        f"batch_members 1), {args.threads} thread(s) per worker, {args.repeats} "
        f"repeats; load average {load}"
    )
    if ray_start is not None:
        print(f"starting the local Ray instance: {ray_start:.1f} s (not counted)")
    settings = executors(cores, args.threads, args.max_workers, ray)
    with tempfile.TemporaryDirectory() as tmp:
        results = measure(args, settings, Path(tmp))
    if ray:
        ray_module.shutdown()
    print(
        f"{'executor':<17} {'workers':>7} {'threads':>7} {'median s':>9} "
        f"{'work s':>7} {'runs/min':>9} {'vs local':>8}  rows = local"
    )
    for r in results:
        ex = r["executor"]
        print(
            f"{r['label']:<17} {ex.get('workers', 1):>7} {ex['threads']:>7} "
            f"{r['median_seconds']:>9.1f} {statistics.median(r['work_seconds']):>7.1f} "
            f"{r['runs_per_minute']:>9.1f} {r['ratio']:>7.2f}x  {r['rows_equal_local']}"
        )
    load_after = [round(x, 2) for x in os.getloadavg()]
    print(f"load average after: {load_after}")
    args.output.mkdir(parents=True, exist_ok=True)
    record = {
        "command": "python benchmarks/sweep_throughput.py "
        f"--inits {args.inits} --epochs {args.epochs} --repeats {args.repeats} "
        f"--threads {args.threads} --max-workers {args.max_workers}"
        + (" --no-ray" if not ray else ""),
        "cores": cores,
        "ray_start_seconds": ray_start,
        "load_average_before": load,
        "load_average_after": load_after,
        "results": results,
    }
    (args.output / "throughput.json").write_text(json.dumps(record, indent=2) + "\n")
    title = (
        f"Cora GCN, {args.inits} runs x {args.epochs} epochs, {cores} cores, "
        f"{args.threads} thread(s) per worker; ratio to local in brackets"
    )
    plot(results, args.output / "throughput.png", title)
    print(f"wrote {args.output / 'throughput.json'} and throughput.png")


if __name__ == "__main__":
    main()

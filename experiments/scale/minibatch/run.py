r"""Full-batch vs random-partition mini-batch training on Coauthor Physics.

Coauthor Physics (gnn-benchmark, largest connected component: 34,493 nodes,
247,962 undirected edges, 8415 binary bag-of-words features, 5 classes), the
authors' protocol (SPEC section 2: 20 training and 30 validation nodes per
class, the rest for testing; split seeds from master seed 42). For each model
(``configs/coauthor_physics/diffresnet_minibatch.yaml``,
``configs/coauthor_physics/gcn_minibatch.yaml``) and setting -- full batch,
and random partitions into 4, 8 and 16 parts (one part per batch, a new
partition every epoch) -- the same runs (split 0, its first ``--inits`` init
seeds, trained together as one batched model) are trained in a fresh
subprocess, which records:

* the rows of a runner results folder (``runs.jsonl``, ``config.yaml``,
  ``summary.json``), each row with its per-epoch wall times added;
* ``memory.json``: the resident memory after loading the data, and the peak
  resident memory of the training phase (Linux ``VmHWM``, reset after
  loading through ``/proc/self/clear_refs``);

and the parent records the subprocess's ``ru_maxrss`` (which the reset also
resets: it equals the training-phase peak). Up to ``--jobs`` settings run at
once. Then, one model at a time, a timing subprocess trains every setting of
the model for ``--timing-epochs`` epochs without early stopping, in
``--rounds`` interleaved rounds, and times one whole-graph evaluation pass
(``timing.json``; the median epoch time, first epoch of each round left out).
Settings and timings already finished are not rerun. The parent then writes
``results.json``, ``results.md`` and ``minibatch.png``.

Each setting's training is the runner's: the same as

    diffresnet-pyg run configs/coauthor_physics/<model>_minibatch.yaml \
        split.num_splits=1 split.num_inits=2 train.batch_members=2 \
        train.batching.num_parts=<P>          # or train.batching.method=full

Usage::

    OMP_NUM_THREADS=1 python experiments/scale/minibatch/run.py
        [--models diffresnet gcn] [--parts 4 8 16] [--inits 2]
        [--max-epochs N] [--patience N] [--jobs 1] [--rounds 3]
        [--timing-epochs 4] [--output DIR] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
CONFIGS = {
    "diffresnet": ROOT / "configs/coauthor_physics/diffresnet_minibatch.yaml",
    "gcn": ROOT / "configs/coauthor_physics/gcn_minibatch.yaml",
}
LABELS = {"diffresnet": "Diff-ResNet", "gcn": "GCN"}


def overrides(setting: str, args: argparse.Namespace, output: Path) -> list[str]:
    """The config overrides of one setting (``full`` or ``parts_<P>``)."""
    if output.is_relative_to(ROOT):  # as written in config.yaml; cwd is ROOT
        output = output.relative_to(ROOT)
    items = [
        f"output={output}",
        "split.num_splits=1",
        f"split.num_inits={args.inits}",
        f"train.batch_members={args.inits}",
    ]
    if args.max_epochs is not None:
        items.append(f"train.max_epochs={args.max_epochs}")
    if args.patience is not None:
        items.append(f"train.patience={args.patience}")
    if setting == "full":
        items.append("train.batching.method=full")
    else:
        items.append(f"train.batching.num_parts={int(setting.split('_')[1])}")
    return items


def worker(args: argparse.Namespace) -> None:
    """Train one (model, setting) in this process, as the runner does."""
    import torch

    from diffresnet_pyg.data import load_dataset
    from diffresnet_pyg.experiments.models import build_members
    from diffresnet_pyg.experiments.report import write_summary
    from diffresnet_pyg.experiments.results import (
        RUNS_FILE,
        append_rows,
        claim_folder,
        load_rows,
        make_row,
        write_atomic,
    )
    from diffresnet_pyg.experiments.runner import fit_chunk, input_features, plan_runs
    from diffresnet_pyg.experiments.schema import load_config
    from diffresnet_pyg.profiling import UNAVAILABLE, peak_rss, read_status

    torch.set_num_threads(args.threads)
    os.chdir(ROOT)
    folder = args.output / args.model / args.setting
    config = load_config(CONFIGS[args.model], overrides(args.setting, args, folder))
    claim_folder(folder, config)
    rows_path = folder / RUNS_FILE
    done = load_rows(rows_path)
    data = load_dataset(
        config.dataset.name,
        config.dataset.root,
        standardize=config.dataset.standardize,
        normalize_features=config.dataset.normalize_features,
    )
    runs = plan_runs(config, data)
    chunk = [
        r
        for r in runs
        if (r.split, r.init) not in {(row["split"], row["init"]) for row in done}
    ]
    if not chunk:
        write_summary(folder, expected_runs=len(runs))
        return
    x = input_features(config, data, batched=len(chunk) > 1)
    edge_index, y = data.edge_index, data.y
    num_features, num_classes = data.num_features, int(data.y.max()) + 1
    del data
    import gc

    gc.collect()
    loading_peak = read_status("VmHWM")
    stamps: list[float] = []
    active: list[int] = []

    def on_epoch(epoch: int, members: int) -> None:
        stamps.append(time.perf_counter())
        active.append(members)

    def on_finish(member: int, result: Any) -> None:
        row = make_row(
            config.dataset.name,
            config.model.name,
            chunk[member],
            result,
            batch_members=len(chunk),
            batch_seconds=time.perf_counter() - stamps[0],
            max_epochs=config.train.max_epochs,
        )
        row["epoch_seconds"] = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
        row["epoch_members"] = list(active)
        append_rows(rows_path, [row])

    with peak_rss(fallback=False) as training:  # resets VmHWM (and ru_maxrss)
        if training.method == UNAVAILABLE:
            raise SystemExit("the memory study needs Linux /proc/self/clear_refs")
        model = build_members(
            config.model, num_features, num_classes, [r.init_seed for r in chunk]
        )
        stamps.append(time.perf_counter())
        fit_chunk(
            config,
            model,
            x,
            edge_index,
            y,
            chunk,
            on_epoch=on_epoch,
            on_finish=on_finish,
        )
    memory = {
        "loading_peak_rss_mib": loading_peak / 2**20,
        "rss_after_loading_mib": training.before / 2**20,
        "training_peak_rss_mib": training.peak / 2**20,
        "threads": args.threads,
    }
    write_atomic(folder / "memory.json", json.dumps(memory, indent=1))
    write_summary(folder, expected_runs=len(runs))


def timing_worker(args: argparse.Namespace) -> None:
    """Time every setting of one model in this process, in interleaved rounds.

    Each round trains every setting for ``--timing-epochs`` epochs without
    early stopping (the same runs, model and loader as the study), then times
    one evaluation-mode forward pass on the whole graph. The first epoch of a
    round (diffusion operators being cached) is left out.
    """
    import torch

    from diffresnet_pyg.data import load_dataset
    from diffresnet_pyg.experiments.models import build_members
    from diffresnet_pyg.experiments.runner import fit_chunk, input_features, plan_runs
    from diffresnet_pyg.experiments.schema import load_config

    torch.set_num_threads(args.threads)
    os.chdir(ROOT)
    epochs = args.timing_epochs

    def config_of(setting: str) -> Any:
        items = overrides(setting, args, args.output / "timing")
        items = [i for i in items if not i.startswith(("train.max_", "train.pat"))]
        items += [f"train.max_epochs={epochs}", "train.early_stopping=none"]
        return load_config(CONFIGS[args.model], items)

    settings = ["full", *(f"parts_{p}" for p in args.parts)]
    config = config_of("full")
    data = load_dataset(
        config.dataset.name,
        config.dataset.root,
        standardize=config.dataset.standardize,
        normalize_features=config.dataset.normalize_features,
    )
    chunk = plan_runs(config, data)
    x = input_features(config, data, batched=len(chunk) > 1)
    times: dict[str, dict[str, list[float]]] = {
        s: {"epoch_seconds": [], "eval_seconds": []} for s in settings
    }
    for _ in range(args.rounds):
        for setting in settings:
            config = config_of(setting)
            model = build_members(
                config.model,
                data.num_features,
                int(data.y.max()) + 1,
                [r.init_seed for r in chunk],
            )
            stamps = [time.perf_counter()]
            fit_chunk(
                config,
                model,
                x,
                data.edge_index,
                data.y,
                chunk,
                on_epoch=lambda epoch, active, stamps=stamps: stamps.append(
                    time.perf_counter()
                ),
                on_finish=lambda member, result: None,
            )
            times[setting]["epoch_seconds"] += [
                b - a for a, b in zip(stamps[1:], stamps[2:], strict=False)
            ]
            model.eval()
            with torch.no_grad():
                start = time.perf_counter()
                model(x, data.edge_index)
                times[setting]["eval_seconds"].append(time.perf_counter() - start)
            print(args.model, setting, times[setting], flush=True)
    path = args.output / args.model / "timing.json"
    path.write_text(json.dumps({"threads": args.threads, **times}, indent=1))


def run_timing(model: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run (or reuse) the timing of one model in a fresh subprocess."""
    path = args.output / model / "timing.json"
    if not path.exists():
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--timing-worker",
            "--model",
            model,
            "--parts",
            *map(str, args.parts),
            "--inits",
            str(args.inits),
            "--output",
            str(args.output),
            "--threads",
            str(args.threads),
            "--rounds",
            str(args.rounds),
            "--timing-epochs",
            str(args.timing_epochs),
        ]
        print(f"{model} timing: {' '.join(command[1:])}", flush=True)
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        subprocess.run(command, env=env, check=True)
    return json.loads(path.read_text())


def run_setting(model: str, setting: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run (or reuse) one setting in a fresh subprocess; its measurements."""
    from diffresnet_pyg.experiments.results import RUNS_FILE, read_rows

    folder = args.output / model / setting
    measures = folder / "measures.json"
    if measures.exists():
        return json.loads(measures.read_text())
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "--model",
        model,
        "--setting",
        setting,
        "--inits",
        str(args.inits),
        "--output",
        str(args.output),
        "--threads",
        str(args.threads),
    ]
    for flag, value in (
        ("--max-epochs", args.max_epochs),
        ("--patience", args.patience),
    ):
        if value is not None:
            command += [flag, str(value)]
    print(f"{model} {setting}: {' '.join(command[1:])}", flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": "1"})
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{model} {setting} failed")
    rows = read_rows(folder / RUNS_FILE)
    rows.sort(key=lambda row: row["init"])
    last = max(rows, key=lambda row: len(row["epoch_seconds"]))  # whole chunk
    memory = json.loads((folder / "memory.json").read_text())
    both = [
        s
        for s, m in zip(last["epoch_seconds"], last["epoch_members"], strict=True)
        if m == args.inits
    ]
    result = {
        "model": model,
        "setting": setting,
        "test_acc": [100 * r["test_acc"] for r in rows],
        "val_acc": [100 * r["val_acc"] for r in rows],
        "epochs": [r["epochs"] for r in rows],
        "best_epoch": [r["best_epoch"] for r in rows],
        "epoch_seconds_median": statistics.median(both),
        "ru_maxrss_mib": usage.ru_maxrss / 1024,
        **memory,
        "wall_seconds": time.perf_counter() - start,
    }
    measures.write_text(json.dumps(result, indent=1))
    return result


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Write results.json, results.md and minibatch.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (args.output / "results.json").write_text(json.dumps(results, indent=1))
    lines = [
        "| model | batching | test acc. (%) per run | mean | epochs (best) | "
        "s / epoch (of which eval) | training peak RSS (MiB) | "
        "RSS after loading (MiB) | loading peak RSS (MiB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        accs = ", ".join(f"{a:.2f}" for a in r["test_acc"])
        parts = r["setting"].removeprefix("parts_")
        setting = "full batch" if r["setting"] == "full" else f"{parts} random parts"
        epochs = ", ".join(
            f"{e} ({b})" for e, b in zip(r["epochs"], r["best_epoch"], strict=True)
        )
        lines.append(
            f"| {LABELS[r['model']]} | {setting} | {accs} | "
            f"{statistics.mean(r['test_acc']):.2f} | {epochs} | "
            f"{r['timed_epoch_seconds']:.2f} ({r['timed_eval_seconds']:.2f}) | "
            f"{r['training_peak_rss_mib']:.0f} | "
            f"{r['rss_after_loading_mib']:.0f} | {r['loading_peak_rss_mib']:.0f} |"
        )
    (args.output / "results.md").write_text("\n".join(lines) + "\n")

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for model in dict.fromkeys(r["model"] for r in results):
        mine = [r for r in results if r["model"] == model]
        xs = [
            1 if r["setting"] == "full" else int(r["setting"].split("_")[1])
            for r in mine
        ]
        for ax, key, fn in (
            (axes[0], "test_acc", statistics.mean),
            (axes[1], "timed_epoch_seconds", None),
            (axes[2], "training_peak_rss_mib", None),
        ):
            ys = [fn(r[key]) if fn else r[key] for r in mine]
            (line,) = ax.plot(xs, ys, "o-", label=LABELS[model])
            if key == "test_acc":
                for x, r in zip(xs, mine, strict=True):
                    ax.scatter(
                        [x] * len(r[key]),
                        r[key],
                        s=12,
                        alpha=0.5,
                        color=line.get_color(),
                    )
            if key == "training_peak_rss_mib":
                after = [r["rss_after_loading_mib"] for r in mine]
                ax.plot(
                    xs,
                    after,
                    ":",
                    color=line.get_color(),
                    label=f"{LABELS[model]}, after loading",
                )
    titles = (
        "test accuracy (%)",
        "seconds per epoch (train + full-graph eval)",
        "training-phase peak RSS (MiB)",
    )
    for ax, title in zip(axes, titles, strict=True):
        ax.set_xscale("log", base=2)
        ax.set_xticks([1, 4, 8, 16], ["full", "4", "8", "16"])
        ax.set_xlabel("random parts per epoch")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend()
    axes[2].legend(fontsize=8)
    fig.suptitle(
        f"Coauthor Physics, split 0 x {args.inits} inits, {args.threads} CPU thread",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(args.output / "minibatch.png", dpi=120)


def main() -> None:
    """Run every setting (or one, with ``--worker``), then the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--models", nargs="+", default=["diffresnet", "gcn"], choices=sorted(CONFIGS)
    )
    parser.add_argument("--parts", nargs="+", type=int, default=[4, 8, 16])
    parser.add_argument("--inits", type=int, default=2)
    parser.add_argument("--max-epochs", type=int, default=None)
    parser.add_argument("--patience", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=1, help="settings run at once")
    parser.add_argument("--output", type=Path, default=HERE / "results")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds")
    parser.add_argument("--timing-epochs", type=int, default=4)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--timing-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--setting", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.output = args.output.resolve()
    if args.worker:
        worker(args)
        return
    if args.timing_worker:
        timing_worker(args)
        return
    settings = ["full", *(f"parts_{p}" for p in args.parts)]
    grid = [(m, s) for m in args.models for s in settings]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda ms: run_setting(*ms, args), grid))
    for model in args.models:  # one model at a time: timings need a quiet CPU
        timing = run_timing(model, args)
        for r in results:
            if r["model"] == model:
                r["timed_epoch_seconds"] = statistics.median(
                    timing[r["setting"]]["epoch_seconds"]
                )
                r["timed_eval_seconds"] = statistics.median(
                    timing[r["setting"]]["eval_seconds"]
                )
    report(results, args)


if __name__ == "__main__":
    main()

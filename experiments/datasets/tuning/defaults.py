"""Candidate defaults of the general Diff-ResNet against GCN, on validation only.

Runs the shipped GCN (``configs/<dataset>/gcn.yaml``) and every candidate of
``candidates.yaml`` (overrides of ``configs/<dataset>/diffresnet.yaml``) on
splits of the authors' per-class protocol drawn from master seed 1 (the
searches scored on master seed 42), never evaluating the test
nodes (``evaluate_test=False``), then prints the mean validation accuracy of
each. Resumable: rerun the same command::

    python experiments/datasets/tuning/defaults.py cora --splits 2 --inits 2
    python experiments/datasets/tuning/defaults.py coauthor_physics --splits 1 --inits 2

Rows go to ``defaults/<dataset>/<candidate>/``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import yaml

from diffresnet_pyg.experiments.report.stats import summarize
from diffresnet_pyg.experiments.results import write_atomic
from diffresnet_pyg.experiments.runner import run_experiment
from diffresnet_pyg.experiments.schema import load_config

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
MASTER_SEED = 1
#: Written in a candidate's folder when the runner refuses its config.
REFUSED = "refused.txt"


def candidates(name: str = "candidates.yaml") -> dict[str, dict[str, object]]:
    """The candidates of the file ``name`` beside this script, by label, GCN first."""
    with (HERE / name).open() as f:
        return {"gcn": {}, **yaml.safe_load(f)}


def folder(dataset: str, label: str, name: str) -> Path:
    """Where a candidate's rows go (relative to the repository root).

    ``defaults/`` for ``candidates.yaml``, else the candidate file's stem.
    """
    stem = "defaults" if name == "candidates.yaml" else Path(name).stem
    return (HERE / stem / dataset / label).relative_to(ROOT)


def run(dataset: str, splits: int, inits: int, labels: list[str], name: str) -> None:
    """Train every candidate on ``splits x inits`` runs (validation only).

    The splits come from master seed ``MASTER_SEED``, not the protocol's 42
    that the searches scored on, so the candidates are checked on splits
    they were not picked on.
    """
    for label, overrides in candidates(name).items():
        if labels and label not in labels:
            continue
        model = "gcn" if label == "gcn" else "diffresnet"
        config = load_config(
            Path("configs") / dataset / f"{model}.yaml",
            [
                f"split.master_seed={MASTER_SEED}",
                f"split.num_splits={splits}",
                f"split.num_inits={inits}",
                f"output={folder(dataset, label, name)}",
                *(f"{key}={value}" for key, value in overrides.items()),
            ],
        )
        print(f"{dataset} {label}", flush=True)
        try:
            run_experiment(config, progress=False, evaluate_test=False)
        except ValueError as exc:  # e.g. a step size unstable on this graph
            print(f"{dataset} {label}: refused: {exc}", flush=True)
            write_atomic(folder(dataset, label, name) / REFUSED, f"{exc}\n")


def summary(dataset: str, name: str) -> str:
    """Markdown rows: mean validation accuracy (%) ± half its 95 % t interval."""
    lines = []
    for label in candidates(name):
        path = folder(dataset, label, name) / "runs.jsonl"
        refused = folder(dataset, label, name) / REFUSED
        if refused.exists():
            reason = refused.read_text().strip().split(":")[0]
            lines.append(f"| {dataset} | {label} | refused: {reason} | 0 | |")
            continue
        if not path.exists():
            continue
        rows = [json.loads(line) for line in path.open()]
        acc = summarize([100 * row["val_acc"] for row in rows])
        half = (acc.ci95[1] - acc.ci95[0]) / 2
        seconds = statistics.mean(row["seconds"] for row in rows)
        cell = f"{acc.mean:.2f} ± {half:.2f}" if acc.n > 1 else f"{acc.mean:.2f}"
        lines.append(f"| {dataset} | {label} | {cell} | {acc.n} | {seconds:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+")
    parser.add_argument("--splits", type=int, default=2)
    parser.add_argument("--inits", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=[], help="candidate labels to run")
    parser.add_argument("--summary", action="store_true", help="only print the table")
    parser.add_argument(
        "--file", default="candidates.yaml", help="the candidates (beside this script)"
    )
    args = parser.parse_args()
    os.chdir(ROOT)
    if not args.summary:
        for name in args.datasets:
            run(name, args.splits, args.inits, args.only, args.file)
    print("| dataset | setting | val acc (%, mean ± 95 % CI) | runs | s/run |")
    print("|---|---|---|---|---|")
    for name in args.datasets:
        print(summary(name, args.file))

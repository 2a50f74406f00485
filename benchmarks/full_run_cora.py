"""A complete Diff-ResNet run on Cora, this tree against an older checkout.

One run of the authors' setting (``configs/cora/diffresnet_reference.yaml``,
their early stopping) on one split and init, trained through the runner's
``run_chunk`` in a fresh process per tree, with the same number of torch
threads. Runs alternate between the trees (A B B A ...), so a change of
machine load hits both alike. Prints each run's wall time, epochs and
accuracies, and the speed-up; at a fixed thread count the two trees should
give the same row (epochs and accuracies) unless their arithmetic differs.

Make the older checkout with ``git worktree add /tmp/old <commit>``; from the
repository root::

    python benchmarks/full_run_cora.py --baseline /tmp/old --threads 1 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, {tree!r})
    import torch
    torch.set_num_threads({threads})
    import diffresnet_pyg
    from diffresnet_pyg.experiments.runner import run_chunk
    from diffresnet_pyg.experiments.schema import load_config
    config = load_config({config!r}, ["output=/nonexistent"])
    start = time.perf_counter()
    (row,) = run_chunk(config, [({split}, {init})])
    row["wall"] = time.perf_counter() - start
    row["package"] = diffresnet_pyg.__file__
    print("ROW " + json.dumps(row))
    """
)


def run_once(tree: Path, args: argparse.Namespace) -> dict:
    """One complete run in a fresh interpreter importing ``tree``'s package."""
    code = _CHILD.format(
        tree=str(tree),
        threads=args.threads,
        config=str(ROOT / "configs" / "cora" / "diffresnet_reference.yaml"),
        split=args.split,
        init=args.init,
    )
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"run in {tree} failed:\n{done.stderr[-3000:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("ROW "))
    row = json.loads(line[4:])
    if not row["package"].startswith(str(tree)):
        raise SystemExit(f"{tree}: imported {row['package']} instead")
    return row


def main() -> None:
    """Alternate complete runs of the two trees and print the speed-up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--split", type=int, default=0)
    parser.add_argument("--init", type=int, default=0)
    args = parser.parse_args()
    trees = {"this tree": ROOT, "baseline": args.baseline.resolve()}
    walls: dict[str, list[float]] = {name: [] for name in trees}
    order = []
    for i in range(args.repeats):
        names = list(trees) if i % 2 == 0 else list(reversed(trees))
        order += names
    for name in order:
        row = run_once(trees[name], args)
        walls[name].append(row["wall"])
        print(
            f"{name:10s} {row['wall']:8.1f} s  epochs {row['epochs']}  best "
            f"{row['best_epoch']}  val {row['val_acc']:.9f}  test "
            f"{row['test_acc']:.9f}",
            flush=True,
        )
    mean = {name: sum(w) / len(w) for name, w in walls.items()}
    ratio = mean["baseline"] / mean["this tree"]
    print(
        f"mean wall: this tree {mean['this tree']:.1f} s, baseline "
        f"{mean['baseline']:.1f} s; speed-up {ratio:.2f}x "
        f"({args.threads} thread(s), split {args.split}, init {args.init})"
    )


if __name__ == "__main__":
    main()

"""Per-member random streams vs one shared stream, side by side, on Cora.

For each model, ``B`` members of the Cora config (``configs/cora/<model>.yaml``,
init seeds ``0..B-1``) are built as the runner builds them
(:func:`~diffresnet_pyg.experiments.models.build_members`, sparse features)
and timed for training steps (forward and backward in training mode, the part
that draws dropout masks):

* ``own streams``: each member draws its masks from its own generators (the
  runner's behaviour: a run's masks do not depend on its batch);
* ``shared stream``: the same model with ``streams = None``, every dropout
  one draw over all members from the global generator (the behaviour before
  runs had their own streams).

The two alternate, step by step, so a loaded machine slows both alike; the
minimum over the steps is printed, in milliseconds per member-step.

Usage::

    python benchmarks/batched_members.py [--root DATA_ROOT] [--members 8]
        [--steps 10] [--threads 1] [--models gcn gat sage mlp diffresnet]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import yaml

from diffresnet_pyg.data import load_dataset
from diffresnet_pyg.experiments.models import build_members
from diffresnet_pyg.experiments.schema import ModelConfig

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "cora"


def step_seconds(model: torch.nn.Module, x, edge_index) -> float:
    """Seconds of one training-mode forward and backward."""
    start = time.perf_counter()
    model(x, edge_index).sum().backward()
    return time.perf_counter() - start


def compare(name: str, data, members: int, steps: int) -> tuple[float, float]:
    """Best milliseconds per member-step with own streams and a shared one."""
    raw = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())["model"]
    config = ModelConfig(raw.pop("name"), raw)
    classes = int(data.y.max()) + 1
    model = build_members(
        config, data.num_features, classes, list(range(members)), stacked=True
    ).train()
    streams = model.streams
    x = data.x.to_sparse_csr()
    step_seconds(model, x, data.edge_index)  # warm-up (caches, allocator)
    own, shared = [], []
    for _ in range(steps):
        model.streams = streams
        own.append(step_seconds(model, x, data.edge_index))
        model.streams = None
        shared.append(step_seconds(model, x, data.edge_index))
    return 1000 * min(own) / members, 1000 * min(shared) / members


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=None, help="dataset root (see README)")
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--models", nargs="*", default=["gcn", "gat", "sage", "mlp", "diffresnet"]
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_dataset("cora", root=args.root)
    print(
        f"torch {torch.__version__}, {args.threads} threads; {args.members} "
        f"members, best of {args.steps} training steps (Cora LCC)"
    )
    print(f"{'model':22s} {'own streams':>12s} {'shared':>10s}   (ms per member-step)")
    for name in args.models:
        own, shared = compare(name, data, args.members, args.steps)
        print(f"{name:22s} {own:12.2f} {shared:10.2f}   {own / shared:.2f}x")


if __name__ == "__main__":
    main()

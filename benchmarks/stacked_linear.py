"""Per-member products against one batched product (``torch.bmm``).

``diffresnet_pyg.nn.batched.stacked_linear`` computes a stacked layer with one
matrix product per member, forward and backward, each on contiguous copies of
the member's slices, so that a member's numbers do not depend on its position
in the batch (``torch.bmm`` rounds them differently by position). This times
forward + backward of both, alternating, at the layer shapes of the stacked
Cora models (2485 nodes; Diff-ResNet's 128-wide block and its output layer,
GCN's 64-wide layers, 10 members), and checks the position dependence.

Usage::

    python benchmarks/stacked_linear.py [--members 10] [--repeats 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from diffresnet_pyg.nn.batched import stacked_linear

SHAPES = {  # name: (nodes, in, out)
    "Diff-ResNet block 128x128": (2485, 128, 128),
    "Diff-ResNet output 128x7": (2485, 128, 7),
    "GCN hidden 64x64": (2485, 64, 64),
    "GCN output 64x7": (2485, 64, 7),
}


def with_bmm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The batched product this library used before (one ``torch.bmm``)."""
    return torch.bmm(x.transpose(0, 1), weight).transpose(0, 1)


def seconds(fn, x, weight, grad, repeats: int) -> float:
    """Median seconds of forward + backward."""
    times = []
    for _ in range(repeats):
        x.grad = weight.grad = None
        start = time.perf_counter()
        fn(x, weight).backward(grad)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    b = args.members
    print(f"{b} members, {args.threads} thread(s), median of {args.repeats}")
    head = f"{'layer':28} {'bmm ms':>8} {'per member ms':>14} {'ratio':>6}"
    print(head + "  bmm by position")
    for name, (n, f_in, f_out) in SHAPES.items():
        x = torch.randn(n, b, f_in, generator=gen).relu().requires_grad_()
        weight = torch.randn(b, f_in, f_out, generator=gen).requires_grad_()
        grad = torch.randn(n, b, f_out, generator=gen)
        ours = lambda x, w: stacked_linear(x, w, None)  # noqa: E731
        t_bmm = t_ours = 0.0
        for _ in range(2):  # alternate, to share the machine's noise
            t_bmm += seconds(with_bmm, x, weight, grad, args.repeats)
            t_ours += seconds(ours, x, weight, grad, args.repeats)
        full = with_bmm(x, weight).detach()
        alone = with_bmm(x.detach()[:, 2:3].clone(), weight.detach()[2:3].clone())
        moved = "differs" if not torch.equal(full[:, 2:3], alone) else "same"
        print(
            f"{name:28} {1e3 * t_bmm / 2:8.2f} {1e3 * t_ours / 2:14.2f} "
            f"{t_ours / t_bmm:6.2f}  member 2 of {b} vs alone: {moved}"
        )


if __name__ == "__main__":
    main()

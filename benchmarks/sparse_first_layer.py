"""The first linear layer on sparse bag-of-words features: dense vs sparse products.

Forward and backward of :math:`Y = X W^T + b` on the Cora LCC features
(``[2485, 1433]``, 1.3 % nonzero) with :math:`W` of size ``1433 x 1433``, as
in the authors' Cora model, timed side by side in alternating rounds:

* ``dense``: ``F.linear`` on the dense features; the weight gradient
  :math:`G^T X` is a dense ``[1433, 2485] x [2485, 1433]`` product.
* ``torch-csr``: ``torch.addmm(b, X_csr, W.t())`` with PyTorch's own
  autograd: sparse products both ways (it transposes :math:`X` to CSR on
  every backward and multiplies with the CSR kernel).
* ``ours``: :func:`~diffresnet_pyg.nn.sparse.sparse_matmul`: the weight
  gradient from the cached COO transpose of :math:`X`.

Then whole training epochs (train step with Adam, then the evaluation pass)
of ``DiffResNet.reference`` on the same features: dense features, sparse
features with the ``torch-csr`` first layer and a densified residual
(``out + x.to_dense()``), and sparse features as shipped.

Usage::

    python benchmarks/sparse_first_layer.py [--threads 1] [--rounds 5] [--reps 10]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

import diffresnet_pyg.nn.models.diff_resnet as diff_resnet
from diffresnet_pyg.data import load_dataset, protocol_split
from diffresnet_pyg.nn import DiffResNet
from diffresnet_pyg.nn.sparse import quiet_sparse_warnings, sparse_matmul


def torch_csr_linear(x, lin):
    """The first layer with PyTorch's autograd of a CSR product."""
    if x.layout == torch.strided:
        return lin(x)
    return torch.addmm(lin.bias, x, lin.weight.t())


def densified_residual(out, x):
    """The residual with a dense copy of a sparse ``x``."""
    return out + (x.to_dense() if x.layout != torch.strided else x)


def race(fns: dict[str, Callable[[], None]], rounds: int, reps: int) -> dict:
    """Median seconds per call of each function over alternating rounds."""
    for fn in fns.values():  # warm-up (and caches)
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(reps):
                fn()
            times[name].append((time.perf_counter() - start) / reps)
    return {name: statistics.median(t) for name, t in times.items()}


def report(title: str, med: dict, unit: float = 1e3) -> None:
    print(title)
    base = med["dense"]
    for name, t in med.items():
        print(f"  {name:>10}: {t * unit:8.2f} ms   dense / this: {base / t:5.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=None, help="dataset root (see README)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    parser.add_argument("--reps", type=int, default=10, help="calls per round")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data = load_dataset("cora", args.root)
    x = data.x
    with quiet_sparse_warnings():
        x_csr = x.to_sparse_csr()
    n, f = x.shape
    print(
        f"Cora LCC features [{n}, {f}], {x_csr.values().numel()} nonzero "
        f"({x_csr.values().numel() / (n * f):.1%}); torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )

    torch.manual_seed(0)
    lin = torch.nn.Linear(f, f)
    grad = torch.randn(n, f)

    def step(fn: Callable[[], torch.Tensor]) -> Callable[[], None]:
        def run() -> None:
            lin.weight.grad = lin.bias.grad = None
            fn().backward(grad)

        return run

    layer = {
        "dense": step(lambda: F.linear(x, lin.weight, lin.bias)),
        "torch-csr": step(lambda: torch_csr_linear(x_csr, lin)),
        "ours": step(lambda: sparse_matmul(x_csr, lin.weight.t(), lin.bias)),
    }
    want = F.linear(x, lin.weight, lin.bias)
    got = sparse_matmul(x_csr, lin.weight.t(), lin.bias)
    print(f"max |ours - dense| forward: {(got - want).abs().max():.1e}")
    report(
        "first layer forward + backward (per call):",
        race(layer, args.rounds, args.reps),
    )

    split = protocol_split(data.y, 0)
    train = split.train_idx
    models = {}
    for name in ("dense", "torch-csr", "ours"):
        torch.manual_seed(split.init_seeds[0])
        model = DiffResNet.reference(f, int(data.y.max()) + 1, cached=True)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
        models[name] = (model, optimizer, x if name == "dense" else x_csr)
    ours_fns = (diff_resnet.linear, diff_resnet._add_residual)

    def epoch(name: str) -> Callable[[], None]:
        model, optimizer, features = models[name]

        def run() -> None:
            if name == "torch-csr":
                diff_resnet.linear = torch_csr_linear
                diff_resnet._add_residual = densified_residual
            try:
                model.train()
                optimizer.zero_grad()
                out = model(features, data.edge_index)[train]
                F.cross_entropy(out, data.y[train]).backward()
                optimizer.step()
                model.eval()
                with torch.no_grad():
                    model(features, data.edge_index)
            finally:
                diff_resnet.linear, diff_resnet._add_residual = ours_fns

        return run

    report(
        "DiffResNet.reference epoch (train step + evaluation):",
        race({name: epoch(name) for name in models}, args.rounds, 2),
    )


if __name__ == "__main__":
    main()

r"""One training epoch of the authors' Cora configuration: their arithmetic vs ours.

Both sides run the same math in the same process, alternating rounds:
the Diff-ResNet graph model (``x + ReLU(Linear_FxF(x))``, 20 x [dropout 0.25,
reference diffusion step 0.25], linear classifier) on the Cora LCC of the
gnn-benchmark file, one Adam step (lr 0.01, weight decay 5e-4) on the
cross-entropy of the 140 training nodes of split 0 (seed 121958), then the
evaluation pass (validation loss and accuracy) of the authors' protocol.

* ``authors``: a straightforward re-implementation of the authors' code:
  dense features, ``torch.nn.functional.dropout``, and every step computes
  ``x - step * (diagonal - adj) @ x`` with torch COO matrices.
* ``ours``: ``DiffResNet.reference`` with sparse CSR features and a cached
  diffusion operator; its 20 steps run on one cache-sized column panel at a
  time (``DiffusionConv.panel_width``).
* ``ours-steps``: the same model, same initial weights, with
  ``panel_width = 0``: each step streams the whole ``N x F`` matrix (the
  path before the panels).

Distance to the limit. In the same process the script measures the copy
bandwidth :math:`B` (``Tensor.copy_`` of a 64 MB buffer: bytes read plus
written per second) and the GEMM rate :math:`R` (a ``[F, N] @ [N, F]``
matmul, the size of the dense layer on dense features, at the same thread
count), and prints the epoch's lower bound
:math:`\max(\text{bytes} / B, \text{FLOPs} / R)`:

* bytes: what must stream through memory however well steps are fused. The
  ``N x F`` float matrices that cross the diffusion: in training the
  block's output (written, read by the diffusion), the diffusion's output
  (written, read by the classifier) and the same two in the backward, and
  in evaluation the block's output (written, read): 10 matrices of
  :math:`4NF` bytes. The 20 dropout masks of :math:`NF` bytes each, written
  when drawn and read in the forward and the backward: :math:`60 NF` bytes.
  The CSR operator (:math:`12\,\mathrm{nnz} + 8(N + 1)` bytes) once per
  step. Everything else (the panels of the fused steps) can stay in cache.
* FLOPs: the multiply-adds of the 40 diffusion products
  (:math:`2\,\mathrm{nnz}\,F` each, counted at the GEMM rate, which no
  sparse product exceeds) and of the dense layers on the sparse input
  (:math:`2\,\mathrm{nnz}(X) F` for the forward, the weight gradient and
  the evaluation forward) and the classifier (:math:`2NFC`, four times).

Usage::

    python benchmarks/epoch_time_cora.py [--root DATA_ROOT] [--epochs 10] \
        [--threads 1] [--profile]

``--profile`` also prints, for each side, the operators that take the most
time (``torch.profiler``, self CPU time over two epochs).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from diffresnet_pyg.data import load_dataset, protocol_split
from diffresnet_pyg.evaluate import Evaluator
from diffresnet_pyg.nn import DiffResNet, DiffusionConv


class AuthorsDiffusionNet(nn.Module):
    """The authors' graph model, arithmetic unchanged."""

    def __init__(self, n_features, num_classes, step, layer_num, dropout, diagonal):
        super().__init__()
        self.linear = nn.Linear(n_features, n_features)
        self.classifier = nn.Linear(n_features, num_classes)
        self.step, self.layer_num, self.dropout = step, layer_num, dropout
        self.diagonal = diagonal

    def forward(self, x, adj):
        """``x + ReLU(Wx)``, then dropout and ``x - step (diag - adj) x``."""
        x = x + F.relu(self.linear(x))
        for _ in range(self.layer_num):
            x = F.dropout(x, self.dropout, training=self.training)
            x = x - self.step * torch.matmul(self.diagonal - adj, x)
        return self.classifier(x)


def authors_operators(edge_index: torch.Tensor, n: int):
    """``A_hat = D^-1/2 (A + I) D^-1/2`` and ``diag(A_hat 1)`` as torch COO."""
    src, dst = edge_index.numpy()
    adj = sp.coo_matrix((np.ones(src.size), (src, dst)), shape=(n, n)).tocsr()
    adj = adj + sp.eye(n)
    d_inv_sqrt = np.power(np.asarray(adj.sum(1)).ravel(), -0.5)
    adj = sp.diags(d_inv_sqrt) @ adj @ sp.diags(d_inv_sqrt)
    diagonal = sp.diags(np.asarray(adj.sum(1)).ravel())

    def to_torch(mat):
        mat = mat.tocoo().astype(np.float32)
        index = torch.from_numpy(np.vstack([mat.row, mat.col]).astype(np.int64))
        return torch.sparse_coo_tensor(index, torch.from_numpy(mat.data), mat.shape)

    return to_torch(adj), to_torch(diagonal)


ACCURACY = Evaluator("acc")


def epoch(model, optimizer, x, graph, y, train_idx, val_idx):
    """One epoch of the protocol: a train step, then validation loss/accuracy."""
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x, graph)[train_idx], y[train_idx])
    loss.backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        out = model(x, graph)[val_idx]
        val_loss = F.cross_entropy(out, y[val_idx]).item()
        val_acc = ACCURACY.eval({"y_true": y[val_idx], "y_pred": out})["acc"]
    return val_loss, val_acc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=None, help="dataset root (see README)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--profile", action="store_true", help="top operators")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    data = load_dataset("cora", args.root)
    split = protocol_split(data.y, 0)
    n, f = data.x.shape
    c = int(data.y.max()) + 1
    adj, diagonal = authors_operators(data.edge_index, n)

    torch.manual_seed(split.init_seeds[0])
    authors = AuthorsDiffusionNet(f, c, 0.25, 20, 0.25, diagonal)
    torch.manual_seed(split.init_seeds[0])
    ours = DiffResNet.reference(
        f, c, step_size=0.25, layer_num=20, dropout=0.25, cached=True
    )
    torch.manual_seed(split.init_seeds[0])
    ours_steps = DiffResNet.reference(
        f, c, step_size=0.25, layer_num=20, dropout=0.25, cached=True
    )
    for module in ours_steps.modules():
        if isinstance(module, DiffusionConv):
            module.panel_width = 0  # the step-by-step path
    x_sparse = data.x.to_sparse_csr()

    # Same initial weights (same seed, same parameter order) and same eval math.
    same_init = torch.equal(authors.linear.weight, ours.blocks[0].lins[0].weight)
    authors.eval()
    ours.eval()
    with torch.no_grad():
        diff = (authors(data.x, adj) - ours(x_sparse, data.edge_index)).abs().max()
    print(
        f"Cora LCC: {n} nodes, {f} features, {c} classes; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"same initial weights: {same_init}; max |eval logits diff|: {diff:.2e}")

    runs = {
        "authors": (authors, data.x, adj),
        "ours": (ours, x_sparse, data.edge_index),
        "ours-steps": (ours_steps, x_sparse, data.edge_index),
    }
    optimizers = {
        name: torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
        for name, (model, _, _) in runs.items()
    }

    def run_epoch(name: str) -> None:
        model, x, graph = runs[name]
        epoch(model, optimizers[name], x, graph, data.y, split.train_idx, split.val_idx)

    for name in runs:  # warm-up
        run_epoch(name)
    if args.profile:
        for name in runs:
            with torch.profiler.profile() as prof:
                for _ in range(2):
                    run_epoch(name)
            print(f"--- {name}: top operators over 2 epochs ---")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name in runs:
            start = time.perf_counter()
            for _ in range(args.epochs):
                run_epoch(name)
            times[name].append((time.perf_counter() - start) / args.epochs)
    med = {name: statistics.median(t) for name, t in times.items()}
    for name, t in times.items():
        rounds = ", ".join(f"{v:.3f}" for v in t)
        print(f"{name:>8}: {med[name]:.3f} s/epoch (median; rounds: {rounds})")
    print(f"speed-up (authors / ours): {med['authors'] / med['ours']:.1f}x")
    print(f"speed-up (ours-steps / ours): {med['ours-steps'] / med['ours']:.2f}x")
    bandwidth, rate = copy_bandwidth(), gemm_rate(n, f)
    conv = next(m for m in ours.modules() if isinstance(m, DiffusionConv))
    nnz_adj = (
        conv._operator(
            conv._graph_operators(data.edge_index, None, n, data.x.dtype), 1 / 0.75
        )
        .graph.values()
        .numel()
    )
    bytes_, flops = epoch_cost(n, f, c, nnz_adj, data.x.count_nonzero().item())
    bound = max(bytes_ / bandwidth, flops / rate)
    print(
        f"copy {bandwidth / 1e9:.1f} GB/s, GEMM {rate / 1e9:.1f} GFLOP/s; epoch "
        f"moves >= {bytes_ / 1e6:.0f} MB ({bytes_ / bandwidth * 1e3:.1f} ms) and "
        f"computes >= {flops / 1e9:.2f} GFLOP ({flops / rate * 1e3:.1f} ms)"
    )
    print(
        f"lower bound {bound * 1e3:.1f} ms/epoch; ours / bound: "
        f"{med['ours'] / bound:.1f}x, ours-steps / bound: "
        f"{med['ours-steps'] / bound:.1f}x"
    )


def _best_time(fn, repeats: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def copy_bandwidth(num_bytes: int = 64 * 2**20) -> float:
    """Bytes read plus written per second by ``Tensor.copy_`` of a large buffer."""
    src = torch.ones(num_bytes // 4)
    dst = torch.empty_like(src)
    return 2 * num_bytes / _best_time(lambda: dst.copy_(src))


def gemm_rate(n: int, f: int) -> float:
    """FLOP/s of a ``[f, n] @ [n, f]`` float32 matmul (2 FLOPs per multiply-add)."""
    a, b = torch.randn(f, n), torch.randn(n, f)
    out = torch.empty(f, f)
    return 2 * f * n * f / _best_time(lambda: torch.mm(a, b, out=out))


def epoch_cost(
    n: int, f: int, c: int, nnz_adj: int, nnz_x: int, steps: int = 20
) -> tuple[int, int]:
    """Lower bounds on an epoch's memory traffic (bytes) and FLOPs (see above)."""
    matrices = 10 * 4 * n * f
    masks = 3 * steps * n * f
    operator = 2 * steps * (12 * nnz_adj + 8 * (n + 1))
    diffusion = 2 * steps * 2 * nnz_adj * f
    dense = 3 * 2 * nnz_x * f + 4 * 2 * n * f * c
    return matrices + masks + operator, diffusion + dense


if __name__ == "__main__":
    main()

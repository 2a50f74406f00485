r"""Semi-supervised node classification on the 70,000-node Fashion-MNIST kNN graph.

One graph over all 70,000 Fashion-MNIST images (60,000 training images, then
the 10,000 test images): node features are the 50 leading principal
components of the pixels, edges the symmetrized 10-nearest-neighbour graph of
those features. A few training images per class are labelled; every method
sees the whole graph (transductive) and is scored on the 10,000 test images.

Methods, hyperparameters fixed before any run (no validation set, no tuning;
see README.md):

* ``diffresnet``: :class:`diffresnet_pyg.nn.DiffResNet`, input projection
  50 -> 64, one residual block (2 layers, ReLU, dropout 0.5), then 10
  diffusion steps of size 0.5 with the ``"sym"`` Laplacian
  :math:`L = I - D^{-1/2} A D^{-1/2}` (:math:`\gamma \lambda_{\max} \le 1 <
  2`: stable), linear classifier;
* ``mlp``: PyG ``MLP([50, 64, 10])``, ReLU, dropout 0.5, no normalization;
* ``gcn``: PyG ``GCN(50, 64, num_layers=2, out_channels=10)``, dropout 0.5,
  GCN normalization :math:`\tilde D^{-1/2} (A + I) \tilde D^{-1/2}`;
* ``label_propagation``: PyG ``LabelPropagation(num_layers=50, alpha=0.99)``
  on :math:`D^{-1/2} A D^{-1/2}` (no training).

Networks: full batch, Adam (lr 0.01, weight decay 5e-4), cross-entropy on the
labelled nodes, a fixed 100 epochs, test accuracy of the final weights, read
once. Labelled nodes: for label draw ``seed`` and each class ``c`` in order,
``numpy.random.RandomState(seed).choice`` of ``L`` of the class's training
images (ascending image index, without replacement); the same labelled nodes
for every method; ``torch.manual_seed(seed)`` before each model is built.

Results (resumable: rerunning skips the rows already in ``runs.jsonl``):
``config.json`` (the resolved protocol), ``graph.json`` (graph build time,
memory and statistics), ``runs.jsonl`` (one row per method, labels per class
and seed), ``summary.json`` / ``summary.md`` and ``accuracy.png``.

Usage::

    OMP_NUM_THREADS=1 python experiments/scale/fashion_mnist/run.py
        [--output DIR] [--labels 1 5 20] [--seeds 5] [--methods ...]
        [--threads 1] [--quick] [--report-only]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from scipy.sparse.csgraph import connected_components, reverse_cuthill_mckee
from torch import Tensor
from torch_geometric.nn import MLP
from torch_geometric.nn.models import GCN, LabelPropagation
from torch_geometric.utils import to_torch_csr_tensor, to_undirected

from diffresnet_pyg.evaluate import Evaluator
from diffresnet_pyg.experiments.results import (
    RUNS_FILE,
    SUMMARY_JSON,
    SUMMARY_MD,
    append_rows,
    load_rows,
    read_rows,
    write_atomic,
)
from diffresnet_pyg.fewshot.images import load_fashion_mnist
from diffresnet_pyg.nn import DiffResNet, knn_graph
from diffresnet_pyg.profiling import peak_rss

logger = logging.getLogger("fashion_mnist_scale")

HERE = Path(__file__).resolve().parent
METHODS = ("diffresnet", "mlp", "gcn", "label_propagation")
LABELS = "Diff-ResNet", "MLP", "GCN", "Label propagation"
NUM_CLASSES = 10
NUM_TRAIN_IMAGES = 60_000

# Everything fixed before the first run (see README.md).
PROTOCOL: dict[str, Any] = {
    "features": "pca50 of pixels/255 (exact PCA on all images, no labels)",
    "pca_dim": 50,
    "graph": {
        "k": 10,
        "metric": "euclidean on the pca50 features",
        "builder": "diffresnet_pyg.nn.knn_graph(backend='torch'), self excluded",
        "symmetrized": "to_undirected (union of both directions), unweighted",
        "node_order": "reverse Cuthill-McKee of the graph (memory locality only)",
    },
    "labelled_pool": "the 60,000 training images",
    "test_nodes": "the 10,000 test images",
    "validation": "none: fixed epochs",
    "train": {"optimizer": "adam", "lr": 0.01, "weight_decay": 5e-4, "epochs": 100},
    "models": {
        "diffresnet": {
            "hidden_channels": 64,
            "num_blocks": 1,
            "block_layers": 2,
            "dropout": 0.5,
            "diffusion_steps": 10,
            "step_size": 0.5,
            "laplacian": "sym",
        },
        "mlp": {"hidden_channels": 64, "num_layers": 2, "dropout": 0.5, "norm": None},
        "gcn": {"hidden_channels": 64, "num_layers": 2, "dropout": 0.5},
        "label_propagation": {"num_layers": 50, "alpha": 0.99},
    },
}


# ---------------------------------------------------------------------------
# Data and graph
# ---------------------------------------------------------------------------


def pca_projection(x: Tensor, dim: int) -> Tensor:
    r"""Exact PCA coordinates on the ``dim`` leading axes (float32).

    :math:`Z = (X - \bar x) V_{:, 1:d}` with :math:`V` the eigenvectors of the
    covariance (float64, descending eigenvalues), each axis signed so that its
    largest-magnitude loading is positive.
    """
    xd = x.double()
    centred = xd - xd.mean(dim=0)
    cov = centred.t() @ centred / (xd.size(0) - 1)
    _, vectors = torch.linalg.eigh(cov)
    axes = vectors[:, -dim:].flip(1)
    top = axes.abs().argmax(dim=0)
    axes = axes * axes[top, torch.arange(dim)].sign()
    return (centred @ axes).float()


def load_data(quick: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Images ``[N, 784]`` (train then test), labels, and the test mask."""
    train_x, train_y = load_fashion_mnist(train=True)
    test_x, test_y = load_fashion_mnist(train=False)
    if quick:
        train_x, train_y = train_x[:4000], train_y[:4000]
        test_x, test_y = test_x[:1000], test_y[:1000]
    x = torch.cat([train_x, test_x]).flatten(1)
    y = torch.cat([train_y, test_y])
    is_test = torch.zeros(y.numel(), dtype=torch.bool)
    is_test[train_y.numel() :] = True
    return x, y, is_test


def build_graph(z: Tensor, k: int) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """The kNN graph of ``z``, symmetrized, and a locality-preserving node order.

    Returns the edges (image indices), the node order ``perm`` (node ``i`` is
    image ``perm[i]``) and the build statistics.
    """
    with peak_rss() as memory:
        start = time.perf_counter()
        directed = knn_graph(z, k, backend="torch")
        knn_seconds = time.perf_counter() - start
    knn_mib = memory.extra_mib
    start = time.perf_counter()
    edge_index = to_undirected(directed, num_nodes=z.size(0))
    num = z.size(0)
    adj = sp.csr_matrix(
        (np.ones(edge_index.size(1)), edge_index.numpy()), shape=(num, num)
    )
    perm = torch.from_numpy(
        reverse_cuthill_mckee(adj, symmetric_mode=True).astype(np.int64)
    )
    post_seconds = time.perf_counter() - start
    num_components = connected_components(adj, directed=False)[0]
    degree = torch.bincount(edge_index[1], minlength=num)
    stats = {
        "knn_seconds": knn_seconds,
        "knn_peak_extra_mib": knn_mib,
        "knn_memory_method": "peak RSS during knn_graph minus RSS before",
        "symmetrize_and_order_seconds": post_seconds,
        "num_nodes": num,
        "num_directed_knn_edges": int(directed.size(1)),
        "num_undirected_edges": int(edge_index.size(1) // 2),
        "degree_min": int(degree.min()),
        "degree_mean": float(degree.float().mean()),
        "degree_max": int(degree.max()),
        "num_connected_components": int(num_components),
        "threads": torch.get_num_threads(),
    }
    return edge_index, perm, stats


def labelled_images(y_train: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """``per_class`` training images of each class, drawn with ``seed``."""
    rs = np.random.RandomState(seed)
    picked = [
        rs.choice(np.flatnonzero(y_train == c), per_class, replace=False)
        for c in range(NUM_CLASSES)
    ]
    return np.concatenate(picked)


# ---------------------------------------------------------------------------
# Methods
# ---------------------------------------------------------------------------


def build_model(method: str, in_channels: int) -> torch.nn.Module:
    """The network of ``method`` with the fixed hyperparameters."""
    hp = PROTOCOL["models"][method]
    if method == "diffresnet":
        return DiffResNet(
            in_channels,
            hp["hidden_channels"],
            NUM_CLASSES,
            num_blocks=hp["num_blocks"],
            diffusion_steps=hp["diffusion_steps"],
            step_size=hp["step_size"],
            laplacian=hp["laplacian"],
            dropout=hp["dropout"],
            diffusion_dropout=0.0,  # none between diffusion steps in this study
            block_layers=hp["block_layers"],
            cached=True,
        )
    if method == "mlp":
        return MLP(
            [in_channels, hp["hidden_channels"], NUM_CLASSES],
            dropout=hp["dropout"],
            norm=hp["norm"],
        )
    if method == "gcn":
        return GCN(
            in_channels,
            hp["hidden_channels"],
            hp["num_layers"],
            NUM_CLASSES,
            dropout=hp["dropout"],
            cached=True,
        )
    raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")


def train_network(
    method: str,
    x: Tensor,
    adj: Tensor,
    y: Tensor,
    train_idx: Tensor,
    seed: int,
    epochs: int,
) -> tuple[Tensor, float]:
    """Train ``method`` for a fixed number of epochs.

    Returns the predictions for all nodes and the training loss of the last
    epoch (in training mode, i.e. with dropout).
    """
    torch.manual_seed(seed)
    model = build_model(method, x.size(1))
    train = PROTOCOL["train"]
    optimizer = torch.optim.Adam(
        model.parameters(), lr=train["lr"], weight_decay=train["weight_decay"]
    )
    forward: Callable[[Tensor], Tensor]
    if method == "mlp":  # node-wise: train on the labelled rows only

        def forward(rows: Tensor) -> Tensor:
            return model(x[rows])

    else:

        def forward(rows: Tensor) -> Tensor:
            return model(x, adj)[rows]

    model.train()
    loss = torch.tensor(float("nan"))
    for _ in range(epochs):
        optimizer.zero_grad()
        loss = F.cross_entropy(forward(train_idx), y[train_idx])
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        pred = (model(x) if method == "mlp" else model(x, adj)).argmax(dim=1)
    return pred, loss.item()


def run_one(
    method: str,
    x: Tensor,
    adj: Tensor,
    y: Tensor,
    train_idx: Tensor,
    seed: int,
    epochs: int,
) -> tuple[Tensor, int, float | None]:
    """Predictions of ``method`` for all nodes, its epochs and last training loss."""
    if method == "label_propagation":
        hp = PROTOCOL["models"][method]
        mask = torch.zeros(y.numel(), dtype=torch.bool)
        mask[train_idx] = True
        lp = LabelPropagation(hp["num_layers"], hp["alpha"])
        return lp(y, adj, mask=mask).argmax(dim=1), 0, None
    pred, loss = train_network(method, x, adj, y, train_idx, seed, epochs)
    return pred, epochs, loss


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


def paired_table(rows: list[dict[str, Any]], per_classes: list[int]) -> list[str]:
    """Markdown rows: per-draw differences of each method to Diff-ResNet.

    All methods see the same labelled nodes in a draw, so the per-draw
    difference removes the (large) draw-to-draw variation.
    """
    acc = {
        (r["method"], r["labels_per_class"], r["seed"]): 100 * r["test_accuracy"]
        for r in rows
    }
    lines = [
        "| method - Diff-ResNet (same draws) | "
        + " | ".join(f"{c}/class" for c in per_classes)
        + " |",
        "|---|" + "---|" * len(per_classes),
    ]
    for method, label in zip(METHODS[1:], LABELS[1:], strict=True):
        cells = []
        for c in per_classes:
            seeds = sorted(
                s
                for (m, pc, s) in acc
                if m == method and pc == c and ("diffresnet", c, s) in acc
            )
            if not seeds:
                cells.append("-")
                continue
            diff = np.array(
                [acc[(method, c, s)] - acc[("diffresnet", c, s)] for s in seeds]
            )
            cells.append(
                f"{diff.mean():+.2f} +- {diff.std():.2f} "
                f"(higher in {(diff > 0).sum()}/{diff.size})"
            )
        if any(cell != "-" for cell in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def summarize(rows: list[dict[str, Any]], output: Path) -> None:
    """Write ``summary.json``, ``summary.md`` and ``accuracy.png``."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["method"], row["labels_per_class"]), []).append(row)
    summary = []
    for (method, per_class), group in sorted(groups.items()):
        acc = np.array([r["test_accuracy"] for r in group]) * 100
        sec = np.array([r["seconds"] for r in group])
        summary.append(
            {
                "method": method,
                "labels_per_class": per_class,
                "runs": len(group),
                "seeds": sorted(r["seed"] for r in group),
                "test_accuracy_mean": float(acc.mean()),
                "test_accuracy_std": float(acc.std()),
                "seconds_mean": float(sec.mean()),
            }
        )
    write_atomic(output / SUMMARY_JSON, json.dumps(summary, indent=2) + "\n")

    per_classes = sorted({s["labels_per_class"] for s in summary})
    cells = {(s["method"], s["labels_per_class"]): s for s in summary}
    lines = [
        "| method | "
        + " | ".join(f"{c} label{'s' if c > 1 else ''}/class" for c in per_classes)
        + " | seconds per run |",
        "|---|" + "---|" * len(per_classes) + "---|",
    ]
    for method, label in zip(METHODS, LABELS, strict=True):
        row = [cells.get((method, c)) for c in per_classes]
        if not any(row):
            continue
        text = [
            f"{s['test_accuracy_mean']:.2f} +- {s['test_accuracy_std']:.2f} "
            f"({s['runs']})"
            if s
            else "-"
            for s in row
        ]
        secs = [s["seconds_mean"] for s in row if s]
        lines.append(f"| {label} | " + " | ".join(text) + f" | {np.mean(secs):.1f} |")
    lines += ["", *paired_table(rows, per_classes)]
    lines.append("")
    lines.append(
        f"Test accuracy (%) on the {rows[0]['num_test']:,} test images, mean +- "
        "population std over the label draws (number of draws in parentheses); "
        "seconds: mean training time per run. Second table: per-draw accuracy "
        "of the method minus Diff-ResNet's on the same labelled nodes, mean +- "
        "population std, and in how many draws the method scored higher."
    )
    write_atomic(output / SUMMARY_MD, "\n".join(lines) + "\n")

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for method, label in zip(METHODS, LABELS, strict=True):
        pts = [cells[(method, c)] for c in per_classes if (method, c) in cells]
        if not pts:
            continue
        ax.errorbar(
            [p["labels_per_class"] for p in pts],
            [p["test_accuracy_mean"] for p in pts],
            yerr=[p["test_accuracy_std"] for p in pts],
            marker="o",
            capsize=3,
            label=label,
        )
    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xticks(per_classes, [str(c) for c in per_classes])
    ax.set_xlabel("labelled nodes per class")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Fashion-MNIST, 70,000-node kNN graph (PCA-50, k=10)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(output / "accuracy.png", dpi=150)
    plt.close(fig)


def main() -> None:
    """Run the study (resuming), then write the summary, table and figure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=HERE / "results")
    parser.add_argument("--labels", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="only rewrite the summary, table and figure from runs.jsonl",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 5,000 images, 2 epochs (not the study)",
    )
    args = parser.parse_args()
    bad = [m for m in args.methods if m not in METHODS]
    if bad:
        parser.error(f"--methods: unknown {bad}; allowed: {', '.join(METHODS)}")
    if any(c < 1 for c in args.labels) or args.seeds < 1 or args.threads < 1:
        parser.error("--labels, --seeds and --threads must be >= 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.report_only:
        rows = read_rows(args.output / RUNS_FILE)
        if not rows:
            parser.error(f"--report-only: no rows in {args.output / RUNS_FILE}")
        summarize(rows, args.output)
        return
    torch.set_num_threads(args.threads)
    epochs = 2 if args.quick else PROTOCOL["train"]["epochs"]

    config = {
        **PROTOCOL,
        "quick": args.quick,
        "epochs": epochs,
        "labels_per_class": args.labels,
        "seeds": list(range(args.seeds)),
        "methods": args.methods,
        "torch": torch.__version__,
    }
    output = args.output
    output.mkdir(parents=True, exist_ok=True)
    config_path = output / "config.json"
    if config_path.exists():
        old = json.loads(config_path.read_text())
        fixed = ("features", "graph", "train", "models", "quick", "epochs")
        changed = [key for key in fixed if old.get(key) != config.get(key)]
        if changed:
            raise SystemExit(
                f"{output} holds runs of another protocol (differs in {changed}); "
                "use another --output"
            )
    write_atomic(config_path, json.dumps(config, indent=2) + "\n")

    images, y_img, is_test_img = load_data(args.quick)
    start = time.perf_counter()
    z_img = pca_projection(images, PROTOCOL["pca_dim"])
    pca_seconds = time.perf_counter() - start
    edges_img, perm, stats = build_graph(z_img, PROTOCOL["graph"]["k"])
    stats["pca_seconds"] = pca_seconds
    homophily = (y_img[edges_img[0]] == y_img[edges_img[1]]).float().mean()
    stats["edge_homophily"] = float(homophily)
    logger.info("graph: %s", stats)
    write_atomic(output / "graph.json", json.dumps(stats, indent=2) + "\n")

    # node i is image perm[i]
    node_of = torch.empty_like(perm)
    node_of[perm] = torch.arange(perm.numel())
    x, y, is_test = z_img[perm].contiguous(), y_img[perm], is_test_img[perm]
    adj = to_torch_csr_tensor(node_of[edges_img], size=(perm.numel(), perm.numel()))
    test_nodes = is_test.nonzero().flatten()
    y_train_img = y_img[~is_test_img].numpy()

    runs_path = output / RUNS_FILE
    done = {
        (r["method"], r["labels_per_class"], r["seed"]) for r in load_rows(runs_path)
    }
    evaluator = Evaluator("acc")
    for per_class in args.labels:
        for seed in range(args.seeds):
            chosen = labelled_images(y_train_img, per_class, seed)
            train_idx = node_of[torch.from_numpy(chosen)]
            for method in args.methods:
                if (method, per_class, seed) in done:
                    continue
                start = time.perf_counter()
                pred, num_epochs, loss = run_one(
                    method, x, adj, y, train_idx, seed, epochs
                )
                seconds = time.perf_counter() - start
                test_acc = evaluator.eval(
                    {"y_true": y[test_nodes], "y_pred": pred[test_nodes]}
                )["acc"]
                train_acc = evaluator.eval(
                    {"y_true": y[train_idx], "y_pred": pred[train_idx]}
                )["acc"]
                row = {
                    "method": method,
                    "labels_per_class": per_class,
                    "seed": seed,
                    "num_labelled": int(train_idx.numel()),
                    "labelled_images": chosen.tolist(),
                    "num_test": int(test_nodes.numel()),
                    "test_accuracy": float(test_acc),
                    "train_accuracy": float(train_acc),
                    "epochs": num_epochs,
                    "final_train_loss": loss,
                    "seconds": seconds,
                    "threads": torch.get_num_threads(),
                }
                append_rows(runs_path, [row])
                logger.info(
                    "%s L=%d seed=%d: test %.2f%% (%.1f s)",
                    method,
                    per_class,
                    seed,
                    100 * test_acc,
                    seconds,
                )
    summarize(read_rows(runs_path), output)
    logger.info("wrote %s", output)


if __name__ == "__main__":
    main()

"""Training many seeds at once vs one at a time, on the Cora protocol.

For each model the same ``R`` runs (split 0 of the authors' Cora protocol,
its first ``R`` init seeds, the hyperparameters of ``configs/cora/<model>.yaml``)
are trained for a fixed number of epochs (train step + evaluation pass, no
early stopping, so both sides do the same work) in one process:

* ``one at a time``: each run's plain model (PyG's models with dense features,
  as a user would run them; ``DiffResNet.reference`` with sparse features),
  the ``train.batch_members: 1`` path of the runner;
* ``batched``: all ``R`` runs as one stacked-weight model
  (``train.batch_members: R``);
* ``authors`` (Diff-ResNet only, ``--authors``): the authors' arithmetic from
  ``benchmarks/epoch_time_cora.py``, one run at a time, on fewer runs.

Prints seconds per run-epoch and the ratios, and the projected time of the
full 100 x 20 protocol (2000 runs x the median epochs given by
``--median-epochs``, measured on our Cora runs).

``--distribution`` also trains ``--dist-runs`` complete runs (early stopping)
of ``--dist-model`` both ways and compares the test-accuracy distributions
(means, population stds, two-sample Kolmogorov-Smirnov test).

Usage::

    python benchmarks/batched_training.py [--root DATA_ROOT] [--runs 10]
        [--epochs 20] [--models diffresnet_reference gcn gat sage mlp]
        [--authors] [--distribution]
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np
import scipy.stats
import torch
import torch.nn.functional as F

from diffresnet_pyg.data import load_dataset
from diffresnet_pyg.experiments.models import build_members
from diffresnet_pyg.experiments.runner import plan_runs
from diffresnet_pyg.experiments.schema import load_config
from diffresnet_pyg.experiments.training import stack_index, train_members

HERE = Path(__file__).resolve().parent
CONFIGS = HERE.parent / "configs" / "cora"


def load_authors_model():
    """``AuthorsDiffusionNet`` and its operators from the epoch benchmark."""
    spec = importlib.util.spec_from_file_location(
        "epoch_time_cora", HERE / "epoch_time_cora.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.AuthorsDiffusionNet, module.authors_operators


def train(model, x, data, runs, cfg, epochs, early_stopping="none"):
    """Train the members of ``model`` on ``runs``; return results and seconds."""
    start = time.perf_counter()
    results = train_members(
        model,
        x,
        data.edge_index,
        data.y,
        stack_index([r.train_idx for r in runs], "cpu"),
        stack_index([r.val_idx for r in runs], "cpu"),
        stack_index([r.test_idx for r in runs], "cpu"),
        optimizer=cfg.train.optimizer,
        lr=cfg.train.lr,
        weight_decay=cfg.train.weight_decay,
        max_epochs=epochs,
        patience=cfg.train.patience,
        early_stopping=early_stopping,
    )
    return results, time.perf_counter() - start


def features(data, model_name, batched):
    """What the runner feeds: sparse for DiffResNet and batched models."""
    sparse = model_name.startswith("diffresnet") or batched
    return data.x.to_sparse_csr() if sparse else data.x


def one_at_a_time(cfg, data, runs, epochs, early_stopping="none"):
    out, total = [], 0.0
    x = features(data, cfg.model.name, False)
    c = int(data.y.max()) + 1
    for run in runs:
        model = build_members(cfg.model, data.num_features, c, [run.init_seed])
        results, seconds = train(model, x, data, [run], cfg, epochs, early_stopping)
        out += results
        total += seconds
    return out, total


def batched(cfg, data, runs, epochs, early_stopping="none"):
    x = features(data, cfg.model.name, True)
    c = int(data.y.max()) + 1
    model = build_members(cfg.model, data.num_features, c, [r.init_seed for r in runs])
    return train(model, x, data, runs, cfg, epochs, early_stopping)


def authors_time(cfg, data, runs, epochs):
    """Seconds of the authors' arithmetic for ``runs`` x ``epochs``."""
    net_cls, operators = load_authors_model()
    adj, diagonal = operators(data.edge_index, data.num_nodes)
    p = cfg.model.params
    total = 0.0
    for run in runs:
        torch.manual_seed(run.init_seed)
        model = net_cls(
            data.num_features,
            int(data.y.max()) + 1,
            p["step_size"],
            p["layer_num"],
            p["dropout"],
            diagonal,
        )
        opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
        start = time.perf_counter()
        for _ in range(epochs):
            model.train()
            opt.zero_grad()
            out = model(data.x, adj)
            F.cross_entropy(out[run.train_idx], data.y[run.train_idx]).backward()
            opt.step()
            model.eval()
            with torch.no_grad():
                out = model(data.x, adj)[run.val_idx]
                F.cross_entropy(out, data.y[run.val_idx]).item()
        total += time.perf_counter() - start
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=None, help="dataset root (see README)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument(
        "--models",
        nargs="*",
        default=["diffresnet_reference", "gcn", "gat", "sage", "mlp"],
        help="models to time (none: only --distribution)",
    )
    parser.add_argument("--authors", action="store_true")
    parser.add_argument("--authors-runs", type=int, default=2)
    parser.add_argument("--median-epochs", type=int, default=280)
    parser.add_argument("--distribution", action="store_true")
    parser.add_argument("--dist-model", default="gcn")
    parser.add_argument("--dist-runs", type=int, default=40)
    args = parser.parse_args()

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"{args.runs} runs x {args.epochs} epochs per side (split 0, Cora LCC)"
    )
    header = f"{'model':22s} {'one at a time':>14s} {'batched':>10s} {'ratio':>7s}"
    print(header + "   (seconds per run-epoch)")
    data = load_dataset("cora", args.root)
    for name in args.models:
        cfg = load_config(
            CONFIGS / f"{name}.yaml",
            ["split.num_splits=1", f"split.num_inits={args.runs}"]
            + ([f"dataset.root={args.root}"] if args.root else []),
        )
        runs = plan_runs(cfg, data)
        work = len(runs) * args.epochs
        _, t_batched = batched(cfg, data, runs, args.epochs)
        _, t_single = one_at_a_time(cfg, data, runs, args.epochs)
        line = (
            f"{name:22s} {t_single / work:14.4f} {t_batched / work:10.4f} "
            f"{t_single / t_batched:6.1f}x"
        )
        if args.authors and name == "diffresnet_reference":
            few = runs[: args.authors_runs]
            t_auth = authors_time(cfg, data, few, args.epochs) / (
                len(few) * args.epochs
            )
            line += (
                f"\n{'':22s} authors' arithmetic one at a time {t_auth:.4f} s: "
                f"{t_auth / (t_single / work):.1f}x slower than ours one at a "
                f"time, {t_auth / (t_batched / work):.1f}x slower than batched"
            )
        print(line, flush=True)
        if args.authors and name == "diffresnet_reference":
            hours = t_auth * args.median_epochs * 2000 / 3600
            print(f"{'':22s} authors' projected 100 x 20 protocol: {hours:.0f} h")
        hours = t_batched / work * args.median_epochs * 2000 / 3600
        print(
            f"{'':22s} projected 100 x 20 protocol at {args.median_epochs} "
            f"epochs per run: {hours:.1f} h batched, "
            f"{t_single / work * args.median_epochs * 2000 / 3600:.1f} h one at a "
            "time",
            flush=True,
        )

    if args.distribution:
        cfg = load_config(
            CONFIGS / f"{args.dist_model}.yaml",
            [
                "split.num_splits=1",
                f"split.num_inits={args.dist_runs}",
                "train.max_epochs=2000",
            ]
            + ([f"dataset.root={args.root}"] if args.root else []),
        )
        data = load_dataset(  # the config's features (gnn-benchmark: raw binary)
            "cora",
            args.root,
            normalize_features=cfg.dataset.normalize_features,
        )
        runs = plan_runs(cfg, data)
        rule = cfg.train.early_stopping
        res_b, t_b = batched(cfg, data, runs, 2000, rule)
        res_s, t_s = one_at_a_time(cfg, data, runs, 2000, rule)
        acc_b = 100 * np.array([r.test_acc for r in res_b])
        acc_s = 100 * np.array([r.test_acc for r in res_s])
        ks = scipy.stats.ks_2samp(acc_b, acc_s)
        print(
            f"\n{args.dist_model}, {len(runs)} complete runs each way (split 0, "
            f"{rule} early stopping):\n"
            f"  one at a time: {acc_s.mean():.2f} +- {acc_s.std():.2f}, median "
            f"{np.median([r.epochs for r in res_s]):.0f} epochs, {t_s:.1f} s\n"
            f"  batched:       {acc_b.mean():.2f} +- {acc_b.std():.2f}, median "
            f"{np.median([r.epochs for r in res_b]):.0f} epochs, {t_b:.1f} s "
            f"({t_s / t_b:.1f}x)\n"
            f"  two-sample KS: statistic {ks.statistic:.3f}, p = {ks.pvalue:.3f}"
        )


if __name__ == "__main__":
    main()

"""The authors' Diff-ResNet Cora setting on the first splits of their protocol.

Cora LCC from the gnn-benchmark file, 20/30 labels per class drawn by the
authors' per-class sampler (master seed 42), one ``DiffResNet.reference``
model per (split, init) seed: step 0.25, 20 diffusion layers, dropout 0.25,
Adam (lr 0.01, weight decay 5e-4), full batch, early stopping with patience 50
on "validation loss did not increase or validation accuracy did not decrease"
(the authors' rule), test accuracy read once at the restored checkpoint.

Usage::

    python examples/cora_reference.py --splits 1 --inits 2 [--root DATA_ROOT]
"""

from __future__ import annotations

import argparse
import copy
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from diffresnet_pyg.data import load_dataset, protocol_splits
from diffresnet_pyg.evaluate import Evaluator
from diffresnet_pyg.nn import DiffResNet


def run(data, x, split, init_seed: int, args) -> dict:
    """Train one model with the authors' early stopping; return its scores."""
    torch.manual_seed(init_seed)
    model = DiffResNet.reference(
        data.num_features,
        int(data.y.max()) + 1,
        step_size=args.step_size,
        layer_num=args.layer_num,
        dropout=args.dropout,
        cached=True,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    y, train, val = data.y, split.train_idx, split.val_idx
    evaluator = Evaluator("acc")
    best_loss, best_acc, patience, best_state = math.inf, 0.0, 0, None
    start, epochs = time.perf_counter(), 0
    bar = tqdm(total=args.max_epochs, desc=f"split {split.index + 1}", leave=False)
    while epochs < args.max_epochs:
        epochs += 1
        bar.update()
        model.train()
        optimizer.zero_grad()
        F.cross_entropy(model(x, data.edge_index)[train], y[train]).backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            out = model(x, data.edge_index)[val]
        val_loss = F.cross_entropy(out, y[val]).item()
        val_acc = evaluator.eval({"y_true": y[val], "y_pred": out})["acc"]
        if val_loss <= best_loss or val_acc >= best_acc:
            best_loss, best_acc = min(val_loss, best_loss), max(val_acc, best_acc)
            patience, best_state = 0, copy.deepcopy(model.state_dict())
        else:
            patience += 1
        bar.set_postfix(val_acc=f"{val_acc:.3f}", patience=patience)
        if patience >= args.patience:
            model.load_state_dict(best_state)
            break
    bar.close()
    model.eval()
    with torch.no_grad():
        pred = model(x, data.edge_index).argmax(1)
    test = split.test_idx
    test_acc = evaluator.eval({"y_true": y[test], "y_pred": pred[test]})["acc"]
    return {
        "epochs": epochs,
        "test_acc": test_acc,
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=None, help="dataset root (see README)")
    parser.add_argument("--splits", type=int, default=1, help="number of splits")
    parser.add_argument("--inits", type=int, default=2, help="inits per split")
    parser.add_argument("--step-size", type=float, default=0.25)
    parser.add_argument("--layer-num", type=int, default=20)
    parser.add_argument("--dropout", type=float, default=0.25)
    parser.add_argument("--max-epochs", type=int, default=10000)
    parser.add_argument("--patience", type=int, default=50)
    args = parser.parse_args()

    data = load_dataset("cora", args.root)
    x = data.x.to_sparse_csr()  # bag-of-words: sparse first layer
    print(
        f"Cora LCC: {data.num_nodes} nodes, {data.num_edges // 2} edges; "
        f"step {args.step_size}, {args.layer_num} layers, dropout {args.dropout}"
    )
    accs = []
    for split in protocol_splits(
        data.y, num_splits=args.splits, num_inits=max(args.inits, 1)
    ):
        for i, init_seed in enumerate(split.init_seeds[: args.inits]):
            result = run(data, x, split, init_seed, args)
            accs.append(result["test_acc"])
            print(
                f"split {split.index + 1} (seed {split.seed}) init {i + 1} "
                f"(seed {init_seed}): test acc {100 * result['test_acc']:.2f}% "
                f"after {result['epochs']} epochs, {result['seconds']:.0f} s",
                flush=True,
            )
    accs = 100 * np.asarray(accs)
    print(
        f"mean test accuracy over {accs.size} runs: {accs.mean():.2f} "
        f"+- {accs.std():.2f} (population std)"
    )


if __name__ == "__main__":
    main()

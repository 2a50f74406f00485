"""Training epochs of the deep baselines of the depth study, against PyG's layers.

The depth study's GCNII and APPNP (``diffresnet_pyg.experiments.models``)
compute PyG's ``GCN2Conv`` and ``APPNP`` formulas with a cached CSR operator
and its transpose, seeded byte masks for hidden and edge dropout, and sparse
input features. Its GAT is the stacked model
(:class:`~diffresnet_pyg.nn.batched.gnn.BatchedGAT`, here of one member: the
plain model's masks, a segment maximum in the attention softmax, sparse input
features). This times one training epoch (forward,
backward, Adam step, then the evaluation forward the early stopping reads) of
each against the same model written with PyG's layers as they come
(``GCN2Conv`` / ``APPNP.propagate`` / ``GATConv`` on ``edge_index``,
``F.dropout``, dense features), alternating the two, on Cora at the study's
settings, and prints the largest difference of the two outputs in evaluation
mode (dropout off).

Usage::

    python benchmarks/deep_baselines.py [--depths 2 64] [--repeats 5] [--threads 1]

Needs Cora (``diffresnet_pyg.data.load_dataset("cora")``: the offline copy or
a download).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from diffresnet_pyg.data import load_dataset
from diffresnet_pyg.experiments.models.appnp import APPNPNet
from diffresnet_pyg.experiments.models.gcnii import GCNIINet
from diffresnet_pyg.nn.batched import stack_baselines
from diffresnet_pyg.nn.models.baselines import gat
from diffresnet_pyg.nn.sparse import quiet_sparse_warnings

#: The depth study's GAT (gnn-benchmark's tuned values).
GAT_SETTINGS = dict(
    hidden_channels=64, heads=8, dropout=0.6, input_dropout=0.6, attention_dropout=0.3
)


def gcnii_with_pyg(model: GCNIINet, x: Tensor, edge_index: Tensor) -> Tensor:
    """``model``'s forward with PyG's ``GCN2Conv`` on ``edge_index``."""
    ei, w = gcn_norm(edge_index, None, x.size(0), add_self_loops=True)
    p, training = model.dropout, model.training
    h = h0 = F.relu(model.lin_in(F.dropout(x, p, training)))
    for conv in model.convs:
        h = F.relu(conv(F.dropout(h, p, training), h0, ei, w))
    return model.lin_out(F.dropout(h, p, training))


def appnp_with_pyg(model: APPNPNet, x: Tensor, edge_index: Tensor) -> Tensor:
    """``model``'s forward with PyG's ``MLP`` and ``APPNP.propagate``."""
    h = model.mlp(F.dropout(x, model.input_dropout, model.training))
    ei, w = gcn_norm(edge_index, None, h.size(0))
    z, alpha = h, model.propagate.alpha
    for _ in range(model.propagate.K):
        step = F.dropout(w, model.edge_dropout, model.training)
        z = (1 - alpha) * model.propagate.propagate(ei, x=z, edge_weight=step)
        z = z + alpha * h
    return z


def epoch_seconds(model, forward: Callable[[], Tensor], y: Tensor, idx: Tensor):
    """Seconds of one training step and one evaluation forward."""
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    start = time.perf_counter()
    model.train()
    opt.zero_grad()
    F.cross_entropy(forward()[idx], y[idx]).backward()
    opt.step()
    model.eval()
    with torch.no_grad():
        forward()
    return time.perf_counter() - start


def compare(name, ours, pyg, y, idx, repeats: int) -> None:
    """Alternate two ``(model, forward)`` pairs; print medians, ratio, difference.

    The difference is the largest one of the two outputs in evaluation mode,
    before any training step.
    """
    ours[0].eval()
    pyg[0].eval()
    with torch.no_grad():  # before training: the two may hold separate weights
        diff = (ours[1]() - pyg[1]()).abs().max().item()
    times: dict[str, list[float]] = {"pyg": [], "ours": []}
    for _ in range(repeats + 1):  # the first round warms up
        for key, (model, fn) in (("pyg", pyg), ("ours", ours)):
            times[key].append(epoch_seconds(model, fn, y, idx))
    pyg_s, our_s = (sorted(t[1:])[len(t[1:]) // 2] for t in times.values())
    print(
        f"{name:18} {pyg_s * 1e3:10.1f} {our_s * 1e3:10.1f} "
        f"{pyg_s / our_s:6.2f}x   {diff:.1e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 64])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("cora", normalize_features=True)
    x, edge_index, y = data.x, data.edge_index, data.y
    with quiet_sparse_warnings():
        sparse = x.to_sparse_csr()
    idx = torch.arange(140)
    classes = int(y.max()) + 1
    print(
        f"Cora ({x.size(0)} nodes), {args.threads} thread(s), median of "
        f"{args.repeats} epochs (train step + evaluation forward), alternating"
    )
    print(f"{'model':18} {'PyG ms':>10} {'ours ms':>10} {'ratio':>7}   max |diff|")
    for depth in args.depths:
        for name, build, with_pyg in (
            (
                f"GCNII {depth} layers",
                partial(GCNIINet, num_layers=depth),
                gcnii_with_pyg,
            ),
            (f"APPNP K={depth}", partial(APPNPNet, K=depth), appnp_with_pyg),
        ):
            torch.manual_seed(0)
            model = build(x.size(1), classes)
            compare(
                name,
                (model, lambda m=model: m(sparse, edge_index)),
                (model, lambda m=model, f=with_pyg: f(m, x, edge_index)),
                y,
                idx,
                args.repeats,
            )
        torch.manual_seed(0)
        plain = gat(x.size(1), classes, num_layers=depth, **GAT_SETTINGS)
        stacked = stack_baselines([plain])
        compare(
            f"GAT {depth} layers",
            (stacked, lambda m=stacked: m(sparse, edge_index)[:, 0]),
            (plain, lambda m=plain: m(x, edge_index)),
            y,
            idx,
            args.repeats,
        )


if __name__ == "__main__":
    main()

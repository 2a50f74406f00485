r"""Over-smoothing layer by layer: GCN and Diff-ResNet, one run per depth.

For every depth of ``configs/sweeps/<dataset>_depth.yaml`` this retrains the
sweep's first run (split 0, init 0, the same seeds, one torch thread) of GCN
and of the two Diff-ResNet methods, and measures the node representations
after every layer of the tested weights (evaluation mode):

* GCN: the output of every graph convolution (before its activation);
* Diff-ResNet: the hidden state after every diffusion step
  :math:`\mathbf{X}_{k+1} = (\mathbf{I} - \gamma \mathbf{L})
  \mathbf{X}_k` (layer 0 is the input of the diffusion, after the residual
  block), recomputed step by step from the input of the model's diffusion
  layer and checked against its output.

Each layer gives one row of ``experiments/depth_sweep/<dataset>/layerwise.jsonl``
(``method``, ``depth``, ``layer``, Dirichlet energy with and without the
``sym`` normalization, MAD, and the run's test accuracy). The run is trained
as the plain model, the sweep's as the stacked one, whose products round
differently; on real graphs that can move early stopping, so the accuracy
here may differ from the sweep row's (of the committed pairs, 25 of 36 are
equal). A rerun skips the (method, depth) pairs already there. From the
repository root::

    python experiments/depth_sweep/layerwise.py [--datasets cora citeseer]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from diffresnet_pyg.data import load_dataset
from diffresnet_pyg.experiments.models import build_members
from diffresnet_pyg.experiments.results import append_rows, read_rows
from diffresnet_pyg.experiments.runner import (
    fit_chunk,
    input_features,
    load_arguments,
    plan_runs,
)
from diffresnet_pyg.experiments.schema import expand_sweep, load_config
from diffresnet_pyg.metrics import dirichlet_energy, mean_average_distance
from diffresnet_pyg.nn import DiffusionConv

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
LAYERWISE_FILE = "layerwise.jsonl"

#: Sweep methods measured layer by layer.
METHODS = ("GCN", "Diff-ResNet", "Diff-ResNet (T=2)")

logger = logging.getLogger("depth_sweep.layerwise")


def _measures(x: Tensor, edge_index: Tensor) -> dict[str, float]:
    return {
        "dirichlet_energy": dirichlet_energy(x, edge_index),
        "dirichlet_energy_sym": dirichlet_energy(x, edge_index, None, "sym"),
        "mad": mean_average_distance(x),
    }


def _gcn_layers(model: torch.nn.Module, x: Tensor, edge_index: Tensor) -> list[Tensor]:
    """The output of every graph convolution of a (single-member) PyG GCN."""
    outputs: list[Tensor] = []
    hooks = [
        conv.register_forward_hook(lambda _m, _i, out: outputs.append(out.detach()))
        for conv in model.module.model.convs
    ]
    try:
        model(x, edge_index)
    finally:
        for hook in hooks:
            hook.remove()
    return outputs


def _diffusion_layers(
    model: torch.nn.Module, x: Tensor, edge_index: Tensor
) -> list[Tensor]:
    """The hidden state before and after every diffusion step of a Diff-ResNet."""
    net = model.module
    if len(net.convs) != 1:
        raise ValueError("layer-wise measures need a Diff-ResNet with one block")
    conv = net.convs[0]
    seen: dict[str, Tensor] = {}

    def keep(_module: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        seen["input"], seen["output"] = inputs[0].detach(), output.detach()

    hook = conv.register_forward_hook(keep)
    try:
        model(x, edge_index)
    finally:
        hook.remove()
    step = DiffusionConv(
        conv.step_size, 1, conv.laplacian, conv.add_self_loops, cached=True
    ).eval()
    states = [seen["input"]]
    for _ in range(conv.num_steps):
        states.append(step(states[-1], edge_index))
    torch.testing.assert_close(states[-1], seen["output"], rtol=1e-4, atol=1e-5)
    return states


def measure_point(label: str, depth: int, config: Any) -> list[dict[str, Any]]:
    """Train the first run of one sweep point and measure every layer."""
    data = load_dataset(**load_arguments(config))
    run = plan_runs(config, data)[0]
    x = input_features(config, data, batched=False)
    model = build_members(
        config.model, data.num_features, int(data.y.max()) + 1, [run.init_seed]
    )
    finished: dict[str, Any] = {}

    def on_finish(_member: int, result: Any) -> None:
        model.eval()
        with torch.no_grad():
            if config.model.name == "gcn":
                layers = _gcn_layers(model, x, data.edge_index)
            else:
                layers = _diffusion_layers(model, x, data.edge_index)
        finished["rows"] = [
            {
                "dataset": config.dataset.label,
                "method": label,
                "depth": depth,
                "layer": layer,
                **_measures(h, data.edge_index),
                "test_acc": result.test_acc,
                "epochs": result.epochs,
                "split_seed": run.split_seed,
                "init_seed": run.init_seed,
            }
            for layer, h in enumerate(layers)
        ]

    fit_chunk(
        config,
        model,
        x,
        data.edge_index,
        data.y,
        [run],
        on_epoch=None,
        on_finish=on_finish,
    )
    return finished["rows"]


def main() -> None:
    """Measure the missing (method, depth) pairs of the given datasets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["cora", "citeseer"])
    parser.add_argument("--depths", nargs="+", type=int, help="(default: all)")
    parser.add_argument(
        "--output", type=Path, help="folder of the rows (default: the sweep's)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    for dataset in args.datasets:
        sweep = load_config(ROOT / "configs" / "sweeps" / f"{dataset}_depth.yaml")
        folder = args.output or ROOT / "experiments" / "depth_sweep"
        path = folder / dataset / LAYERWISE_FILE
        done = (
            {(r["method"], r["depth"]) for r in read_rows(path)}
            if path.is_file()
            else set()
        )
        for label, depth, config in expand_sweep(sweep):
            skip = args.depths is not None and depth not in args.depths
            if skip or label not in METHODS or (label, depth) in done:
                continue
            rows = measure_point(label, int(depth), config)
            path.parent.mkdir(parents=True, exist_ok=True)
            append_rows(path, rows)
            logger.info(
                "%s %s depth %d: %d layers, test acc %.2f %%, last energy %.3g",
                dataset,
                label,
                depth,
                len(rows),
                100 * rows[0]["test_acc"],
                rows[-1]["dirichlet_energy"],
            )


if __name__ == "__main__":
    main()

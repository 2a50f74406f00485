"""The tiny-net studies on the authors' exact data and initial weights.

The authors' scripts (github.com/shwangtangjun/Diff-ResNet, ``synthetic/``)
draw their points with NumPy (``np.random.seed(42)``; 40 for the moons) and
their initial weights with PyTorch's default initialization right after
``torch.manual_seed`` of the same number. This script rebuilds those points
and weights, diffuses their XOR points (200 steps) and trains our
:class:`~diffresnet_pyg.synthetic.SyntheticNet` with the authors' schedule (20
plain SGD steps; their fresh ``SGD(momentum=0.9)`` per step is a plain step),
and writes ``authors_setting.json`` next to this file.

Run (about 20 s on one CPU thread)::

    OMP_NUM_THREADS=1 python experiments/synthetic/authors_setting.py
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from diffresnet_pyg.synthetic import (
    NET_STUDIES,
    SyntheticData,
    cluster_geometry,
    diffuse,
    fit_log_slope,
    gaussian_kernel_graph,
    gaussian_kernel_weights,
    train_synthetic_net,
)

logger = logging.getLogger("authors_setting")


def authors_points(name: str) -> tuple[np.ndarray, int]:
    """The authors' points (class 0 first) and their seed."""
    seed = 40 if name == "two_moons" else 42
    np.random.seed(seed)
    if name == "two_circles":
        t = np.linspace(0, 2 * np.pi, 500)
        x = np.append(2.0 * np.cos(t), np.cos(t))
        y = np.append(2.0 * np.sin(t), np.sin(t))
        noise = 0.05
    elif name == "two_moons":
        t = np.linspace(0, np.pi, 500)
        x = np.append(np.cos(t), 1 - np.cos(t))
        y = np.append(np.sin(t), 0.5 - np.sin(t))
        noise = 0.05
    else:
        t = np.linspace(0, 2 * np.pi, 500)
        x = np.append((1 + t) * np.cos(t), -(1 + t) * np.cos(t))
        y = np.append((1 + t) * np.sin(t), -(1 + t) * np.sin(t))
        noise = 0.1
    x = x + np.random.randn(1000) * noise
    y = y + np.random.randn(1000) * noise
    return np.stack([x, y], axis=1), seed


def authors_xor() -> dict:
    """Pure diffusion (200 steps, n_top 20) on the authors' XOR points."""
    np.random.seed(42)
    radius = np.sqrt(np.random.uniform(0, 0.75**2, 400))
    theta = np.pi * np.random.uniform(0, 2, 400)
    x, y = radius * np.cos(theta), radius * np.sin(theta)
    x[100:300] += 2.0
    y[100:200] += 2.0
    y[300:400] += 2.0
    points = torch.from_numpy(np.stack([x, y], axis=1))
    cluster = torch.arange(4).repeat_interleave(100)
    weight = gaussian_kernel_weights(points, n_top=20, sigma=0.5)
    cross = int(((weight > 0) & (cluster[:, None] != cluster[None])).sum())
    ratio = []
    for step in diffuse(points, weight, 200, return_trajectory=True):
        dist, diam = cluster_geometry(step, cluster)
        ratio.append(dist / float(diam.max()))
    return {
        "cross_disc_edges": cross,
        "initial_ratio": ratio[0],
        "ratio_step_20": ratio[20],
        "final_ratio": ratio[-1],
        "log_slope_per_step": fit_log_slope(ratio)[0],
        "early_log_slope_per_step": fit_log_slope(ratio[:21])[0],
    }


def main() -> None:
    """Train without and with diffusion on the authors' points and weights."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = {"xor": authors_xor()}
    logger.info("xor: %s", results["xor"])
    for name, cfg in NET_STUDIES.items():
        points, seed = authors_points(name)
        labels = torch.arange(2).repeat_interleave(500)
        data = SyntheticData(torch.from_numpy(points), labels, labels.clone())
        edge_index, edge_weight = gaussian_kernel_graph(
            data.x, n_top=cfg.n_top, sigma=cfg.sigma
        )
        results[name] = {"seed": seed, "config": cfg.__dict__}
        for key, layers in (
            ("without_diffusion", 0),
            ("with_diffusion", cfg.num_layers),
        ):
            torch.manual_seed(seed)  # the authors' init: default, right after seeding
            run = train_synthetic_net(
                data,
                edge_index,
                edge_weight,
                num_layers=layers,
                lr=cfg.lr,
                num_epochs=cfg.num_epochs,
                weight_decay=cfg.weight_decay,
                init_seed=None,
            )
            results[name][key] = run.to_dict()
            logger.info(
                "%s %s: accuracy per step %s",
                name,
                key,
                [round(a, 3) for a in run.accuracy],
            )
    out = Path(__file__).with_name("authors_setting.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    logger.info("written %s", out)


if __name__ == "__main__":
    main()

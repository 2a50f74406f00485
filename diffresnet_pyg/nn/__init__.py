"""Layers, models and graph builders."""

from diffresnet_pyg.nn.conv import DiffusionConv, diffusion
from diffresnet_pyg.nn.dropout import (
    draw_mask_seed,
    keep_mask,
    keep_mask_bytes,
    keep_mask_from_seed,
)
from diffresnet_pyg.nn.knn import gaussian_knn_graph, gaussian_weight_matrix, knn_graph
from diffresnet_pyg.nn.laplacian import (
    LAPLACIANS,
    SplitLaplacian,
    laplacian_max_eigenvalue,
    split_laplacian,
)
from diffresnet_pyg.nn.models import GRAND, DiffResNet, ResidualBlock

__all__ = [
    "GRAND",
    "LAPLACIANS",
    "DiffResNet",
    "DiffusionConv",
    "ResidualBlock",
    "SplitLaplacian",
    "diffusion",
    "draw_mask_seed",
    "gaussian_knn_graph",
    "gaussian_weight_matrix",
    "keep_mask",
    "keep_mask_bytes",
    "keep_mask_from_seed",
    "knn_graph",
    "laplacian_max_eigenvalue",
    "split_laplacian",
]

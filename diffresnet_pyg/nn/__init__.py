"""Layers, models and graph builders."""

from diffresnet_pyg.nn.conv import DiffusionConv, diffusion
from diffresnet_pyg.nn.dropout import keep_mask, keep_mask_bytes
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
    "gaussian_knn_graph",
    "gaussian_weight_matrix",
    "keep_mask",
    "keep_mask_bytes",
    "knn_graph",
    "laplacian_max_eigenvalue",
    "split_laplacian",
]

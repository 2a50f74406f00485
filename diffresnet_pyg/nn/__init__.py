"""Layers, models and graph builders."""

from diffresnet_pyg.nn.conv import DiffusionConv, diffusion
from diffresnet_pyg.nn.dropout import keep_mask
from diffresnet_pyg.nn.laplacian import (
    LAPLACIANS,
    SplitLaplacian,
    laplacian_max_eigenvalue,
    split_laplacian,
)
from diffresnet_pyg.nn.models import DiffResNet, ResidualBlock

__all__ = [
    "LAPLACIANS",
    "DiffResNet",
    "DiffusionConv",
    "ResidualBlock",
    "SplitLaplacian",
    "diffusion",
    "keep_mask",
    "laplacian_max_eigenvalue",
    "split_laplacian",
]

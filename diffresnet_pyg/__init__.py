"""Diffusion residual networks (Diff-ResNet) for PyTorch Geometric."""

__version__ = "0.1.0"

from diffresnet_pyg import data, nn  # noqa: E402

__all__ = ["__version__", "data", "nn"]

"""Graph diffusion layers."""

from diffresnet_pyg.nn.conv.diffusion_conv import DiffusionConv, diffusion

__all__ = ["DiffusionConv", "diffusion"]

"""Diff-ResNet models."""

from diffresnet_pyg.nn.models.diff_resnet import DiffResNet, ResidualBlock

__all__ = ["DiffResNet", "ResidualBlock"]

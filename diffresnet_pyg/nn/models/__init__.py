"""Diff-ResNet models."""

from diffresnet_pyg.nn.models.diff_resnet import DiffResNet, ResidualBlock
from diffresnet_pyg.nn.models.grand import GRAND

__all__ = ["GRAND", "DiffResNet", "ResidualBlock"]

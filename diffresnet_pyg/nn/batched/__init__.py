"""Batched (stacked-weight) models for multi-seed training.

``B`` members with the same architecture and their own weights run as one
model returning ``[N, B, C]``: shared inputs and graph products are computed
once for all members. See :mod:`diffresnet_pyg.experiments.training`.
"""

from diffresnet_pyg.nn.batched.diff_resnet import (
    BatchedDiffResNet,
    input_linear,
    member_input_dropout,
    shared_input_linear,
    stacked_linear,
)
from diffresnet_pyg.nn.batched.gnn import stack_baselines

__all__ = [
    "BatchedDiffResNet",
    "input_linear",
    "member_input_dropout",
    "shared_input_linear",
    "stack_baselines",
    "stacked_linear",
]

"""Batched (stacked-weight) models for multi-seed training.

``B`` members with the same architecture and their own weights run as one
model returning ``[N, B, C]``: shared inputs and graph products are computed
once for all members, and a member's outputs and gradients are bit for bit
the same whatever members share its stack (:func:`stacked_linear`,
:func:`per_member`). See :mod:`diffresnet_pyg.experiments.training`.
"""

from diffresnet_pyg.nn.batched.diff_resnet import (
    BatchedDiffResNet,
    input_linear,
    member_input_dropout,
    per_member,
    shared_input_linear,
    stacked_linear,
)
from diffresnet_pyg.nn.batched.gnn import stack_baselines

__all__ = [
    "BatchedDiffResNet",
    "input_linear",
    "member_input_dropout",
    "per_member",
    "shared_input_linear",
    "stack_baselines",
    "stacked_linear",
]

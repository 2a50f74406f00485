"""Diff-ResNet models: the authors' exact model and the general one."""

from __future__ import annotations

from torch import Tensor
from torch.nn import Module

from diffresnet_pyg.experiments.models.registry import register_model
from diffresnet_pyg.experiments.schema.fields import (
    POSITIVE_FLOAT,
    POSITIVE_INT,
    check_choice,
    check_int,
    check_int_choice,
    check_optional,
)
from diffresnet_pyg.nn import LAPLACIANS
from diffresnet_pyg.nn.batched import BatchedDiffResNet
from diffresnet_pyg.nn.models import DiffResNet

__all__ = ["diff_resnet_first_layer"]


def diff_resnet_first_layer(model: Module) -> list[Tensor]:
    """The input projection (else the first residual layer) of a Diff-ResNet.

    Works on :class:`~diffresnet_pyg.nn.DiffResNet` and its stacked form
    :class:`~diffresnet_pyg.nn.batched.BatchedDiffResNet`.
    """
    if isinstance(model, BatchedDiffResNet):
        if model.lin_in_weight is not None:
            return [model.lin_in_weight]
        return [model.block_weights[0]]
    if isinstance(model, DiffResNet):
        lin = model.lin_in if model.lin_in is not None else model.blocks[0].lins[0]
        return [lin.weight]
    raise TypeError(f"not a Diff-ResNet: {type(model).__name__}")


register_model(
    "diffresnet_reference",
    first_layer=diff_resnet_first_layer,
    stack=BatchedDiffResNet.from_modules,
    sparse_input=True,
    edge_weights=True,
    checks={"step_size": POSITIVE_FLOAT, "layer_num": check_int(minimum=0)},
    fixed={"cached": True},
)(DiffResNet.reference)

register_model(
    "diffresnet",
    first_layer=diff_resnet_first_layer,
    stack=BatchedDiffResNet.from_modules,
    sparse_input=True,
    edge_weights=True,
    checks={
        "num_blocks": POSITIVE_INT,
        "diffusion_steps": check_int(minimum=0),
        "step_size": POSITIVE_FLOAT,
        "laplacian": check_choice(LAPLACIANS),
        "block_layers": check_int_choice((1, 2)),
        "diffusion_time": check_optional(POSITIVE_FLOAT),
    },
    defaults={"hidden_channels": 128},
    exclude=("act", "add_self_loops", "check_stability"),
    fixed={"cached": True},
    added=("input_dropout", "diffusion_time"),
)(DiffResNet)

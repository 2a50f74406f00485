"""Build the models of a config: one plain model per run, or many stacked."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn import Module

from diffresnet_pyg.experiments.config import ModelConfig
from diffresnet_pyg.experiments.training import SingleMember
from diffresnet_pyg.nn.batched import BatchedDiffResNet, stack_baselines
from diffresnet_pyg.nn.batched.gnn import BatchedBaseline
from diffresnet_pyg.nn.models import GRAND, DiffResNet, baselines

__all__ = [
    "BATCHABLE_MODELS",
    "SPARSE_INPUT_MODELS",
    "build_members",
    "build_model",
    "first_layer_weights",
]

#: Models with a stacked-weight batched implementation.
BATCHABLE_MODELS: tuple[str, ...] = (
    "diffresnet_reference",
    "diffresnet",
    "gcn",
    "sage",
    "gat",
    "mlp",
)

#: Models whose plain (one-at-a-time) form takes sparse features.
SPARSE_INPUT_MODELS: tuple[str, ...] = ("diffresnet_reference", "diffresnet")


def build_model(config: ModelConfig, in_channels: int, out_channels: int) -> Module:
    """The plain model of ``config`` (its parameters drawn from the global RNG).

    Diffusion operators are cached: the runner trains on one fixed graph.
    """
    params = dict(config.params)
    name = config.name
    if name == "diffresnet_reference":
        return DiffResNet.reference(in_channels, out_channels, **params, cached=True)
    if name == "diffresnet":
        hidden = params.pop("hidden_channels")
        return DiffResNet(in_channels, hidden, out_channels, **params, cached=True)
    if name == "grand":
        hidden = params.pop("hidden_channels")
        return GRAND(in_channels, hidden, out_channels, **params)
    builder = {
        "gcn": baselines.gcn,
        "sage": baselines.graph_sage,
        "gat": baselines.gat,
        "mlp": baselines.mlp,
    }.get(name)
    if builder is None:
        raise ValueError(f"unknown model {name!r}")
    return builder(in_channels=in_channels, out_channels=out_channels, **params)


def build_members(
    config: ModelConfig, in_channels: int, out_channels: int, seeds: Sequence[int]
) -> Module:
    """One member per seed, each built right after ``torch.manual_seed(seed)``.

    One seed gives the plain model wrapped in
    :class:`~diffresnet_pyg.experiments.training.SingleMember` (exactly an
    unbatched run); several give the stacked batched model, whose member
    :math:`b` starts from the same weights as the plain model seeded with
    ``seeds[b]``. Models without a batched form accept only one seed.
    """
    if not seeds:
        raise ValueError("build_members needs at least one seed")
    if len(seeds) > 1 and config.name not in BATCHABLE_MODELS:
        raise ValueError(
            f"model {config.name!r} has no batched form; use train.batch_members=1"
        )
    members = []
    for seed in seeds:
        torch.manual_seed(seed)
        members.append(build_model(config, in_channels, out_channels))
    if len(members) == 1:
        return SingleMember(members[0])
    if isinstance(members[0], DiffResNet):
        return BatchedDiffResNet.from_modules(members)
    return stack_baselines(members)


def first_layer_weights(model: Module) -> list[Tensor]:
    """The weight matrices of the first layer (no biases) of a built model.

    The parameters ``train.weight_decay_on: first_layer`` decays: the first
    graph convolution (both of GraphSAGE's matrices) or linear layer; for
    Diff-ResNet the input projection (the first residual layer without one);
    for GRAND the encoder. Works on plain, single-member and batched models.
    """
    if isinstance(model, SingleMember):
        model = model.module
    if isinstance(model, BatchedBaseline):
        names = (
            ("weights_l", "weights_r") if hasattr(model, "weights_l") else ("weights",)
        )
        return [getattr(model, name)[0] for name in names]
    if isinstance(model, BatchedDiffResNet):
        if model.lin_in_weight is not None:
            return [model.lin_in_weight]
        return [model.block_weights[0]]
    if isinstance(model, DiffResNet):
        lin = model.lin_in if model.lin_in is not None else model.blocks[0].lins[0]
        return [lin.weight]
    if isinstance(model, GRAND):
        return [model.lin1.weight]
    if isinstance(model, baselines.BaselineModel):
        if model.family == "mlp":
            return [model.model.lins[0].weight]
        conv = model.model.convs[0]
        if hasattr(conv, "lin_l"):  # GraphSAGE: neighbour and root weights
            return [conv.lin_l.weight, conv.lin_r.weight]
        return [conv.lin.weight]
    raise TypeError(f"no first layer known for {type(model).__name__}")

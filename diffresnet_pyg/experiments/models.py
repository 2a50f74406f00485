"""Build the models of a config: one plain model per run, or many stacked."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import Module

from diffresnet_pyg.experiments.config import ModelConfig
from diffresnet_pyg.experiments.training import SingleMember
from diffresnet_pyg.nn.batched import BatchedDiffResNet, stack_baselines
from diffresnet_pyg.nn.models import GRAND, DiffResNet, baselines

__all__ = ["BATCHABLE_MODELS", "SPARSE_INPUT_MODELS", "build_members", "build_model"]

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

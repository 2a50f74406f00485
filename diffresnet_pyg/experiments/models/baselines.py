"""PyG's GCN, GraphSAGE, GAT and MLP with gnn-benchmark's tuned defaults.

The builders and their defaults are those of
:mod:`diffresnet_pyg.nn.models.baselines`; the stacked form is
:func:`~diffresnet_pyg.nn.batched.stack_baselines`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor
from torch.nn import Module

from diffresnet_pyg.experiments.models.registry import register_model
from diffresnet_pyg.experiments.schema.fields import ConfigError
from diffresnet_pyg.nn.batched import stack_baselines
from diffresnet_pyg.nn.batched.gnn import BatchedBaseline
from diffresnet_pyg.nn.models import baselines

__all__ = ["baseline_first_layer"]


def baseline_first_layer(model: Module) -> list[Tensor]:
    """The first graph convolution's (or linear layer's) weight matrices.

    Both matrices for GraphSAGE (neighbour and root weights). Works on
    :class:`~diffresnet_pyg.nn.models.baselines.BaselineModel` and its stacked
    form :class:`~diffresnet_pyg.nn.batched.gnn.BatchedBaseline`.
    """
    if isinstance(model, BatchedBaseline):
        names = (
            ("weights_l", "weights_r") if hasattr(model, "weights_l") else ("weights",)
        )
        return [getattr(model, name)[0] for name in names]
    if isinstance(model, baselines.BaselineModel):
        if model.family == "mlp":
            return [model.model.lins[0].weight]
        conv = model.model.convs[0]
        if hasattr(conv, "lin_l"):  # GraphSAGE: neighbour and root weights
            return [conv.lin_l.weight, conv.lin_r.weight]
        return [conv.lin.weight]
    raise TypeError(f"not a baseline model: {type(model).__name__}")


def _heads_divide_width(params: Mapping[str, Any]) -> None:
    if params["hidden_channels"] % params["heads"]:
        raise ConfigError(
            f"model.hidden_channels: must be divisible by model.heads="
            f"{params['heads']}, got {params['hidden_channels']}"
        )


def _has_input_dropout(params: Mapping[str, Any]) -> bool:
    """Sparse features for a plain baseline with input dropout.

    Its input dropout then draws over the stored values
    (:func:`~diffresnet_pyg.nn.sparse.sparse_dropout`), as each member of the
    stacked model does, so a run gives the same row alone or in a batch.
    """
    return float(params.get("input_dropout") or 0.0) > 0.0


register_model(
    "gcn",
    first_layer=baseline_first_layer,
    stack=stack_baselines,
    sparse_input=_has_input_dropout,
    edge_weights=True,
)(baselines.gcn)
register_model(
    "sage",
    first_layer=baseline_first_layer,
    stack=stack_baselines,
    sparse_input=_has_input_dropout,
)(baselines.graph_sage)
register_model(
    "gat",
    first_layer=baseline_first_layer,
    stack=stack_baselines,
    sparse_input=_has_input_dropout,
    exclude=("output_heads",),
    check_together=_heads_divide_width,
)(baselines.gat)
register_model(
    "mlp",
    first_layer=baseline_first_layer,
    stack=stack_baselines,
    sparse_input=_has_input_dropout,
    edge_weights=True,
)(baselines.mlp)

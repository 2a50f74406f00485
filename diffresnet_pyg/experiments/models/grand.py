"""GRAND (graph neural diffusion) on ``torchdiffeq``; no batched form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor
from torch.nn import Module

from diffresnet_pyg.experiments.models.registry import register_model
from diffresnet_pyg.experiments.schema.fields import (
    POSITIVE_FLOAT,
    POSITIVE_INT,
    ConfigError,
    check_choice,
    check_optional,
)
from diffresnet_pyg.nn.models import GRAND

__all__ = ["GRAND_METHODS"]

#: ODE solvers of GRAND configs (``torchdiffeq`` names).
GRAND_METHODS: tuple[str, ...] = (
    "dopri5",
    "rk4",
    "euler",
    "midpoint",
    "adaptive_heun",
    "bosh3",
    "dopri8",
)
_FIXED_STEP_METHODS: tuple[str, ...] = ("rk4", "euler", "midpoint")


def _grand_first_layer(model: Module) -> list[Tensor]:
    if not isinstance(model, GRAND):
        raise TypeError(f"not a GRAND model: {type(model).__name__}")
    return [model.lin1.weight]


def _check_grand(params: Mapping[str, Any]) -> None:
    if params["attention_channels"] % params["heads"]:
        raise ConfigError(
            f"model.attention_channels: must be divisible by model.heads="
            f"{params['heads']}, got {params['attention_channels']}"
        )
    method, step_size = params["method"], params["step_size"]
    fixed = method in _FIXED_STEP_METHODS
    if fixed and step_size is None:
        raise ConfigError(
            f"model.step_size: required (> 0) for the fixed-step method "
            f"{method!r}, got None"
        )
    if not fixed and step_size is not None:
        raise ConfigError(
            f"model.step_size: only used by the fixed-step methods "
            f"{', '.join(_FIXED_STEP_METHODS)}; must be null for the adaptive "
            f"method {method!r}, got {step_size!r}"
        )


register_model(
    "grand",
    first_layer=_grand_first_layer,
    checks={
        "time": POSITIVE_FLOAT,
        "method": check_choice(GRAND_METHODS),
        "step_size": check_optional(POSITIVE_FLOAT),
        "attention_channels": POSITIVE_INT,
    },
    # The config's rounded Cora setting (the class keeps the tuned digits).
    defaults={"hidden_channels": 80, "time": 18.29, "dropout": 0.047},
    exclude=(
        "rtol",
        "atol",
        "self_loops",
        "max_num_steps",
        "max_nfe",
        "attention_norm",
        "detach_source",
    ),
    check_together=_check_grand,
)(GRAND)

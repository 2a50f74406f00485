"""The ``model`` section: a registered model's name and its parameters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from diffresnet_pyg.experiments import models
from diffresnet_pyg.experiments.schema.fields import bad_value, check_choice

__all__ = ["ModelConfig"]


@dataclass(frozen=True)
class ModelConfig:
    """The ``model`` section: a model name and its keyword arguments.

    YAML writes the parameters flat (``model: {name: gcn, dropout: 0.5}``).
    They are validated against the model's registration
    (:func:`~diffresnet_pyg.experiments.models.get_model`); :attr:`params`
    then holds every parameter, defaults filled in, in the order of the
    model's builder (a plain dict; treat it as read-only).

    Attributes:
        name: A registered model name
            (:func:`~diffresnet_pyg.experiments.models.model_names`).
        params: The model's keyword arguments.

    Example:
        >>> ModelConfig("diffresnet_reference", {"layer_num": 0}).params
        {'step_size': 0.25, 'layer_num': 0, 'dropout': 0.25}
        >>> ModelConfig("gcn", {"layer_num": 0})
        Traceback (most recent call last):
        ...
        diffresnet_pyg.experiments.schema.ConfigError: model.layer_num: not a \
parameter of model 'gcn'; allowed: name, hidden_channels, num_layers, dropout, \
input_dropout
    """

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        name = check_choice(models.model_names())(self.name, "model.name")
        if not isinstance(self.params, Mapping):
            raise bad_value("model", "a mapping of parameters", self.params)
        params = models.get_model(name).validate(self.params)
        object.__setattr__(self, "params", params)

    @property
    def spec(self) -> models.ModelSpec:
        """The model's registration."""
        return models.get_model(self.name)

"""The search space of ``diffresnet-pyg tune``: a validated ``SPACE.yaml``.

.. code-block:: yaml

    trials: 20            # trials in all (a rerun continues to this many)
    sampler: tpe          # tpe (default) or random
    seed: 0               # seeds the sampler
    metric: val_acc       # mean validation accuracy, maximized (default),
                          # or val_loss, mean validation loss, minimized
    params:               # dotted config key -> distribution
      model.step_size: {float: [0.05, 1.0], log: true}
      model.diffusion_steps: {int: [2, 20]}
      model.dropout: {choice: [0.0, 0.25, 0.5]}
      train.lr: {float: [1.0e-3, 5.0e-2], log: true}

A distribution is a mapping with exactly one of ``float: [low, high]``,
``int: [low, high]`` (both bounds included) or ``choice: [values...]``, and
optionally ``log: true`` (``float``/``int``, ``low > 0``) or ``step: S``
(``float``/``int``, not with ``log``). A key is ``SECTION.FIELD`` (or deeper,
``train.batching.method``) of the sections ``dataset``, ``split``, ``model``
and ``train``; ``output``, ``name``, ``executor`` and ``sweep`` cannot be
tuned. Whether the config accepts a key's values is checked by
:func:`check_against`, which builds the config with each bound (each choice).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from diffresnet_pyg.experiments.schema.experiment import (
    ExperimentConfig,
    config_from_dict,
    config_to_dict,
)
from diffresnet_pyg.experiments.schema.fields import (
    ConfigError,
    bad_value,
    check_bool,
    check_choice,
    check_int,
    check_number,
    merge,
    plain,
)

__all__ = [
    "DISTRIBUTIONS",
    "METRICS",
    "SAMPLERS",
    "SPACE_KEYS",
    "TUNABLE_SECTIONS",
    "Distribution",
    "SearchSpace",
    "check_against",
    "nested",
    "space_from_dict",
    "space_to_dict",
]

#: The kinds of distribution of a parameter.
DISTRIBUTIONS: tuple[str, ...] = ("float", "int", "choice")
#: Samplers: Optuna's TPE (default) and uniform random sampling.
SAMPLERS: tuple[str, ...] = ("tpe", "random")
#: Objectives: mean validation accuracy (maximized) or loss (minimized).
METRICS: tuple[str, ...] = ("val_acc", "val_loss")
#: Top-level keys of a space file.
SPACE_KEYS: tuple[str, ...] = ("trials", "sampler", "seed", "metric", "params")
#: Config sections whose fields can be tuned.
TUNABLE_SECTIONS: tuple[str, ...] = ("dataset", "split", "model", "train")

_DISTRIBUTION_KEYS = (*DISTRIBUTIONS, "log", "step")


@dataclass(frozen=True)
class Distribution:
    """Where one config key is sampled from.

    Attributes:
        kind: ``"float"``, ``"int"`` or ``"choice"``.
        low: Lower bound (``float``/``int``; included).
        high: Upper bound (``float``/``int``; included).
        log: Sample on a log scale.
        step: Discretization step (``float``/``int``), or :obj:`None`.
        choices: The values of a ``choice``.
    """

    kind: str
    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    step: int | float | None = None
    choices: tuple[Any, ...] = ()

    @property
    def extremes(self) -> tuple[Any, ...]:
        """The values that :func:`check_against` tries: bounds or choices."""
        if self.kind == "choice":
            return self.choices
        return (self.low, self.high)

    def to_dict(self) -> dict[str, Any]:
        """The YAML form (``{float: [low, high], log: true}``...)."""
        if self.kind == "choice":
            return {"choice": list(self.choices)}
        out: dict[str, Any] = {self.kind: [self.low, self.high]}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space (see the module docstring for the YAML).

    Attributes:
        params: Dotted config key -> :class:`Distribution`, in file order.
        trials: Trials in all (>= 1).
        sampler: One of :data:`SAMPLERS`.
        seed: Seed of the sampler (>= 0).
        metric: One of :data:`METRICS`.
    """

    params: Mapping[str, Distribution]
    trials: int = 20
    sampler: str = "tpe"
    seed: int = 0
    metric: str = "val_acc"

    @property
    def direction(self) -> str:
        """``"maximize"`` for accuracy, ``"minimize"`` for loss."""
        return "minimize" if self.metric == "val_loss" else "maximize"


def _check_key(key: Any, where: str) -> str:
    if not isinstance(key, str):
        raise bad_value(where, "a dotted config key (e.g. 'model.dropout')", key)
    section = key.split(".")[0]
    if section in ("output", "name", "executor", "sweep"):
        raise ConfigError(
            f"{where}.{key}: '{section}' cannot be tuned; tunable sections: "
            f"{', '.join(TUNABLE_SECTIONS)}"
        )
    pattern = rf"({'|'.join(TUNABLE_SECTIONS)})(\.[A-Za-z_]\w*)+"
    if not re.fullmatch(pattern, key):
        raise ConfigError(
            f"{where}.{key}: expected a dotted key 'SECTION.FIELD' of the "
            f"sections {', '.join(TUNABLE_SECTIONS)} (e.g. 'model.dropout')"
        )
    return key


def _bounds(value: Any, key: str, kind: str) -> tuple[int | float, int | float]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise bad_value(key, "a list [low, high]", value)
    if len(value) != 2:
        raise bad_value(key, "a list of two bounds [low, high]", value)
    if kind == "int":
        check = check_int()
        low, high = (check(v, f"{key}[{i}]") for i, v in enumerate(value))
    else:
        low, high = (float(check_number(v, f"{key}[{i}]")) for i, v in enumerate(value))
    if not low < high:
        raise ConfigError(f"{key}: expected low < high, got [{low!r}, {high!r}]")
    return low, high


def _distribution(raw: Any, key: str) -> Distribution:
    if not isinstance(raw, Mapping):
        raise bad_value(
            key,
            "a distribution ({float: [low, high]}, {int: ...} or {choice: ...})",
            raw,
        )
    for name in raw:
        if name not in _DISTRIBUTION_KEYS:
            raise ConfigError(
                f"{key}.{name}: unknown key; allowed: {', '.join(_DISTRIBUTION_KEYS)}"
            )
    kinds = [k for k in DISTRIBUTIONS if k in raw]
    if len(kinds) != 1:
        raise ConfigError(
            f"{key}: expected exactly one of {', '.join(DISTRIBUTIONS)}, got "
            f"{', '.join(kinds) or 'none'}"
        )
    kind = kinds[0]
    log = check_bool(raw.get("log", False), f"{key}.log")
    step = raw.get("step")
    if kind == "choice":
        for name in ("log", "step"):
            if name in raw:
                raise ConfigError(f"{key}.{name}: not allowed with 'choice'")
        choices = raw["choice"]
        if isinstance(choices, str | bytes) or not isinstance(choices, Sequence):
            raise bad_value(f"{key}.choice", "a list of values", choices)
        if not choices:
            raise ConfigError(f"{key}.choice: must not be empty")
        for i, choice in enumerate(choices):
            if not isinstance(choice, str | int | float | bool | type(None)):
                raise bad_value(
                    f"{key}.choice[{i}]", "a number, string, bool or null", choice
                )
            if any(choice == c and type(choice) is type(c) for c in choices[:i]):
                raise ConfigError(f"{key}.choice[{i}]: duplicate value {choice!r}")
        return Distribution("choice", choices=tuple(choices))
    low, high = _bounds(raw[kind], f"{key}.{kind}", kind)
    if log and low <= 0:
        raise ConfigError(f"{key}.{kind}: log scale needs low > 0, got {low!r}")
    if step is not None:
        if log:
            raise ConfigError(f"{key}.step: not allowed with 'log: true'")
        check = check_int(minimum=1) if kind == "int" else None
        if check is not None:
            step = check(step, f"{key}.step")
        else:
            step = check_number(step, f"{key}.step")
            if not step > 0:
                raise bad_value(f"{key}.step", "a number > 0", raw["step"])
            step = float(step)
    return Distribution(kind, low, high, log=log, step=step)


def space_from_dict(raw: Any) -> SearchSpace:
    """Validate a search space given as a mapping (e.g. parsed YAML).

    Raises:
        ConfigError: For an unknown or missing key or a bad value; the message
            starts with the dotted key (``params.model.dropout.float``...).

    Example:
        >>> space = space_from_dict({"trials": 5, "params": {
        ...     "train.lr": {"float": [1e-3, 0.1], "log": True},
        ...     "model.dropout": {"choice": [0.0, 0.5]}}})
        >>> space.params["train.lr"].to_dict(), space.direction
        ({'float': [0.001, 0.1], 'log': True}, 'maximize')
        >>> space_from_dict({"params": {"model.dropout": {"beta": [1, 2]}}})
        Traceback (most recent call last):
        ...
        diffresnet_pyg.experiments.schema.ConfigError: params.model.dropout.beta: \
unknown key; allowed: float, int, choice, log, step
    """
    if not isinstance(raw, Mapping):
        raise bad_value(
            "space", "a mapping (trials, sampler, seed, metric, params)", raw
        )
    for key in raw:
        if key not in SPACE_KEYS:
            raise ConfigError(f"{key}: unknown key; allowed: {', '.join(SPACE_KEYS)}")
    params = raw.get("params")
    if params is None:
        raise ConfigError("params: required key is missing")
    if not isinstance(params, Mapping):
        raise bad_value("params", "a mapping of dotted keys to distributions", params)
    if not params:
        raise ConfigError("params: must not be empty")
    checked: dict[str, Distribution] = {}
    for key, value in params.items():
        key = _check_key(key, "params")
        for other in checked:
            if other.startswith(key + ".") or key.startswith(other + "."):
                raise ConfigError(f"params.{key}: overlaps params.{other}")
        checked[key] = _distribution(value, f"params.{key}")
    return SearchSpace(
        params=checked,
        trials=check_int(minimum=1)(raw.get("trials", 20), "trials"),
        sampler=check_choice(SAMPLERS)(raw.get("sampler", "tpe"), "sampler"),
        seed=check_int(minimum=0)(raw.get("seed", 0), "seed"),
        metric=check_choice(METRICS)(raw.get("metric", "val_acc"), "metric"),
    )


def space_to_dict(space: SearchSpace) -> dict[str, Any]:
    """The space as plain data; round-trips through :func:`space_from_dict`."""
    return {
        "trials": space.trials,
        "sampler": space.sampler,
        "seed": space.seed,
        "metric": space.metric,
        "params": {key: d.to_dict() for key, d in space.params.items()},
    }


def nested(values: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys to nested mappings, for :func:`merge`.

    Example:
        >>> nested({"train.lr": 0.1, "model.dropout": 0.5, "train.patience": 9})
        {'train': {'lr': 0.1, 'patience': 9}, 'model': {'dropout': 0.5}}
    """
    result: dict[str, Any] = {}
    for key, value in values.items():
        for part in reversed(key.split(".")):
            value = {part: value}
        result = merge(result, value)
    return result


def check_against(space: SearchSpace, config: ExperimentConfig) -> None:
    """Check that ``config`` accepts every parameter of ``space``.

    Each key is set, alone, to each bound of its range (each value of a
    ``choice``) on ``config`` and the config is validated.

    Raises:
        ConfigError: If the config has a ``sweep`` section, or rejects a value;
            the message names ``params.<key>`` and the config's own error.
    """
    if config.sweep is not None:
        raise ConfigError(
            "sweep: a config with a 'sweep' section cannot be tuned; tune one "
            "of its points instead"
        )
    base = config_to_dict(config)
    for key, dist in space.params.items():
        for value in dist.extremes:
            try:
                config_from_dict(merge(base, nested({key: plain(value)})))
            except ConfigError as exc:
                raise ConfigError(
                    f"params.{key}: the config does not accept {value!r} ({exc})"
                ) from None

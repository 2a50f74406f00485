"""Field validators and section machinery shared by every config schema.

A validator is ``check(value, key) -> normalized value``; it raises
:class:`ConfigError` naming the dotted ``key``, what was expected and what it
got. :func:`validated_field` attaches one to a dataclass field and
:class:`Section` runs them in ``__post_init__``.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, field, fields
from typing import Any, ClassVar


class ConfigError(ValueError):
    """An invalid experiment config; the message starts with the dotted key.

    Example:
        >>> try:
        ...     TrainConfig(lr=-1)
        ... except ConfigError as exc:
        ...     print(exc)
        train.lr: expected a float > 0, got -1 (int)
    """


ConfigError.__module__ = "diffresnet_pyg.experiments.schema"  # its public home


# --------------------------------------------------------------------------
# Field validators: ``check(value, key) -> normalized value`` or ConfigError.
# --------------------------------------------------------------------------

Check = Callable[[Any, str], Any]


def describe(value: Any) -> str:
    """``got <repr> (<type>)``: how error messages show a bad value."""
    return f"got {value!r} ({type(value).__name__})"


def bad_value(key: str, expected: str, value: Any) -> ConfigError:
    """The error for ``value`` at ``key``, which should be ``expected``."""
    return ConfigError(f"{key}: expected {expected}, {describe(value)}")


def check_bool(value: Any, key: str) -> bool:
    """``value`` if it is a bool (``true``/``false``), else an error."""
    if not isinstance(value, bool):
        raise bad_value(key, "true or false", value)
    return value


def check_int(minimum: int | None = None, maximum: int | None = None) -> Check:
    """A validator of ints within the optional bounds (bools are not ints).

    Example:
        >>> check_int(minimum=0)(3, "model.layer_num")
        3
    """
    bounds = [f">= {minimum}"] if minimum is not None else []
    bounds += [f"<= {maximum}"] if maximum is not None else []
    expected = " ".join(["an int", " and ".join(bounds)]).strip()

    def check(value: Any, key: str) -> int:
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or (minimum is not None and value < minimum)
            or (maximum is not None and value > maximum)
        ):
            raise bad_value(key, expected, value)
        return value

    return check


def check_int_choice(choices: tuple[int, ...]) -> Check:
    """A validator of ints that must be one of ``choices``."""
    expected = " or ".join(str(c) for c in choices)

    def check(value: Any, key: str) -> int:
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value not in choices
        ):
            raise bad_value(key, expected, value)
        return value

    return check


def _as_float(value: Any) -> float | None:
    """``value`` as a finite float (ints and float strings too), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def check_float(
    gt: float | None = None, ge: float | None = None, lt: float | None = None
) -> Check:
    """A validator of finite floats within the optional bounds.

    Ints and float strings (``"5e-4"``, as PyYAML reads it) become floats.

    Example:
        >>> check_float(ge=0.0)("5e-4", "train.weight_decay")
        0.0005
    """
    bounds = [f"> {gt:g}"] if gt is not None else []
    bounds += [f">= {ge:g}"] if ge is not None else []
    bounds += [f"< {lt:g}"] if lt is not None else []
    expected = " ".join(["a float", " and ".join(bounds)]).strip()

    def check(value: Any, key: str) -> float:
        number = _as_float(value)
        if (
            number is None
            or (gt is not None and not number > gt)
            or (ge is not None and not number >= ge)
            or (lt is not None and not number < lt)
        ):
            raise bad_value(key, expected, value)
        return number

    return check


def check_number(value: Any, key: str) -> int | float:
    """An int (kept) or a float (a float string becomes a float)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _as_float(value)
    if number is None:
        raise bad_value(key, "a number", value)
    return number


def check_str(
    pattern: str | None = None, expected: str = "a non-empty string"
) -> Check:
    """A validator of non-empty strings, optionally matching ``pattern``."""

    def check(value: Any, key: str) -> str:
        if (
            not isinstance(value, str)
            or not value.strip()
            or (pattern is not None and re.fullmatch(pattern, value) is None)
        ):
            raise bad_value(key, expected, value)
        return value

    return check


def check_choice(choices: Sequence[str]) -> Check:
    """A validator of strings that must be one of ``choices``."""
    expected = "one of " + ", ".join(repr(c) for c in choices)

    def check(value: Any, key: str) -> str:
        if not isinstance(value, str) or value not in choices:
            raise bad_value(key, expected, value)
        return value

    return check


def check_optional(inner: Check) -> Check:
    """``inner``, but :obj:`None` passes unchanged."""

    def check(value: Any, key: str) -> Any:
        return None if value is None else inner(value, key)

    return check


POSITIVE_INT = check_int(minimum=1)
POSITIVE_FLOAT = check_float(gt=0.0)
DROPOUT = check_float(ge=0.0, lt=1.0)


def validated_field(
    check: Check, default: Any = MISSING, factory: Callable[[], Any] | None = None
) -> Any:
    """A dataclass field validated by ``check`` (no default: required)."""
    if factory is not None:
        return field(default_factory=factory, metadata={"check": check})
    return field(default=default, metadata={"check": check})


def validated_fields(obj: Any, prefix: str) -> dict[str, Any]:
    """The fields of dataclass ``obj``, each validated by its ``check``."""
    values = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        check = f.metadata.get("check")
        values[f.name] = value if check is None else check(value, f"{prefix}.{f.name}")
    return values


class Section:
    """Validates (and normalizes) the fields of a frozen section dataclass."""

    _key: ClassVar[str]  # the dotted key of the section, for error messages

    def __post_init__(self) -> None:
        for name, value in validated_fields(self, self._key).items():
            object.__setattr__(self, name, value)
        self._check_together()

    def _check_together(self) -> None:
        """Checks that involve several fields (none by default)."""


def section_from_mapping(cls: type[Any], raw: Any, key: str) -> Any:
    """Build dataclass ``cls`` from mapping ``raw``; unknown keys are errors."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise bad_value(key, "a mapping", raw)
    names = [f.name for f in fields(cls)]
    for name in raw:
        if name not in names:
            raise ConfigError(f"{key}.{name}: unknown key; allowed: {', '.join(names)}")
    for f in fields(cls):
        required = f.default is MISSING and f.default_factory is MISSING
        if required and f.name not in raw:
            raise ConfigError(f"{key}.{f.name}: required key is missing")
    return cls(**raw)


def check_values(value: Any, key: str) -> tuple[int | float, ...]:
    """A list of distinct numbers (a sweep's values), as a tuple."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise bad_value(key, "a list of numbers", value)
    numbers = tuple(check_number(v, f"{key}[{i}]") for i, v in enumerate(value))
    for i, number in enumerate(numbers):
        if number in numbers[:i]:
            raise ConfigError(f"{key}[{i}]: duplicate value {number!r}")
    return numbers


def plain(value: Any) -> Any:
    """A deep copy with mappings as dicts and sequences as lists."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return copy.deepcopy(value)


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overrides`` onto ``base`` into a new dict.

    Mappings are merged key by key; anything else in ``overrides`` replaces
    the value in ``base``. Neither input is modified.

    Example:
        >>> merge({"train": {"lr": 0.01, "patience": 50}}, {"train": {"lr": 0.1}})
        {'train': {'lr': 0.1, 'patience': 50}}
    """
    result = plain(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merge(result[key], value)
        else:
            result[key] = plain(value)
    return result

"""The ``sweep`` section: methods, each run for every value of one key."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from diffresnet_pyg.experiments.schema.fields import (
    ConfigError,
    bad_value,
    check_str,
    check_values,
    plain,
    section_from_mapping,
    validated_field,
    validated_fields,
)

SWEEP_SECTIONS: tuple[str, ...] = ("dataset", "split", "model", "train")


def _sweep_key(value: Any, key: str) -> str:
    pattern = rf"({'|'.join(SWEEP_SECTIONS)})\.[A-Za-z_]\w*"
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        raise bad_value(
            key, "a dotted key 'SECTION.FIELD' (e.g. 'model.layer_num')", value
        )
    if value == "model.name":
        raise ConfigError(f"{key}: cannot sweep over 'model.name' (values are numbers)")
    return value


def _overrides(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise bad_value(key, "a mapping of sections", value)
    for section, body in value.items():
        if section not in SWEEP_SECTIONS:
            raise ConfigError(
                f"{key}.{section}: unknown section; allowed: "
                f"{', '.join(SWEEP_SECTIONS)}"
            )
        if not isinstance(body, Mapping):
            raise bad_value(f"{key}.{section}", "a mapping", body)
    return plain(value)


def _method_values(value: Any, key: str) -> tuple[int | float, ...] | None:
    if value is None:
        return None
    values = check_values(value, key)
    if not values:
        raise ConfigError(
            f"{key}: must not be empty (leave it out to use sweep.values)"
        )
    return values


@dataclass(frozen=True)
class SweepMethod:
    """One curve of a sweep: a labelled config that one key is swept over.

    Validated by the :class:`SweepConfig` that holds it.

    Attributes:
        label: A non-empty label (e.g. ``"Diff-ResNet"``), unique in the sweep
            (also after :func:`slug`, which names its results folder).
        key: The dotted key that the sweep values set, ``SECTION.FIELD`` (e.g.
            ``"model.layer_num"``); it must be valid for the method's config.
        overrides: Nested sections (``dataset``, ``split``, ``model``,
            ``train``) merged onto the base config for this method. A method
            whose ``model.name`` differs from the base model's starts from
            that model's defaults instead of the base model's parameters.
        values: The method's own values; :obj:`None` uses the sweep's values.
    """

    label: str = validated_field(check_str())
    key: str = validated_field(_sweep_key)
    overrides: Mapping[str, Any] = validated_field(_overrides, factory=dict)
    values: tuple[int | float, ...] | None = validated_field(_method_values, None)


@dataclass(frozen=True)
class SweepConfig:
    """The ``sweep`` section: methods, each run for every value of one key.

    Attributes:
        axis: The x-axis label (letters, digits, ``_`` and ``-``; it names
            the results folders ``<axis>_<value>``).
        values: The values (numbers; float strings such as ``"5e-4"`` become
            floats); may be empty only if every method has its own.
        methods: The methods (non-empty).

    Example:
        >>> sweep = SweepConfig(values=[2, 4], methods=[
        ...     SweepMethod("GCN", "model.num_layers", {"model": {"name": "gcn"}})])
        >>> sweep.values, sweep.methods[0].label
        ((2, 4), 'GCN')
    """

    axis: str = validated_field(
        check_str(r"[\w-]+", "a name of letters, digits, '_' or '-'"), "depth"
    )
    values: tuple[int | float, ...] = validated_field(check_values, ())
    methods: tuple[SweepMethod, ...] = ()

    def __post_init__(self) -> None:
        for name, value in validated_fields(self, "sweep").items():
            object.__setattr__(self, name, value)
        raw_methods = self.methods
        if isinstance(raw_methods, str | bytes) or not isinstance(
            raw_methods, Sequence
        ):
            raise bad_value("sweep.methods", "a list of methods", raw_methods)
        if not raw_methods:
            raise ConfigError("sweep.methods: must not be empty")
        methods = []
        for i, method in enumerate(raw_methods):
            key = f"sweep.methods[{i}]"
            if isinstance(method, Mapping):
                method = section_from_mapping(SweepMethod, method, key)
            elif not isinstance(method, SweepMethod):
                raise bad_value(
                    key, "a mapping (label, key, overrides, values)", method
                )
            method = SweepMethod(**validated_fields(method, key))
            for previous in methods:
                if slug(previous.label) == slug(method.label):
                    raise ConfigError(
                        f"{key}.label: {method.label!r} is not unique (results "
                        f"folder {slug(method.label)!r} is taken by "
                        f"{previous.label!r})"
                    )
            if not slug(method.label):
                raise ConfigError(
                    f"{key}.label: needs a letter or digit, got {method.label!r}"
                )
            if method.values is None and not self.values:
                raise ConfigError(
                    f"sweep.values: must not be empty, method {method.label!r} "
                    "has no values of its own"
                )
            methods.append(method)
        object.__setattr__(self, "methods", tuple(methods))


def slug(label: str) -> str:
    """A folder name for ``label``: lowercase, runs of other characters ``-``.

    Example:
        >>> slug("Diff-ResNet (no diffusion)")
        'diff-resnet-no-diffusion'
    """
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")

"""YAML files and ``KEY=VALUE`` command-line overrides.

Every YAML text is read with the bounded loader of
:mod:`diffresnet_pyg.yaml_files` (no anchors or aliases in user files, at
most :data:`MAX_YAML_BYTES` bytes); its errors are raised here as
:class:`ConfigError`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from diffresnet_pyg import yaml_files
from diffresnet_pyg.experiments.schema.experiment import (
    TOP_LEVEL_KEYS,
    ExperimentConfig,
    config_from_dict,
)
from diffresnet_pyg.experiments.schema.fields import (
    ConfigError,
    bad_value,
    describe,
    merge,
)
from diffresnet_pyg.yaml_files import YAMLFileError

logger = logging.getLogger(__name__)


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` overrides into a nested mapping.

    Keys are dotted (``train.lr``; model parameters are flat:
    ``model.layer_num``). Values are parsed as YAML (``5`` is an int, ``true``
    a bool, ``[2, 4]`` a list, ``null`` or nothing :obj:`None`); float fields
    accept strings such as ``1e-3``. Later items win.

    Args:
        items: The overrides, e.g. from the command line.

    Returns:
        dict[str, Any]: The nested overrides, ready for :func:`merge`.

    Raises:
        ConfigError: For an item without ``=``, an empty key or key segment,
            or a value that is not valid YAML.

    Example:
        >>> parse_overrides(["train.lr=0.005", "model.layer_num=10",
        ...                  "train.lr=5e-4"])
        {'train': {'lr': '5e-4'}, 'model': {'layer_num': 10}}
        >>> parse_overrides(["sweep.values=[2, 4]", "dataset.root=null"])
        {'sweep': {'values': [2, 4]}, 'dataset': {'root': None}}
    """
    result: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, str):
            raise bad_value("override", "a 'KEY=VALUE' string", item)
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep:
            raise ConfigError(
                f"override {item!r}: expected KEY=VALUE (e.g. train.lr=0.005)"
            )
        if not key:
            raise ConfigError(f"override {item!r}: empty key before '='")
        parts = [part.strip() for part in key.split(".")]
        if not all(parts):
            raise ConfigError(f"{key}: empty key segment in override {item!r}")
        try:
            value = yaml_files.load_yaml_text(
                text, f"{key}: cannot parse override value {text!r}"
            )
        except YAMLFileError as exc:
            raise ConfigError(str(exc)) from None
        for part in reversed(parts):
            value = {part: value}
        result = merge(result, value)
    return result


def load_yaml_text(text: str, where: str, *, aliases: bool = False) -> Any:
    """:func:`diffresnet_pyg.yaml_files.load_yaml_text`, raising :class:`ConfigError`.

    Example:
        >>> load_yaml_text("a: [1, 2]", "x.yaml")
        {'a': [1, 2]}
    """
    try:
        return yaml_files.load_yaml_text(text, where, aliases=aliases)
    except YAMLFileError as exc:
        raise ConfigError(str(exc)) from None


def read_yaml_file(
    path: str | os.PathLike[str], what: str = "YAML file", *, aliases: bool = False
) -> Any:
    """:func:`~diffresnet_pyg.yaml_files.read_yaml_file`, raising ConfigError."""
    try:
        return yaml_files.read_yaml_file(path, what, aliases=aliases)
    except YAMLFileError as exc:
        raise ConfigError(str(exc)) from None


def load_config(
    path: str | os.PathLike[str], overrides: Sequence[str] = ()
) -> ExperimentConfig:
    r"""Read a YAML config, apply ``KEY=VALUE`` overrides and validate it.

    Relative paths inside the config (``output``, ``dataset.root``) stay
    relative to the current working directory, not to the file.

    An override of ``dataset.path`` that does not also set ``dataset.name``
    runs the config on that file in place of its named dataset (the file's
    ``dataset.name`` and ``dataset.root`` are dropped, and the log says so):
    ``diffresnet-pyg run configs/cora/gcn.yaml dataset.path=my.npz``.

    Args:
        path: The YAML file.
        overrides: Overrides for :func:`parse_overrides`; they win over the
            file, including the ``overrides`` of a sweep's methods
            (``train.max_epochs=50`` also sets it for a method whose
            overrides say 100). Overriding a method's swept ``key`` is an
            error.

    Returns:
        ExperimentConfig: The validated config.

    Raises:
        ConfigError: If the file is missing or unreadable, is not valid YAML,
            is not a mapping at the top level, or the config is invalid.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = Path(tmp) / "cora.yaml"
        ...     _ = path.write_text("output: out\ndataset: {name: cora}\n"
        ...                         "model: {name: gcn}\n")
        ...     cfg = load_config(path, ["train.lr=5e-3"])
        >>> cfg.train.lr
        0.005
    """
    raw = read_yaml(path)
    changes = parse_overrides(overrides)
    raw = merge(_without_named_dataset(raw, changes), changes)
    raw = _overrides_win_in_sweep_methods(raw, changes)
    if raw.get("task") == "fewshot":
        raise ConfigError(
            f"{path}: a few-shot config (task: fewshot); run it with "
            "`diffresnet-pyg fewshot`"
        )
    return config_from_dict(raw)


def _leaves(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a.b": value}`` for every non-mapping value of a nested mapping."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _overrides_win_in_sweep_methods(
    raw: dict[str, Any], changes: Mapping[str, Any]
) -> dict[str, Any]:
    """Apply command-line ``changes`` inside each sweep method's overrides too.

    A method's ``overrides`` are merged after the base config when the sweep
    is expanded, so without this a command-line value would silently lose to
    the method's own.
    """
    sweep = raw.get("sweep")
    if not isinstance(sweep, Mapping) or not isinstance(sweep.get("methods"), list):
        return raw
    given = {k: v for k, v in _leaves(changes).items() if not k.startswith("sweep.")}
    if not given:
        return raw
    methods = []
    for i, method in enumerate(sweep["methods"]):
        if not isinstance(method, Mapping):
            methods.append(method)
            continue
        if method.get("key") in given:
            raise ConfigError(
                f"override '{method['key']}': it is the swept key of "
                f"sweep.methods[{i}] ({method.get('label')!r}); set its values "
                "in the sweep instead"
            )
        own = method.get("overrides")
        if not isinstance(own, Mapping):
            methods.append(method)
            continue
        replaced = {k: v for k, v in given.items() if k in _leaves(own)}
        for key, value in replaced.items():
            logger.info(
                "sweep method %r: %s=%r from the command line replaces its own %r",
                method.get("label"),
                key,
                value,
                _leaves(own)[key],
            )
        update: dict[str, Any] = {}
        for key, value in replaced.items():
            node = update
            *parents, leaf = key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        methods.append({**method, "overrides": merge(dict(own), update)})
    return {**raw, "sweep": {**sweep, "methods": methods}}


def _without_named_dataset(
    raw: dict[str, Any], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """``raw`` without its named dataset if ``overrides`` point at a file."""
    dataset, changes = raw.get("dataset"), overrides.get("dataset")
    if not isinstance(dataset, Mapping) or not isinstance(changes, Mapping):
        return raw
    if changes.get("path") is None or "name" in changes:
        return raw
    dropped = {key: dataset[key] for key in ("name", "root") if key in dataset}
    if any(value is not None for value in dropped.values()):
        logger.info(
            "dataset.path=%s replaces the config's %s",
            changes["path"],
            ", ".join(f"dataset.{k}={v!r}" for k, v in dropped.items()),
        )
    kept = {k: v for k, v in dataset.items() if k not in dropped}
    return {**raw, "dataset": kept}


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a config file's top-level mapping (:func:`read_yaml_file`).

    Raises:
        ConfigError: If the file is missing, unreadable or too large, is not
            valid YAML, holds an anchor or alias or a repeated key, or is not
            a mapping at the top level.
    """
    path = Path(path)
    raw = read_yaml_file(path, "config file")
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{path}: expected a mapping of sections ({', '.join(TOP_LEVEL_KEYS)}) at "
            f"the top level, {describe(raw)}"
        )
    return dict(raw)

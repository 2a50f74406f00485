"""A whole experiment config: sections together, dicts, sweeps, fingerprint."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from diffresnet_pyg.experiments.schema.fields import (
    ConfigError,
    bad_value,
    check_optional,
    check_str,
    merge,
    plain,
    section_from_mapping,
)
from diffresnet_pyg.experiments.schema.model import ModelConfig
from diffresnet_pyg.experiments.schema.sections import (
    DATASET_OPTIONAL_KEYS,
    PUBLIC_SPLIT_FAMILIES,
    DatasetConfig,
    ExecutorConfig,
    SplitConfig,
    TrainConfig,
)
from diffresnet_pyg.experiments.schema.sweep import SweepConfig, slug

TOP_LEVEL_KEYS: tuple[str, ...] = (
    "name",
    "output",
    "dataset",
    "split",
    "model",
    "train",
    "executor",
    "sweep",
)


@dataclass(frozen=True, kw_only=True)
class ExperimentConfig:
    """A whole experiment: what to load, split, train and where to write.

    Attributes:
        dataset: The dataset.
        model: The model; may be :obj:`None` only when :attr:`sweep` is given
            (its methods supply the model; a base model is their default).
        split: The splits and runs per split.
        train: The training.
        output: The results folder; a relative path is relative to the
            current working directory, not to the config file.
        name: An optional free-text name.
        executor: Where the chunks of runs are trained (not part of the
            :func:`fingerprint`).
        sweep: An optional sweep; every (method, value) point is validated
            when the config is built (see :func:`expand_sweep`).

    Example:
        >>> cfg = ExperimentConfig(dataset=DatasetConfig("cora"),
        ...                        model=ModelConfig("gcn"), output="out")
        >>> cfg.split.num_splits, cfg.train.optimizer
        (100, 'adam')
    """

    dataset: DatasetConfig
    model: ModelConfig | None = None
    split: SplitConfig = SplitConfig()
    train: TrainConfig = TrainConfig()
    output: str
    name: str | None = None
    executor: ExecutorConfig = ExecutorConfig()
    sweep: SweepConfig | None = None

    def __post_init__(self) -> None:
        for key, cls in (
            ("dataset", DatasetConfig),
            ("split", SplitConfig),
            ("train", TrainConfig),
            ("executor", ExecutorConfig),
        ):
            if not isinstance(getattr(self, key), cls):
                raise bad_value(key, f"a {cls.__name__}", getattr(self, key))
        if self.model is not None and not isinstance(self.model, ModelConfig):
            raise bad_value("model", "a ModelConfig or None", self.model)
        if self.sweep is not None and not isinstance(self.sweep, SweepConfig):
            raise bad_value("sweep", "a SweepConfig or None", self.sweep)
        check_str()(self.output, "output")
        check_optional(check_str())(self.name, "name")
        if self.model is None and self.sweep is None:
            raise ConfigError(
                "model: required key is missing (only a config with a sweep may "
                "leave it out)"
            )
        scheme = self.split.scheme
        if (
            scheme in ("given", "public")
            and self.dataset.name is not None
            and not self.dataset.name.startswith(PUBLIC_SPLIT_FAMILIES)
        ):
            raise ConfigError(
                f"split.scheme: {scheme!r} needs a dataset with its own split "
                "(planetoid/*, ogb/*, or a file with masks in dataset.path), got "
                f"dataset {self.dataset.name!r}"
            )
        if scheme == "public" and self.dataset.largest_component:
            raise ConfigError(
                "dataset.largest_component: the 'public' split is defined on the "
                "full graph; leave it null (or use split.scheme: given for the "
                "masks restricted to the largest component)"
            )
        if self.sweep is not None:
            expand_sweep(self)  # validates every point


def config_from_dict(raw: Mapping[str, Any]) -> ExperimentConfig:
    """Validate a config given as nested mappings (e.g. parsed YAML).

    Args:
        raw: The top-level mapping (``dataset``, ``model``, ``split``,
            ``train``, ``output``, ``name``, ``sweep``).

    Returns:
        ExperimentConfig: The validated config, defaults filled in.

    Raises:
        ConfigError: For an unknown or missing key or a bad value.

    Example:
        >>> cfg = config_from_dict({"output": "out", "dataset": {"name": "cora"},
        ...                         "model": {"name": "diffresnet_reference"}})
        >>> cfg.model.params["layer_num"], cfg.split.num_splits
        (20, 100)
        >>> config_from_dict({"output": "out", "dataset": {"name": "cora"},
        ...                   "model": {"name": "gcn"}, "epochs": 3})
        Traceback (most recent call last):
        ...
        diffresnet_pyg.experiments.schema.ConfigError: epochs: unknown key; \
allowed: name, output, dataset, split, model, train, executor, sweep
    """
    if not isinstance(raw, Mapping):
        raise bad_value("config", "a mapping of sections", raw)
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(
                f"{key}: unknown key; allowed: {', '.join(TOP_LEVEL_KEYS)}"
            )
    for key in ("dataset", "output"):
        if key not in raw:
            raise ConfigError(f"{key}: required key is missing")
    model = raw.get("model")
    if model is not None:
        if not isinstance(model, Mapping):
            raise bad_value("model", "a mapping (name and parameters)", model)
        if "name" not in model:
            raise ConfigError("model.name: required key is missing")
        params = {k: v for k, v in model.items() if k != "name"}
        model = ModelConfig(model["name"], params)
    sweep = raw.get("sweep")
    if sweep is not None:
        sweep = section_from_mapping(SweepConfig, sweep, "sweep")
    return ExperimentConfig(
        dataset=section_from_mapping(DatasetConfig, raw["dataset"], "dataset"),
        model=model,
        split=section_from_mapping(SplitConfig, raw.get("split"), "split"),
        train=section_from_mapping(TrainConfig, raw.get("train"), "train"),
        executor=section_from_mapping(ExecutorConfig, raw.get("executor"), "executor"),
        output=raw["output"],
        name=raw.get("name"),
        sweep=sweep,
    )


def config_to_dict(config: ExperimentConfig) -> dict[str, Any]:
    """The config as plain dicts, lists and scalars (YAML-safe).

    The model is written flat (``name`` and its parameters); the result
    round-trips through :func:`yaml.safe_dump` and :func:`config_from_dict`.
    The ``dataset`` keys added after the first results were written
    (:data:`~diffresnet_pyg.experiments.schema.sections.DATASET_OPTIONAL_KEYS`:
    ``path``, ``format``, ``largest_component``, ``symmetrize``, ``binarize``,
    ``min_class_size``) and ``train.representation_metrics`` appear only
    when they differ from their default, so
    the ``config.yaml`` and the :func:`fingerprint` of a config that does not
    use them are what they were before they existed. Model parameters added
    likewise (``register_model(added=...)``, e.g. ``input_dropout`` of
    ``diffresnet``) are written under the same rule
    (:meth:`~diffresnet_pyg.experiments.models.ModelSpec.written`).

    Example:
        >>> cfg = config_from_dict({"output": "out", "dataset": {"name": "cora"},
        ...                         "model": {"name": "mlp"}})
        >>> import yaml
        >>> d = config_to_dict(cfg)
        >>> d["model"]
        {'name': 'mlp', 'hidden_channels': 64, 'num_layers': 2, 'dropout': 0.8, \
'input_dropout': 0.0}
        >>> config_from_dict(yaml.safe_load(yaml.safe_dump(d))) == cfg
        True
    """
    model = config.model
    sweep = config.sweep
    dataset = asdict(config.dataset)
    for key in DATASET_OPTIONAL_KEYS:
        if dataset[key] == DatasetConfig.__dataclass_fields__[key].default:
            del dataset[key]
    train = plain(asdict(config.train))
    if not train["representation_metrics"]:
        del train["representation_metrics"]
    return {
        "name": config.name,
        "output": config.output,
        "dataset": dataset,
        "split": asdict(config.split),
        "model": None
        if model is None
        else {"name": model.name, **model.spec.written(model.params)},
        "train": train,
        "executor": asdict(config.executor),
        "sweep": None
        if sweep is None
        else {
            "axis": sweep.axis,
            "values": list(sweep.values),
            "methods": [
                {
                    "label": m.label,
                    "key": m.key,
                    "overrides": plain(m.overrides),
                    "values": None if m.values is None else list(m.values),
                }
                for m in sweep.methods
            ],
        },
    }


def expand_sweep(
    config: ExperimentConfig,
) -> list[tuple[str, int | float, ExperimentConfig]]:
    """Every point of the sweep as its own validated config, in order.

    For each method and each of its values (the method's own or the sweep's):
    the base config without ``sweep``, merged with the method's overrides (a
    different ``model.name`` starts from that model's defaults), with
    ``key=value`` set and ``output`` set to
    ``<output>/<slug(label)>/<axis>_<value>``.

    Args:
        config: A config with a sweep.

    Returns:
        list[tuple[str, int | float, ExperimentConfig]]: ``(label, value,
        config)`` per point.

    Raises:
        ConfigError: If the config has no sweep, or a point is invalid (the
            message starts with ``sweep.methods[i]``).

    Example:
        >>> cfg = config_from_dict({
        ...     "output": "out", "dataset": {"name": "cora"},
        ...     "model": {"name": "diffresnet_reference"},
        ...     "sweep": {"values": [0, 10], "methods": [
        ...         {"label": "Diff-ResNet", "key": "model.layer_num"},
        ...         {"label": "GCN", "key": "model.num_layers", "values": [2],
        ...          "overrides": {"model": {"name": "gcn"}}}]}})
        >>> [(label, v, c.output) for label, v, c in expand_sweep(cfg)]
        [('Diff-ResNet', 0, 'out/diff-resnet/depth_0'), ('Diff-ResNet', 10, \
'out/diff-resnet/depth_10'), ('GCN', 2, 'out/gcn/depth_2')]
    """
    sweep = config.sweep
    if sweep is None:
        raise ConfigError("sweep: the config has no sweep to expand")
    base = config_to_dict(config)
    del base["sweep"]
    points = []
    for i, method in enumerate(sweep.methods):
        start = base
        new_model = method.overrides.get("model", {}).get("name")
        if new_model is not None and (
            config.model is None or new_model != config.model.name
        ):
            start = {**base, "model": None}
        method_base = merge(start, method.overrides)
        for value in sweep.values if method.values is None else method.values:
            section, name = method.key.split(".")
            raw = merge(method_base, {section: {name: value}})
            raw["output"] = f"{config.output}/{slug(method.label)}/{sweep.axis}_{value}"
            try:
                point = config_from_dict(raw)
            except ConfigError as exc:
                raise ConfigError(
                    f"sweep.methods[{i}] ({method.label!r}, {method.key}={value}): "
                    f"{exc}"
                ) from None
            points.append((method.label, value, point))
    return points


def fingerprint(config: ExperimentConfig) -> str:
    """A stable SHA-256 of everything that defines the runs' results.

    Left out: ``output``, ``name``, ``dataset.root`` (where the files are,
    not which data; ``dataset.path`` is kept as given: it names the data),
    the optional ``dataset`` keys while at their default (see
    :func:`config_to_dict`), ``dataset.edge_weights`` while ``"use"`` (the
    behaviour of configs written before it existed on their unweighted
    graphs), ``train.batch_members``, ``train.device``,
    ``train.representation_metrics`` (extra row fields, not results) and the
    ``executor`` section (speed, not results). Used to refuse a results folder
    written for a different config.

    Example:
        >>> import dataclasses
        >>> cfg = config_from_dict({"output": "a", "dataset": {"name": "cora"},
        ...                         "model": {"name": "gcn"}})
        >>> fingerprint(cfg) == fingerprint(dataclasses.replace(cfg, output="b"))
        True
        >>> len(fingerprint(cfg))
        64
    """
    data = config_to_dict(config)
    for key in ("output", "name"):
        del data[key]
    del data["dataset"]["root"]
    if data["dataset"].get("edge_weights") == "use":
        del data["dataset"]["edge_weights"]
    for key in ("batch_members", "device"):
        del data["train"][key]
    data["train"].pop("representation_metrics", None)
    del data["executor"]
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

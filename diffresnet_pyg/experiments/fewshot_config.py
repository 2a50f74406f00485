"""The few-shot experiment config: a typed, validated schema read from YAML.

A few-shot config is told apart from a graph config by ``task: fewshot``:

.. code-block:: yaml

    task: fewshot
    name: omniglot-5way-1shot
    output: results/fewshot/omniglot_1shot
    features: {source: omniglot_conv4}            # FeaturesConfig
    episodes: {way: 5, shot: 1, query: 15, num_episodes: 10000, seed: 1}
    preprocess: {center: true, normalize: true, shift: true}
    methods:                                        # MethodConfig, in order
      - {label: Nearest prototype, name: nearest_prototype}
      - {label: LaplacianShot, name: laplacian_shot, knn: 3, lam: 0.5}
      - {label: Convection, name: episode_net, layer_num: 0}
      - {label: External, name: episode_net, layer_num: 0, mu: 0.01}
      - {label: Diff-ResNet, name: episode_net, layer_num: 6, step_size: 0.5}
    sweep: {method: Diff-ResNet, key: n_top, values: [4, 8, 16]}   # optional

Every method is scored on the same episodes. Validation follows the graph
config's rules (:mod:`diffresnet_pyg.experiments.schema`): unknown keys and bad
values are errors naming the dotted key and what is allowed; ``KEY=VALUE``
overrides (``episodes.num_episodes=100``) are merged before validation.

Example:
    >>> cfg = fewshot_config_from_dict({
    ...     "task": "fewshot", "output": "out",
    ...     "features": {"source": "omniglot_conv4"},
    ...     "methods": [{"label": "Diff-ResNet", "name": "episode_net"}],
    ...     "sweep": {"method": "Diff-ResNet", "key": "n_top", "values": [4, 8]},
    ... })
    >>> [m.label for m in expand_methods(cfg)]
    ['Diff-ResNet', 'Diff-ResNet (n_top=4)', 'Diff-ResNet (n_top=8)']
    >>> fewshot_config_from_dict({"task": "fewshot", "output": "out",
    ...     "features": {"source": "file"}, "methods": []})
    Traceback (most recent call last):
    ...
    diffresnet_pyg.experiments.schema.ConfigError: features.path: required for \
source 'file' (a .pkl/.pickle or .npz feature file of the test classes)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from diffresnet_pyg.experiments.schema import (
    merge,
    parse_overrides,
    read_yaml,
    slug,
)
from diffresnet_pyg.experiments.schema.fields import (
    POSITIVE_FLOAT,
    POSITIVE_INT,
    ConfigError,
    Section,
    bad_value,
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_optional,
    check_str,
    check_values,
    section_from_mapping,
    validated_field,
)

__all__ = [
    "EPISODE_NET_DEFAULTS",
    "FEATURE_SOURCES",
    "METHOD_NAMES",
    "EpisodesConfig",
    "FeaturesConfig",
    "FewShotConfig",
    "FewShotSweep",
    "MethodConfig",
    "PreprocessConfig",
    "expand_methods",
    "fewshot_config_from_dict",
    "fewshot_config_to_dict",
    "load_fewshot_config",
]

#: Where episode features come from: a Conv-4 trained here on Omniglot's
#: background classes, the frozen ImageNet EfficientNet-Lite0 on
#: Fashion-MNIST, or precomputed feature files (miniImageNet, ...).
FEATURE_SOURCES: tuple[str, ...] = (
    "omniglot_conv4",
    "fashion_mnist_efficientnet",
    "file",
)

#: Episode pools: sampled N-way K-shot episodes, or Lake et al.'s 20 official
#: Omniglot 20-way 1-shot runs (image sources only).
EPISODE_SOURCES: tuple[str, ...] = ("sampled", "omniglot_runs")

#: Classes the episodes are drawn from: ``"test"`` (novel classes) or
#: ``"val"`` (validation classes, for choosing hyperparameters).
EPISODE_CLASSES: tuple[str, ...] = ("test", "val")


@dataclass(frozen=True)
class FeaturesConfig(Section):
    """The ``features`` section: which features the episodes are built from.

    Attributes:
        source: One of :data:`FEATURE_SOURCES`.
        root: Dataset root (see :func:`~diffresnet_pyg.data.resolve_root`);
            Omniglot is read from ``<root>/omniglot``.
        cache: Folder for backbone checkpoints and extracted features (in
            its ``fewshot`` sub-folder); :obj:`None` is
            :func:`~diffresnet_pyg.data.resolve_cache`'s default, never the
            data root.
        path: ``file``: the feature file of the test classes.
        val_path: ``file``: the feature file of the validation classes.
        base_path: ``file``: the feature file of the base classes, whose mean
            centres the features (needed when ``preprocess.center``).
        val_classes: ``omniglot_conv4``: how many of the 964 background
            classes are held out of backbone training as validation classes
            (the last ones).
        backbone_epochs: ``omniglot_conv4``: training epochs of the Conv-4.
        backbone_seed: ``omniglot_conv4``: seed of its training.
        backbone_lr: ``omniglot_conv4``: Adam learning rate of its training
            (batches of 128).
        image_size: ``fashion_mnist_efficientnet``: input size of the
            EfficientNet (images are resized to it).
        image_limit: ``fashion_mnist_efficientnet``: use at most this many
            images per split (first ones); :obj:`None` uses all.
        pca_dim: Project all features onto the top ``pca_dim`` principal
            axes of the base-class features (fitted on them only);
            :obj:`None` keeps the backbone's features. The episode network
            is ``d x d``, so this bounds its cost for wide backbones.
    """

    _key = "features"

    source: str = validated_field(check_choice(FEATURE_SOURCES))
    root: str | None = validated_field(check_optional(check_str()), None)
    cache: str | None = validated_field(check_optional(check_str()), None)
    path: str | None = validated_field(check_optional(check_str()), None)
    val_path: str | None = validated_field(check_optional(check_str()), None)
    base_path: str | None = validated_field(check_optional(check_str()), None)
    val_classes: int = validated_field(check_int(minimum=5, maximum=900), 100)
    backbone_epochs: int = validated_field(POSITIVE_INT, 10)
    backbone_seed: int = validated_field(check_int(minimum=0), 0)
    backbone_lr: float = validated_field(POSITIVE_FLOAT, 1e-3)
    image_size: int = validated_field(check_int(minimum=32, maximum=512), 224)
    image_limit: int | None = validated_field(check_optional(POSITIVE_INT), None)
    pca_dim: int | None = validated_field(check_optional(POSITIVE_INT), None)

    def _check_together(self) -> None:
        if self.source == "file" and self.path is None:
            raise ConfigError(
                "features.path: required for source 'file' (a .pkl/.pickle or "
                ".npz feature file of the test classes)"
            )
        if self.source != "file":
            for key in ("path", "val_path", "base_path"):
                if getattr(self, key) is not None:
                    raise ConfigError(
                        f"features.{key}: only for source 'file', not {self.source!r}"
                    )


@dataclass(frozen=True)
class EpisodesConfig(Section):
    """The ``episodes`` section: which episodes every method is scored on.

    Attributes:
        source: One of :data:`EPISODE_SOURCES`.
        classes: One of :data:`EPISODE_CLASSES`.
        way: Classes per episode (N).
        shot: Labelled support samples per class (K).
        query: Query samples per class.
        num_episodes: Number of episodes (``sampled``).
        seed: Seed of the episode sampler (a :class:`torch.Generator`).
        chunk_size: Episodes processed together (batched) and written
            together; the unit of resumption.
    """

    _key = "episodes"

    source: str = validated_field(check_choice(EPISODE_SOURCES), "sampled")
    classes: str = validated_field(check_choice(EPISODE_CLASSES), "test")
    way: int = validated_field(check_int(minimum=2), 5)
    shot: int = validated_field(POSITIVE_INT, 1)
    query: int = validated_field(POSITIVE_INT, 15)
    num_episodes: int = validated_field(POSITIVE_INT, 10000)
    seed: int = validated_field(check_int(minimum=0), 1)
    chunk_size: int = validated_field(POSITIVE_INT, 100)

    def _check_together(self) -> None:
        if self.source == "omniglot_runs" and (
            self.way,
            self.shot,
            self.query,
        ) != (20, 1, 1):
            raise ConfigError(
                "episodes.source: 'omniglot_runs' are 20-way 1-shot with 1 query "
                "per class; set way: 20, shot: 1, query: 1"
            )


@dataclass(frozen=True)
class PreprocessConfig(Section):
    """The ``preprocess`` section: the authors' per-episode feature steps.

    Attributes:
        center: Subtract the base-class mean feature.
        normalize: Divide every feature vector by its L2 norm.
        shift: Shift the queries by (support mean - query mean).
    """

    _key = "preprocess"

    center: bool = validated_field(check_bool, True)
    normalize: bool = validated_field(check_bool, True)
    shift: bool = validated_field(check_bool, True)


def _milestones(value: Any, key: str) -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value
    ):
        raise bad_value(key, "a list of increasing ints >= 1", value)
    if any(b <= a for a, b in zip(value, value[1:], strict=False)):
        raise bad_value(key, "a list of increasing ints >= 1", value)
    return tuple(value)


@dataclass(frozen=True)
class _MethodParams(Section):
    _key: ClassVar[str] = "methods[].params"


@dataclass(frozen=True)
class _NoParams(_MethodParams):
    pass


@dataclass(frozen=True)
class _LaplacianShotParams(_MethodParams):
    knn: int = validated_field(check_int(minimum=2), 3)
    lam: float = validated_field(check_float(ge=0.0), 0.5)
    max_iter: int = validated_field(POSITIVE_INT, 20)


@dataclass(frozen=True)
class _EpisodeNetParams(_MethodParams):
    layer_num: int = validated_field(check_int(minimum=0), 6)
    step_size: float = validated_field(POSITIVE_FLOAT, 0.5)
    n_top: int = validated_field(check_int(minimum=2), 8)
    sigma: int = validated_field(check_int(minimum=2), 4)
    mu: float = validated_field(check_float(ge=0.0), 0.0)
    epochs: int = validated_field(POSITIVE_INT, 100)
    lr: float = validated_field(POSITIVE_FLOAT, 0.1)
    momentum: float = validated_field(check_float(ge=0.0, lt=1.0), 0.9)
    weight_decay: float = validated_field(check_float(ge=0.0), 1e-4)
    milestones: tuple[int, ...] = validated_field(_milestones, (50, 75))
    gamma: float = validated_field(POSITIVE_FLOAT, 0.1)


_METHOD_PARAMS: dict[str, type[_MethodParams]] = {
    "nearest_prototype": _NoParams,
    "laplacian_shot": _LaplacianShotParams,
    "episode_net": _EpisodeNetParams,
}

#: Method names of :class:`MethodConfig`: nearest prototype (SimpleShot),
#: LaplacianShot, and the per-episode residual network (convection with
#: ``layer_num: 0``, external convection-diffusion with ``mu > 0``, internal =
#: Diff-ResNet with ``layer_num > 0``).
METHOD_NAMES: tuple[str, ...] = tuple(_METHOD_PARAMS)

#: The episode network's defaults (the authors' training recipe).
EPISODE_NET_DEFAULTS: dict[str, Any] = asdict(_EpisodeNetParams())


@dataclass(frozen=True)
class MethodConfig:
    """One entry of ``methods``: a label, a method name and its parameters.

    Attributes:
        label: Unique, non-empty label (the table row).
        name: One of :data:`METHOD_NAMES`.
        params: The method's parameters, defaults filled in.
    """

    label: str
    name: str
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        key = f"methods[{self.label!r}]"
        check_str()(self.label, "methods[].label")
        name = check_choice(METHOD_NAMES)(self.name, f"{key}.name")
        cls = _METHOD_PARAMS[name]
        allowed = [f.name for f in fields(cls)]
        for param in self.params:
            if param not in allowed:
                raise ConfigError(
                    f"{key}.{param}: unknown parameter of {name}; allowed: "
                    + (", ".join(allowed) or "none")
                )
        params_key = f"{key}"
        try:
            checked = cls(**self.params)
        except ConfigError as exc:
            raise ConfigError(
                str(exc).replace("methods[].params", params_key)
            ) from None
        object.__setattr__(self, "params", asdict(checked))


@dataclass(frozen=True)
class FewShotSweep(Section):
    """The ``sweep`` section: one method's parameter over several values.

    Each value adds a method labelled ``"<method> (<key>=<value>)"``, scored
    on the same episodes; the report plots accuracy against the values.

    Attributes:
        method: The label of an ``episode_net`` or ``laplacian_shot`` method.
        key: One of its parameters (e.g. ``n_top``, ``layer_num``, ``mu``).
        values: The values (numbers).
        scale_with: Optional second parameter set to ``total / value`` for
            each value (e.g. ``key: step_size, scale_with: layer_num`` keeps
            ``step_size * layer_num`` at ``total``).
        total: The product kept fixed with ``scale_with``.
    """

    _key = "sweep"

    method: str = validated_field(check_str())
    key: str = validated_field(check_str())
    values: tuple[int | float, ...] = validated_field(check_values)
    scale_with: str | None = validated_field(check_optional(check_str()), None)
    total: float | None = validated_field(check_optional(POSITIVE_FLOAT), None)

    def _check_together(self) -> None:
        if (self.scale_with is None) != (self.total is None):
            raise ConfigError("sweep.total: give both scale_with and total, or neither")


_TOP_LEVEL = (
    "task",
    "name",
    "output",
    "features",
    "episodes",
    "preprocess",
    "methods",
    "sweep",
)


@dataclass(frozen=True)
class FewShotConfig:
    """A validated few-shot experiment (see the module docstring).

    Attributes:
        output: The results folder.
        features: Where the features come from.
        episodes: The episodes.
        preprocess: The per-episode feature steps.
        methods: The methods, in table order.
        name: Optional free-text name.
        sweep: Optional parameter sweep of one method.
    """

    output: str
    features: FeaturesConfig
    methods: tuple[MethodConfig, ...]
    episodes: EpisodesConfig = EpisodesConfig()
    preprocess: PreprocessConfig = PreprocessConfig()
    name: str | None = None
    sweep: FewShotSweep | None = None

    def __post_init__(self) -> None:
        check_str()(self.output, "output")
        check_optional(check_str())(self.name, "name")
        if self.features.source == "file" and self.episodes.source != "sampled":
            raise ConfigError(
                "episodes.source: 'omniglot_runs' needs features.source "
                "'omniglot_conv4' or 'fashion_mnist_efficientnet' (images)"
            )
        if self.episodes.source == "omniglot_runs" and self.episodes.classes != "test":
            raise ConfigError("episodes.classes: the official runs are test episodes")
        if (
            self.features.source == "file"
            and self.episodes.classes == "val"
            and self.features.val_path is None
        ):
            raise ConfigError(
                "features.val_path: required for episodes.classes 'val' with "
                "source 'file'"
            )
        if (
            self.features.source == "file"
            and self.preprocess.center
            and self.features.base_path is None
        ):
            raise ConfigError(
                "features.base_path: required when preprocess.center is true "
                "(the base-class mean); or set preprocess.center: false"
            )
        expand_methods(self)  # validates labels and the sweep


def expand_methods(config: FewShotConfig) -> list[MethodConfig]:
    """The config's methods followed by the sweep's, all validated.

    Raises:
        ConfigError: If there are no methods, labels repeat (also after
            :func:`~diffresnet_pyg.experiments.schema.slug`), or the sweep
            names an unknown method or parameter.
    """
    methods = list(config.methods)
    if not methods:
        raise ConfigError("methods: expected at least one method")
    sweep = config.sweep
    if sweep is not None:
        by_label = {m.label: m for m in methods}
        if sweep.method not in by_label:
            raise ConfigError(
                f"sweep.method: expected one of the method labels "
                f"{', '.join(repr(lb) for lb in by_label)}, got {sweep.method!r}"
            )
        base = by_label[sweep.method]
        for key in (sweep.key, sweep.scale_with):
            if key is not None and key not in base.params:
                raise ConfigError(
                    f"sweep: {key!r} is not a parameter of {base.name}; allowed: "
                    + (", ".join(base.params) or "none")
                )
        for value in sweep.values:
            params = {**base.params, sweep.key: value}
            if sweep.scale_with is not None:
                other = sweep.total / value
                kind = type(base.params[sweep.scale_with])
                if kind is int:
                    if abs(other - round(other)) > 1e-9:
                        raise ConfigError(
                            f"sweep.values: {sweep.total:g} / {value} is not an int "
                            f"(needed for {sweep.scale_with})"
                        )
                    other = round(other)
                params[sweep.scale_with] = other
            methods.append(
                MethodConfig(f"{base.label} ({sweep.key}={value:g})", base.name, params)
            )
    seen: dict[str, str] = {}
    for m in methods:
        if slug(m.label) in seen:
            raise ConfigError(
                f"methods: labels {seen[slug(m.label)]!r} and {m.label!r} repeat"
            )
        seen[slug(m.label)] = m.label
    return methods


def fewshot_config_from_dict(raw: Mapping[str, Any]) -> FewShotConfig:
    """Validate a few-shot config given as nested mappings (e.g. parsed YAML).

    Raises:
        ConfigError: For an unknown or missing key or a bad value.
    """
    if not isinstance(raw, Mapping):
        raise bad_value("config", "a mapping of sections", raw)
    for key in raw:
        if key not in _TOP_LEVEL:
            raise ConfigError(f"{key}: unknown key; allowed: {', '.join(_TOP_LEVEL)}")
    if raw.get("task") != "fewshot":
        raise bad_value("task", "'fewshot'", raw.get("task"))
    for key in ("output", "features", "methods"):
        if key not in raw:
            raise ConfigError(f"{key}: required key is missing")
    methods_raw = raw["methods"]
    if not isinstance(methods_raw, list):
        raise bad_value("methods", "a list of methods", methods_raw)
    methods = []
    for i, entry in enumerate(methods_raw):
        if not isinstance(entry, Mapping):
            raise bad_value(
                f"methods[{i}]", "a mapping (label, name, parameters)", entry
            )
        for key in ("label", "name"):
            if key not in entry:
                raise ConfigError(f"methods[{i}].{key}: required key is missing")
        params = {k: v for k, v in entry.items() if k not in ("label", "name")}
        methods.append(MethodConfig(entry["label"], entry["name"], params))
    sweep = raw.get("sweep")
    return FewShotConfig(
        output=raw["output"],
        name=raw.get("name"),
        features=section_from_mapping(FeaturesConfig, raw["features"], "features"),
        episodes=section_from_mapping(EpisodesConfig, raw.get("episodes"), "episodes"),
        preprocess=section_from_mapping(
            PreprocessConfig, raw.get("preprocess"), "preprocess"
        ),
        methods=tuple(methods),
        sweep=None
        if sweep is None
        else section_from_mapping(FewShotSweep, sweep, "sweep"),
    )


def fewshot_config_to_dict(config: FewShotConfig) -> dict[str, Any]:
    """The config as plain YAML-safe data; round-trips through the loader.

    Example:
        >>> cfg = fewshot_config_from_dict({"task": "fewshot", "output": "o",
        ...     "features": {"source": "omniglot_conv4"},
        ...     "methods": [{"label": "NP", "name": "nearest_prototype"}]})
        >>> fewshot_config_from_dict(fewshot_config_to_dict(cfg)) == cfg
        True
    """

    def plain(value: Any) -> Any:
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, Mapping):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {
        "task": "fewshot",
        "name": config.name,
        "output": config.output,
        "features": plain(asdict(config.features)),
        "episodes": asdict(config.episodes),
        "preprocess": asdict(config.preprocess),
        "methods": [
            {"label": m.label, "name": m.name, **plain(dict(m.params))}
            for m in config.methods
        ],
        "sweep": None if config.sweep is None else plain(asdict(config.sweep)),
    }


def load_fewshot_config(
    path: str | os.PathLike[str], overrides: Sequence[str] = ()
) -> FewShotConfig:
    """Read a few-shot YAML config, apply ``KEY=VALUE`` overrides, validate.

    Raises:
        ConfigError: If the file cannot be read or the config is invalid.
    """
    return fewshot_config_from_dict(merge(read_yaml(path), parse_overrides(overrides)))

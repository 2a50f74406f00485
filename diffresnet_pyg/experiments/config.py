"""The experiment config: a typed, validated schema read from YAML.

A YAML file is the single source of truth of an experiment. It has these
top-level keys (sections), each checked against a frozen dataclass:

.. code-block:: yaml

    name: cora-reference          # optional, free text
    output: results/cora          # required: the results folder
    dataset: {name: cora}         # DatasetConfig
    split: {num_splits: 5, num_inits: 4}         # SplitConfig (optional)
    model: {name: diffresnet_reference, layer_num: 20}  # ModelConfig
    train: {lr: 0.01, weight_decay: 5e-4}        # TrainConfig (optional)
    executor: {kind: processes, workers: 2}      # ExecutorConfig (optional)
    sweep: ...                    # SweepConfig (optional)

Relative paths (``output``, ``dataset.root``) are relative to the current
working directory, *not* to the folder of the config file.

Validation is strict: an unknown key is an error naming the key and the
allowed ones, and a bad value is an error naming the dotted key, the value and
what is allowed. Nothing is coerced silently, with two exceptions for float
fields: an int is accepted (``lr: 1``), and so is a string that parses as a
float, because PyYAML reads ``5e-4`` (no dot) as a string. A YAML section that
is present but empty (``train:``) means all defaults. Duplicate keys in a YAML
mapping are errors too.

Model parameters are written flat next to the model's name
(``model: {name: gcn, hidden_channels: 64}``) and validated against the
model's parameter dataclass (:data:`MODEL_PARAMS`); :attr:`ModelConfig.params`
holds all of them, defaults filled in.

Command-line overrides (:func:`parse_overrides`) are dotted
``KEY=VALUE`` strings merged onto the YAML before validation
(``train.lr=0.005``, ``model.layer_num=10``, ``split.num_splits=1``).

Example:
    >>> cfg = config_from_dict({
    ...     "output": "results/cora",
    ...     "dataset": {"name": "Cora"},
    ...     "model": {"name": "gcn", "dropout": 0.5},
    ...     "train": {"weight_decay": "5e-4"},
    ... })
    >>> cfg.dataset.name, cfg.model.params["hidden_channels"], cfg.train.weight_decay
    ('cora', 64, 0.0005)
    >>> config_from_dict({"output": "out", "dataset": {"name": "cora"},
    ...                   "model": {"name": "gcn", "dropout": 1.5}})
    Traceback (most recent call last):
    ...
    diffresnet_pyg.experiments.config.ConfigError: model.dropout: expected a float \
>= 0 and < 1, got 1.5 (float)
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import yaml

from diffresnet_pyg.data import DATASET_NAMES
from diffresnet_pyg.nn import LAPLACIANS

__all__ = [
    "WEIGHT_DECAY_SCOPES",
    "BATCHING_METHODS",
    "EARLY_STOPPING_RULES",
    "EXECUTOR_KINDS",
    "GRAND_METHODS",
    "MODEL_NAMES",
    "MODEL_PARAMS",
    "OPTIMIZER_NAMES",
    "SPLIT_SCHEMES",
    "ConfigError",
    "BatchingConfig",
    "DatasetConfig",
    "DiffResNetParams",
    "DiffResNetReferenceParams",
    "ExecutorConfig",
    "ExperimentConfig",
    "GATParams",
    "GCNParams",
    "GRANDParams",
    "MLPParams",
    "ModelConfig",
    "SAGEParams",
    "SplitConfig",
    "SweepConfig",
    "SweepMethod",
    "TrainConfig",
    "config_from_dict",
    "config_to_dict",
    "expand_sweep",
    "fingerprint",
    "load_config",
    "merge",
    "parse_overrides",
    "read_yaml",
    "slug",
]


class ConfigError(ValueError):
    """An invalid experiment config; the message starts with the dotted key.

    Example:
        >>> try:
        ...     TrainConfig(lr=-1)
        ... except ConfigError as exc:
        ...     print(exc)
        train.lr: expected a float > 0, got -1 (int)
    """


# --------------------------------------------------------------------------
# Field validators: ``check(value, key) -> normalized value`` or ConfigError.
# --------------------------------------------------------------------------

_Check = Callable[[Any, str], Any]


def _got(value: Any) -> str:
    return f"got {value!r} ({type(value).__name__})"


def _bad(key: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"{key}: expected {expected}, {_got(value)}")


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise _bad(key, "true or false", value)
    return value


def _int(minimum: int | None = None, maximum: int | None = None) -> _Check:
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
            raise _bad(key, expected, value)
        return value

    return check


def _int_choice(choices: tuple[int, ...]) -> _Check:
    expected = " or ".join(str(c) for c in choices)

    def check(value: Any, key: str) -> int:
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value not in choices
        ):
            raise _bad(key, expected, value)
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


def _float(
    gt: float | None = None, ge: float | None = None, lt: float | None = None
) -> _Check:
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
            raise _bad(key, expected, value)
        return number

    return check


def _number(value: Any, key: str) -> int | float:
    """An int (kept) or a float (a float string becomes a float)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _as_float(value)
    if number is None:
        raise _bad(key, "a number", value)
    return number


def _str(pattern: str | None = None, expected: str = "a non-empty string") -> _Check:
    def check(value: Any, key: str) -> str:
        if (
            not isinstance(value, str)
            or not value.strip()
            or (pattern is not None and re.fullmatch(pattern, value) is None)
        ):
            raise _bad(key, expected, value)
        return value

    return check


def _choice(choices: Sequence[str]) -> _Check:
    expected = "one of " + ", ".join(repr(c) for c in choices)

    def check(value: Any, key: str) -> str:
        if not isinstance(value, str) or value not in choices:
            raise _bad(key, expected, value)
        return value

    return check


def _optional(inner: _Check) -> _Check:
    def check(value: Any, key: str) -> Any:
        return None if value is None else inner(value, key)

    return check


def _dataset_name(value: Any, key: str) -> str:
    """A name :func:`~diffresnet_pyg.data.load_dataset` accepts, canonical."""
    if isinstance(value, str):
        name = value.strip().lower()
        name = name.removeprefix("gnnbench/")
        if name.startswith("ogbn-"):
            name = f"ogb/{name}"
        if name in {n.lower() for n in DATASET_NAMES}:
            return name
    raise _bad(key, "one of " + ", ".join(DATASET_NAMES), value)


_POSITIVE_INT = _int(minimum=1)
_POSITIVE_FLOAT = _float(gt=0.0)
_DROPOUT = _float(ge=0.0, lt=1.0)


def _field(
    check: _Check, default: Any = MISSING, factory: Callable[[], Any] | None = None
) -> Any:
    """A dataclass field validated by ``check`` (no default: required)."""
    if factory is not None:
        return field(default_factory=factory, metadata={"check": check})
    return field(default=default, metadata={"check": check})


def _checked_fields(obj: Any, prefix: str) -> dict[str, Any]:
    """The fields of dataclass ``obj``, each validated by its ``check``."""
    values = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        check = f.metadata.get("check")
        values[f.name] = value if check is None else check(value, f"{prefix}.{f.name}")
    return values


class _Section:
    """Validates (and normalizes) the fields of a frozen section dataclass."""

    _key: ClassVar[str]  # the dotted key of the section, for error messages

    def __post_init__(self) -> None:
        for name, value in _checked_fields(self, self._key).items():
            object.__setattr__(self, name, value)
        self._check_together()

    def _check_together(self) -> None:
        """Checks that involve several fields (none by default)."""


def _from_mapping(cls: type[Any], raw: Any, key: str) -> Any:
    """Build dataclass ``cls`` from mapping ``raw``; unknown keys are errors."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise _bad(key, "a mapping", raw)
    names = [f.name for f in fields(cls)]
    for name in raw:
        if name not in names:
            raise ConfigError(f"{key}.{name}: unknown key; allowed: {', '.join(names)}")
    for f in fields(cls):
        required = f.default is MISSING and f.default_factory is MISSING
        if required and f.name not in raw:
            raise ConfigError(f"{key}.{f.name}: required key is missing")
    return cls(**raw)


# --------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetConfig(_Section):
    """The ``dataset`` section: arguments of :func:`~diffresnet_pyg.data.load_dataset`.

    Attributes:
        name: A name of :data:`~diffresnet_pyg.data.DATASET_NAMES`, matched
            case-insensitively (``gnnbench/<name>`` and ``ogbn-*`` work as in
            ``load_dataset``); stored lowercased in canonical form
            (``"cora"``, ``"planetoid/cora"``, ``"ogb/ogbn-arxiv"``).
        root: The dataset root; :obj:`None` is the library default (see
            :func:`~diffresnet_pyg.data.resolve_root`). A relative path is
            relative to the current working directory.
        standardize: Apply gnn-benchmark's standardization (largest connected
            component, ...).
        normalize_features: Divide feature rows by their sums.

    Example:
        >>> DatasetConfig("gnnbench/Cora").name
        'cora'
    """

    _key = "dataset"

    name: str = _field(_dataset_name)
    root: str | None = _field(_optional(_str()), None)
    standardize: bool = _field(_bool, True)
    normalize_features: bool = _field(_bool, True)


#: Split schemes of :class:`SplitConfig`.
SPLIT_SCHEMES: tuple[str, ...] = ("per_class", "public")

#: Dataset families loaded with their own train/val/test masks.
_PUBLIC_SPLIT_FAMILIES: tuple[str, ...] = ("planetoid/", "ogb/")


@dataclass(frozen=True)
class SplitConfig(_Section):
    """The ``split`` section: which train/validation/test splits, how many runs.

    Attributes:
        scheme: ``"per_class"``: the authors' random per-class splits
            (:func:`~diffresnet_pyg.data.protocol_splits`); ``"public"``: the
            dataset's own masks (Planetoid and OGB datasets), one split.
        master_seed: The seed that draws the split seeds.
        num_splits: Number of splits (1 for ``"public"``).
        num_inits: Weight initializations per split.
        train_per_class: Training nodes per class (``"per_class"`` only).
        val_per_class: Validation nodes per class (``"per_class"`` only).

    Example:
        >>> SplitConfig(num_splits=5).num_inits
        20
        >>> SplitConfig(scheme="public")
        Traceback (most recent call last):
        ...
        diffresnet_pyg.experiments.config.ConfigError: split.num_splits: must \
be 1 for scheme 'public' (the dataset's own split), got 100
    """

    _key = "split"

    scheme: str = _field(_choice(SPLIT_SCHEMES), "per_class")
    master_seed: int = _field(_int(minimum=0, maximum=2**32 - 1), 42)
    num_splits: int = _field(_POSITIVE_INT, 100)
    num_inits: int = _field(_POSITIVE_INT, 20)
    train_per_class: int = _field(_POSITIVE_INT, 20)
    val_per_class: int = _field(_POSITIVE_INT, 30)

    def _check_together(self) -> None:
        if self.scheme == "public" and self.num_splits != 1:
            raise ConfigError(
                "split.num_splits: must be 1 for scheme 'public' (the dataset's "
                f"own split), got {self.num_splits}"
            )


#: Mini-batching methods of :class:`BatchingConfig`.
BATCHING_METHODS: tuple[str, ...] = ("full", "random_partition", "cluster", "neighbor")

#: Fields of :class:`BatchingConfig` and the methods that use them.
_BATCHING_USERS: dict[str, tuple[str, ...]] = {
    "num_parts": ("random_partition", "cluster"),
    "parts_per_batch": ("random_partition", "cluster"),
    "resample": ("random_partition",),
    "knn": ("random_partition",),
    "num_neighbors": ("neighbor",),
    "batch_size": ("neighbor",),
    "seed": ("random_partition", "cluster", "neighbor"),
}


def _num_neighbors(value: Any, key: str) -> tuple[int, ...]:
    expected = "a non-empty list of ints >= 1 or -1 (all neighbours), one per hop"
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or not value:
        raise _bad(key, expected, value)
    for i, hop in enumerate(value):
        if isinstance(hop, bool) or not isinstance(hop, int) or (hop < 1 and hop != -1):
            raise _bad(f"{key}[{i}]", "an int >= 1 or -1 (all neighbours)", hop)
    return tuple(value)


@dataclass(frozen=True)
class BatchingConfig(_Section):
    """The ``train.batching`` section: full-batch or mini-batch training.

    Mini-batch training (:mod:`~diffresnet_pyg.experiments.minibatch`) takes
    one optimizer step per batch, each member on its own training nodes in
    the batch; every graph normalization (the diffusion Laplacian included)
    is recomputed on the batch's subgraph; validation and test are evaluated
    on the whole graph. A field that the method does not use must keep its
    default.

    Attributes:
        method: ``"full"`` (one full-batch step per epoch), ``"random_partition"``
            (random node parts, induced subgraphs; pure PyTorch),
            ``"cluster"`` (METIS parts, Cluster-GCN; needs ``pyg-lib`` or
            ``torch-sparse``) or ``"neighbor"`` (neighbour sampling around the
            training nodes, loss on the seed nodes; needs ``pyg-lib`` or
            ``torch-sparse``).
        num_parts: Parts per epoch, >= 1 (random_partition, cluster).
        parts_per_batch: Parts joined into one batch, 1 to ``num_parts``
            (random_partition, cluster).
        resample: Draw a new random partition every epoch, else once
            (random_partition).
        knn: Give each batch the undirected kNN graph of its features
            (k >= 1) instead of its induced subgraph; evaluation then uses
            the kNN graph of all nodes (random_partition; :obj:`None`: off).
        num_neighbors: Sampled neighbours per hop (neighbor).
        batch_size: Seed nodes per batch, >= 1 (neighbor).
        seed: Seed of the batches' randomness, combined with the split and
            init seeds of the first run of each chunk of runs.

    Example:
        >>> BatchingConfig("random_partition", num_parts=4).parts_per_batch
        1
        >>> BatchingConfig("full", num_parts=4)
        Traceback (most recent call last):
        ...
        diffresnet_pyg.experiments.config.ConfigError: train.batching.num_parts: \
only used by methods 'random_partition', 'cluster' (method is 'full'); leave it 8, \
got 4
    """

    _key = "train.batching"

    method: str = _field(_choice(BATCHING_METHODS), "full")
    num_parts: int = _field(_POSITIVE_INT, 8)
    parts_per_batch: int = _field(_POSITIVE_INT, 1)
    resample: bool = _field(_bool, True)
    knn: int | None = _field(_optional(_POSITIVE_INT), None)
    num_neighbors: tuple[int, ...] = _field(_num_neighbors, (10, 10))
    batch_size: int = _field(_POSITIVE_INT, 1024)
    seed: int = _field(_int(minimum=0, maximum=2**32 - 1), 0)

    def _check_together(self) -> None:
        defaults = BatchingConfig.__dataclass_fields__
        for name, users in _BATCHING_USERS.items():
            default, value = defaults[name].default, getattr(self, name)
            if self.method not in users and value != default:
                shown = _plain(default) if default is not None else "null"
                raise ConfigError(
                    f"train.batching.{name}: only used by methods "
                    f"{', '.join(repr(u) for u in users)} (method is "
                    f"{self.method!r}); leave it {shown}, got {_plain(value)!r}"
                )
        if self.parts_per_batch > self.num_parts:
            raise ConfigError(
                f"train.batching.parts_per_batch: must be <= num_parts "
                f"({self.num_parts}), got {self.parts_per_batch}"
            )


def _batching(value: Any, key: str) -> BatchingConfig:
    if isinstance(value, BatchingConfig):
        return value
    return _from_mapping(BatchingConfig, value, key)


#: Optimizer names of :class:`TrainConfig`.
OPTIMIZER_NAMES: tuple[str, ...] = ("adam", "adamw", "adamax", "sgd")

#: Early-stopping rules of :class:`TrainConfig`.
EARLY_STOPPING_RULES: tuple[str, ...] = ("loss_or_acc", "loss", "none")

#: Which parameters ``train.weight_decay`` applies to.
WEIGHT_DECAY_SCOPES: tuple[str, ...] = ("all", "first_layer")


@dataclass(frozen=True)
class TrainConfig(_Section):
    """The ``train`` section: optimizer, early stopping and execution.

    Attributes:
        optimizer: One of :data:`OPTIMIZER_NAMES`.
        lr: Learning rate, > 0.
        weight_decay: L2 penalty, >= 0.
        weight_decay_on: ``"all"`` parameters, or the ``"first_layer"``
            weights only (as Kipf & Welling's GCN and gnn-benchmark's models,
            whose tuned values assume it).
        momentum: SGD momentum in [0, 1); must be 0 for other optimizers.
        max_epochs: Epoch limit, >= 1.
        patience: Early-stopping patience in epochs, >= 1.
        early_stopping: ``"loss_or_acc"`` (the authors' GAT-style rule),
            ``"loss"`` (gnn-benchmark: validation loss only) or ``"none"``
            (train ``max_epochs`` and keep the final weights).
        batch_members: Runs trained at once as one batched model (1: one at a
            time); changes speed, not results.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` (checked
            syntactically only).
        sparse_features: Feed bag-of-words features as a sparse matrix where
            the model supports it.
        batching: Full-batch or mini-batch training (:class:`BatchingConfig`).

    Example:
        >>> TrainConfig(lr=1).lr
        1.0
        >>> TrainConfig(optimizer="adam", momentum=0.9)
        Traceback (most recent call last):
        ...
        diffresnet_pyg.experiments.config.ConfigError: train.momentum: only \
used by optimizer 'sgd' (optimizer is 'adam'); leave it 0
    """

    _key = "train"

    optimizer: str = _field(_choice(OPTIMIZER_NAMES), "adam")
    lr: float = _field(_POSITIVE_FLOAT, 0.01)
    weight_decay: float = _field(_float(ge=0.0), 5e-4)
    weight_decay_on: str = _field(_choice(WEIGHT_DECAY_SCOPES), "all")
    momentum: float = _field(_float(ge=0.0, lt=1.0), 0.0)
    max_epochs: int = _field(_POSITIVE_INT, 10000)
    patience: int = _field(_POSITIVE_INT, 50)
    early_stopping: str = _field(_choice(EARLY_STOPPING_RULES), "loss_or_acc")
    batch_members: int = _field(_POSITIVE_INT, 20)
    device: str = _field(
        _str(r"cpu|mps|cuda(:\d+)?", "'cpu', 'cuda', 'cuda:N' or 'mps'"), "cpu"
    )
    sparse_features: bool = _field(_bool, True)
    batching: BatchingConfig = _field(_batching, factory=BatchingConfig)

    def _check_together(self) -> None:
        if self.optimizer != "sgd" and self.momentum != 0.0:
            raise ConfigError(
                "train.momentum: only used by optimizer 'sgd' (optimizer is "
                f"{self.optimizer!r}); leave it 0"
            )


#: Executor kinds of :class:`ExecutorConfig`.
EXECUTOR_KINDS: tuple[str, ...] = ("local", "processes", "ray")

#: Keys of :class:`ExecutorConfig` used by kind ``"ray"`` only, with defaults.
_RAY_ONLY: tuple[tuple[str, Any], ...] = (
    ("address", None),
    ("num_cpus_per_task", 1.0),
    ("num_gpus_per_task", 0.0),
)


@dataclass(frozen=True)
class ExecutorConfig(_Section):
    """The ``executor`` section: where the chunks of runs are trained.

    Runs are trained in chunks of ``train.batch_members``; a chunk is one task.
    The executor changes speed, not results: a run's row is the same whatever
    the executor (at a fixed number of torch threads), so the section is not
    part of a results folder's :func:`fingerprint` and a folder may be resumed
    with another executor. See :mod:`diffresnet_pyg.experiments.executors`.

    Attributes:
        kind: ``"local"`` (in this process, one chunk after another),
            ``"processes"`` (a pool of ``workers`` local processes) or
            ``"ray"`` (one Ray task per chunk, on the cluster at ``address``).
        workers: Chunks trained at once: the pool size for ``"processes"``
            (:obj:`None`: one per GPU when ``train.device`` is ``"cuda"``,
            else one per CPU core), the most tasks in flight for ``"ray"``
            (:obj:`None`: as many as the cluster schedules). Must be
            :obj:`None` for ``"local"``.
        threads: torch threads of each worker (``torch.set_num_threads``);
            :obj:`None`: unchanged for ``"local"``, ``max(1, cores // workers)``
            for ``"processes"``, ``max(1, int(num_cpus_per_task))`` for
            ``"ray"``.
        address: The Ray cluster (``"ray"`` only), e.g. ``"10.0.0.1:6379"``;
            :obj:`None`: the ``RAY_ADDRESS`` environment variable, else the
            cluster last started on this machine with ``ray start``, else a
            new local instance (Ray's own order).
        num_cpus_per_task: CPUs Ray reserves per task, > 0 (``"ray"`` only).
        num_gpus_per_task: GPUs Ray reserves per task, >= 0 (``"ray"`` only);
            Ray sets ``CUDA_VISIBLE_DEVICES`` for each task.

    Example:
        >>> ExecutorConfig("processes", workers=2).threads is None
        True
        >>> ExecutorConfig("processes", address="auto")
        Traceback (most recent call last):
        ...
        diffresnet_pyg.experiments.config.ConfigError: executor.address: only \
used by kind 'ray' (kind is 'processes'); leave it null, got 'auto'
    """

    _key = "executor"

    kind: str = _field(_choice(EXECUTOR_KINDS), "local")
    workers: int | None = _field(_optional(_POSITIVE_INT), None)
    threads: int | None = _field(_optional(_POSITIVE_INT), None)
    address: str | None = _field(_optional(_str()), None)
    num_cpus_per_task: float = _field(_POSITIVE_FLOAT, 1.0)
    num_gpus_per_task: float = _field(_float(ge=0.0), 0.0)

    def _check_together(self) -> None:
        if self.kind == "local" and self.workers is not None:
            raise ConfigError(
                "executor.workers: only used by kinds 'processes' and 'ray' (kind "
                f"is 'local'); leave it null, got {self.workers!r}"
            )
        if self.kind != "ray":
            for name, default in _RAY_ONLY:
                value = getattr(self, name)
                if value != default:
                    shown = "null" if default is None else default
                    raise ConfigError(
                        f"executor.{name}: only used by kind 'ray' (kind is "
                        f"{self.kind!r}); leave it {shown}, got {value!r}"
                    )


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------


class _ModelParams(_Section):
    _key = "model"


@dataclass(frozen=True)
class DiffResNetReferenceParams(_ModelParams):
    """``diffresnet_reference``: the authors' exact graph model.

    Attributes:
        step_size: Diffusion step size, > 0.
        layer_num: Diffusion layers, >= 0 (0: No-Diff-ResNet).
        dropout: Dropout before every diffusion step, in [0, 1).
    """

    step_size: float = _field(_POSITIVE_FLOAT, 0.25)
    layer_num: int = _field(_int(minimum=0), 20)
    dropout: float = _field(_DROPOUT, 0.25)


@dataclass(frozen=True)
class DiffResNetParams(_ModelParams):
    """``diffresnet``: the general Diff-ResNet (:class:`~diffresnet_pyg.nn.DiffResNet`).

    Attributes:
        hidden_channels: Width, >= 1.
        num_blocks: Residual blocks, >= 1.
        diffusion_steps: Diffusion steps, >= 0.
        step_size: Diffusion step size, > 0.
        laplacian: One of :data:`~diffresnet_pyg.nn.LAPLACIANS`.
        dropout: Dropout in [0, 1).
        diffusion_dropout: Dropout before every diffusion step, in [0, 1).
        block_layers: Linear layers per residual block, 1 or 2.
        input_projection: Project the input to ``hidden_channels`` first.
    """

    hidden_channels: int = _field(_POSITIVE_INT, 64)
    num_blocks: int = _field(_POSITIVE_INT, 2)
    diffusion_steps: int = _field(_int(minimum=0), 10)
    step_size: float = _field(_POSITIVE_FLOAT, 0.25)
    laplacian: str = _field(_choice(LAPLACIANS), "reference")
    dropout: float = _field(_DROPOUT, 0.5)
    diffusion_dropout: float = _field(_DROPOUT, 0.0)
    block_layers: int = _field(_int_choice((1, 2)), 2)
    input_projection: bool = _field(_bool, True)


@dataclass(frozen=True)
class GCNParams(_ModelParams):
    """``gcn``: a GCN baseline.

    Attributes:
        hidden_channels: Width, >= 1.
        num_layers: Layers, >= 1.
        dropout: Dropout between layers, in [0, 1).
        input_dropout: Dropout on the input features, in [0, 1).
    """

    hidden_channels: int = _field(_POSITIVE_INT, 64)
    num_layers: int = _field(_POSITIVE_INT, 2)
    dropout: float = _field(_DROPOUT, 0.8)
    input_dropout: float = _field(_DROPOUT, 0.0)


@dataclass(frozen=True)
class SAGEParams(_ModelParams):
    """``sage``: a GraphSAGE baseline (attributes as :class:`GCNParams`)."""

    hidden_channels: int = _field(_POSITIVE_INT, 32)
    num_layers: int = _field(_POSITIVE_INT, 2)
    dropout: float = _field(_DROPOUT, 0.4)
    input_dropout: float = _field(_DROPOUT, 0.0)


@dataclass(frozen=True)
class GATParams(_ModelParams):
    """``gat``: a GAT baseline.

    Attributes:
        hidden_channels: Width of all heads together, >= 1, divisible by
            ``heads``.
        num_layers: Layers, >= 1.
        heads: Attention heads, >= 1.
        dropout: Dropout between layers, in [0, 1).
        input_dropout: Dropout on the input features, in [0, 1).
        attention_dropout: Dropout on the attention coefficients, in [0, 1).
    """

    hidden_channels: int = _field(_POSITIVE_INT, 64)
    num_layers: int = _field(_POSITIVE_INT, 2)
    heads: int = _field(_POSITIVE_INT, 8)
    dropout: float = _field(_DROPOUT, 0.6)
    input_dropout: float = _field(_DROPOUT, 0.6)
    attention_dropout: float = _field(_DROPOUT, 0.3)

    def _check_together(self) -> None:
        if self.hidden_channels % self.heads:
            raise ConfigError(
                f"model.hidden_channels: must be divisible by model.heads="
                f"{self.heads}, got {self.hidden_channels}"
            )


@dataclass(frozen=True)
class MLPParams(_ModelParams):
    """``mlp``: an MLP baseline (attributes as :class:`GCNParams`)."""

    hidden_channels: int = _field(_POSITIVE_INT, 64)
    num_layers: int = _field(_POSITIVE_INT, 2)
    dropout: float = _field(_DROPOUT, 0.8)
    input_dropout: float = _field(_DROPOUT, 0.0)


#: ODE solvers of GRAND (``torchdiffeq`` names) and the fixed-step ones.
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


@dataclass(frozen=True)
class GRANDParams(_ModelParams):
    """``grand``: GRAND (graph neural diffusion) baseline.

    Attributes:
        hidden_channels: Width, >= 1.
        time: Integration time, > 0.
        method: One of :data:`GRAND_METHODS`.
        step_size: Step of the fixed-step methods ``rk4``, ``euler`` and
            ``midpoint`` (required there, > 0); :obj:`None` for the adaptive
            ones.
        input_dropout: Dropout on the input features, in [0, 1).
        dropout: Dropout in [0, 1).
        heads: Attention heads, >= 1.
        attention_channels: Attention width, >= 1, divisible by ``heads``.
        nonlinear: Use the nonlinear GRAND (attention recomputed along the ODE).
        add_source: Add the source term (initial features) to the ODE.
    """

    hidden_channels: int = _field(_POSITIVE_INT, 80)
    time: float = _field(_POSITIVE_FLOAT, 18.29)
    method: str = _field(_choice(GRAND_METHODS), "dopri5")
    step_size: float | None = _field(_optional(_POSITIVE_FLOAT), None)
    input_dropout: float = _field(_DROPOUT, 0.5)
    dropout: float = _field(_DROPOUT, 0.047)
    heads: int = _field(_POSITIVE_INT, 8)
    attention_channels: int = _field(_POSITIVE_INT, 128)
    nonlinear: bool = _field(_bool, False)
    add_source: bool = _field(_bool, True)

    def _check_together(self) -> None:
        if self.attention_channels % self.heads:
            raise ConfigError(
                f"model.attention_channels: must be divisible by model.heads="
                f"{self.heads}, got {self.attention_channels}"
            )
        fixed = self.method in _FIXED_STEP_METHODS
        if fixed and self.step_size is None:
            raise ConfigError(
                f"model.step_size: required (> 0) for the fixed-step method "
                f"{self.method!r}, got None"
            )
        if not fixed and self.step_size is not None:
            raise ConfigError(
                f"model.step_size: only used by the fixed-step methods "
                f"{', '.join(_FIXED_STEP_METHODS)}; must be null for the adaptive "
                f"method {self.method!r}, got {self.step_size!r}"
            )


#: The parameter dataclass of every model name.
MODEL_PARAMS: dict[str, type[Any]] = {
    "diffresnet_reference": DiffResNetReferenceParams,
    "diffresnet": DiffResNetParams,
    "gcn": GCNParams,
    "sage": SAGEParams,
    "gat": GATParams,
    "mlp": MLPParams,
    "grand": GRANDParams,
}

#: The model names of :class:`ModelConfig`.
MODEL_NAMES: tuple[str, ...] = tuple(MODEL_PARAMS)


@dataclass(frozen=True)
class ModelConfig:
    """The ``model`` section: a model name and its keyword arguments.

    YAML writes the parameters flat (``model: {name: gcn, dropout: 0.5}``).
    They are validated against the model's dataclass in :data:`MODEL_PARAMS`;
    :attr:`params` then holds every parameter, defaults filled in (a plain
    dict; treat it as read-only).

    Attributes:
        name: One of :data:`MODEL_NAMES`.
        params: The model's keyword arguments.

    Example:
        >>> ModelConfig("diffresnet_reference", {"layer_num": 0}).params
        {'step_size': 0.25, 'layer_num': 0, 'dropout': 0.25}
        >>> ModelConfig("gcn", {"layer_num": 0})
        Traceback (most recent call last):
        ...
        diffresnet_pyg.experiments.config.ConfigError: model.layer_num: not a \
parameter of model 'gcn'; allowed: name, hidden_channels, num_layers, dropout, \
input_dropout
    """

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        name = _choice(MODEL_NAMES)(self.name, "model.name")
        params_cls = MODEL_PARAMS[name]
        if not isinstance(self.params, Mapping):
            raise _bad("model", "a mapping of parameters", self.params)
        allowed = ["name", *(f.name for f in fields(params_cls))]
        for key in self.params:
            if key not in allowed[1:]:
                raise ConfigError(
                    f"model.{key}: not a parameter of model {name!r}; "
                    f"allowed: {', '.join(allowed)}"
                )
        object.__setattr__(self, "params", asdict(params_cls(**self.params)))


# --------------------------------------------------------------------------
# Sweeps
# --------------------------------------------------------------------------

#: The sections a sweep method may override.
_SWEEP_SECTIONS: tuple[str, ...] = ("dataset", "split", "model", "train")


def _sweep_key(value: Any, key: str) -> str:
    pattern = rf"({'|'.join(_SWEEP_SECTIONS)})\.[A-Za-z_]\w*"
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        raise _bad(key, "a dotted key 'SECTION.FIELD' (e.g. 'model.layer_num')", value)
    if value == "model.name":
        raise ConfigError(f"{key}: cannot sweep over 'model.name' (values are numbers)")
    return value


def _overrides(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad(key, "a mapping of sections", value)
    for section, body in value.items():
        if section not in _SWEEP_SECTIONS:
            raise ConfigError(
                f"{key}.{section}: unknown section; allowed: "
                f"{', '.join(_SWEEP_SECTIONS)}"
            )
        if not isinstance(body, Mapping):
            raise _bad(f"{key}.{section}", "a mapping", body)
    return _plain(value)


def _values(value: Any, key: str) -> tuple[int | float, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise _bad(key, "a list of numbers", value)
    numbers = tuple(_number(v, f"{key}[{i}]") for i, v in enumerate(value))
    for i, number in enumerate(numbers):
        if number in numbers[:i]:
            raise ConfigError(f"{key}[{i}]: duplicate value {number!r}")
    return numbers


def _method_values(value: Any, key: str) -> tuple[int | float, ...] | None:
    if value is None:
        return None
    values = _values(value, key)
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

    label: str = _field(_str())
    key: str = _field(_sweep_key)
    overrides: Mapping[str, Any] = _field(_overrides, factory=dict)
    values: tuple[int | float, ...] | None = _field(_method_values, None)


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

    axis: str = _field(
        _str(r"[\w-]+", "a name of letters, digits, '_' or '-'"), "depth"
    )
    values: tuple[int | float, ...] = _field(_values, ())
    methods: tuple[SweepMethod, ...] = ()

    def __post_init__(self) -> None:
        for name, value in _checked_fields(self, "sweep").items():
            object.__setattr__(self, name, value)
        raw_methods = self.methods
        if isinstance(raw_methods, str | bytes) or not isinstance(
            raw_methods, Sequence
        ):
            raise _bad("sweep.methods", "a list of methods", raw_methods)
        if not raw_methods:
            raise ConfigError("sweep.methods: must not be empty")
        methods = []
        for i, method in enumerate(raw_methods):
            key = f"sweep.methods[{i}]"
            if isinstance(method, Mapping):
                method = _from_mapping(SweepMethod, method, key)
            elif not isinstance(method, SweepMethod):
                raise _bad(key, "a mapping (label, key, overrides, values)", method)
            method = SweepMethod(**_checked_fields(method, key))
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


# --------------------------------------------------------------------------
# The experiment
# --------------------------------------------------------------------------

#: The top-level keys of a config.
_TOP_LEVEL: tuple[str, ...] = (
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
                raise _bad(key, f"a {cls.__name__}", getattr(self, key))
        if self.model is not None and not isinstance(self.model, ModelConfig):
            raise _bad("model", "a ModelConfig or None", self.model)
        if self.sweep is not None and not isinstance(self.sweep, SweepConfig):
            raise _bad("sweep", "a SweepConfig or None", self.sweep)
        _str()(self.output, "output")
        _optional(_str())(self.name, "name")
        if self.model is None and self.sweep is None:
            raise ConfigError(
                "model: required key is missing (only a config with a sweep may "
                "leave it out)"
            )
        if self.split.scheme == "public" and not self.dataset.name.startswith(
            _PUBLIC_SPLIT_FAMILIES
        ):
            raise ConfigError(
                "split.scheme: 'public' needs a dataset with its own split "
                f"(planetoid/*, ogb/*), got dataset {self.dataset.name!r}"
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
        diffresnet_pyg.experiments.config.ConfigError: epochs: unknown key; \
allowed: name, output, dataset, split, model, train, executor, sweep
    """
    if not isinstance(raw, Mapping):
        raise _bad("config", "a mapping of sections", raw)
    for key in raw:
        if key not in _TOP_LEVEL:
            raise ConfigError(f"{key}: unknown key; allowed: {', '.join(_TOP_LEVEL)}")
    for key in ("dataset", "output"):
        if key not in raw:
            raise ConfigError(f"{key}: required key is missing")
    model = raw.get("model")
    if model is not None:
        if not isinstance(model, Mapping):
            raise _bad("model", "a mapping (name and parameters)", model)
        if "name" not in model:
            raise ConfigError("model.name: required key is missing")
        params = {k: v for k, v in model.items() if k != "name"}
        model = ModelConfig(model["name"], params)
    sweep = raw.get("sweep")
    if sweep is not None:
        sweep = _from_mapping(SweepConfig, sweep, "sweep")
    return ExperimentConfig(
        dataset=_from_mapping(DatasetConfig, raw["dataset"], "dataset"),
        model=model,
        split=_from_mapping(SplitConfig, raw.get("split"), "split"),
        train=_from_mapping(TrainConfig, raw.get("train"), "train"),
        executor=_from_mapping(ExecutorConfig, raw.get("executor"), "executor"),
        output=raw["output"],
        name=raw.get("name"),
        sweep=sweep,
    )


def config_to_dict(config: ExperimentConfig) -> dict[str, Any]:
    """The config as plain dicts, lists and scalars (YAML-safe).

    The model is written flat (``name`` and its parameters); the result
    round-trips through :func:`yaml.safe_dump` and :func:`config_from_dict`.

    Example:
        >>> cfg = config_from_dict({"output": "out", "dataset": {"name": "cora"},
        ...                         "model": {"name": "mlp"}})
        >>> d = config_to_dict(cfg)
        >>> d["model"]
        {'name': 'mlp', 'hidden_channels': 64, 'num_layers': 2, 'dropout': 0.8, \
'input_dropout': 0.0}
        >>> config_from_dict(yaml.safe_load(yaml.safe_dump(d))) == cfg
        True
    """
    model = config.model
    sweep = config.sweep
    return {
        "name": config.name,
        "output": config.output,
        "dataset": asdict(config.dataset),
        "split": asdict(config.split),
        "model": None if model is None else {"name": model.name, **model.params},
        "train": _plain(asdict(config.train)),
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
                    "overrides": _plain(m.overrides),
                    "values": None if m.values is None else list(m.values),
                }
                for m in sweep.methods
            ],
        },
    }


def slug(label: str) -> str:
    """A folder name for ``label``: lowercase, runs of other characters ``-``.

    Example:
        >>> slug("Diff-ResNet (no diffusion)")
        'diff-resnet-no-diffusion'
    """
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


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
    not which data), ``train.batch_members``, ``train.device`` and the
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
    for key in ("batch_members", "device"):
        del data["train"][key]
    del data["executor"]
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------
# Overrides and files
# --------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A deep copy with mappings as dicts and sequences as lists."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return copy.deepcopy(value)


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overrides`` onto ``base`` into a new dict.

    Mappings are merged key by key; anything else in ``overrides`` replaces
    the value in ``base``. Neither input is modified.

    Example:
        >>> merge({"train": {"lr": 0.01, "patience": 50}}, {"train": {"lr": 0.1}})
        {'train': {'lr': 0.1, 'patience': 50}}
    """
    result = _plain(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merge(result[key], value)
        else:
            result[key] = _plain(value)
    return result


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
            raise _bad("override", "a 'KEY=VALUE' string", item)
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
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            problem = str(exc).splitlines()[0]
            raise ConfigError(
                f"{key}: cannot parse override value {text!r} as YAML ({problem})"
            ) from None
        for part in reversed(parts):
            value = {part: value}
        result = merge(result, value)
    return result


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key repeated in one mapping is an error."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # unhashable: the base class reports it
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Where and what a YAML error is, on one line."""
    mark = getattr(exc, "problem_mark", None)
    where = "" if mark is None else f" (line {mark.line + 1}, column {mark.column + 1})"
    parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    what = ", ".join(part for part in parts if part) or str(exc)
    return f"{where}: {what}"


def load_config(
    path: str | os.PathLike[str], overrides: Sequence[str] = ()
) -> ExperimentConfig:
    r"""Read a YAML config, apply ``KEY=VALUE`` overrides and validate it.

    Relative paths inside the config (``output``, ``dataset.root``) stay
    relative to the current working directory, not to the file.

    Args:
        path: The YAML file.
        overrides: Overrides for :func:`parse_overrides`; they win over the
            file.

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
    raw = merge(read_yaml(path), parse_overrides(overrides))
    if raw.get("task") == "fewshot":
        raise ConfigError(
            f"{path}: a few-shot config (task: fewshot); run it with "
            "`diffresnet-pyg fewshot`"
        )
    return config_from_dict(raw)


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a config file's top-level mapping (duplicate keys are errors).

    Raises:
        ConfigError: If the file is missing or unreadable, is not valid YAML,
            or is not a mapping at the top level.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc})") from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML{_yaml_problem(exc)}") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{path}: expected a mapping of sections ({', '.join(_TOP_LEVEL)}) at "
            f"the top level, {_got(raw)}"
        )
    return dict(raw)

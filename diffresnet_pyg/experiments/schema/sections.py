"""The ``dataset``, ``split``, ``train`` and ``executor`` sections."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from diffresnet_pyg.data import DATASET_NAMES, format_names
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
    plain,
    section_from_mapping,
    validated_field,
)
from diffresnet_pyg.experiments.training import EARLY_STOPPING_RULES, OPTIMIZERS


def _dataset_name(value: Any, key: str) -> str:
    """A name :func:`~diffresnet_pyg.data.load_dataset` accepts, canonical."""
    if isinstance(value, str):
        name = value.strip().lower()
        name = name.removeprefix("gnnbench/")
        if name.startswith("ogbn-"):
            name = f"ogb/{name}"
        if name in {n.lower() for n in DATASET_NAMES}:
            return name
    raise bad_value(key, "one of " + ", ".join(DATASET_NAMES), value)


#: ``dataset.format`` values: ``"auto"`` and the registered file formats.
DATASET_FORMATS: tuple[str, ...] = ("auto", *format_names())

#: ``dataset.edge_weights`` values: train on the graph's edge weights, or
#: on the unweighted graph.
EDGE_WEIGHT_CHOICES: tuple[str, ...] = ("use", "ignore")

#: Keys of :class:`DatasetConfig` added after results folders were first
#: written; :func:`~diffresnet_pyg.experiments.schema.config_to_dict` leaves
#: them out while they hold their default, so older ``config.yaml`` files and
#: their fingerprints stay as they were.
DATASET_OPTIONAL_KEYS: tuple[str, ...] = (
    "path",
    "format",
    "largest_component",
    "symmetrize",
    "binarize",
    "min_class_size",
)


@dataclass(frozen=True)
class DatasetConfig(Section):
    """The ``dataset`` section: arguments of :func:`~diffresnet_pyg.data.load_dataset`.

    Exactly one of :attr:`name` and :attr:`path` is given.

    Attributes:
        name: A name of :data:`~diffresnet_pyg.data.DATASET_NAMES`, matched
            case-insensitively (``gnnbench/<name>`` and ``ogbn-*`` work as in
            ``load_dataset``); stored lowercased in canonical form
            (``"cora"``, ``"planetoid/cora"``, ``"ogb/ogbn-arxiv"``).
        root: The dataset root of a named dataset; :obj:`None` is the library
            default (see :func:`~diffresnet_pyg.data.resolve_root`). A
            relative path is relative to the current working directory.
        standardize: Apply gnn-benchmark's standardization: unweighted, self
            loops removed, labels made consecutive, and
            :attr:`largest_component`, :attr:`symmetrize` and :attr:`binarize`
            unless they say otherwise.
        normalize_features: Divide feature rows by their sums.
        path: A dataset file to read instead of a named dataset (relative to
            the current working directory); rows name the dataset after the
            file's stem.
        format: The file's format (:data:`DATASET_FORMATS`); ``"auto"``
            detects it from the file's keys and extension.
        largest_component: Keep only the largest connected component;
            :obj:`None`: :attr:`standardize`, except under ``split.scheme:
            public`` (the public split is defined on the full graph: never).
            ``true`` needs :attr:`standardize`.
        symmetrize: Make the graph undirected; :obj:`None`:
            :attr:`standardize`. ``true`` needs :attr:`standardize`.
        binarize: Set nonzero features to 1; :obj:`None`:
            :attr:`standardize` (OGB datasets: never).
        min_class_size: Drop the classes with at most this many nodes and
            standardize again (needs :attr:`standardize`); :obj:`None`: none
            dropped (``cora_full``: 50, as gnn-benchmark).
        edge_weights: ``"use"``: a graph with edge weights (``edge_weight``,
            or a one-dimensional ``edge_attr``) is trained with them, and a
            model that takes none is refused; ``"ignore"``: trained as
            unweighted. Graphs without weights (e.g. after
            :attr:`standardize`) are the same either way.

    Example:
        >>> DatasetConfig("gnnbench/Cora").name
        'cora'
        >>> DatasetConfig(path="graph.npz").label
        'graph'
    """

    _key = "dataset"

    name: str | None = validated_field(check_optional(_dataset_name), None)
    root: str | None = validated_field(check_optional(check_str()), None)
    standardize: bool = validated_field(check_bool, True)
    normalize_features: bool = validated_field(check_bool, True)
    path: str | None = validated_field(check_optional(check_str()), None)
    format: str = validated_field(check_choice(DATASET_FORMATS), "auto")
    largest_component: bool | None = validated_field(check_optional(check_bool), None)
    symmetrize: bool | None = validated_field(check_optional(check_bool), None)
    binarize: bool | None = validated_field(check_optional(check_bool), None)
    min_class_size: int | None = validated_field(
        check_optional(check_int(minimum=0)), None
    )
    edge_weights: str = validated_field(check_choice(EDGE_WEIGHT_CHOICES), "use")

    @property
    def label(self) -> str:
        """The dataset's name in rows and reports (a file's stem for a path)."""
        if self.name is not None:
            return self.name
        return PurePath(str(self.path)).stem

    def _check_together(self) -> None:
        if self.name is None and self.path is None:
            raise ConfigError(
                "dataset.name: required key is missing (or give dataset.path, a "
                "dataset file)"
            )
        if self.name is not None and self.path is not None:
            raise ConfigError(
                "dataset.path: give either dataset.name (a named dataset) or "
                "dataset.path (a dataset file), not both; to run a config "
                "written for a named dataset on a file, add dataset.name=null"
            )
        if self.path is not None and self.root is not None:
            raise ConfigError(
                "dataset.root: only used with dataset.name (a file is found by "
                f"dataset.path); leave it null, got {self.root!r}"
            )
        if self.path is None and self.format != "auto":
            raise ConfigError(
                "dataset.format: only used with dataset.path; leave it 'auto', "
                f"got {self.format!r}"
            )
        if not self.standardize:
            for key in ("largest_component", "symmetrize"):
                if getattr(self, key):
                    raise ConfigError(
                        f"dataset.{key}: true is a step of the standardization "
                        "and needs dataset.standardize: true"
                    )
            if self.min_class_size:
                raise ConfigError(
                    "dataset.min_class_size: needs dataset.standardize: true"
                )


#: Split schemes of :class:`SplitConfig`.
SPLIT_SCHEMES: tuple[str, ...] = ("per_class", "given", "public")

#: The most splits (``split.num_splits``) and inits per split
#: (``split.num_inits``) a config may ask for. Seeds are drawn from 0 to
#: 999,999, so a long protocol repeats some (the birthday bound: about
#: n * n / 2,000,000 repeats among n seeds, 50 among 10,000
#: split seeds from master seed 42); repeated runs are counted once.
MAX_RUNS_PER_AXIS = 10_000

#: Named dataset families loaded with their own train/val/test masks.
PUBLIC_SPLIT_FAMILIES: tuple[str, ...] = ("planetoid/", "ogb/")


@dataclass(frozen=True)
class SplitConfig(Section):
    """The ``split`` section: which train/validation/test splits, how many runs.

    Attributes:
        scheme: ``"per_class"``: the authors' random per-class splits
            (:func:`~diffresnet_pyg.data.protocol_splits`). ``"given"``: the
            dataset's own masks (``train_mask``, ``val_mask``, ``test_mask``
            of a file, of Planetoid or of OGB) on the graph as
            standardized; a mask of shape ``[N, S]`` holds ``S`` splits, of
            which the first :attr:`num_splits` are run. ``"public"``: the
            dataset's own masks on the full graph, one split (Planetoid's
            140/500/1000; the largest component is not taken).
        master_seed: The seed that draws the split seeds.
        num_splits: Number of splits (1 for ``"public"``; at most the
            number of mask columns for ``"given"``; at most
            :data:`MAX_RUNS_PER_AXIS`, 10,000). Split seeds are drawn from 0
            to 999,999 as the authors draw them, so many splits hold some
            with the same seed (50 of 10,000 from master seed 42): the plan
            keeps them, a warning names them, and the summary counts each
            repeated run once.
        num_inits: Weight initializations per split (at most
            :data:`MAX_RUNS_PER_AXIS`; init seeds repeat as split seeds do).
        train_per_class: Training nodes per class (``"per_class"`` only).
        val_per_class: Validation nodes per class (``"per_class"`` only).

    Example:
        >>> SplitConfig(num_splits=5).num_inits
        20
        >>> SplitConfig(scheme="public")
        Traceback (most recent call last):
        ...
        diffresnet_pyg.experiments.schema.ConfigError: split.num_splits: must \
be 1 for scheme 'public' (the dataset's own split), got 100
    """

    _key = "split"

    scheme: str = validated_field(check_choice(SPLIT_SCHEMES), "per_class")
    master_seed: int = validated_field(check_int(minimum=0, maximum=2**32 - 1), 42)
    num_splits: int = validated_field(
        check_int(minimum=1, maximum=MAX_RUNS_PER_AXIS), 100
    )
    num_inits: int = validated_field(
        check_int(minimum=1, maximum=MAX_RUNS_PER_AXIS), 20
    )
    train_per_class: int = validated_field(POSITIVE_INT, 20)
    val_per_class: int = validated_field(POSITIVE_INT, 30)

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
        raise bad_value(key, expected, value)
    for i, hop in enumerate(value):
        if isinstance(hop, bool) or not isinstance(hop, int) or (hop < 1 and hop != -1):
            raise bad_value(f"{key}[{i}]", "an int >= 1 or -1 (all neighbours)", hop)
    return tuple(value)


@dataclass(frozen=True)
class BatchingConfig(Section):
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
        diffresnet_pyg.experiments.schema.ConfigError: train.batching.num_parts: \
only used by methods 'random_partition', 'cluster' (method is 'full'); leave it 8, \
got 4
    """

    _key = "train.batching"

    method: str = validated_field(check_choice(BATCHING_METHODS), "full")
    num_parts: int = validated_field(POSITIVE_INT, 8)
    parts_per_batch: int = validated_field(POSITIVE_INT, 1)
    resample: bool = validated_field(check_bool, True)
    knn: int | None = validated_field(check_optional(POSITIVE_INT), None)
    num_neighbors: tuple[int, ...] = validated_field(_num_neighbors, (10, 10))
    batch_size: int = validated_field(POSITIVE_INT, 1024)
    seed: int = validated_field(check_int(minimum=0, maximum=2**32 - 1), 0)

    def _check_together(self) -> None:
        defaults = BatchingConfig.__dataclass_fields__
        for name, users in _BATCHING_USERS.items():
            default, value = defaults[name].default, getattr(self, name)
            if self.method not in users and value != default:
                shown = plain(default) if default is not None else "null"
                raise ConfigError(
                    f"train.batching.{name}: only used by methods "
                    f"{', '.join(repr(u) for u in users)} (method is "
                    f"{self.method!r}); leave it {shown}, got {plain(value)!r}"
                )
        if self.parts_per_batch > self.num_parts:
            raise ConfigError(
                f"train.batching.parts_per_batch: must be <= num_parts "
                f"({self.num_parts}), got {self.parts_per_batch}"
            )


def _batching(value: Any, key: str) -> BatchingConfig:
    if isinstance(value, BatchingConfig):
        return value
    return section_from_mapping(BatchingConfig, value, key)


#: Optimizer names of :class:`TrainConfig` (the keys of
#: :data:`~diffresnet_pyg.experiments.training.OPTIMIZERS`).
OPTIMIZER_NAMES: tuple[str, ...] = tuple(OPTIMIZERS)

#: Which parameters ``train.weight_decay`` applies to.
WEIGHT_DECAY_SCOPES: tuple[str, ...] = ("all", "first_layer")


@dataclass(frozen=True)
class TrainConfig(Section):
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
        representation_metrics: Record the over-smoothing measures of each
            run's final output (logits) in its row, under ``metrics``
            (:func:`~diffresnet_pyg.metrics.representation_metrics`: Dirichlet
            energy, MAD, distance-diameter ratio); extra row fields, not part
            of the results' fingerprint.

    Example:
        >>> TrainConfig(lr=1).lr
        1.0
        >>> TrainConfig(optimizer="adam", momentum=0.9)
        Traceback (most recent call last):
        ...
        diffresnet_pyg.experiments.schema.ConfigError: train.momentum: only \
used by optimizer 'sgd' (optimizer is 'adam'); leave it 0
    """

    _key = "train"

    optimizer: str = validated_field(check_choice(OPTIMIZER_NAMES), "adam")
    lr: float = validated_field(POSITIVE_FLOAT, 0.01)
    weight_decay: float = validated_field(check_float(ge=0.0), 5e-4)
    weight_decay_on: str = validated_field(check_choice(WEIGHT_DECAY_SCOPES), "all")
    momentum: float = validated_field(check_float(ge=0.0, lt=1.0), 0.0)
    max_epochs: int = validated_field(POSITIVE_INT, 10000)
    patience: int = validated_field(POSITIVE_INT, 50)
    early_stopping: str = validated_field(
        check_choice(EARLY_STOPPING_RULES), "loss_or_acc"
    )
    batch_members: int = validated_field(POSITIVE_INT, 20)
    device: str = validated_field(
        check_str(r"cpu|mps|cuda(:\d+)?", "'cpu', 'cuda', 'cuda:N' or 'mps'"), "cpu"
    )
    sparse_features: bool = validated_field(check_bool, True)
    batching: BatchingConfig = validated_field(_batching, factory=BatchingConfig)
    representation_metrics: bool = validated_field(check_bool, False)

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
class ExecutorConfig(Section):
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
        checkpoint_minutes: Minutes between two saves of a chunk's training
            state (full-batch training), from which an interrupted chunk
            resumes (:mod:`~diffresnet_pyg.experiments.checkpoints`; with
            ``"ray"`` the results folder must be writable from the cluster's
            machines); :obj:`None`: never saved, an interrupted chunk starts
            over.

    Example:
        >>> ExecutorConfig("processes", workers=2).threads is None
        True
        >>> ExecutorConfig("processes", address="auto")
        Traceback (most recent call last):
        ...
        diffresnet_pyg.experiments.schema.ConfigError: executor.address: only \
used by kind 'ray' (kind is 'processes'); leave it null, got 'auto'
    """

    _key = "executor"

    kind: str = validated_field(check_choice(EXECUTOR_KINDS), "local")
    workers: int | None = validated_field(check_optional(POSITIVE_INT), None)
    threads: int | None = validated_field(check_optional(POSITIVE_INT), None)
    address: str | None = validated_field(check_optional(check_str()), None)
    num_cpus_per_task: float = validated_field(POSITIVE_FLOAT, 1.0)
    num_gpus_per_task: float = validated_field(check_float(ge=0.0), 0.0)
    checkpoint_minutes: float | None = validated_field(
        check_optional(POSITIVE_FLOAT), 10.0
    )

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

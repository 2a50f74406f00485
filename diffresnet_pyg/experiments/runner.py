"""Run every (split, init) of a config, one row per run, resumable.

A results folder holds:

* ``config.yaml``: the resolved config (all defaults filled in);
* ``runs.jsonl``: one JSON row per finished run, appended (and flushed to
  disk) as soon as the run finishes;
* ``summary.json`` / ``summary.md``: written from the rows once every run is
  there (deleted when a run starts, so a summary never describes a partial
  folder).

The files are written through :mod:`~diffresnet_pyg.experiments.results`.
Rerunning the same config resumes: runs already in ``runs.jsonl`` are skipped,
and none is ever written twice. A folder written for a different config is
refused. Growing ``split.num_splits`` or ``split.num_inits`` keeps the rows
already there (the seeds of the first splits and inits do not depend on how
many are drawn); lowering them keeps the rows of the runs no longer planned
in ``runs.jsonl``, and the summary leaves them out. Seeds drawn twice (the
draws are from 0 to 999,999) are named in a warning (:func:`repeated_seeds`).

Runs are trained ``train.batch_members`` at a time as one batched model
(:mod:`diffresnet_pyg.experiments.training`). Every run has its own random
stream (:class:`~diffresnet_pyg.nn.streams.MemberStream`): its weights come
from ``torch.manual_seed(init_seed)`` and its dropout masks from generators
in the state that seeding and building left, drawn as its plain model draws
them. A run's row therefore depends only on the config, its split seed and
its init seed (and, through floating-point summation order, on the thread
count), not on the other runs of its batch, nor on how the pending runs were
cut into chunks (a resumed folder, another ``num_inits``, another executor):
with ``batch_members > 1`` every chunk, even a last one of a single run, is
the stacked model. With ``batch_members=1`` every run is exactly the
unbatched run of its seeds. Across batch sizes rows agree up to
floating-point rounding, because the stacked model draws its plain model's
masks: Diff-ResNet (all its dropouts, dense or sparse features) and the
baselines (GCN, GraphSAGE, GAT, MLP; their ``input_dropout`` on sparse
features is drawn over the stored values, alone as in a batch). Mini-batch
training (``train.batching``) shares the
batches of a chunk among its members (seeded from the chunk's first run), so
its rows still depend on the chunk.

Each chunk is one call of :func:`run_chunk`, a top-level function that loads
the data itself, so the ``executor`` section can train chunks in this process,
in a pool of local processes or on a Ray cluster
(:mod:`~diffresnet_pyg.experiments.executors`); rows are appended as chunks
finish, and they are the same whatever the executor.

``evaluate_test=False`` (:func:`run_experiment`, :func:`run_chunk`) is for
tuning hyperparameters: the test nodes are never evaluated, the rows have no
``test_acc`` key, and no summary is written (a summary reports test accuracy).
The rows are otherwise the same as those of an ordinary run.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import Tensor
from torch_geometric.data import Data

from diffresnet_pyg.data import (
    load_dataset,
    protocol_splits,
    resolve_root,
    split_seeds,
)
from diffresnet_pyg.data.formats import MASK_KEYS
from diffresnet_pyg.data.split import SEED_HIGH, small_classes
from diffresnet_pyg.experiments.checkpoints import (
    checkpoint_path,
    describe_checkpoints,
    folder_checkpoints,
    load_checkpoint,
    remove_checkpoint,
    save_checkpoint,
)
from diffresnet_pyg.experiments.executors import (
    check_device,
    check_executor,
    map_chunks,
    num_workers,
    worker_device,
    worker_threads,
)
from diffresnet_pyg.experiments.models import (
    build_members,
    first_layer_weights,
    get_model,
    model_names,
    own_weight_decays,
)
from diffresnet_pyg.experiments.progress import Progress, RunProgress, format_duration
from diffresnet_pyg.experiments.report import (
    report_directory,
    write_summary,
)
from diffresnet_pyg.experiments.results import (
    CONFIG_FILE,
    RUNS_FILE,
    SUMMARY_FILES,
    SWEEP_FILE,
    ResultsFolderError,
    append_rows,
    claim_folder,
    folder_lock_scope,
    load_rows,
    lock_folder,
    make_row,
    protocol_free_fingerprint,
    write_atomic,
)
from diffresnet_pyg.experiments.schema import (
    ExecutorConfig,
    ExperimentConfig,
    config_from_dict,
    config_to_dict,
    expand_sweep,
)
from diffresnet_pyg.experiments.training import (
    EpochStatus,
    MemberResult,
    stack_index,
    train_members,
)
from diffresnet_pyg.metrics import representation_metrics

__all__ = [
    "ChunkTask",
    "Plan",
    "ResultsFolderError",
    "RunSpec",
    "claim_folder",
    "fit_chunk",
    "format_plan",
    "format_plans",
    "input_features",
    "load_arguments",
    "plan_experiment",
    "plan_runs",
    "plan_sweep",
    "repeated_seeds",
    "run_chunk",
    "run_experiment",
    "run_sweep",
    "train_chunk",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class RunSpec:
    """One (split, init) run of a config.

    Attributes:
        split (int): Split index (0-based).
        split_seed (int): The split's seed (the master seed for the dataset's
            own public split).
        init (int): Initialization index within the split (0-based).
        init_seed (int): Seed of :func:`torch.manual_seed` before the model
            is built.
        train_idx (torch.Tensor): Training nodes.
        val_idx (torch.Tensor): Validation nodes.
        test_idx (torch.Tensor): Test nodes.
    """

    split: int
    split_seed: int
    init: int
    init_seed: int
    train_idx: Tensor
    val_idx: Tensor
    test_idx: Tensor

    @property
    def key(self) -> tuple[int, int]:
        """``(split, init)``, the identity of a run in ``runs.jsonl``."""
        return self.split, self.init


def _own_masks(config: ExperimentConfig, data: Data) -> list[tuple[Tensor, ...]]:
    """The dataset's own ``(train, val, test)`` node indices, one per column."""
    scheme = config.split.scheme
    missing = [m for m in MASK_KEYS if m not in data]
    if missing:
        raise ValueError(
            f"split.scheme {scheme!r} needs the dataset's own masks, but "
            f"{config.dataset.label!r} has no {', '.join(missing)}"
        )
    masks = [data[m] if data[m].dim() == 2 else data[m].view(-1, 1) for m in MASK_KEYS]
    columns = masks[0].size(1)
    if scheme == "public" and columns != 1:
        raise ValueError(
            f"split.scheme 'public' is one split, but {config.dataset.label!r} "
            f"has {columns} mask columns; use split.scheme: given"
        )
    if config.split.num_splits > columns:
        raise ValueError(
            f"split.num_splits is {config.split.num_splits}, but "
            f"{config.dataset.label!r} has {columns} split(s) (mask columns); "
            f"set split.num_splits <= {columns}"
        )
    splits = []
    for column in range(config.split.num_splits):
        parts = tuple(m[:, column].nonzero().flatten() for m in masks)
        empty = [
            m for m, part in zip(MASK_KEYS, parts, strict=True) if part.numel() == 0
        ]
        if empty:
            raise ValueError(
                f"split {column} of {config.dataset.label!r}: {', '.join(empty)} "
                "selects no node (after standardization)"
            )
        splits.append(parts)
    return splits


def _check_class_sizes(config: ExperimentConfig, data: Data) -> None:
    """Refuse a per-class split on classes too small for it, naming them."""
    split = config.split
    needed = split.train_per_class + split.val_per_class
    small = small_classes(data.y, needed)
    if small:
        listed = ", ".join(f"class {c}: {n} nodes" for c, n in small.items())
        raise ValueError(
            f"dataset {config.dataset.label!r}: classes smaller than "
            f"split.train_per_class + split.val_per_class = {needed} ({listed}); "
            f"set dataset.min_class_size: {needed - 1} to drop the classes with "
            f"at most {needed - 1} nodes, or lower the per-class counts"
        )


def plan_runs(config: ExperimentConfig, data: Data) -> list[RunSpec]:
    """All runs of ``config`` on ``data``, split by split, init by init.

    ``"per_class"``: the authors' protocol
    (:func:`~diffresnet_pyg.data.protocol_splits`); every class needs
    ``train_per_class + val_per_class`` nodes (else an error names the small
    classes and their sizes). ``"public"``: the dataset's
    ``train_mask``/``val_mask``/``test_mask``, one split with seed
    ``master_seed`` and init seeds ``RandomState(master_seed).randint(0,
    1000000, num_inits)``. ``"given"``: split ``i`` is column ``i`` of the
    dataset's masks (a 1-D mask is one column); its seed is the ``i``-th
    split seed of the per-class scheme (``RandomState(master_seed).randint(0,
    1000000, num_splits)``, :func:`~diffresnet_pyg.data.split_seeds`) and its
    init seeds ``RandomState(split_seed).randint(0, 1000000, num_inits)``,
    drawn as in the per-class scheme but with no split drawn first. In every
    scheme, growing ``num_splits`` or ``num_inits`` keeps the seeds of the
    runs already planned.
    """
    split = config.split
    runs = []
    if split.scheme == "public":
        ((train, val, test),) = _own_masks(config, data)
        rs = np.random.RandomState(split.master_seed)
        for i, seed in enumerate(rs.randint(0, SEED_HIGH, split.num_inits)):
            runs.append(RunSpec(0, split.master_seed, i, int(seed), train, val, test))
        return runs
    if split.scheme == "given":
        seeds = split_seeds(split.master_seed, split.num_splits)
        for index, (seed, parts) in enumerate(
            zip(seeds, _own_masks(config, data), strict=True)
        ):
            rs = np.random.RandomState(seed)
            for i, init_seed in enumerate(rs.randint(0, SEED_HIGH, split.num_inits)):
                runs.append(RunSpec(index, seed, i, int(init_seed), *parts))
        return runs
    _check_class_sizes(config, data)
    for s in protocol_splits(
        data.y,
        master_seed=split.master_seed,
        num_splits=split.num_splits,
        num_inits=split.num_inits,
        num_train_per_class=split.train_per_class,
        num_val_per_class=split.val_per_class,
    ):
        for i, seed in enumerate(s.init_seeds):
            runs.append(
                RunSpec(s.index, s.seed, i, seed, s.train_idx, s.val_idx, s.test_idx)
            )
    return runs


def _listed(groups: Mapping[str, Sequence[int]], at: str, limit: int = 10) -> str:
    """``"<label> at <at> i, j"`` for the first ``limit`` groups, and the rest."""
    items = [
        f"{label} at {at} {', '.join(map(str, where))}"
        for label, where in list(groups.items())[:limit]
    ]
    if len(groups) > limit:
        items.append(f"and {len(groups) - limit} more")
    return "; ".join(items)


def repeated_seeds(config: ExperimentConfig, runs: Sequence[RunSpec]) -> list[str]:
    """The seeds the plan ``runs`` of ``config`` draws more than once, described.

    Seeds are drawn as the authors draw them, from 0 to 999,999
    (``RandomState.randint(0, 1000000, n)``), so a long protocol repeats some
    (the birthday bound: 10,000 split seeds from master seed 42 hold 50
    repeats). The plan keeps every run, so its keys and the rows already
    written do not change; a repeated run is the same run as the first one
    (:func:`~diffresnet_pyg.experiments.results.run_identity`), and the
    summary counts it once.

    Args:
        config (ExperimentConfig): The config (its ``split.scheme``).
        runs (sequence of RunSpec): Its planned runs (:func:`plan_runs`).

    Returns:
        list[str]: A line naming the split seeds of the ``"per_class"``
        scheme drawn for several splits and their split indices, and a line
        naming init seeds drawn twice within a split; none when no seed
        repeats.
    """
    lines = []
    if config.split.scheme == "per_class":
        by_seed: dict[int, list[int]] = {}
        for split, seed in sorted({(r.split, r.split_seed) for r in runs}):
            by_seed.setdefault(seed, []).append(split)
        repeats = {f"seed {s}": where for s, where in by_seed.items() if len(where) > 1}
        if repeats:
            count = sum(len(where) - 1 for where in repeats.values())
            lines.append(
                f"{count} split(s) repeat the seed of an earlier split "
                f"({_listed(repeats, 'splits')}); their runs are the runs of the "
                "first split with that seed and are counted once in the summary"
            )
    by_init: dict[tuple[int, int], list[int]] = {}
    for run in runs:
        by_init.setdefault((run.split, run.init_seed), []).append(run.init)
    inits = {
        f"split {split} init seed {seed}": where
        for (split, seed), where in by_init.items()
        if len(where) > 1
    }
    if inits:
        lines.append(
            f"init seeds drawn twice within a split ({_listed(inits, 'inits')}); "
            "those runs are counted once in the summary"
        )
    return lines


def _warn_repeated_seeds(
    config: ExperimentConfig, plan: Mapping[tuple[int, int], RunSpec]
) -> None:
    """Log a warning per line of :func:`repeated_seeds` of the plan."""
    for line in repeated_seeds(config, list(plan.values())):
        logger.warning("%s: %s", config.output, line)


def _chunks(items: Sequence[RunSpec], size: int) -> Iterator[list[RunSpec]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def input_features(config: ExperimentConfig, data: Data, *, batched: bool) -> Tensor:
    """The feature matrix the model of ``config`` is given (on ``data``'s device).

    Sparse CSR where the model takes it and ``train.sparse_features`` is on,
    else dense. ``batched``: whether the runs are trained as a batched model
    (more than one run per chunk).
    """
    takes_sparse = config.model.spec.takes_sparse(batched, config.model.params)
    if config.train.sparse_features and takes_sparse:
        return data.x.to_sparse_csr()
    return data.x


def graph_edge_weights(config: ExperimentConfig, data: Data) -> Tensor | None:
    """The edge weights the model of ``config`` is trained with, if any.

    The graph's ``edge_weight`` (or a one-dimensional ``edge_attr``, or one of
    shape ``[E, 1]``) under ``dataset.edge_weights: use``; :obj:`None` for a
    graph without weights or under ``ignore``.

    Raises:
        ValueError: If the graph has weights to use and the model takes none
            (see ``register_model(edge_weights=...)``), or the training is
            mini-batch.
    """
    weight = getattr(data, "edge_weight", None)
    attr = getattr(data, "edge_attr", None)
    if weight is None and attr is not None:
        if attr.dim() == 1 or (attr.dim() == 2 and attr.size(1) == 1):
            weight = attr.view(-1)
    if weight is None or config.dataset.edge_weights == "ignore":
        return None
    assert config.model is not None
    spec = config.model.spec
    if not spec.edge_weights:
        takes = ", ".join(
            name for name in model_names() if get_model(name).edge_weights
        )
        raise ValueError(
            f"dataset {config.dataset.label!r} has edge weights, but model "
            f"{spec.name!r} takes none; set dataset.edge_weights=ignore to "
            f"train it on the unweighted graph, or use a model that takes "
            f"them: {takes}"
        )
    if config.train.batching.method != "full":
        raise ValueError(
            f"dataset {config.dataset.label!r} has edge weights, which "
            f"train.batching.method={config.train.batching.method!r} does not "
            "pass on; use train.batching.method=full or "
            "dataset.edge_weights=ignore"
        )
    return weight.to(data.x.dtype)


def fit_chunk(
    config: ExperimentConfig,
    model: torch.nn.Module,
    x: Tensor,
    edge_index: Tensor,
    y: Tensor,
    chunk: Sequence[RunSpec],
    *,
    on_epoch: Callable[[int, int], None] | None,
    on_finish: Callable[[int, MemberResult], None],
    evaluate_test: bool = True,
    on_status: Callable[[EpochStatus], None] | None = None,
    edge_weight: Tensor | None = None,
    on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
    checkpoint_seconds: float = 600.0,
    resume: Mapping[str, Any] | None = None,
) -> None:
    """Train the members of one chunk of runs (on ``x``'s device) as configured.

    With ``train.representation_metrics``, each result's ``metrics`` are the
    over-smoothing measures of its final output
    (:func:`~diffresnet_pyg.metrics.representation_metrics` on the logits of
    the tested weights, over ``edge_index`` and the labels ``y``).

    ``model`` holds one member per run of ``chunk`` (in order); ``x`` comes
    from :func:`input_features`. ``on_finish(member, result)`` is called as
    each member finishes, ``on_epoch(epoch, active_members)`` (if given)
    after every epoch, and ``on_status`` (if given) with the active members'
    :class:`~diffresnet_pyg.experiments.training.EpochStatus` before it
    (full-batch training only).

    With ``train.batching.method`` other than ``"full"``: mini-batch training
    (:mod:`~diffresnet_pyg.experiments.minibatch`; each diffusion layer keeps
    the operators of the graphs it last saw, keyed on the graph, so the
    whole-graph evaluation reuses its own), the batches' randomness seeded from
    ``train.batching.seed`` and the split and init seeds of the chunk's first
    run; sparse CSR features are sliced row-wise per batch.
    ``evaluate_test=False``: the test nodes are never evaluated (results
    without test accuracy). ``edge_weight`` (full-batch training only; see
    :func:`graph_edge_weights`) is passed to the model with the graph.
    ``on_checkpoint``, ``checkpoint_seconds`` and ``resume`` (full-batch
    training only): see
    :func:`~diffresnet_pyg.experiments.training.train_members`.
    """
    train = config.train
    if train.batching.method != "full" and (
        on_checkpoint is not None or resume is not None
    ):
        raise ValueError(
            "checkpoints are taken in full-batch training only, not with "
            f"train.batching.method={train.batching.method!r}"
        )
    device = x.device
    train_idx = stack_index([r.train_idx for r in chunk], device)
    val_idx = stack_index([r.val_idx for r in chunk], device)
    test_idx = (
        stack_index([r.test_idx for r in chunk], device) if evaluate_test else None
    )
    settings = dict(
        optimizer=train.optimizer,
        lr=train.lr,
        weight_decay=train.weight_decay,
        momentum=train.momentum,
        max_epochs=train.max_epochs,
        patience=train.patience,
        early_stopping=train.early_stopping,
        decay_params=(
            functools.partial(first_layer_weights, config.model)
            if train.weight_decay_on == "first_layer"
            else None
        ),
        own_decays=functools.partial(own_weight_decays, config.model),
        on_epoch=on_epoch,
        on_finish=on_finish,
        measure=(
            functools.partial(
                representation_metrics,
                edge_index=edge_index,
                y=y,
                edge_weight=edge_weight,
            )
            if train.representation_metrics
            else None
        ),
    )
    batching = train.batching
    if batching.method == "full":
        train_members(
            model,
            x,
            edge_index,
            y,
            train_idx,
            val_idx,
            test_idx,
            on_status=on_status,
            edge_weight=edge_weight,
            on_checkpoint=on_checkpoint,
            checkpoint_seconds=checkpoint_seconds,
            resume=resume,
            **settings,
        )
        return
    from diffresnet_pyg.experiments.minibatch import (
        batch_loader,
        evaluation_graph,
        seeded_generator,
        train_members_minibatch,
    )

    loader = batch_loader(
        batching,
        edge_index,
        int(y.numel()),
        x=x,
        train_nodes=train_idx.unique(),
        generator=seeded_generator(
            batching.seed, chunk[0].split_seed, chunk[0].init_seed
        ),
    )
    train_members_minibatch(
        model,
        x,
        loader,
        y,
        train_idx,
        val_idx,
        test_idx,
        eval_graph=evaluation_graph(batching, x, edge_index),
        **settings,
    )


@dataclass(frozen=True)
class ChunkTask:
    """One chunk of runs of one config: the unit of work of an executor.

    Attributes:
        config (dict): The config as plain data (:func:`config_to_dict`);
            ``dataset.root`` (or ``dataset.path``) is absolute, so a worker
            finds the same files.
        keys (tuple): ``(split, init)`` of each run, in training order.
        point (int): Index of the config among those run together (the
            points of a sweep; 0 for a single experiment).
        evaluate_test (bool): Whether the runs read their test accuracy
            (:obj:`False` for tuning runs).
        checkpoint (str, optional): The chunk's checkpoint file, to resume
            from if it exists and to save to (see :func:`run_chunk`).
        checkpoint_seconds (float): Seconds between two saves.
        skip (tuple): Runs whose rows are already saved (see
            :func:`run_chunk`).
    """

    config: dict[str, Any]
    keys: tuple[tuple[int, int], ...]
    point: int = 0
    evaluate_test: bool = True
    checkpoint: str | None = None
    checkpoint_seconds: float = 600.0
    skip: tuple[tuple[int, int], ...] = ()

    def run_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`run_chunk` other than the keys."""
        return {
            "evaluate_test": self.evaluate_test,
            "checkpoint": self.checkpoint,
            "checkpoint_seconds": self.checkpoint_seconds,
            "skip": self.skip,
        }


#: Per-process cache of datasets, run plans and model inputs (most recent last).
_CACHE: OrderedDict[tuple[str, ...], Any] = OrderedDict()
_CACHE_SIZE = 8


def _cached(key: tuple[str, ...], make: Callable[[], Any]) -> Any:
    """``make()``, computed once per ``key`` in this process (a small LRU)."""
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    value = _CACHE[key] = make()
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return value


def load_arguments(config: ExperimentConfig) -> dict[str, Any]:
    """The arguments of :func:`~diffresnet_pyg.data.load_dataset` for ``config``.

    The ``dataset`` section as it is, except that under ``split.scheme:
    public`` the largest component is not taken (the public split is defined
    on the full graph; the schema refuses ``largest_component: true`` there).
    """
    ds = config.dataset
    largest_component = ds.largest_component
    if config.split.scheme == "public" and largest_component is None:
        largest_component = False
    return dict(
        name=ds.name,
        root=ds.root,
        path=ds.path,
        format=ds.format,
        standardize=ds.standardize,
        largest_component=largest_component,
        symmetrize=ds.symmetrize,
        binarize=ds.binarize,
        normalize_features=ds.normalize_features,
        min_class_size=ds.min_class_size,
    )


def _dataset_key(config: ExperimentConfig) -> str:
    return json.dumps(load_arguments(config), sort_keys=True)


def _planned(config: ExperimentConfig) -> tuple[Data, dict[tuple[int, int], RunSpec]]:
    """The dataset of ``config`` and its runs by ``(split, init)``, cached."""
    data = _cached(
        ("dataset", _dataset_key(config)),
        lambda: load_dataset(**load_arguments(config)),
    )
    split = json.dumps(dataclasses.asdict(config.split), sort_keys=True)
    plan = _cached(
        ("plan", _dataset_key(config), split),
        lambda: {run.key: run for run in plan_runs(config, data)},
    )
    return data, plan


def _inputs(
    config: ExperimentConfig, data: Data, batched: bool, device: torch.device
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Features, ``edge_index``, labels and edge weights on ``device``, cached.

    Raises:
        ValueError: See :func:`graph_edge_weights`.
    """
    weight = graph_edge_weights(config, data)
    dataset, where = _dataset_key(config), str(device)
    layout = f"{config.model.name} sparse={config.train.sparse_features} {batched}"
    x = _cached(
        ("x", dataset, layout, where),
        lambda: input_features(config, data, batched=batched).to(device),
    )
    edge_index, y = _cached(
        ("graph", dataset, where),
        lambda: (data.edge_index.to(device), data.y.to(device)),
    )
    if weight is not None:
        weight = _cached(("weight", dataset, where), lambda: weight.to(device))
    return x, edge_index, y, weight


def run_chunk(
    config: ExperimentConfig | Mapping[str, Any],
    keys: Sequence[tuple[int, int]],
    *,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    on_epoch: Callable[[int, int], None] | None = None,
    evaluate_test: bool = True,
    on_status: Callable[[EpochStatus], None] | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_seconds: float = 600.0,
    skip: Sequence[tuple[int, int]] = (),
) -> list[dict[str, Any]]:
    """Train the runs ``keys`` of ``config`` as one batched model; their rows.

    A top-level function, so that an executor can ship it to another process
    or machine: it loads the dataset and plans the runs itself (cached per
    process), trains on ``train.device`` (see
    :func:`~diffresnet_pyg.experiments.executors.worker_device`) and writes
    nothing. Every member's weights and dropout masks come from its own init
    seed (its own random stream, whatever the other members of the chunk),
    so each row depends only on ``config`` and its own ``(split, init)`` (and,
    through floating-point summation order, on the number of torch threads),
    not on the other keys of the chunk nor on the process it is computed in
    (full-batch training; see the module docstring). With
    ``train.batch_members > 1`` the chunk is one stacked model even when it
    holds one run.

    Args:
        config (ExperimentConfig or dict): The config, or its
            :func:`config_to_dict` form.
        keys (sequence of (int, int)): ``(split, init)`` of the runs, trained
            together in this order.
        on_row (callable, optional): Called with each row as soon as its run
            finishes. (default: :obj:`None`)
        on_epoch (callable, optional): ``on_epoch(epoch, active_members)``
            after every epoch. (default: :obj:`None`)
        evaluate_test (bool, optional): Read each run's test accuracy;
            :obj:`False` never evaluates the test nodes and leaves
            ``test_acc`` out of the rows (tuning). (default: :obj:`True`)
        on_status (callable, optional): Called with the active runs'
            :class:`~diffresnet_pyg.experiments.training.EpochStatus` after
            every epoch of full-batch training. (default: :obj:`None`)
        checkpoint (str or Path, optional): A checkpoint file
            (:mod:`~diffresnet_pyg.experiments.checkpoints`; full-batch
            training): if it exists, training resumes from it (it must be of
            this config and ``keys``) and the rows it holds are not returned
            again; every ``checkpoint_seconds`` the training state and the
            rows so far are saved to it. (default: :obj:`None`)
        checkpoint_seconds (float, optional): Seconds between two saves.
            (default: :obj:`600.0`)
        skip (sequence of (int, int), optional): Runs of ``keys`` whose rows
            are not wanted (already saved): trained with the others, but
            neither passed to ``on_row`` nor returned. (default: ``()``)

    Returns:
        list[dict]: One row per run, in the order the runs finished: dataset,
        model, split and its seed, init and its seed, epochs, best epoch,
        validation accuracy and loss, test accuracy (unless
        ``evaluate_test=False``), seconds, batch size and the batch's wall
        time.

    Raises:
        ValueError: If ``keys`` is empty or names runs the config does not
            have.
    """
    if not isinstance(config, ExperimentConfig):
        config = config_from_dict(config)
    if config.model is None:
        raise ValueError("the config has no 'model' section")
    data, plan = _planned(config)
    keys = [(int(split), int(init)) for split, init in keys]
    unknown = [key for key in keys if key not in plan]
    if not keys or unknown:
        raise ValueError(
            f"keys must name runs of the config ({len(plan)} planned); "
            + (f"unknown (split, init): {unknown}" if unknown else "got none")
        )
    resume, saved_rows, print_ = None, [], protocol_free_fingerprint(config)
    if checkpoint is not None and Path(checkpoint).exists():
        saved = load_checkpoint(checkpoint)
        if (saved.fingerprint, saved.evaluate_test, saved.keys) != (
            print_,
            evaluate_test,
            tuple(keys),
        ):
            raise ValueError(
                f"{checkpoint}: saved for other runs (another config, keys or "
                "evaluate_test); remove it to start the chunk over"
            )
        resume, saved_rows = saved.training, saved.rows
    chunk = [plan[key] for key in keys]
    device = torch.device(worker_device(config.train.device))
    batched = config.train.batch_members > 1 and config.model.spec.batchable
    x, edge_index, y, edge_weight = _inputs(config, data, batched, device)
    num_classes = int(data.y.max()) + 1
    model = build_members(
        config.model,
        data.num_features,
        num_classes,
        [r.init_seed for r in chunk],
        stacked=batched,
    ).to(device)
    rows: list[dict[str, Any]] = []
    started = time.perf_counter() - (0.0 if resume is None else resume["seconds"])
    skip = {(int(split), int(init)) for split, init in skip}

    def on_finish(member: int, result: MemberResult) -> None:
        if chunk[member].key in skip:
            return
        row = make_row(
            config.dataset.label,
            config.model.name,
            chunk[member],
            result,
            batch_members=len(chunk),
            batch_seconds=time.perf_counter() - started,
            max_epochs=config.train.max_epochs,
        )
        rows.append(row)
        if on_row is not None:
            on_row(row)

    def on_checkpoint(training: dict[str, Any]) -> None:
        save_checkpoint(
            checkpoint,
            fingerprint=print_,
            evaluate_test=evaluate_test,
            keys=keys,
            rows=saved_rows + rows,
            training=training,
        )

    fit_chunk(
        config,
        model,
        x,
        edge_index,
        y,
        chunk,
        on_epoch=on_epoch,
        on_finish=on_finish,
        evaluate_test=evaluate_test,
        on_status=on_status,
        edge_weight=edge_weight,
        on_checkpoint=None if checkpoint is None else on_checkpoint,
        checkpoint_seconds=checkpoint_seconds,
        resume=resume,
    )
    return rows


def train_chunk(task: ChunkTask) -> list[dict[str, Any]]:
    """:func:`run_chunk` of ``task``'s config and keys (the executors' task)."""
    return run_chunk(task.config, task.keys, **task.run_options())


@dataclass(eq=False)
class _Point:
    """A claimed results folder being filled: one config of a run or sweep."""

    config: ExperimentConfig
    total: int
    left: int
    summary: dict[str, Any] | None = None

    @property
    def folder(self) -> Path:
        return Path(self.config.output)

    @property
    def label(self) -> str:
        return self.config.name or self.folder.name


def _check_runnable(config: ExperimentConfig, executor: ExecutorConfig) -> None:
    """Everything that can fail before a folder is claimed, checked up front.

    The device exists, the dataset loads and the splits can be drawn, and the
    model of the first run takes one forward pass on the whole graph (so an
    unstable step size or a model that does not fit the data fails here, not
    in the first run). The forward pass runs in evaluation mode on this
    process's device with the random state restored afterwards, so the runs
    are unchanged.
    """
    if config.model is None:
        raise ValueError("the config has no 'model' section")
    check_executor(executor, config.train.device)
    if executor.kind != "ray":  # Ray's GPUs live on the cluster, not here
        check_device(config.train.device)
    work = _resolved(config)
    data, plan = _planned(work)
    graph_edge_weights(work, data)
    if config.train.batching.method != "full" or not plan:
        return
    run = next(iter(plan.values()))
    device = torch.device(config.train.device)
    x, edge_index, _, edge_weight = _inputs(work, data, False, device)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        model = build_members(
            config.model, data.num_features, int(data.y.max()) + 1, [run.init_seed]
        ).to(device)
        model.eval()
        model(x, edge_index, *(() if edge_weight is None else (edge_weight,)))


def _resolved(config: ExperimentConfig) -> ExperimentConfig:
    """``config`` with its dataset root (or path) made absolute, for workers."""
    if config.dataset.path is None:
        where = {"root": str(resolve_root(config.dataset.root).resolve())}
    else:
        where = {"path": str(Path(config.dataset.path).resolve())}
    return dataclasses.replace(
        config, dataset=dataclasses.replace(config.dataset, **where)
    )


def _prepare(
    config: ExperimentConfig, point: int, evaluate_test: bool = True
) -> tuple[_Point, list[ChunkTask]]:
    """The pending runs of a claimed folder, as chunk tasks."""
    folder = Path(config.output)
    for name in SUMMARY_FILES:
        (folder / name).unlink(missing_ok=True)
    done = {_row_key(r) for r in load_rows(folder / RUNS_FILE)}
    work = _resolved(config)
    _, plan = _planned(work)
    _warn_repeated_seeds(config, plan)
    raw = config_to_dict(work)
    full_batch = config.train.batching.method == "full"
    minutes = config.executor.checkpoint_minutes if full_batch else None
    seconds = math.inf if minutes is None else 60.0 * minutes
    tasks, claimed = [], set()
    saved_chunks = folder_checkpoints(
        folder, protocol_free_fingerprint(work), evaluate_test
    )
    for saved in saved_chunks:
        recovered = [r for r in saved.rows if _row_key(r) not in done]
        if recovered:  # finished runs of this config, whatever the plan now
            append_rows(folder / RUNS_FILE, recovered)
        done |= {_row_key(r) for r in recovered}
        if all(key in done for key in saved.keys):
            remove_checkpoint(saved.path)
            continue
        if not full_batch or not set(saved.keys) <= set(plan):
            logger.warning(
                "removing %s: its chunk is not one of the planned runs", saved.path
            )
            remove_checkpoint(saved.path)
            continue
        tasks.append(
            ChunkTask(
                raw,
                saved.keys,
                point,
                evaluate_test,
                checkpoint=str(saved.path),
                checkpoint_seconds=seconds,
                skip=tuple(key for key in saved.keys if key in done),
            )
        )
        claimed |= set(saved.keys)
    pending = [run for key, run in plan.items() if key not in done | claimed]
    batch = config.train.batch_members if config.model.spec.batchable else 1
    logger.info(
        "%s: %d runs (%d done, %d resumed from checkpoints), %d at a time",
        folder,
        len(plan),
        sum(key in done for key in plan),
        len(claimed - done),
        batch,
    )
    for chunk in _chunks(pending, batch):
        keys = tuple(run.key for run in chunk)
        tasks.append(
            ChunkTask(
                raw,
                keys,
                point,
                evaluate_test,
                checkpoint=(
                    None if minutes is None else str(checkpoint_path(folder, keys))
                ),
                checkpoint_seconds=seconds,
            )
        )
    left = sum(key not in done for key in plan)  # rows beyond the plan don't count
    return _Point(config, len(plan), left), tasks


def _row_key(row: Mapping[str, Any]) -> tuple[int, int]:
    """A row's ``(split, init)``."""
    return int(row["split"]), int(row["init"])


def _progress_label(points: Sequence[_Point], point: _Point) -> str | None:
    """The point's name in progress lines: only when several points run."""
    return point.label if len(points) > 1 else None


def _train_here(
    points: Sequence[_Point], progress: RunProgress
) -> Callable[[ChunkTask], list[dict[str, Any]]]:
    """The ``"local"`` task: each row appended as soon as its run finishes."""

    def task(chunk: ChunkTask) -> list[dict[str, Any]]:
        point = points[chunk.point]
        label = _progress_label(points, point)
        train = point.config.train
        progress.set_description(point.label)
        progress.start_chunk(
            chunk.keys,
            label=label,
            patience=None if train.early_stopping == "none" else train.patience,
        )

        def on_row(row: dict[str, Any]) -> None:
            append_rows(point.folder / RUNS_FILE, [row])
            progress.run_finished(row, label=label, max_epochs=train.max_epochs)

        watch = progress.wants_epochs
        return run_chunk(
            chunk.config,
            chunk.keys,
            on_row=on_row,
            on_epoch=progress.epoch if watch else None,
            on_status=progress.status if watch else None,
            **chunk.run_options(),
        )

    return task


def _execute(
    points: Sequence[_Point],
    tasks: Sequence[ChunkTask],
    executor: ExecutorConfig,
    *,
    device: str,
    progress: Progress,
    desc: str,
    summarize: bool = True,
) -> None:
    """Train ``tasks`` with ``executor``, appending rows as chunks finish.

    ``"local"`` appends each run's row as soon as it finishes; the other
    executors return a chunk's rows when the chunk finishes, and they are
    appended then. A point's summary is written once all its runs are there
    (if ``summarize``). ``progress``: see
    :class:`~diffresnet_pyg.experiments.progress.RunProgress`.
    """
    total = sum(point.total for point in points)
    workers = num_workers(executor, device)
    reporter = RunProgress(
        progress,
        total=total,
        done=total - sum(point.left for point in points),
        desc=desc,
        logger=logger,
        workers=None if workers is None else max(1, min(workers, len(tasks))),
        batch=max((len(task.keys) for task in tasks), default=1),
    )

    def finish(point: _Point, count: int) -> None:
        point.left -= count
        if point.left == 0 and summarize:
            point.summary = write_summary(point.folder, expected_runs=point.total)

    for point in points:
        if point.left == 0:
            finish(point, 0)
    local = executor.kind == "local"
    task = _train_here(points, reporter) if local else train_chunk
    results = map_chunks(executor, task, tasks, device=device)
    try:
        for chunk, rows in results:
            point = points[chunk.point]
            if not local:
                append_rows(point.folder / RUNS_FILE, rows)
                label = _progress_label(points, point)
                for row in rows:
                    reporter.run_finished(
                        row, label=label, max_epochs=point.config.train.max_epochs
                    )
            if chunk.checkpoint is not None:  # its rows are saved now
                remove_checkpoint(chunk.checkpoint)
            finish(point, len(rows))
    finally:
        results.close()
        reporter.close()


@folder_lock_scope()
def run_experiment(
    config: ExperimentConfig, *, progress: Progress = True, evaluate_test: bool = True
) -> dict[str, Any] | None:
    """Run (or resume) every run of ``config``; return the summary.

    The chunks of runs are trained where ``config.executor`` says (this
    process, local worker processes or a Ray cluster; see
    :mod:`~diffresnet_pyg.experiments.executors`); the rows are the same
    whichever it is.

    Args:
        config (ExperimentConfig): A config without a ``sweep`` section.
        progress (bool or str, optional): ``True`` or ``"bar"``: progress
            bars; ``"log"``: a log line per finished run with the time left,
            and now and then one during long runs; ``False``: nothing (see
            :mod:`~diffresnet_pyg.experiments.progress`). (default: :obj:`True`)
        evaluate_test (bool, optional): Read each run's test accuracy.
            :obj:`False` (tuning, :mod:`~diffresnet_pyg.experiments.tune`)
            never evaluates the test nodes, writes rows without ``test_acc``
            and no summary. (default: :obj:`True`)

    Returns:
        dict or None: The summary written to ``summary.json``; :obj:`None`
        when ``evaluate_test=False``.

    Raises:
        ResultsFolderError: If the folder holds another config, or another
            process is writing to it (the folder stays locked until this
            returns: :func:`~diffresnet_pyg.experiments.results.lock_folder`).
    """
    if config.sweep is not None:
        raise ValueError("this config has a 'sweep' section: use run_sweep")
    _check_runnable(config, config.executor)
    claim_folder(Path(config.output), config)
    point, tasks = _prepare(config, 0, evaluate_test)
    _execute(
        [point],
        tasks,
        config.executor,
        device=config.train.device,
        progress=progress,
        desc=point.label,
        summarize=evaluate_test,
    )
    return point.summary


@folder_lock_scope()
def run_sweep(config: ExperimentConfig, *, progress: Progress = True) -> list[Path]:
    """Run every point of a sweep config, then write its table and plot.

    Each (method, value) point is an ordinary results folder under
    ``config.output``, resumable on its own and refusing results of another
    config; ``sweep.yaml`` lists them and ``config.yaml`` holds the sweep as
    last run. A sweep can therefore be edited (a method added, one method's
    settings changed and its folders deleted) and rerun: unchanged points
    keep their runs. Every folder is claimed before any run starts, and the
    chunks of all points go to one executor (``config.executor``), so
    workers stay busy across points. ``progress`` is as in
    :func:`run_experiment` (the lines name the point).

    Returns:
        list[pathlib.Path]: The report files written.
    """
    points = expand_sweep(config)
    named = [
        dataclasses.replace(point, name=f"{label} {config.sweep.axis}={value}")
        for label, value, point in points
    ]
    for point in named:
        _check_runnable(point, config.executor)
    folder = Path(config.output)
    lock_folder(folder)
    text = yaml.safe_dump(config_to_dict(config), sort_keys=False)
    write_atomic(folder / CONFIG_FILE, text)
    methods: dict[str, dict[str, Any]] = {}
    for label, value, point in points:
        method = next(m for m in config.sweep.methods if m.label == label)
        entry = methods.setdefault(
            label, {"label": label, "key": method.key, "values": [], "dir": []}
        )
        entry["values"].append(value)
        entry["dir"].append(os.path.relpath(point.output, folder))
    sweep = {"axis": config.sweep.axis, "methods": list(methods.values())}
    write_atomic(folder / SWEEP_FILE, yaml.safe_dump(sweep, sort_keys=False))
    for point in named:
        claim_folder(Path(point.output), point)
    prepared, tasks = [], []
    for i, point in enumerate(named):
        entry, point_tasks = _prepare(point, i)
        prepared.append(entry)
        tasks.extend(point_tasks)
    _execute(
        prepared,
        tasks,
        config.executor,
        device=config.train.device,
        progress=progress,
        desc=config.name or folder.name,
    )
    return report_directory(folder)


# ---------------------------------------------------------------------------
# Dry runs: the plan and an estimate of the wall time
# ---------------------------------------------------------------------------

#: Epochs the probe of a dry run trains the first pending chunk for, at most.
PROBE_EPOCHS = 10
#: Seconds after which the probe stops early (once it has timed two epochs).
PROBE_SECONDS = 20.0
#: Epochs per run assumed before any run finished, as multiples of
#: ``train.patience`` (early stopping decides; the committed Cora and Citeseer
#: studies took 1.5-9 x patience on average).
ASSUMED_PATIENCE_FACTORS = (2, 20)


@dataclass(frozen=True)
class Plan:
    r"""What running a config would do, and about how long it would take.

    The estimate of the wall time of the pending runs is

    .. math::
        T \approx \frac{C \, \bar{E} \, s}{\min(W, C)},

    with :math:`C` chunks, :math:`\bar{E}` the expected epochs of a chunk,
    :math:`s` the seconds per epoch of the probe (the first pending chunk
    trained here for a few epochs, with the threads of a worker) and
    :math:`W` workers, taken not to slow each other down. :math:`\bar{E}` is
    the mean ``epochs`` of the runs already in the folder (for chunks of
    :math:`B > 1` runs, the expected longest of :math:`B` runs drawn from
    them: a batch trains until its last member stops), ``train.max_epochs``
    when early stopping is off, and otherwise a range
    (:data:`ASSUMED_PATIENCE_FACTORS` times ``train.patience``).

    Attributes:
        label (str): The config's name (or its folder's).
        folder (pathlib.Path): The results folder.
        exists (bool): Whether the folder exists (its rows were read).
        total (int): Runs of the config.
        done (int): Runs already in the folder.
        batch (int): Runs per chunk (trained as one batched model).
        chunks (int): Chunks of the pending runs.
        executor (str): ``executor.kind``.
        workers (int or None): Chunks trained at once (:obj:`None`: as many
            as the Ray cluster schedules).
        threads (int): torch threads per worker (and of the probe).
        device (str): ``train.device``.
        probe_keys (tuple): ``(split, init)`` of the probed chunk's runs.
        probe_epochs (int): Epochs timed by the probe (after one warm-up
            epoch; 0 when nothing is pending).
        seconds_per_epoch (float or None): The probed chunk's seconds per
            epoch (:obj:`None` when nothing is pending).
        finished (int): Finished runs the epochs are taken from.
        epochs_per_run (float or None): Their mean epochs.
        chunk_epochs (tuple of float): Expected epochs of one chunk,
            ``(low, high)`` (equal unless assumed).
        basis (str): Where ``chunk_epochs`` comes from.
        checkpoints (tuple of str): One line per chunk checkpoint in the
            folder (:mod:`~diffresnet_pyg.experiments.checkpoints`); the
            estimate counts those chunks from their start.
    """

    label: str
    folder: Path
    exists: bool
    total: int
    done: int
    batch: int
    chunks: int
    executor: str
    workers: int | None
    threads: int
    device: str
    probe_keys: tuple[tuple[int, int], ...]
    probe_epochs: int
    seconds_per_epoch: float | None
    finished: int
    epochs_per_run: float | None
    chunk_epochs: tuple[float, float]
    basis: str
    checkpoints: tuple[str, ...] = ()

    @property
    def pending(self) -> int:
        """Runs not in the folder yet."""
        return self.total - self.done

    @property
    def parallel(self) -> int | None:
        r"""Chunks trained at once, :math:`\min(W, C)` (:obj:`None`: unknown)."""
        if self.workers is None:
            return None
        return max(1, min(self.workers, self.chunks))

    @property
    def serial_seconds(self) -> tuple[float, float]:
        """Training time of every pending chunk, one after another."""
        s = self.seconds_per_epoch or 0.0
        low, high = self.chunk_epochs
        return self.chunks * low * s, self.chunks * high * s

    @property
    def wall_seconds(self) -> tuple[float, float] | None:
        """The estimated wall time (:obj:`None` when the parallelism is unknown)."""
        if self.parallel is None:
            return None
        low, high = self.serial_seconds
        return low / self.parallel, high / self.parallel


def _expected_longest(epochs: Sequence[int], batch: int) -> float:
    r"""Expected longest of ``batch`` runs drawn from ``epochs`` (with replacement).

    With the epochs sorted, :math:`e_{(1)} \le \dots \le e_{(K)}`,

    .. math::
        \mathbb{E}\bigl[\max_{b \le B} E_b\bigr]
        = \sum_{k=1}^{K} e_{(k)}
          \Bigl[\bigl(\tfrac{k}{K}\bigr)^B - \bigl(\tfrac{k-1}{K}\bigr)^B\Bigr],

    the mean for :math:`B = 1`.

    Example:
        >>> _expected_longest([100, 300], 1), _expected_longest([100, 300], 2)
        (200.0, 250.0)
    """
    ordered = sorted(epochs)
    k = len(ordered)
    return float(
        sum(
            e * ((i / k) ** batch - ((i - 1) / k) ** batch)
            for i, e in enumerate(ordered, start=1)
        )
    )


def _chunk_epochs(
    config: ExperimentConfig, epochs: Sequence[int], batch: int
) -> tuple[tuple[float, float], str]:
    """Expected epochs of a chunk and where they come from (see :class:`Plan`)."""
    train = config.train
    if train.early_stopping == "none":
        e = float(train.max_epochs)
        return (e, e), "train.early_stopping: none, every run trains max_epochs"
    if epochs:
        runs = f"{len(epochs)} finished run{'s' if len(epochs) != 1 else ''}"
        mean = sum(epochs) / len(epochs)
        if batch == 1:
            return (mean, mean), f"mean of {runs}"
        e = _expected_longest(epochs, batch)
        return (e, e), (
            f"expected longest of {batch} runs, from {runs} (mean {mean:.0f}); "
            "members leave the batch as they stop, so this is an upper bound"
        )
    low_f, high_f = ASSUMED_PATIENCE_FACTORS
    low = float(min(train.max_epochs, low_f * train.patience))
    high = float(min(train.max_epochs, high_f * train.patience))
    return (low, high), (
        f"no run finished yet: early stopping ({train.early_stopping}, patience "
        f"{train.patience}) decides, so a range is assumed ({low_f}-{high_f} x "
        "patience)"
    )


class _ProbeDone(Exception):
    """Raised from the probe's epoch callback to end it early."""


def _probe(
    config: ExperimentConfig,
    keys: Sequence[tuple[int, int]],
    *,
    threads: int,
    epochs: int,
    budget: float,
) -> tuple[int, float]:
    """Seconds per epoch of the chunk ``keys``, trained here for a few epochs.

    The chunk is trained (:func:`run_chunk`, which writes nothing) for at most
    ``epochs`` epochs with ``threads`` torch threads, stopping once ``budget``
    seconds are timed; the first epoch is a warm-up and not timed (unless it
    is the only one), nor are epochs after a member stopped. torch's, NumPy's
    and Python's random states and torch's thread count are restored.

    Returns:
        tuple: ``(epochs timed, seconds per epoch)``.
    """
    work = dataclasses.replace(
        config,
        train=dataclasses.replace(
            config.train, max_epochs=max(1, min(epochs, config.train.max_epochs))
        ),
    )
    marks: list[float] = []
    started = time.perf_counter()

    def on_epoch(epoch: int, active: int) -> None:
        if active < len(keys):  # a member stopped: no longer the full chunk
            raise _ProbeDone
        marks.append(time.perf_counter())
        if len(marks) >= 3 and marks[-1] - marks[0] >= budget:
            raise _ProbeDone

    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    devices = list(range(torch.cuda.device_count())) if cuda else []
    np_state, py_state = np.random.get_state(), random.getstate()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=devices):
            try:
                run_chunk(work, keys, on_epoch=on_epoch)
            except _ProbeDone:
                pass
    finally:
        torch.set_num_threads(previous)
        np.random.set_state(np_state)
        random.setstate(py_state)
    if len(marks) >= 2:
        return len(marks) - 1, (marks[-1] - marks[0]) / (len(marks) - 1)
    if marks:
        return 1, marks[0] - started
    return 0, time.perf_counter() - started  # stopped in the first epoch


def _plan_point(
    config: ExperimentConfig,
    executor: ExecutorConfig,
    *,
    probe_epochs: int,
    probe_seconds: float,
) -> Plan:
    """The :class:`Plan` of one config, its folder read and nothing written."""
    from diffresnet_pyg.experiments.results import (
        _experiment_differences,
        check_config_folder,
        read_rows,
    )

    _check_runnable(config, executor)
    folder = Path(config.output)
    check_config_folder(
        folder,
        config,
        from_dict=config_from_dict,
        differences=_experiment_differences,
    )
    work = _resolved(config)
    _, plan = _planned(work)
    _warn_repeated_seeds(config, plan)
    rows = read_rows(folder / RUNS_FILE) if folder.is_dir() else []
    finished = {_row_key(r): r for r in rows if _row_key(r) in plan}
    pending = [run for key, run in plan.items() if key not in finished]
    batch = config.train.batch_members if config.model.spec.batchable else 1
    chunks = list(_chunks(pending, batch))
    device = config.train.device
    threads = worker_threads(executor, device) or torch.get_num_threads()
    probe_keys: tuple[tuple[int, int], ...] = ()
    timed, per_epoch = 0, None
    if chunks:
        probe_keys = tuple(run.key for run in chunks[0])
        timed, per_epoch = _probe(
            work,
            probe_keys,
            threads=threads,
            epochs=probe_epochs,
            budget=probe_seconds,
        )
    epochs = [int(r["epochs"]) for r in finished.values() if "epochs" in r]
    chunk_epochs, basis = _chunk_epochs(config, epochs, batch)
    return Plan(
        label=config.name or folder.name,
        folder=folder,
        exists=folder.is_dir(),
        total=len(plan),
        done=len(finished),
        batch=batch,
        chunks=len(chunks),
        executor=executor.kind,
        workers=num_workers(executor, device),
        threads=threads,
        device=device,
        probe_keys=probe_keys,
        probe_epochs=timed,
        seconds_per_epoch=per_epoch,
        finished=len(epochs),
        epochs_per_run=sum(epochs) / len(epochs) if epochs else None,
        chunk_epochs=chunk_epochs,
        basis=basis,
        checkpoints=tuple(
            describe_checkpoints(folder, protocol_free_fingerprint(work), True)
        ),
    )


def plan_experiment(
    config: ExperimentConfig,
    *,
    probe_epochs: int = PROBE_EPOCHS,
    probe_seconds: float = PROBE_SECONDS,
) -> Plan:
    """What :func:`run_experiment` would do, and how long; nothing is written.

    Checks everything :func:`run_experiment` checks before it claims the
    folder (the device, the data, the splits, one forward pass, and that the
    folder, if it exists, holds results of this config), reads the folder's
    rows without repairing them, then times a probe: the first pending chunk
    trained in this process for at most ``probe_epochs`` epochs (or
    ``probe_seconds``), with the threads of one worker. The probe's rows are
    discarded and the random states are restored, so the runs that follow are
    unchanged. No folder or file is created (a dataset that is not on disk
    yet is downloaded, as a run would).

    Args:
        config (ExperimentConfig): A config without a ``sweep`` section.
        probe_epochs (int, optional): Most epochs of the probe.
            (default: :data:`PROBE_EPOCHS`)
        probe_seconds (float, optional): Time after which the probe stops.
            (default: :data:`PROBE_SECONDS`)

    Returns:
        Plan: The runs planned, done and pending, the chunks, the executor
        and the estimate (:func:`format_plan` prints it).
    """
    if config.sweep is not None:
        raise ValueError("this config has a 'sweep' section: use plan_sweep")
    return _plan_point(
        config,
        config.executor,
        probe_epochs=probe_epochs,
        probe_seconds=probe_seconds,
    )


def plan_sweep(
    config: ExperimentConfig,
    *,
    probe_epochs: int = 5,
    probe_seconds: float = 10.0,
) -> list[Plan]:
    """:func:`plan_experiment` of every point of a sweep (nothing is written).

    The points share the sweep's executor, so their chunks share its workers
    (:func:`format_plans` adds the total). The probe is shorter by default,
    as every point is probed.
    """
    plans = []
    for label, value, point in expand_sweep(config):
        named = dataclasses.replace(point, name=f"{label} {config.sweep.axis}={value}")
        plans.append(
            _plan_point(
                named,
                config.executor,
                probe_epochs=probe_epochs,
                probe_seconds=probe_seconds,
            )
        )
    return plans


def _about(seconds: float) -> str:
    """A duration for people: ``42 s``, ``17 min``, ``17.5 h``.

    Example:
        >>> _about(42.4), _about(1000), _about(63000)
        ('42 s', '17 min', '17.5 h')
    """
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _span(low: float, high: float, about: Callable[[float], str]) -> str:
    return about(low) if math.isclose(low, high) else f"{about(low)} - {about(high)}"


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def _executor_text(plan: Plan) -> str:
    threads = _plural(plan.threads, "thread")
    if plan.executor == "local":
        return f"local (this process) x {threads}"
    if plan.workers is None:
        return f"{plan.executor}: as many tasks as the cluster runs, {threads} each"
    if plan.executor == "processes":
        workers = _plural(plan.workers, "worker process", "worker processes")
    else:
        workers = _plural(plan.workers, "Ray task")
    return f"{plan.executor}: {workers} x {threads}"


def _estimate_text(serial: tuple[float, float], parallel: int | None) -> str:
    if parallel is None:
        return (
            f"{_span(*serial, _about)} of training one chunk at a time; the "
            "cluster's free CPUs and GPUs divide it"
        )
    low, high = serial[0] / parallel, serial[1] / parallel
    hms = _span(low, high, format_duration)
    return f"≈ {_span(low, high, _about)} ({hms})"


def format_plan(plan: Plan) -> str:
    """The lines a dry run prints for one results folder.

    Example output::

        cora-diffresnet-reference: results/cora/diffresnet_reference (new)
        plan: 2000 runs (0 done, 2000 pending), 2000 chunks of 1 run, on
          processes: 2 worker processes x 1 thread, device cpu
        probe: split 0, init 0, 9 epochs timed in this process with 1
          thread: 0.310 s/epoch
        epochs per chunk: 100 - 1000 (no run finished yet: ...)
        estimate: 2000 chunks x 100 - 1000 epochs x 0.310 s / 2 workers
          ≈ 8.6 h - 86.1 h (08:36:40 - 86:06:40)
    """
    state = "exists, read only" if plan.exists else "does not exist yet"
    lines = [f"{plan.label}: {plan.folder} ({state}; a dry run writes nothing)"]
    lines.append(
        f"plan: {_plural(plan.total, 'run')} ({plan.done} done, {plan.pending} "
        f"pending), {_plural(plan.chunks, 'chunk')} of {_plural(plan.batch, 'run')}"
        f", on {_executor_text(plan)}, device {plan.device}"
    )
    lines.extend(f"resumes from {line}" for line in plan.checkpoints)
    if plan.seconds_per_epoch is None:
        lines.append("estimate: nothing to run; every run is in the folder")
        return "\n".join(lines)
    from diffresnet_pyg.experiments.progress import _keys_text

    lines.append(
        f"probe: {_keys_text(plan.probe_keys)}, "
        f"{_plural(plan.probe_epochs, 'epoch')} timed in this process with "
        f"{_plural(plan.threads, 'thread')} (after a warm-up epoch): "
        f"{plan.seconds_per_epoch:.3f} s/epoch"
    )
    low, high = plan.chunk_epochs
    epochs = f"{low:.0f}" if math.isclose(low, high) else f"{low:.0f} - {high:.0f}"
    lines.append(f"epochs per chunk: {epochs} ({plan.basis})")
    if plan.parallel is None:
        over = ""
    else:
        over = f" / {_plural(plan.parallel, 'worker')}"
        if plan.parallel > 1:
            over += " (taken not to slow each other down)"
    lines.append(
        f"estimate: {_plural(plan.chunks, 'chunk')} x {epochs} epochs x "
        f"{plan.seconds_per_epoch:.3f} s{over} "
        f"{_estimate_text(plan.serial_seconds, plan.parallel)}"
    )
    return "\n".join(lines)


def format_plans(plans: Sequence[Plan]) -> str:
    r""":func:`format_plan` of each point, and the total of a sweep.

    The points' chunks share the workers, so the total wall time is the sum
    of the points' serial times over :math:`\min(W, \sum C)`.
    """
    text = "\n\n".join(format_plan(plan) for plan in plans)
    if len(plans) <= 1:
        return text
    chunks = sum(plan.chunks for plan in plans)
    pending = sum(plan.pending for plan in plans)
    workers = plans[0].workers
    parallel = None if workers is None else max(1, min(workers, chunks))
    serial = tuple(sum(plan.serial_seconds[i] for plan in plans) for i in (0, 1))
    if chunks == 0:
        return text + f"\n\nsweep: {len(plans)} points, nothing to run"
    on = "" if parallel is None else f" on {_plural(parallel, 'worker')}"
    return (
        text + f"\n\nsweep: {len(plans)} points, {pending} runs pending in "
        f"{_plural(chunks, 'chunk')}{on}: {_estimate_text(serial, parallel)}"
    )

"""Run every (split, init) of a config, one row per run, resumable.

A results folder holds:

* ``config.yaml``: the resolved config (all defaults filled in);
* ``runs.jsonl``: one JSON row per finished run, appended (and flushed to
  disk) as soon as the run finishes;
* ``summary.json`` / ``summary.md``: written from the rows once every run is
  there (deleted when a run starts, so a summary never describes a partial
  folder).

Rerunning the same config resumes: runs already in ``runs.jsonl`` are skipped,
and none is ever written twice. A folder written for a different config is
refused. Growing ``split.num_splits`` or ``split.num_inits`` keeps the rows
already there (the seeds of the first splits and inits do not depend on how
many are drawn).

Runs are trained ``train.batch_members`` at a time as one batched model
(:mod:`diffresnet_pyg.experiments.training`). The members of a batch share
the global random stream for dropout, so a run's exact result depends on the
batch it was trained in (its distribution does not); with
``batch_members=1`` every run is exactly the unbatched run of its seeds.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import Tensor
from torch_geometric.data import Data
from tqdm.auto import tqdm

from diffresnet_pyg.data import load_dataset, protocol_splits
from diffresnet_pyg.data.split import SEED_HIGH
from diffresnet_pyg.experiments.config import (
    ExperimentConfig,
    config_from_dict,
    config_to_dict,
    expand_sweep,
    fingerprint,
)
from diffresnet_pyg.experiments.models import (
    BATCHABLE_MODELS,
    SPARSE_INPUT_MODELS,
    build_members,
    first_layer_weights,
)
from diffresnet_pyg.experiments.report import (
    read_rows,
    report_directory,
    write_summary,
)
from diffresnet_pyg.experiments.training import (
    MemberResult,
    stack_index,
    train_members,
)

__all__ = ["ResultsFolderError", "RunSpec", "plan_runs", "run_experiment", "run_sweep"]

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
RUNS_FILE = "runs.jsonl"
SWEEP_FILE = "sweep.yaml"
SUMMARY_FILES = ("summary.json", "summary.md")


class ResultsFolderError(RuntimeError):
    """A results folder that cannot be used for this config."""


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


def plan_runs(config: ExperimentConfig, data: Data) -> list[RunSpec]:
    """All runs of ``config`` on ``data``, split by split, init by init.

    ``"per_class"``: the authors' protocol
    (:func:`~diffresnet_pyg.data.protocol_splits`). ``"public"``: the
    dataset's ``train_mask``/``val_mask``/``test_mask``, with init seeds
    ``RandomState(master_seed).randint(0, 1000000, num_inits)``.
    """
    split = config.split
    runs = []
    if split.scheme == "public":
        missing = [m for m in ("train_mask", "val_mask", "test_mask") if m not in data]
        if missing:
            raise ValueError(
                f"split.scheme 'public' needs the dataset's own masks, but "
                f"{config.dataset.name!r} has no {', '.join(missing)}"
            )
        parts = [data[m].nonzero().flatten() for m in ("train_mask", "val_mask")]
        test = data.test_mask.nonzero().flatten()
        rs = np.random.RandomState(split.master_seed)
        for i, seed in enumerate(rs.randint(0, SEED_HIGH, split.num_inits)):
            runs.append(
                RunSpec(0, split.master_seed, i, int(seed), parts[0], parts[1], test)
            )
        return runs
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


def _protocol_free(config: ExperimentConfig) -> str:
    """Fingerprint that ignores how many splits and inits are drawn."""
    split = dataclasses.replace(config.split, num_splits=1, num_inits=1)
    return fingerprint(dataclasses.replace(config, split=split))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def claim_folder(folder: Path, config: ExperimentConfig) -> None:
    """Create ``folder`` for ``config`` or check that it was made for it.

    Raises:
        ResultsFolderError: If the folder's ``config.yaml`` describes a
            different experiment (anything but where the files are, the
            number of splits/inits, the batch size and the device).
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CONFIG_FILE
    if path.exists():
        try:
            old = config_from_dict(yaml.safe_load(path.read_text(encoding="utf-8")))
        except Exception as exc:  # noqa: BLE001 - any unreadable config refuses
            raise ResultsFolderError(
                f"{folder} holds a config.yaml that cannot be read ({exc}); "
                "choose another output folder or remove it"
            ) from exc
        if _protocol_free(old) != _protocol_free(config):
            old_d, new_d = config_to_dict(old), config_to_dict(config)
            diff = [
                f"{section}.{key}: {old_d[section].get(key)!r} -> {value!r}"
                for section in ("dataset", "split", "model", "train")
                if isinstance(new_d.get(section), dict)
                for key, value in new_d[section].items()
                if old_d.get(section, {}).get(key) != value
            ]
            raise ResultsFolderError(
                f"{folder} holds results of a different config ("
                + ("; ".join(diff) or "sweep or model differs")
                + "). Use another output folder, or delete this one to start over"
            )
    text = yaml.safe_dump(config_to_dict(config), sort_keys=False)
    _write_atomic(path, text)


def _load_done(folder: Path) -> list[dict[str, Any]]:
    """Rows already written; a truncated last row is dropped from the file."""
    path = folder / RUNS_FILE
    if not path.exists():
        return []
    rows = read_rows(path)
    text = "".join(json.dumps(row) + "\n" for row in rows)
    if path.read_text(encoding="utf-8") != text:
        _write_atomic(path, text)
    return rows


def _append_rows(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Append JSON rows to ``path`` and make them durable (fsync)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(json.dumps(row) + "\n" for row in rows))
        f.flush()
        os.fsync(f.fileno())


def _chunks(items: Sequence[RunSpec], size: int) -> Iterator[list[RunSpec]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _features(config: ExperimentConfig, data: Data, batched: bool) -> Tensor:
    """Sparse CSR features where the model takes them, else dense."""
    name = config.model.name
    takes_sparse = name in SPARSE_INPUT_MODELS or (batched and name != "grand")
    if config.train.sparse_features and takes_sparse:
        return data.x.to_sparse_csr()
    return data.x


def _fit(
    config: ExperimentConfig,
    model: torch.nn.Module,
    x: Tensor,
    edge_index: Tensor,
    y: Tensor,
    chunk: Sequence[RunSpec],
    *,
    on_epoch: Callable[[int, int], None] | None,
    on_finish: Callable[[int, MemberResult], None],
) -> None:
    """Train the members of one chunk of runs (on ``x``'s device) as configured."""
    train = config.train
    device = x.device
    train_members(
        model,
        x,
        edge_index,
        y,
        stack_index([r.train_idx for r in chunk], device),
        stack_index([r.val_idx for r in chunk], device),
        stack_index([r.test_idx for r in chunk], device),
        optimizer=train.optimizer,
        lr=train.lr,
        weight_decay=train.weight_decay,
        momentum=train.momentum,
        max_epochs=train.max_epochs,
        patience=train.patience,
        early_stopping=train.early_stopping,
        decay_params=(
            first_layer_weights if train.weight_decay_on == "first_layer" else None
        ),
        on_epoch=on_epoch,
        on_finish=on_finish,
    )


def run_experiment(
    config: ExperimentConfig, *, progress: bool = True
) -> dict[str, Any]:
    """Run (or resume) every run of ``config``; return the summary.

    Args:
        config (ExperimentConfig): A config without a ``sweep`` section.
        progress (bool, optional): Show a progress bar. (default: :obj:`True`)

    Returns:
        dict: The summary written to ``summary.json``.
    """
    if config.sweep is not None:
        raise ValueError("this config has a 'sweep' section: use run_sweep")
    if config.model is None:
        raise ValueError("the config has no 'model' section")
    folder = Path(config.output)
    claim_folder(folder, config)
    for name in SUMMARY_FILES:
        (folder / name).unlink(missing_ok=True)
    done = {(int(r["split"]), int(r["init"])) for r in _load_done(folder)}

    data = load_dataset(
        config.dataset.name,
        config.dataset.root,
        standardize=config.dataset.standardize,
        normalize_features=config.dataset.normalize_features,
    )
    runs = plan_runs(config, data)
    pending = [r for r in runs if r.key not in done]
    train = config.train
    batch = train.batch_members if config.model.name in BATCHABLE_MODELS else 1
    device = torch.device(train.device)
    features: dict[bool, Tensor] = {}  # by "batched": a chunk of one is not
    edge_index, y = data.edge_index.to(device), data.y.to(device)
    num_classes = int(data.y.max()) + 1
    rows_path = folder / RUNS_FILE
    logger.info(
        "%s: %d runs (%d done), %d at a time",
        folder,
        len(runs),
        len(runs) - len(pending),
        batch,
    )

    bar = tqdm(
        total=len(runs),
        initial=len(runs) - len(pending),
        desc=config.name or folder.name,
        unit="run",
        disable=not progress,
        dynamic_ncols=True,
    )
    for chunk in _chunks(pending, batch):
        batched = len(chunk) > 1
        if batched not in features:
            features[batched] = _features(config, data, batched).to(device)
        x = features[batched]
        model = build_members(
            config.model, data.num_features, num_classes, [r.init_seed for r in chunk]
        ).to(device)
        started = time.perf_counter()

        def on_epoch(epoch: int, active: int, chunk: list[RunSpec] = chunk) -> None:
            bar.set_postfix(epoch=epoch, active=f"{active}/{len(chunk)}")

        def on_finish(
            member: int,
            result: MemberResult,
            chunk: list[RunSpec] = chunk,
            started: float = started,
        ) -> None:
            run = chunk[member]
            _append_rows(
                rows_path,
                [
                    {
                        "dataset": config.dataset.name,
                        "model": config.model.name,
                        "split": run.split,
                        "split_seed": run.split_seed,
                        "init": run.init,
                        "init_seed": run.init_seed,
                        "epochs": result.epochs,
                        "best_epoch": result.best_epoch,
                        "val_acc": result.val_acc,
                        "val_loss": result.val_loss,
                        "test_acc": result.test_acc,
                        "seconds": result.train_seconds,
                        "batch_members": len(chunk),
                        "batch_seconds": time.perf_counter() - started,
                    }
                ],
            )
            bar.update()

        _fit(
            config,
            model,
            x,
            edge_index,
            y,
            chunk,
            on_epoch=on_epoch if progress else None,
            on_finish=on_finish,
        )
    bar.close()
    return write_summary(folder, expected_runs=len(runs))


def run_sweep(config: ExperimentConfig, *, progress: bool = True) -> list[Path]:
    """Run every point of a sweep config, then write its table and plot.

    Each (method, value) point is an ordinary results folder under
    ``config.output``, resumable on its own and refusing results of another
    config; ``sweep.yaml`` lists them and ``config.yaml`` holds the sweep as
    last run. A sweep can therefore be edited (a method added, one method's
    settings changed and its folders deleted) and rerun: unchanged points
    keep their runs.

    Returns:
        list[pathlib.Path]: The report files written.
    """
    points = expand_sweep(config)
    folder = Path(config.output)
    folder.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config_to_dict(config), sort_keys=False)
    _write_atomic(folder / CONFIG_FILE, text)
    methods: dict[str, dict[str, Any]] = {}
    for label, value, point in points:
        method = next(m for m in config.sweep.methods if m.label == label)
        entry = methods.setdefault(
            label, {"label": label, "key": method.key, "values": [], "dir": []}
        )
        entry["values"].append(value)
        entry["dir"].append(os.path.relpath(point.output, folder))
    sweep = {"axis": config.sweep.axis, "methods": list(methods.values())}
    _write_atomic(folder / SWEEP_FILE, yaml.safe_dump(sweep, sort_keys=False))
    for label, value, point in points:
        if progress:
            logger.info("%s, %s = %s", label, config.sweep.axis, value)
        point = dataclasses.replace(point, name=f"{label} {config.sweep.axis}={value}")
        run_experiment(point, progress=progress)
    return report_directory(folder)

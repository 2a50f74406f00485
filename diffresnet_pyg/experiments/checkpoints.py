"""Checkpoints of chunks of runs in training: an interrupted chunk resumes.

A chunk of runs trains as one model; a long one (deep models, runs that train
to ``train.max_epochs``) can take hours. With ``executor.checkpoint_minutes``
set, the chunk's whole training state
(:func:`~diffresnet_pyg.experiments.training.train_members`'s
``on_checkpoint``) and the rows of its finished runs are saved every so many
minutes to ``<results folder>/checkpoints/<split>-<init>.pt`` (named after
the chunk's first run). The next command on the folder appends the saved rows
that are not in ``runs.jsonl`` yet, and trains the chunk on from the saved
epoch; the rows are those of an uninterrupted run, bit for bit (at the same
number of torch threads). The file is removed once the chunk's rows are in
``runs.jsonl``.

A checkpoint records the folder's config fingerprint (whatever its number of
splits and inits,
:func:`~diffresnet_pyg.experiments.results.protocol_free_fingerprint`) and
whether the runs read their test accuracy; one that matches neither is stale
and removed.
The files hold tensors and plain data only and are read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "CHECKPOINT_DIR",
    "ChunkCheckpoint",
    "checkpoint_path",
    "describe_checkpoints",
    "folder_checkpoints",
    "remove_checkpoint",
    "save_checkpoint",
]

logger = logging.getLogger(__name__)

#: The folder of a results folder that holds its chunks' checkpoints.
CHECKPOINT_DIR = "checkpoints"

_FORMAT = 1


@dataclass(frozen=True)
class ChunkCheckpoint:
    """A saved chunk: its runs, finished rows and training state.

    Attributes:
        path (Path): The file.
        fingerprint (str): The protocol-free config fingerprint of the folder
            it belongs to.
        evaluate_test (bool): Whether its runs read their test accuracy.
        keys (tuple): ``(split, init)`` of the chunk's runs, in training order.
        rows (list): Rows of the runs that had finished when it was saved.
        training (dict): The training state (``resume`` of
            :func:`~diffresnet_pyg.experiments.training.train_members`).
    """

    path: Path
    fingerprint: str
    evaluate_test: bool
    keys: tuple[tuple[int, int], ...]
    rows: list[dict[str, Any]]
    training: dict[str, Any]


def checkpoint_path(folder: str | Path, keys: Sequence[tuple[int, int]]) -> Path:
    """The checkpoint file of the chunk ``keys`` in results folder ``folder``.

    Example:
        >>> checkpoint_path("results/cora/gat", [(3, 1), (3, 2)]).as_posix()
        'results/cora/gat/checkpoints/3-1.pt'
    """
    split, init = keys[0]
    return Path(folder) / CHECKPOINT_DIR / f"{split}-{init}.pt"


def save_checkpoint(
    path: str | Path,
    *,
    fingerprint: str,
    evaluate_test: bool,
    keys: Sequence[tuple[int, int]],
    rows: Sequence[dict[str, Any]],
    training: dict[str, Any],
) -> None:
    """Write a chunk's checkpoint atomically (a complete file or the old one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(
        {
            "format": _FORMAT,
            "fingerprint": fingerprint,
            "evaluate_test": evaluate_test,
            "keys": [list(key) for key in keys],
            "rows": list(rows),
            "training": training,
        },
        partial,
    )
    os.replace(partial, path)


def load_checkpoint(path: str | Path) -> ChunkCheckpoint:
    """Read a file :func:`save_checkpoint` wrote.

    Raises:
        ValueError: If the file is not such a checkpoint.
    """
    path = Path(path)
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file
        raise ValueError(f"{path}: not a readable checkpoint ({error})") from error
    if not isinstance(raw, dict) or raw.get("format") != _FORMAT:
        raise ValueError(f"{path}: not a checkpoint of format {_FORMAT}")
    return ChunkCheckpoint(
        path=path,
        fingerprint=raw["fingerprint"],
        evaluate_test=bool(raw["evaluate_test"]),
        keys=tuple((int(s), int(i)) for s, i in raw["keys"]),
        rows=list(raw["rows"]),
        training=raw["training"],
    )


def _scan(
    folder: str | Path, fingerprint: str, evaluate_test: bool
) -> Iterator[tuple[Path, ChunkCheckpoint | ValueError | None]]:
    """Each checkpoint file of ``folder`` with what it holds for these runs.

    The checkpoint when it belongs to them; the error when it cannot be
    read; :obj:`None` when it was saved for another config, or for runs that
    read (or do not read) their test accuracy.
    """
    directory = Path(folder) / CHECKPOINT_DIR
    if not directory.is_dir():
        return
    for path in sorted(directory.glob("*.pt")):
        try:
            checkpoint = load_checkpoint(path)
        except ValueError as error:
            yield path, error
            continue
        ours = (checkpoint.fingerprint, checkpoint.evaluate_test) == (
            fingerprint,
            evaluate_test,
        )
        yield path, checkpoint if ours else None


def folder_checkpoints(
    folder: str | Path, fingerprint: str, evaluate_test: bool
) -> list[ChunkCheckpoint]:
    """The checkpoints of ``folder`` that belong to its runs; stale ones removed.

    A file that cannot be read, or was saved for another config or for runs
    that read (or do not read) their test accuracy, is removed with a
    warning; so are unfinished ``.partial`` writes.
    """
    for partial in (Path(folder) / CHECKPOINT_DIR).glob("*.pt.partial"):
        partial.unlink()
    found = []
    for path, checkpoint in _scan(folder, fingerprint, evaluate_test):
        if isinstance(checkpoint, ChunkCheckpoint):
            found.append(checkpoint)
            continue
        if checkpoint is None:
            logger.warning("removing %s: saved for other runs", path)
        else:
            logger.warning("removing %s", checkpoint)
        remove_checkpoint(path)
    return found


def describe_checkpoints(
    folder: str | Path, fingerprint: str, evaluate_test: bool
) -> list[str]:
    """One line per checkpoint of ``folder``, reading them only (dry runs).

    Example line: ``checkpoints/0-0.pt: epoch 81, 8 of 10 runs training, 2
    finished rows saved``; a stale file is named as one the next run removes.
    """
    lines = []
    for path, checkpoint in _scan(folder, fingerprint, evaluate_test):
        name = f"{CHECKPOINT_DIR}/{path.name}"
        if checkpoint is None:
            lines.append(f"{name}: saved for other runs, removed by the next run")
        elif isinstance(checkpoint, ValueError):
            lines.append(f"{name}: unreadable, removed by the next run")
        else:
            training = checkpoint.training
            lines.append(
                f"{name}: epoch {training['epoch']}, {len(training['active'])} "
                f"of {len(checkpoint.keys)} runs training, "
                f"{len(checkpoint.rows)} finished rows saved"
            )
    return lines


def remove_checkpoint(path: str | Path) -> None:
    """Remove a checkpoint file, and its folder once empty."""
    path = Path(path)
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:  # other chunks' checkpoints, or already gone
        pass

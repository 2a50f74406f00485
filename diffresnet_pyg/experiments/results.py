"""The results store: the files of a results folder, written safely.

A results folder holds the resolved config (:data:`CONFIG_FILE`), one JSON
row per finished run (:data:`RUNS_FILE` for graph experiments,
:data:`EPISODES_FILE` for few-shot ones) and, once every run is there, a
summary (:data:`SUMMARY_JSON`, :data:`SUMMARY_MD`). This module is the one
place that reads and writes them:

* :func:`claim_folder` (:func:`claim_config_folder` for any config type)
  creates a folder for a config, or checks that the folder was made for it
  and refuses it otherwise (:class:`ResultsFolderError`);
* :func:`lock_folder` takes the folder's lock (:data:`LOCK_FILE`, an
  OS-level advisory lock that dies with its process), so that one process
  at a time writes to a folder: a claim takes it, and it is held until the
  :func:`folder_lock_scope` around the run ends;
* :func:`write_atomic` replaces a file in one step (a reader sees the old or
  the new text, never a part);
* :func:`append_rows` appends rows and makes them durable (``fsync``) before
  it returns, so a killed process loses at most the row being written;
* :func:`load_rows` reads the rows to resume from and repairs the file when a
  kill cut its last row short; :func:`read_rows` reads without writing;
* :func:`unique_rows` keeps the first row of each key, for readers of a
  folder that two processes wrote to at once;
* :func:`make_row` builds the row of one (split, init) run, the format of
  every ``runs.jsonl``; :func:`row_status` reads its ``status`` (or derives
  it for rows written before rows had one).

Rows are strict JSON: a non-finite number (a diverged run's loss) is written
as ``null``, never as the bare ``NaN`` or ``Infinity`` that strict readers
(``jq``, JavaScript, many loaders) reject. Rows written before that, with a
bare ``NaN``, are still read.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

try:
    import fcntl
except ImportError:  # not POSIX (Windows): folders are not locked, see lock_folder
    fcntl = None  # type: ignore[assignment]

import yaml

from diffresnet_pyg.experiments.schema import (
    ExperimentConfig,
    config_from_dict,
    config_to_dict,
    fingerprint,
    read_yaml_file,
)
from diffresnet_pyg.experiments.training import MemberResult
from diffresnet_pyg.typing import PathLike

__all__ = [
    "CONFIG_FILE",
    "EPISODES_FILE",
    "LOCK_FILE",
    "ROW_KEYS",
    "RUNS_FILE",
    "RUN_STATUSES",
    "SUMMARY_FILES",
    "SUMMARY_JSON",
    "SUMMARY_MD",
    "SWEEP_FILE",
    "ResultsFolderError",
    "RunKey",
    "append_rows",
    "check_config_folder",
    "claim_config_folder",
    "claim_folder",
    "folder_lock_scope",
    "load_rows",
    "lock_folder",
    "make_row",
    "protocol_free_fingerprint",
    "read_rows",
    "row_status",
    "run_identity",
    "strict_json",
    "unique_rows",
    "write_atomic",
]

logger = logging.getLogger(__name__)

C = TypeVar("C")

#: The resolved config of a results folder.
CONFIG_FILE = "config.yaml"
#: One JSON row per finished (split, init) run of a graph experiment.
RUNS_FILE = "runs.jsonl"
#: One JSON row per method and episode of a few-shot experiment.
EPISODES_FILE = "episodes.jsonl"
#: The sweep of a sweep folder: its axis, methods and point folders.
SWEEP_FILE = "sweep.yaml"
#: The summary computed from the rows, as data and as a Markdown table.
SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
#: Both summary files; they are deleted before any run of a folder starts.
SUMMARY_FILES = (SUMMARY_JSON, SUMMARY_MD)
#: The lock file of a folder being written to; it holds the writer's PID.
LOCK_FILE = ".lock"

#: The keys of a run row, in the order :func:`make_row` writes them.
ROW_KEYS = (
    "dataset",
    "model",
    "split",
    "split_seed",
    "init",
    "init_seed",
    "epochs",
    "best_epoch",
    "val_acc",
    "val_loss",
    "test_acc",
    "seconds",
    "batch_members",
    "batch_seconds",
    "status",
)

#: The statuses of a run row (:func:`row_status`): ``"ok"``; ``"diverged"``,
#: the tested weights have a non-finite validation loss or accuracy (or test
#: accuracy); ``"max_epochs"``, training reached ``train.max_epochs`` without
#: being stopped early and the final weights were tested.
RUN_STATUSES = ("ok", "diverged", "max_epochs")


class ResultsFolderError(RuntimeError):
    """A results folder that cannot be used for this config."""


# ---------------------------------------------------------------------------
# Writing files
# ---------------------------------------------------------------------------


def write_atomic(path: PathLike, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) in one step.

    The text goes to ``<name>.tmp`` next to ``path``, is flushed to disk and
    renamed over ``path`` (:func:`os.replace`), so ``path`` holds either its
    old text or all of the new one. If writing fails, the temporary file is
    removed and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float (at any depth) replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(item) for item in value]
    return value


def strict_json(value: Any) -> str:
    """``value`` as one line of strict JSON: non-finite numbers become ``null``.

    Example:
        >>> strict_json({"val_loss": float("nan"), "epochs": [1, float("inf")]})
        '{"val_loss": null, "epochs": [1, null]}'
    """
    return json.dumps(_finite_or_none(value), allow_nan=False)


def append_rows(path: PathLike, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append ``rows`` to the JSON-lines file ``path``, durably.

    All rows are written in one call, one :func:`strict_json` line each (a
    non-finite number is written as ``null``), then flushed and ``fsync``-ed:
    when this returns, they survive a crash. A process killed while writing
    leaves at most one truncated last line, which :func:`load_rows` drops.
    """
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(strict_json(row) + "\n" for row in rows))
        f.flush()
        os.fsync(f.fileno())


# ---------------------------------------------------------------------------
# Reading rows
# ---------------------------------------------------------------------------


def _parse_rows(path: Path, text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows of ``text`` and the lines they came from (see :func:`read_rows`)."""
    numbered = [
        (i + 1, line) for i, line in enumerate(text.splitlines()) if line.strip()
    ]
    rows: list[dict[str, Any]] = []
    lines: list[str] = []
    for k, (lineno, line) in enumerate(numbered):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            if k == len(numbered) - 1:
                logger.warning(
                    "%s:%d: ignoring a truncated last line (interrupted write?): %s",
                    path,
                    lineno,
                    exc,
                )
                break
            raise ValueError(f"{path}:{lineno}: malformed JSON line: {exc}") from exc
        if not isinstance(row, dict):
            raise ValueError(
                f"{path}:{lineno}: expected a JSON object per line "
                f"(got {type(row).__name__})"
            )
        rows.append(row)
        lines.append(line)
    return rows, lines


def read_rows(path: PathLike) -> list[dict[str, Any]]:
    """The rows of a JSON-lines results file, in file order; nothing is written.

    Blank lines are skipped. A last line that is not valid JSON is taken to be
    a write cut short by a kill: it is ignored, with a warning.

    Args:
        path (str or os.PathLike): The file (``runs.jsonl``,
            ``episodes.jsonl``, ...).

    Returns:
        list[dict]: The rows; none when the file does not exist.

    Raises:
        ValueError: If a line other than the last is not valid JSON, or a
            line holds JSON that is not an object. The message names the file
            and the line.
    """
    path = Path(path)
    if not path.exists():
        return []
    return _parse_rows(path, path.read_text(encoding="utf-8"))[0]


def load_rows(path: PathLike) -> list[dict[str, Any]]:
    """The rows to resume from; the file is repaired if a kill cut it short.

    Reads like :func:`read_rows`. If the file holds anything but its valid
    rows, one per line (a truncated last line, blank lines, a last row without
    its newline), it is rewritten (:func:`write_atomic`) with exactly those
    rows, each line kept as it was, so that rows appended next start on a
    line of their own.

    Returns:
        list[dict]: The rows; none when the file does not exist.

    Raises:
        ValueError: As :func:`read_rows` (the file is then left untouched).
    """
    path = Path(path)
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    rows, lines = _parse_rows(path, text)
    repaired = "".join(line + "\n" for line in lines)
    if text != repaired:
        logger.info("%s: rewriting the file with its %d complete rows", path, len(rows))
        write_atomic(path, repaired)
    return rows


def unique_rows(
    rows: Sequence[Mapping[str, Any]], key: Callable[[Mapping[str, Any]], Hashable]
) -> tuple[list[Mapping[str, Any]], int]:
    """The first row of each key, in order, and how many later rows were dropped.

    A folder written by two processes at once (before folders were locked,
    or where :func:`lock_folder` cannot lock) may hold a run twice; its
    readers count each run once, with its first row.

    Example:
        >>> rows = [{"split": 0, "acc": 1}, {"split": 1}, {"split": 0, "acc": 2}]
        >>> unique_rows(rows, lambda row: row["split"])
        ([{'split': 0, 'acc': 1}, {'split': 1}], 1)
    """
    kept: dict[Hashable, Mapping[str, Any]] = {}
    for row in rows:
        kept.setdefault(key(row), row)
    return list(kept.values()), len(rows) - len(kept)


# ---------------------------------------------------------------------------
# Locking a folder
# ---------------------------------------------------------------------------

# The locks this process holds: folder (real path) -> [file descriptor, holds].
_held: dict[str, list[int]] = {}
_held_guard = threading.Lock()
# The release callbacks of the innermost folder_lock_scope, if any is open.
_scope: contextvars.ContextVar[list[Callable[[], None]] | None] = (
    contextvars.ContextVar("folder_lock_scope", default=None)
)


def _holder(fd: int) -> str:
    """The PID written in a lock file by its holder (waits briefly for it)."""
    for _ in range(20):  # the holder writes its PID right after locking
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        if text:
            return f"PID {text}"
        time.sleep(0.05)
    return "PID unknown"


def _release(key: str) -> None:
    with _held_guard:
        entry = _held[key]
        entry[1] -= 1
        if entry[1] == 0:
            del _held[key]
            os.close(entry[0])  # closing the descriptor releases the lock


def lock_folder(folder: PathLike) -> None:
    """Take the exclusive lock of ``folder`` for this process; create the folder.

    The lock is an advisory ``fcntl.flock`` on :data:`LOCK_FILE` inside the
    folder, which then holds this process's PID. The operating system drops
    it when the process ends, however it ends, so a lock left by a killed
    process never blocks a rerun. This process may lock a folder it holds
    again. The lock is released when the innermost :func:`folder_lock_scope`
    open in this thread ends (as often as it was taken there); outside any
    scope it is held until the process exits. The lock file stays in the
    folder.

    On systems without ``fcntl`` (Windows) nothing is locked: two processes
    on one folder are then not stopped, and readers of the folder keep the
    first row of each run (:func:`unique_rows`).

    Raises:
        ResultsFolderError: If ``folder`` is a file, or another process holds
            its lock (the message names the folder and the holder's PID).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ResultsFolderError(
            f"{folder} is a file, not a results folder; choose another output"
        )
    folder.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        return
    key = os.path.realpath(folder)
    with _held_guard:
        if key in _held:
            _held[key][1] += 1
        else:
            fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise ResultsFolderError(
                    f"{folder} is in use by another process ({holder}, see "
                    f"{folder / LOCK_FILE}); wait for it to finish or stop it, "
                    "then rerun to resume"
                ) from None
            except BaseException:
                os.close(fd)
                raise
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            _held[key] = [fd, 1]
    scope = _scope.get()
    if scope is not None:
        scope.append(lambda: _release(key))


@contextlib.contextmanager
def folder_lock_scope() -> Iterator[None]:
    """Release the folder locks taken inside the block when it ends.

    Also a decorator: the runners (``run_experiment``, ``run_sweep``,
    ``tune``, ``run_fewshot``) hold each folder they claim until they
    return or raise.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp, folder_lock_scope():
        ...     lock_folder(tmp)  # another process is refused until the end
        ...     lock_folder(tmp)  # this one may take it again
    """
    releases: list[Callable[[], None]] = []
    token = _scope.set(releases)
    try:
        yield
    finally:
        _scope.reset(token)
        for release in reversed(releases):
            release()


# ---------------------------------------------------------------------------
# Claiming a folder
# ---------------------------------------------------------------------------


def check_config_folder(
    folder: PathLike,
    config: C,
    *,
    from_dict: Callable[[Any], C],
    differences: Callable[[C, C], str | None],
) -> None:
    """Check, writing nothing, that ``config`` may use ``folder``.

    The folder may be missing, or a folder whose :data:`CONFIG_FILE` (if any,
    read with ``from_dict``) describes the same experiment
    (``differences(old, config)`` is :obj:`None`).

    Raises:
        ResultsFolderError: If ``folder`` is a file, or its ``config.yaml``
            cannot be read or describes a different experiment.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ResultsFolderError(
            f"{folder} is a file, not a results folder; choose another output"
        )
    path = folder / CONFIG_FILE
    if path.exists():
        try:
            old = from_dict(read_yaml_file(path, aliases=True))
        except Exception as exc:  # noqa: BLE001 - any unreadable config refuses
            raise ResultsFolderError(
                f"{folder} holds a config.yaml that cannot be read ({exc}); "
                "choose another output folder or remove it"
            ) from exc
        diff = differences(old, config)
        if diff is not None:
            raise ResultsFolderError(
                f"{folder} holds results of a different config ({diff}). "
                "Use another output folder, or delete this one to start over"
            )


def claim_config_folder(
    folder: PathLike,
    config: C,
    *,
    to_dict: Callable[[C], dict[str, Any]],
    from_dict: Callable[[Any], C],
    differences: Callable[[C, C], str | None],
) -> None:
    """Create ``folder`` for ``config`` or check that it was made for it.

    The folder is checked with :func:`check_config_folder` and locked
    (:func:`lock_folder`: held until the :func:`folder_lock_scope` around the
    caller ends) and checked again; then ``config`` is written to its
    :data:`CONFIG_FILE` (``to_dict``, YAML, atomically), so the file always
    holds the config as last run.

    Args:
        folder (str or os.PathLike): The results folder (created if missing).
        config: The config to run.
        to_dict (callable): The config as plain data, for ``config.yaml``.
        from_dict (callable): Parse the plain data of a ``config.yaml``.
        differences (callable): :obj:`None` if results of the ``old`` config
            are results of ``config`` too; else what differs, for the message.

    Raises:
        ResultsFolderError: If ``folder`` is a file, another process holds
            it, or its ``config.yaml`` cannot be read or describes a different
            experiment.
    """
    check_config_folder(folder, config, from_dict=from_dict, differences=differences)
    folder = Path(folder)
    lock_folder(folder)
    # Checked again under the lock: the last holder may have rewritten it.
    check_config_folder(folder, config, from_dict=from_dict, differences=differences)
    write_atomic(folder / CONFIG_FILE, yaml.safe_dump(to_dict(config), sort_keys=False))


def protocol_free_fingerprint(config: ExperimentConfig) -> str:
    """The :func:`fingerprint` of ``config`` whatever its number of splits and inits.

    Two configs with the same one give the same row for a ``(split, init)``
    both plan: a folder accepts either (its protocol grown or shrunk).
    """
    split = dataclasses.replace(config.split, num_splits=1, num_inits=1)
    return fingerprint(dataclasses.replace(config, split=split))


def _experiment_differences(old: ExperimentConfig, new: ExperimentConfig) -> str | None:
    if protocol_free_fingerprint(old) == protocol_free_fingerprint(new):
        return None
    old_d, new_d = config_to_dict(old), config_to_dict(new)
    diff = [
        f"{section}.{key}: {old_d[section].get(key)!r} -> {value!r}"
        for section in ("dataset", "split", "model", "train")
        if isinstance(new_d.get(section), dict)
        for key, value in new_d[section].items()
        if old_d.get(section, {}).get(key) != value
    ]
    return "; ".join(diff) or "sweep or model differs"


def claim_folder(folder: PathLike, config: ExperimentConfig) -> None:
    """Create ``folder`` for ``config`` or check that it was made for it.

    Results of ``config`` may join the folder when its ``config.yaml`` differs
    only in its name and output, where the data files are, the number of
    splits/inits, the batch size, the device and the executor (the seeds of
    the first splits and inits do not depend on how many are drawn).
    ``config.yaml`` is then rewritten with ``config``.

    Raises:
        ResultsFolderError: If another process holds the folder
            (:func:`lock_folder`), or its ``config.yaml`` cannot be read or
            describes a different experiment; the message lists the settings
            that differ.
    """
    claim_config_folder(
        folder,
        config,
        to_dict=config_to_dict,
        from_dict=config_from_dict,
        differences=_experiment_differences,
    )


# ---------------------------------------------------------------------------
# The run row
# ---------------------------------------------------------------------------


class RunKey(Protocol):
    """What :func:`make_row` reads of a run: its split and init, and their seeds."""

    @property
    def split(self) -> int: ...  # noqa: D102

    @property
    def split_seed(self) -> int: ...  # noqa: D102

    @property
    def init(self) -> int: ...  # noqa: D102

    @property
    def init_seed(self) -> int: ...  # noqa: D102


def make_row(
    dataset: str,
    model: str,
    run: RunKey,
    result: MemberResult,
    *,
    batch_members: int,
    batch_seconds: float,
    max_epochs: int | None = None,
) -> dict[str, Any]:
    """The ``runs.jsonl`` row of one finished run (keys in :data:`ROW_KEYS` order).

    Args:
        dataset (str): The dataset's name (``config.dataset.name``).
        model (str): The model's name (``config.model.name``).
        run: The run (a :class:`~diffresnet_pyg.experiments.runner.RunSpec`):
            split index and seed, init index and seed.
        result (MemberResult): What training the run gave.
        batch_members (int): Runs trained together in the run's batch.
        batch_seconds (float): Wall time of the batch until the run finished.
        max_epochs (int, optional): ``train.max_epochs`` of the run's config,
            to tell the status ``"max_epochs"``; :obj:`None` never gives it.
            (default: :obj:`None`)

    Returns:
        dict: ``dataset``, ``model``, ``split``, ``split_seed``, ``init``,
        ``init_seed``, ``epochs``, ``best_epoch``, ``val_acc``, ``val_loss``,
        ``test_acc``, ``seconds`` (the run's share of the batch's training
        time), ``batch_members``, ``batch_seconds``, ``metrics`` when the
        result has them (``train.representation_metrics``) and ``status``
        (:func:`row_status`). A run that never evaluated its test nodes
        (``result.test_acc`` is :obj:`None`, a tuning run) has no
        ``test_acc`` key at all. Non-finite values stay floats here;
        :func:`append_rows` writes them as ``null``.
    """
    row = {
        "dataset": dataset,
        "model": model,
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
        "batch_members": batch_members,
        "batch_seconds": batch_seconds,
    }
    if result.test_acc is None:
        del row["test_acc"]
    if result.metrics is not None:
        row["metrics"] = dict(result.metrics)
    row["status"] = row_status(row, max_epochs)
    return row


def _is_finite(value: Any) -> bool:
    """Whether a row value is a finite number (``null`` and ``NaN`` are not)."""
    return isinstance(value, (int, float)) and math.isfinite(value)


def row_status(row: Mapping[str, Any], max_epochs: int | None = None) -> str:
    """The status of a run row, one of :data:`RUN_STATUSES`.

    A row's own ``status`` is returned as it is; a row written before rows had
    one (or with an unknown one) gets the status :func:`make_row` would write:
    ``"diverged"`` if its ``val_loss``, ``val_acc`` or ``test_acc`` (those it
    has) is ``null`` or not finite (``NaN`` in old rows), else
    ``"max_epochs"`` if it trained ``max_epochs`` epochs and tested its final
    weights (``best_epoch >= epochs``; a row without ``best_epoch`` by
    ``epochs`` alone), else ``"ok"``.

    Args:
        row (dict): A row of ``runs.jsonl``.
        max_epochs (int, optional): ``train.max_epochs`` of the row's config;
            :obj:`None` (unknown) never gives ``"max_epochs"``.
            (default: :obj:`None`)

    Returns:
        str: ``"ok"``, ``"diverged"`` or ``"max_epochs"``.

    Example:
        >>> row_status({"epochs": 200, "best_epoch": 200, "val_loss": None})
        'diverged'
        >>> row_status({"epochs": 200, "best_epoch": 200, "val_loss": 0.5}, 200)
        'max_epochs'
        >>> row_status({"epochs": 80, "best_epoch": 30, "val_loss": 0.5}, 200)
        'ok'
    """
    status = row.get("status")
    if status in RUN_STATUSES:
        return status
    scores = ("val_loss", "val_acc", "test_acc")
    if any(key in row and not _is_finite(row[key]) for key in scores):
        return "diverged"
    if max_epochs is not None and _is_finite(row.get("epochs")):
        epochs, best = row["epochs"], row.get("best_epoch")
        if epochs >= max_epochs and (not _is_finite(best) or best >= epochs):
            return "max_epochs"
    return "ok"


def run_identity(
    scheme: str | None, split: int, split_seed: int, init_seed: int
) -> tuple[int, int]:
    """What makes two runs of one config the same run: their split and init seed.

    A per-class split is drawn from its split seed alone, and the dataset's
    public split is one split, so two runs with the same split seed and init
    seed are the same run (:class:`numpy.random.RandomState` draws the seeds
    from 0 to 999,999, so a long protocol repeats some). The splits of the
    ``"given"`` scheme are the dataset's mask columns: there the split is
    told by its index, not its seed.

    Args:
        scheme (str, optional): ``split.scheme`` of the config
            (:obj:`None`: unknown, taken as a seeded split).
        split (int): The split index.
        split_seed (int): The split seed.
        init_seed (int): The init seed.

    Returns:
        tuple[int, int]: ``(split_seed, init_seed)``, or ``(split,
        init_seed)`` for the ``"given"`` scheme.

    Example:
        >>> run_identity("per_class", 7, 121958, 5), run_identity("given", 7, 121958, 5)
        ((121958, 5), (7, 5))
    """
    return (int(split) if scheme == "given" else int(split_seed), int(init_seed))

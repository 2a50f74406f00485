"""Progress of long loops: bars on a terminal, sparse log lines elsewhere.

The runners (:func:`~diffresnet_pyg.experiments.runner.run_experiment`,
:func:`~diffresnet_pyg.experiments.runner.run_sweep`,
:func:`~diffresnet_pyg.experiments.fewshot_runner.run_fewshot`,
:func:`~diffresnet_pyg.experiments.tune.tune`) take a ``progress`` argument,
one of (:data:`Progress`):

* ``True`` or ``"bar"``: tqdm bars, for a terminal;
* ``"log"``: INFO log lines, for a log file, a pipe or CI: one line per
  finished run with the time left, and a line now and then during long runs;
* ``False`` or :obj:`None`: nothing.

The caller chooses; nothing here looks at the terminal or the environment
(the command line shows bars when stderr is a terminal, log lines otherwise,
and nothing with ``-q``).

The time left (ETA) is the mean wall time per item finished in this process
times the items left (:class:`Eta`), so items resumed from an earlier process
do not count, and items finished together (a batch of runs) are fine. With
:math:`W` workers training side by side, the first :math:`W` items are taken
to have run in parallel (until :math:`k < W` are finished after :math:`t`
seconds, an item costs :math:`t / W`, not :math:`t / k`).

:class:`RunProgress` also logs, once, the projected wall time of all the runs
this process trains, as soon as the first wave of chunks (one per worker) has
finished: ``projected wall time for N runs: hh:mm:ss (from K finished runs, W
workers)``. It is an INFO line in both the ``"bar"`` and the ``"log"`` modes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, Literal

from tqdm.auto import tqdm

from diffresnet_pyg.experiments.report.rows import hit_max_epochs
from diffresnet_pyg.experiments.training import EpochStatus

__all__ = [
    "DEFAULT_INTERVAL",
    "CountProgress",
    "Eta",
    "Progress",
    "ProgressMode",
    "RunProgress",
    "format_duration",
    "progress_mode",
]

#: A ``progress`` argument: ``True``/``"bar"``, ``"log"``, ``False``/``None``.
Progress = bool | Literal["bar", "log"] | None
#: What a :data:`Progress` argument asks for (:obj:`None`: nothing).
ProgressMode = Literal["bar", "log"]

#: Seconds between the log lines written during long runs (at most one line
#: per interval, besides one per finished run).
DEFAULT_INTERVAL = 60.0


def progress_mode(progress: Progress) -> ProgressMode | None:
    """The mode a ``progress`` argument asks for.

    Example:
        >>> [progress_mode(p) for p in (True, "bar", "log", False, None)]
        ['bar', 'bar', 'log', None, None]
    """
    if progress is None or progress is False:
        return None
    if progress is True:
        return "bar"
    if progress in ("bar", "log"):
        return progress
    raise ValueError(
        f"progress must be True, False, None, 'bar' or 'log', got {progress!r}"
    )


def format_duration(seconds: float) -> str:
    """``hh:mm:ss`` (hours may exceed 99).

    Example:
        >>> format_duration(3725.4), format_duration(0), format_duration(360000)
        ('01:02:05', '00:00:00', '100:00:00')
    """
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


class Eta:
    r"""The time left from the mean wall time per item finished here.

    With :math:`k` items finished here after :math:`t` seconds and :math:`L`
    left, the time left is

    .. math::
        \frac{t}{\max(k, \min(W, k + L))} \, L,

    where :math:`W` (``parallel``) is the number of items trained at once:
    while fewer than :math:`W` are finished, the others are taken to be as far
    along (so one finished item of two workers does not double the estimate).

    Args:
        total (int): Items in all.
        done (int, optional): Items already done before this process started
            (resumed); they count as done but not for the mean time.
            (default: :obj:`0`)
        clock (callable, optional): Seconds, monotonic.
            (default: :func:`time.monotonic`)
        parallel (int, optional): Items trained at once (workers).
            (default: :obj:`1`)

    Example:
        >>> ticks = iter([0.0, 30.0])
        >>> eta = Eta(total=5, done=1, clock=lambda: next(ticks))
        >>> eta.add(2)
        >>> eta.done, eta.left, eta.text()
        (3, 2, 'ETA 00:00:30')
        >>> ticks = iter([0.0, 10.0])
        >>> eta = Eta(total=10, clock=lambda: next(ticks), parallel=2)
        >>> eta.add()
        >>> eta.text()
        'ETA 00:00:45'
    """

    def __init__(
        self,
        total: int,
        done: int = 0,
        clock: Callable[[], float] = time.monotonic,
        parallel: int = 1,
    ) -> None:
        if parallel < 1:
            raise ValueError(f"parallel must be >= 1, got {parallel!r}")
        self.total = int(total)
        self.done = int(done)
        self.parallel = int(parallel)
        self._clock = clock
        self._here = 0
        self._start = clock()
        self._last = self._start

    @property
    def here(self) -> int:
        """Items finished in this process (resumed ones not counted)."""
        return self._here

    @property
    def left(self) -> int:
        """Items not done yet."""
        return max(0, self.total - self.done)

    @property
    def elapsed(self) -> float:
        """Seconds from the start to the last :meth:`add`."""
        return self._last - self._start

    def add(self, count: int = 1) -> None:
        """Count ``count`` items as finished now."""
        self.done += count
        self._here += count
        self._last = self._clock()

    def seconds_left(self) -> float | None:
        """Mean seconds per item finished here times the items left.

        :obj:`None` until an item finished here.
        """
        if self._here == 0:
            return None
        counted = max(self._here, min(self.parallel, self._here + self.left))
        return self.elapsed / counted * self.left

    def text(self) -> str:
        """``"ETA hh:mm:ss"``; ``"done in hh:mm:ss"`` once nothing is left."""
        if self.left == 0:
            return f"done in {format_duration(self.elapsed)}"
        left = self.seconds_left()
        return "ETA unknown" if left is None else f"ETA {format_duration(left)}"


def _keys_text(keys: Sequence[tuple[int, int]]) -> str:
    """``split 0, init 2``; ``split 0, inits 0-3``; or the first and last run.

    Example:
        >>> _keys_text([(0, 2)]), _keys_text([(1, 0), (1, 1), (1, 2)])
        ('split 0, init 2', 'split 1, inits 0-2')
        >>> _keys_text([(0, 9), (1, 0)])
        '2 runs, split 0 init 9 to split 1 init 0'
    """
    (s0, i0), (s1, i1) = keys[0], keys[-1]
    if len(keys) == 1:
        return f"split {s0}, init {i0}"
    if s0 == s1 and [i for _, i in keys] == list(range(i0, i1 + 1)):
        return f"split {s0}, inits {i0}-{i1}"
    return f"{len(keys)} runs, split {s0} init {i0} to split {s1} init {i1}"


class RunProgress:
    r"""Progress of the runs of one or more results folders.

    ``"bar"``: a bar over the runs (with tqdm's ETA) and, while a chunk trains
    in this process, a bar over its epochs with no total (epochs done and
    their rate; validation accuracy, best checkpoint and patience as postfix),
    since early stopping ends runs long before ``train.max_epochs``.
    ``"log"``: one INFO line per finished run,
    ``run k/n (split s, init i): test acc .. %, val .. %, E epochs, t s; ETA
    hh:mm:ss``, and during long chunks at most one line per ``interval``
    seconds, ``split s, init i: epoch e: val acc .. %, best .. % at epoch ..``.

    Both modes log one INFO line once the first wave of chunks has finished
    (:math:`\min(W B, P)` runs, :math:`W` workers, :math:`B` runs per chunk,
    :math:`P` runs pending) while runs are left: ``projected wall time for P
    runs: hh:mm:ss (from K finished runs, W workers)``, the elapsed time plus
    the ETA (:class:`Eta` with :math:`W B` runs in flight). In ``"bar"`` mode
    the bars are cleared for the line and redrawn after it.

    Args:
        progress (Progress): The mode (see :func:`progress_mode`).
        total (int): Runs in all.
        done (int): Runs already done (resumed).
        desc (str): The runs bar's description.
        logger (logging.Logger): Where the lines go.
        interval (float, optional): Seconds between lines during a run.
            (default: :data:`DEFAULT_INTERVAL`)
        clock (callable, optional): Seconds, monotonic.
            (default: :func:`time.monotonic`)
        file (file, optional): The bars' stream. (default: stderr)
        workers (int, optional): Chunks trained at once; :obj:`None`: not
            known here (a Ray cluster schedules them), counted as one.
            (default: :obj:`1`)
        batch (int, optional): Runs per chunk. (default: :obj:`1`)
    """

    def __init__(
        self,
        progress: Progress,
        *,
        total: int,
        done: int,
        desc: str,
        logger: logging.Logger,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        file: IO[str] | None = None,
        workers: int | None = 1,
        batch: int = 1,
    ) -> None:
        self.mode = progress_mode(progress)
        self.workers = workers
        in_flight = (workers or 1) * max(1, batch)
        self.eta = Eta(total, done, clock, parallel=in_flight)
        self._pending = max(0, total - done)
        self._first_wave = min(in_flight, self._pending)
        self._projected = False
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self._file = file
        self._last_line = clock()
        self._chunk: tuple[str | None, tuple[tuple[int, int], ...], int | None] = (
            None,
            (),
            None,
        )
        self._status: EpochStatus | None = None
        self._epochs: Any = None
        self.bar = tqdm(
            total=total,
            initial=done,
            desc=desc,
            unit="run",
            disable=self.mode != "bar",
            dynamic_ncols=True,
            file=file,
        )

    @property
    def wants_epochs(self) -> bool:
        """Whether :meth:`epoch` and :meth:`status` are used (else skip them)."""
        return self.mode is not None

    def set_description(self, desc: str) -> None:
        """The runs bar's description (the point being trained)."""
        self.bar.set_description(desc)

    def start_chunk(
        self,
        keys: Sequence[tuple[int, int]],
        *,
        label: str | None = None,
        patience: int | None = None,
    ) -> None:
        """A chunk of runs ``keys`` (``(split, init)``) starts training here.

        ``label`` names the results folder in the lines (for sweeps);
        ``patience`` is the early-stopping patience (:obj:`None`: no rule).
        """
        self._chunk = (label, tuple(keys), patience)
        self._status = None
        if self.mode == "bar":
            if self._epochs is None:
                self._epochs = tqdm(
                    desc="epochs",
                    unit="epoch",
                    position=1,
                    leave=False,
                    dynamic_ncols=True,
                    file=self._file,
                )
            else:
                self._epochs.set_postfix_str("", refresh=False)
                self._epochs.reset()

    def status(self, status: EpochStatus) -> None:
        """The active members' scores after an epoch (shown with :meth:`epoch`)."""
        self._status = status

    def epoch(self, epoch: int, active: int) -> None:
        """An epoch of the current chunk ended with ``active`` members training."""
        if self.mode == "bar" and self._epochs is not None:
            self._epochs.set_postfix_str(self._postfix(active), refresh=False)
            self._epochs.update()
        elif self.mode == "log":
            now = self._clock()
            if now - self._last_line >= self.interval:
                self._last_line = now
                self.logger.info("%s", self._epoch_line(epoch, active))

    def _postfix(self, active: int) -> str:
        label, keys, patience = self._chunk
        status = self._status
        parts = [] if len(keys) <= 1 else [f"{active}/{len(keys)} training"]
        if status is not None and status.members:
            b = max(range(len(status.members)), key=status.best_val_acc.__getitem__)
            if len(status.members) == 1:
                parts.append(f"val {100 * status.val_acc[0]:.1f}")
            parts.append(
                f"best {100 * status.best_val_acc[b]:.1f}@{status.best_epoch[b]}"
            )
            if len(status.members) == 1 and patience is not None:
                parts.append(f"wait {status.waiting[0]}/{patience}")
        return ", ".join(parts)

    def _epoch_line(self, epoch: int, active: int) -> str:
        label, keys, patience = self._chunk
        where = _keys_text(keys) if keys else "runs"
        if label:
            where = f"{label}, {where}"
        head = f"{where}: epoch {epoch}"
        if len(keys) > 1:
            head += f", {active} of {len(keys)} runs training"
        status = self._status
        if status is None or status.epoch != epoch or not status.members:
            return head
        b = max(range(len(status.members)), key=status.best_val_acc.__getitem__)
        best = (
            f"best {100 * status.best_val_acc[b]:.2f} % at epoch {status.best_epoch[b]}"
        )
        if len(status.members) == 1:
            text = f"{head}: val acc {100 * status.val_acc[0]:.2f} %, {best}"
            if patience is not None:
                text += f" ({status.waiting[0]}/{patience} epochs without improvement)"
            return text
        low, high = min(status.val_acc), max(status.val_acc)
        return f"{head}: val acc {100 * low:.2f}-{100 * high:.2f} %, {best}"

    def run_finished(
        self,
        row: Mapping[str, Any],
        *,
        label: str | None = None,
        max_epochs: int | None = None,
    ) -> None:
        """A run finished with its ``runs.jsonl`` row.

        ``label`` names its results folder (for sweeps); with ``max_epochs``
        a run that reached it is marked.
        """
        self.eta.add()
        self.bar.update()
        if self.mode == "log":
            self._run_line(row, label, max_epochs)
        self._project()

    def _run_line(
        self, row: Mapping[str, Any], label: str | None, max_epochs: int | None
    ) -> None:
        self._last_line = self._clock()
        where = f"split {row['split']}, init {row['init']}"
        if label:
            where = f"{label}, {where}"
        scores = []
        if row.get("test_acc") is not None:
            scores.append(f"test acc {100 * row['test_acc']:.2f} %")
            scores.append(f"val {100 * row['val_acc']:.2f} %")
        else:
            scores.append(f"val acc {100 * row['val_acc']:.2f} %")
        epochs = f"{row['epochs']} epochs"
        if hit_max_epochs(row, max_epochs):
            epochs += " (max_epochs)"
        self.logger.info(
            "run %d/%d (%s): %s, %s, %.1f s; %s",
            self.eta.done,
            self.eta.total,
            where,
            ", ".join(scores),
            epochs,
            float(row["seconds"]),
            self.eta.text(),
        )

    def projection_text(self) -> str | None:
        """The projection line; :obj:`None` before a run finished here.

        ``projected wall time for P runs: hh:mm:ss (from K finished runs, W
        workers)``, and how many runs were done before, if any.
        """
        left = self.eta.seconds_left()
        if left is None:
            return None
        here = self.eta.here
        workers = (
            "workers as the cluster schedules them"
            if self.workers is None
            else f"{self.workers} worker{'s' if self.workers != 1 else ''}"
        )
        text = (
            f"projected wall time for {self._pending} runs: "
            f"{format_duration(self.eta.elapsed + left)} (from {here} finished "
            f"run{'s' if here != 1 else ''}, {workers})"
        )
        resumed = self.eta.total - self._pending
        if resumed:
            were = "run was" if resumed == 1 else "runs were"
            text += f"; {resumed} {were} done before"
        return text

    def _project(self) -> None:
        """Log the projection once, after the first wave, while runs are left."""
        if (
            self._projected
            or self.mode is None
            or self.eta.here < self._first_wave
            or self.eta.left == 0
        ):
            return
        self._projected = True
        text = self.projection_text()
        if self.mode == "bar":
            with tqdm.external_write_mode(file=self._file):
                self.logger.info("%s", text)
        else:
            self.logger.info("%s", text)

    def close(self) -> None:
        """Close the bars."""
        if self._epochs is not None:
            self._epochs.close()
        self.bar.close()


class CountProgress:
    """Progress over counted items (episodes, trials): a bar or log lines.

    ``"log"``: :meth:`update` writes ``{desc}: k/n {unit}s; ETA hh:mm:ss``
    (with an optional detail) when ``interval`` seconds passed since the last
    line, and always for the last item.

    Args:
        progress (Progress): The mode (see :func:`progress_mode`).
        total (int): Items in all.
        done (int): Items already done (resumed).
        desc (str): The bar's description, and the lines' start.
        unit (str): The item's name.
        logger (logging.Logger): Where the lines go.
        interval (float, optional): Seconds between lines.
            (default: :data:`DEFAULT_INTERVAL`)
        clock (callable, optional): Seconds, monotonic.
            (default: :func:`time.monotonic`)
        file (file, optional): The bar's stream. (default: stderr)
    """

    def __init__(
        self,
        progress: Progress,
        *,
        total: int,
        done: int,
        desc: str,
        unit: str,
        logger: logging.Logger,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        file: IO[str] | None = None,
    ) -> None:
        self.mode = progress_mode(progress)
        self.eta = Eta(total, done, clock)
        self.desc = desc
        self.unit = unit
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self._last_line = clock()
        self.bar = tqdm(
            total=total,
            initial=done,
            desc=desc,
            unit=unit,
            disable=self.mode != "bar",
            dynamic_ncols=True,
            file=file,
        )

    def update(self, count: int = 1, detail: str | None = None) -> None:
        """Count ``count`` items as finished; ``detail`` is added to the line."""
        self.eta.add(count)
        self.bar.update(count)
        if self.mode != "log":
            return
        now = self._clock()
        if self.eta.left > 0 and now - self._last_line < self.interval:
            return
        self._last_line = now
        self.logger.info(
            "%s: %d/%d %ss%s; %s",
            self.desc,
            self.eta.done,
            self.eta.total,
            self.unit,
            f" ({detail})" if detail else "",
            self.eta.text(),
        )

    def close(self) -> None:
        """Close the bar."""
        self.bar.close()

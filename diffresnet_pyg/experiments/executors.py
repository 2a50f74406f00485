"""Where chunks of runs are trained: this process, local processes, or Ray.

The runner (:mod:`diffresnet_pyg.experiments.runner`) cuts the pending runs of
an experiment into chunks (``train.batch_members`` runs, trained as one
batched model) and hands them to :func:`map_chunks` with a top-level task
function. The ``executor`` section of the config
(:class:`~diffresnet_pyg.experiments.schema.ExecutorConfig`) chooses how they
are run:

* ``"local"``: one after another, in this process;
* ``"processes"``: a pool of ``workers`` local processes
  (:class:`concurrent.futures.ProcessPoolExecutor`, ``spawn`` start method),
  each with ``threads`` torch threads (default ``max(1, cores // workers)``);
  a worker exits within about a second when this process dies, even when it
  is killed (:func:`die_with_parent`);
* ``"ray"``: one Ray task per chunk (``@ray.remote(num_cpus=...,
  num_gpus=...)``) on the cluster at ``executor.address``, the
  ``RAY_ADDRESS`` environment variable, or a new local instance.

Results come back as the chunks finish (in any order), so the caller can
write each chunk's rows at once and an interrupted sweep loses only the chunks
in flight. The executor changes where and how fast runs train, never their
results: a chunk's task seeds everything it draws, so its rows are the same
for every executor (bit for bit at the same number of torch threads).

Devices: with ``train.device: cuda``, process worker ``i`` trains on
``cuda:{i % torch.cuda.device_count()}`` (:func:`worker_device`), and the
default pool has one worker per GPU; a Ray task reserves
``num_gpus_per_task`` GPUs and Ray sets ``CUDA_VISIBLE_DEVICES`` to them, so
``"cuda"`` is the task's own GPU.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, TypeVar

import torch

from diffresnet_pyg.experiments.schema import ConfigError, ExecutorConfig

__all__ = [
    "available_cpus",
    "check_device",
    "check_executor",
    "die_with_parent",
    "map_chunks",
    "num_workers",
    "worker_device",
    "worker_threads",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: The index of this process in a ``"processes"`` pool (None elsewhere).
_WORKER_INDEX: int | None = None

#: ``prctl`` option of Linux: the signal a process gets when its parent dies.
_PR_SET_PDEATHSIG = 1


def available_cpus() -> int:
    """CPU cores this process may run on (its affinity mask where known)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _cuda_count(device: str) -> int:
    """Visible CUDA devices when ``device`` is plain ``"cuda"``, else 0."""
    if device != "cuda" or not torch.cuda.is_available():
        return 0
    return torch.cuda.device_count()


def num_workers(executor: ExecutorConfig, device: str = "cpu") -> int | None:
    """Chunks trained at once by ``executor``.

    ``"local"``: 1. ``"processes"``: ``executor.workers``, else one per GPU
    when ``device`` is ``"cuda"`` and GPUs are visible, else one per CPU core.
    ``"ray"``: ``executor.workers`` (:obj:`None`: no limit of ours; the
    cluster's free resources decide).

    Example:
        >>> num_workers(ExecutorConfig("processes", workers=3))
        3
        >>> num_workers(ExecutorConfig("ray")) is None
        True
    """
    if executor.kind == "local":
        return 1
    if executor.workers is not None or executor.kind == "ray":
        return executor.workers
    return _cuda_count(device) or available_cpus()


def worker_threads(executor: ExecutorConfig, device: str = "cpu") -> int | None:
    """The torch threads of each worker (:obj:`None`: leave them unchanged).

    ``executor.threads`` when set; else, for ``"processes"``, the cores
    shared evenly, ``max(1, cores // workers)``; for ``"ray"``,
    ``max(1, int(num_cpus_per_task))``; for ``"local"``, :obj:`None`.

    Example:
        >>> worker_threads(ExecutorConfig("ray", num_cpus_per_task=4))
        4
        >>> worker_threads(ExecutorConfig("processes", workers=2, threads=3))
        3
    """
    if executor.threads is not None:
        return executor.threads
    if executor.kind == "processes":
        return max(1, available_cpus() // num_workers(executor, device))
    if executor.kind == "ray":
        return max(1, int(executor.num_cpus_per_task))
    return None


def check_executor(executor: ExecutorConfig, device: str) -> None:
    """Check that ``executor`` can train on ``device`` (``train.device``).

    Raises:
        ConfigError: For Ray: a CUDA device with no GPUs reserved per task
            (Ray hides every GPU from such a task), GPUs reserved for a CPU
            run, or an explicit ``cuda:N`` (Ray chooses each task's GPU).

    Example:
        >>> check_executor(ExecutorConfig("ray"), "cuda")
        Traceback (most recent call last):
        ...
        diffresnet_pyg.experiments.schema.ConfigError: \
executor.num_gpus_per_task: must be > 0 for train.device 'cuda' with kind \
'ray' (Ray hides the GPUs from tasks that reserve none), got 0.0
    """
    if executor.kind != "ray":
        return
    gpus = executor.num_gpus_per_task
    if re.fullmatch(r"cuda:\d+", device):
        raise ConfigError(
            f"train.device: with executor kind 'ray' use 'cuda' (Ray assigns "
            f"each task its GPUs), got {device!r}"
        )
    if device == "cuda" and gpus == 0:
        raise ConfigError(
            "executor.num_gpus_per_task: must be > 0 for train.device 'cuda' with "
            f"kind 'ray' (Ray hides the GPUs from tasks that reserve none), got {gpus}"
        )
    if device != "cuda" and gpus > 0:
        raise ConfigError(
            f"executor.num_gpus_per_task: train.device is {device!r}, so reserve "
            f"no GPUs (0), got {gpus}"
        )


def check_device(device: str) -> None:
    """Check that ``device`` (``train.device``) exists on this machine.

    Raises:
        ConfigError: For a CUDA device without CUDA (or past the number of
            GPUs), or ``"mps"`` without MPS, naming what is available.

    Example:
        >>> check_device("cpu")
    """
    if device == "cpu":
        return
    if device.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.partition(":")[2] or 0)
        if count == 0:
            raise ConfigError(
                f"train.device: {device!r}, but this machine has no CUDA device "
                f"(torch {torch.__version__} sees none); use 'cpu'"
            )
        if index >= count:
            raise ConfigError(
                f"train.device: {device!r}, but this machine has {count} CUDA "
                f"device(s) (cuda:0 to cuda:{count - 1})"
            )
        return
    if device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            "train.device: 'mps', but MPS is not available on this machine; use 'cpu'"
        )


def worker_device(device: str) -> str:
    """The device a task trains on, given ``train.device``.

    In worker ``i`` of a ``"processes"`` pool, plain ``"cuda"`` becomes
    ``cuda:{i % torch.cuda.device_count()}`` (one GPU per worker when the
    pool has one worker per GPU); anything else, and everything outside such
    a pool (in Ray tasks ``"cuda"`` already is the task's own GPU), is
    returned unchanged.

    Example:
        >>> worker_device("cpu")
        'cpu'
    """
    count = _cuda_count(device)
    if _WORKER_INDEX is None or count == 0:
        return device
    return f"cuda:{_WORKER_INDEX % count}"


def _warning_filters() -> list[Any]:
    """This process's warning filters, for a worker to apply the same ones."""
    return [f for f in warnings.filters if f[2].__module__ != "__main__"]


def _setup_worker(threads: int | None, filters: list[Any]) -> None:
    if threads is not None:
        torch.set_num_threads(threads)
    warnings.filters[:] = filters


def _parent_alive(parent: int) -> bool:
    """Whether the process ``parent`` that started this one still runs."""
    if os.name == "nt":  # the PID of a dead parent stays: its handle tells
        process = multiprocessing.parent_process()
        return process is None or process.is_alive()
    return os.getppid() == parent  # an orphan is adopted by another process


def _watch_parent(parent: int) -> None:
    """Body of the watchdog thread: exit this process once ``parent`` is gone."""
    while _parent_alive(parent):
        time.sleep(1.0)
    os._exit(1)


def die_with_parent(parent: int) -> None:
    """Make this process exit soon after its parent ``parent`` dies.

    A pool worker calls this first, so that workers never outlive a parent
    that was killed (``SIGKILL`` gives the parent no chance to stop them):
    they would keep training, holding memory, for runs nobody will save.

    On Linux the kernel sends this process ``SIGKILL`` when its parent dies
    (``prctl(PR_SET_PDEATHSIG)``); the parent is checked once more afterwards,
    for a parent that died before that was set. (Linux sends the signal when
    the *thread* that started this process ends; the pools of
    :func:`map_chunks` are started and waited on by the same thread.)
    Elsewhere, or if ``prctl`` fails, a daemon thread checks every second
    and ends this process (:func:`os._exit`) when the parent is gone.

    Args:
        parent (int): The PID of the parent (:func:`os.getpid` there).
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            done = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
        except (OSError, AttributeError):  # no libc with prctl (unusual)
            done = False
        if done:
            if not _parent_alive(parent):
                os._exit(1)
            return
    threading.Thread(
        target=_watch_parent, args=(parent,), name="parent-watchdog", daemon=True
    ).start()


def _init_process(
    counter: Any, threads: int | None, filters: list[Any], parent: int | None = None
) -> None:
    """Initializer of a pool process: its index, threads and warning filters.

    Ctrl-C reaches every process of the terminal's process group; the workers
    ignore it and leave it to the parent, which stops them and reports once.
    With ``parent`` (the parent's PID), the process exits when the parent
    dies (:func:`die_with_parent`).
    """
    global _WORKER_INDEX
    if parent is not None:
        die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with counter.get_lock():
        _WORKER_INDEX = counter.value
        counter.value += 1
    _setup_worker(threads, filters)


def _ray_call(
    task: Callable[[Any], Any], chunk: Any, threads: int | None, filters: list[Any]
) -> Any:
    """Body of a Ray task: the driver's warning filters, the threads, the task."""
    _setup_worker(threads, filters)
    return task(chunk)


def map_chunks(
    executor: ExecutorConfig,
    task: Callable[[T], R],
    chunks: Sequence[T],
    *,
    device: str = "cpu",
) -> Iterator[tuple[T, R]]:
    """Run ``task`` on every chunk; yield ``(chunk, result)`` as each finishes.

    Args:
        executor (ExecutorConfig): How to run the tasks.
        task (callable): The function applied to each chunk. For
            ``"processes"`` and ``"ray"`` it, the chunks and the results must
            be picklable (a top-level function, e.g. a
            :func:`functools.partial` of one); ``"local"`` calls it in this
            process.
        chunks (sequence): The chunks, submitted in order.
        device (str, optional): ``train.device``, for the default number of
            workers. (default: ``"cpu"``)

    Yields:
        tuple: ``(chunk, task(chunk))``; in order for ``"local"``, in order
        of completion otherwise. A task's exception is raised here; the other
        tasks are then cancelled and the workers stopped (so are they when
        the caller stops iterating early).

    Raises:
        ConfigError: For ``"ray"`` when Ray is not installed, or the
            cluster has fewer CPUs or GPUs than one task reserves.

    Example:
        >>> list(map_chunks(ExecutorConfig(), len, [[1, 2], [3]]))
        [([1, 2], 2), ([3], 1)]
    """
    if not chunks:
        return
    if executor.kind == "local":
        yield from _map_local(task, chunks, worker_threads(executor, device))
    elif executor.kind == "processes":
        yield from _map_processes(executor, task, chunks, device)
    else:
        yield from _map_ray(executor, task, chunks, device)


def _map_local(
    task: Callable[[T], R], chunks: Sequence[T], threads: int | None
) -> Iterator[tuple[T, R]]:
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        for chunk in chunks:
            yield chunk, task(chunk)
    finally:
        torch.set_num_threads(previous)


def _map_processes(
    executor: ExecutorConfig, task: Callable[[T], R], chunks: Sequence[T], device: str
) -> Iterator[tuple[T, R]]:
    workers = num_workers(executor, device)
    threads = worker_threads(executor, device)
    context = multiprocessing.get_context("spawn")
    counter = context.Value("i", 0)
    size = min(workers, len(chunks))
    logger.info("%d worker process(es), %d torch thread(s) each", size, threads)
    pool = ProcessPoolExecutor(
        size,
        mp_context=context,
        initializer=_init_process,
        initargs=(counter, threads, _warning_filters(), os.getpid()),
    )
    futures: dict[Future[R], int] = {
        pool.submit(task, c): i for i, c in enumerate(chunks)
    }
    finished = False
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=futures.__getitem__):
                yield chunks[futures[future]], future.result()
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:  # an error or an early stop: don't wait for chunks in flight
            # (the pool has no public way to stop its workers before 3.14)
            processes = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.terminate()


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "executor.kind: 'ray' needs Ray, which is not installed; install "
            "the extra with: pip install -e '.[ray]'"
        ) from None
    return ray


def _connect_ray(ray: Any, executor: ExecutorConfig) -> None:
    """Connect to (or start) Ray once per process; check the task resources."""
    if ray.is_initialized():
        if executor.address is not None:
            logger.info(
                "Ray is already initialized here; executor.address %r is not used",
                executor.address,
            )
    else:
        ray.init(address=executor.address)
    total = ray.cluster_resources()
    for name, need in (
        ("CPU", executor.num_cpus_per_task),
        ("GPU", executor.num_gpus_per_task),
    ):
        have = total.get(name, 0.0)
        if need > have:
            key = f"executor.num_{name.lower()}s_per_task"
            raise ConfigError(
                f"{key}: the Ray cluster has {have:g} {name}s in all, a task "
                f"needs {need:g}; no task could ever be scheduled"
            )


def _map_ray(
    executor: ExecutorConfig, task: Callable[[T], R], chunks: Sequence[T], device: str
) -> Iterator[tuple[T, R]]:
    ray = _import_ray()
    _connect_ray(ray, executor)
    remote = ray.remote(_ray_call).options(
        num_cpus=executor.num_cpus_per_task, num_gpus=executor.num_gpus_per_task
    )
    limit = num_workers(executor, device) or len(chunks)
    threads = worker_threads(executor, device)
    task_ref, filters = ray.put(task), ray.put(_warning_filters())
    queue = deque(chunks)
    in_flight: dict[Any, T] = {}
    try:
        while queue or in_flight:
            while queue and len(in_flight) < limit:
                chunk = queue.popleft()
                in_flight[remote.remote(task_ref, chunk, threads, filters)] = chunk
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                chunk = in_flight.pop(ref)
                yield chunk, ray.get(ref)
    finally:
        for ref in in_flight:
            ray.cancel(ref, force=True)

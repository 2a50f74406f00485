"""Peak resident memory of a block of code.

On Linux the kernel keeps the process's resident-set high-water mark
(``VmHWM`` in ``/proc/self/status``) and resets it to the current resident
size (``VmRSS``) when ``5`` is written to ``/proc/self/clear_refs``. So the
peak extra memory of a block is ``VmHWM`` after it minus ``VmRSS`` before it,
with the mark reset in between: :func:`peak_rss` measures exactly that.

Where ``/proc/self/clear_refs`` cannot be written (other systems, some
containers), the fallback is the process's all-time peak from
:func:`resource.getrusage` (``ru_maxrss``), after minus before: it cannot be
reset, so it only sees a block whose peak exceeds every earlier one, and
reports less otherwise. :attr:`PeakRSS.method` says which was used.

Example:
    >>> import torch
    >>> with peak_rss() as memory:
    ...     x = torch.ones(1_000_000)  # 4 MB
    >>> memory.extra_bytes >= 0 or memory.method == UNAVAILABLE
    True
"""

from __future__ import annotations

import ctypes
import functools
import gc
import math
import resource
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = [
    "HWM_METHOD",
    "MAXRSS_METHOD",
    "UNAVAILABLE",
    "PeakRSS",
    "max_rss",
    "peak_rss",
    "read_status",
    "release_memory",
    "reset_peak_rss",
]

#: :attr:`PeakRSS.method` when the high-water mark could be reset.
HWM_METHOD = "VmHWM - VmRSS (peak reset via /proc/self/clear_refs)"
#: :attr:`PeakRSS.method` of the ``getrusage`` fallback.
MAXRSS_METHOD = "ru_maxrss after - ru_maxrss before"
#: :attr:`PeakRSS.method` when nothing could be measured.
UNAVAILABLE = "unavailable"

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def read_status(field: str) -> int | None:
    """A memory field of ``/proc/self/status`` in bytes (``None`` if absent).

    Args:
        field (str): ``"VmRSS"`` (resident now), ``"VmHWM"`` (resident peak
            since start or the last :func:`reset_peak_rss`), ...
    """
    try:
        with open(_STATUS) as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` (and ``ru_maxrss``) to the current resident size.

    Returns:
        bool: Whether it could (``/proc/self/clear_refs`` is writable: Linux).
    """
    try:
        with open(_CLEAR_REFS, "w") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


def max_rss() -> int:
    """The process's peak resident size from ``getrusage``, in bytes.

    ``ru_maxrss`` is in KiB on Linux and in bytes on macOS. On Linux it is
    the larger of ``VmHWM`` and the peaks of threads that have exited, so a
    :func:`reset_peak_rss` does not lower it below those.
    """
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value if sys.platform == "darwin" else value * 1024


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the system.

    glibc keeps freed blocks below its mmap threshold in the heap, where they
    still count as resident; ``malloc_trim(0)`` returns them, so they cannot
    hide the allocations of the block measured next. A no-op beyond
    :func:`gc.collect` where glibc is not available.
    """
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


@dataclass
class PeakRSS:
    """The peak resident memory of a block, filled in when the block exits.

    Attributes:
        method (str): How it was measured: :data:`HWM_METHOD`,
            :data:`MAXRSS_METHOD` or :data:`UNAVAILABLE`.
        before (int or None): Bytes resident when the block started
            (``VmRSS``; with :data:`MAXRSS_METHOD`, the peak so far).
        peak (int or None): The peak resident bytes during the block
            (``VmHWM``; with :data:`MAXRSS_METHOD`, the all-time peak after
            the block); ``None`` until the block exits.
    """

    method: str
    before: int | None = None
    peak: int | None = None

    @property
    def extra_bytes(self) -> float:
        """``peak - before``: the peak above what was resident (NaN if unknown)."""
        if self.before is None or self.peak is None:
            return math.nan
        return float(self.peak - self.before)

    @property
    def extra_mib(self) -> float:
        """:attr:`extra_bytes` in MiB."""
        return self.extra_bytes / 2**20


@contextmanager
def peak_rss(*, fallback: bool = True, release: bool = False) -> Iterator[PeakRSS]:
    """Measure the peak resident memory of the ``with`` block.

    Resets the high-water mark (:func:`reset_peak_rss`), reads ``VmRSS``,
    runs the block and reads ``VmHWM``. The yielded :class:`PeakRSS` is
    complete once the block exits (also when it raises).

    Args:
        fallback (bool, optional): Where the mark cannot be reset, fall back to
            ``ru_maxrss`` after minus before (see the module); else measure
            nothing (:data:`UNAVAILABLE`, NaN extra bytes).
            (default: :obj:`True`)
        release (bool, optional): First :func:`release_memory` (garbage and
            freed heap pages), so that the baseline is what is in use.
            (default: :obj:`False`)

    Example:
        >>> import torch
        >>> with peak_rss() as memory:
        ...     _ = torch.ones(2**20).sum()
        >>> memory.method in (HWM_METHOD, MAXRSS_METHOD, UNAVAILABLE)
        True
    """
    if release:
        release_memory()
    if reset_peak_rss() and (before := read_status("VmRSS")) is not None:
        result = PeakRSS(HWM_METHOD, before)
    elif fallback:
        result = PeakRSS(MAXRSS_METHOD, max_rss())
    else:
        result = PeakRSS(UNAVAILABLE)
    try:
        yield result
    finally:
        if result.method == HWM_METHOD:
            result.peak = read_status("VmHWM")
        elif result.method == MAXRSS_METHOD:
            result.peak = max_rss()

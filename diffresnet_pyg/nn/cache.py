"""A small cache keyed on the graph (or input) a layer is given."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor

#: Integer dtypes that read the bits of entries of 1, 2, 4 and 8 bytes.
_BITS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _checksum(t: Tensor) -> int | None:
    """The sum of the entries' bit patterns (wrapping), CPU tensors only.

    One pass over the data, no copy. Elsewhere it would synchronize the
    device on every lookup, and only CPU memory is commonly written around
    torch's version counter (a NumPy array sharing it).
    """
    bits = _BITS.get(t.element_size())
    if t.device.type != "cpu" or bits is None or t.is_complex():
        return None
    return int(t.detach().view(bits).sum(dtype=torch.int64))


def _content(t: Tensor | None) -> tuple[Any, ...] | None:
    """Where a dense tensor's data lives, its shape, strides and checksum."""
    if t is None:
        return None
    return t.data_ptr(), tuple(t.shape), t.stride(), _checksum(t)


def _parts(obj: Any) -> tuple[Tensor | None, ...]:
    """The dense tensors that hold a key object's data."""
    if isinstance(obj, Tensor):
        if obj.layout == torch.strided:
            return (obj,)
        if obj.layout == torch.sparse_coo:
            return obj._indices(), obj._values()
        if obj.layout == torch.sparse_csr:
            return obj.crow_indices(), obj.col_indices(), obj.values()
        return ()  # other sparse layouts: the version counter only
    storage = getattr(obj, "storage", None)  # torch_sparse.SparseTensor
    if storage is None:
        return ()
    names = ("_row", "_rowptr", "_col", "_value")
    return tuple(getattr(storage, name, None) for name in names)


def _version(obj: Any) -> Any:
    """The state of a key object: version counters and contents.

    Raises ``RuntimeError`` for inference tensors (no version counter).
    In-place torch operations move the version counters; writes that bypass
    them (``tensor.data = other``, ``set_``, a NumPy array sharing the memory)
    change the data pointer, the shape or the checksum of the contents.
    """
    if obj is None:
        return None
    parts = _parts(obj)
    # values() of a sparse tensor share its counter
    versions = obj._version if isinstance(obj, Tensor) else ()
    versions = (
        versions,
        *(None if part is None else part._version for part in parts),
    )
    return versions, tuple(_content(part) for part in parts)


class _Strong:
    """A strong reference with the call interface of ``weakref.ref``."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __call__(self) -> Any:
        return self.obj


def _ref(obj: Any) -> Any:
    if obj is None:
        return None
    try:
        return weakref.ref(obj)
    except TypeError:  # not weak-referenceable: hold it
        return _Strong(obj)


class _Entry(NamedTuple):
    refs: tuple[Any, ...]
    key: tuple[Any, ...]
    value: Any

    def alive(self) -> bool:
        return all(ref is None or ref() is not None for ref in self.refs)

    def holds(self, objects: tuple[Any, ...]) -> bool:
        return len(self.refs) == len(objects) and all(
            obj is None if ref is None else ref() is obj
            for ref, obj in zip(self.refs, objects, strict=True)
        )


class GraphCache:
    """Cached values keyed on the identity of some objects (plus extra keys).

    An entry matches the very objects it was stored for (tensors,
    ``torch_sparse.SparseTensor`` or ``None``), as long as they are unchanged
    since, and equal ``extra`` keys (dtype, number of nodes, ...). A change is
    seen through the version counters (every in-place torch operation;
    inference tensors, which have none, are never cached) and, for writes
    that bypass them (``tensor.data = other``, ``set_``, a NumPy array or
    DLPack capsule sharing the memory), through the data pointers, shapes and
    strides and, for CPU tensors, a checksum: the wrapping sum of the
    entries' bit patterns, one pass over the data per lookup. A write around
    the version counter that keeps all of these (a permutation of the entries
    written through NumPy, say) is not seen; torch's own in-place operations
    always are. The
    objects are referenced weakly: an entry dies
    with its graph (and is dropped at the next lookup), so a cache never
    keeps a graph alive and a reused ``id`` cannot match. At most
    ``max_entries`` entries are kept; storing more drops the least recently
    used.

    Copies and pickles of a module start with an empty cache: the values are
    derived from the inputs, never state, so nothing is lost (and sparse CSR
    tensors cannot be deep-copied anyway).

    Args:
        max_entries (int, optional): How many graphs to remember.
            (default: :obj:`1`)

    Example:
        >>> import torch
        >>> cache, edge_index = GraphCache(), torch.tensor([[0, 1], [1, 0]])
        >>> cache.get((edge_index,), (2,), lambda: "built")
        'built'
        >>> cache.lookup((edge_index,), (2,)), cache.lookup((edge_index,), (3,))
        ('built', None)
    """

    def __init__(self, max_entries: int = 1) -> None:
        if not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"'max_entries' must be >= 1, got {max_entries!r}")
        self.max_entries = max_entries
        self.clear()

    def clear(self) -> None:
        """Forget every cached value."""
        self._entries: list[_Entry] = []

    def __len__(self) -> int:
        self._entries = [e for e in self._entries if e.alive()]
        return len(self._entries)

    @property
    def value(self) -> Any:
        """The most recently used value (``None`` when empty)."""
        return self._entries[-1].value if len(self) else None

    @staticmethod
    def _key(objects: tuple[Any, ...], extra: tuple[Any, ...]) -> tuple | None:
        try:
            versions = tuple(_version(obj) for obj in objects)
        except RuntimeError:  # inference tensors have no version counter
            return None
        return (*versions, *extra)

    def lookup(self, objects: tuple[Any, ...], extra: tuple[Any, ...]) -> Any:
        """The value stored for ``objects`` and ``extra``, or ``None``."""
        key = self._key(objects, extra)
        if key is None or not len(self):
            return None
        for i, entry in enumerate(self._entries):
            if entry.key == key and entry.holds(objects):
                self._entries.append(self._entries.pop(i))  # most recent last
                return entry.value
        return None

    def store(self, objects: tuple[Any, ...], extra: tuple[Any, ...], value: Any):
        """Cache ``value`` for ``objects`` and ``extra`` (if they can be keyed)."""
        key = self._key(objects, extra)
        if key is None:
            return
        self._entries = [e for e in self._entries if e.alive() and not e.holds(objects)]
        self._entries.append(_Entry(tuple(_ref(obj) for obj in objects), key, value))
        del self._entries[: -self.max_entries]

    def get(
        self,
        objects: tuple[Any, ...],
        extra: tuple[Any, ...],
        build: Callable[[], Any],
    ) -> Any:
        """The cached value, or ``build()`` (then cached)."""
        value = self.lookup(objects, extra)
        if value is None:
            value = build()
            self.store(objects, extra, value)
        return value

    def __deepcopy__(self, memo: dict) -> GraphCache:
        return GraphCache(self.max_entries)

    def __getstate__(self) -> dict:
        return {"max_entries": self.max_entries}

    def __setstate__(self, state: dict) -> None:
        self.max_entries = state.get("max_entries", 1)
        self.clear()

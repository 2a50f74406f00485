"""A small cache keyed on the graph (or input) a layer is given."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

from torch import Tensor


def _version(obj: Any) -> Any:
    """The in-place version of a key object (raises for inference tensors)."""
    if obj is None:
        return None
    if isinstance(obj, Tensor):
        return obj._version  # values() of a sparse tensor share its counter
    storage = getattr(obj, "storage", None)  # torch_sparse.SparseTensor
    if storage is None:
        return None
    value = storage.value()
    return storage.col()._version, None if value is None else value._version


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
    ``torch_sparse.SparseTensor`` or ``None``), as long as their version
    counters show no in-place change since (inference tensors, which have no
    version counter, are never cached), and equal ``extra`` keys (dtype,
    number of nodes, ...). The objects are referenced weakly: an entry dies
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

"""A one-entry cache keyed on the graph (or input) a layer is given."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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


class GraphCache:
    """One cached value keyed on the identity of some objects (plus extra keys).

    The key objects (tensors, ``torch_sparse.SparseTensor`` or ``None``) are
    held, so their ``id`` cannot be reused while cached; their version
    counters invalidate the entry on in-place changes (inference tensors,
    which have no version counter, are never cached). A lookup with other
    objects, or with other ``extra`` keys (dtype, number of nodes, ...),
    misses, and :meth:`store` then replaces the entry: the cache holds the
    value for the last graph stored.

    Copies and pickles of a module start with an empty cache: the value is
    derived from the inputs, never state, so nothing is lost (and sparse CSR
    tensors cannot be deep-copied anyway).

    Example:
        >>> import torch
        >>> cache, edge_index = GraphCache(), torch.tensor([[0, 1], [1, 0]])
        >>> cache.get((edge_index,), (2,), lambda: "built")
        'built'
        >>> cache.lookup((edge_index,), (2,)), cache.lookup((edge_index,), (3,))
        ('built', None)
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget the cached value."""
        self.objects: tuple[Any, ...] | None = None
        self.key: tuple[Any, ...] | None = None
        self.value: Any = None

    @staticmethod
    def _key(objects: tuple[Any, ...], extra: tuple[Any, ...]) -> tuple | None:
        try:
            versions = tuple(_version(obj) for obj in objects)
        except RuntimeError:  # inference tensors have no version counter
            return None
        return (*versions, *extra)

    def lookup(self, objects: tuple[Any, ...], extra: tuple[Any, ...]) -> Any:
        """The value stored for ``objects`` and ``extra``, or ``None``."""
        if self.objects is None or len(self.objects) != len(objects):
            return None
        if any(a is not b for a, b in zip(self.objects, objects, strict=True)):
            return None
        key = self._key(objects, extra)
        return self.value if key is not None and key == self.key else None

    def store(self, objects: tuple[Any, ...], extra: tuple[Any, ...], value: Any):
        """Cache ``value`` for ``objects`` and ``extra`` (if they can be keyed)."""
        key = self._key(objects, extra)
        if key is not None:
            self.objects, self.key, self.value = tuple(objects), key, value

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
        return GraphCache()

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.clear()

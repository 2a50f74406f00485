"""Reading pickles without running code: one allow list for every pickled file.

Pickles reach this package in three formats: the object arrays of GraphData
npz files, the few-shot feature pickles (``.pkl``, ``.pickle``, ``.plk``) and
PyG's Planetoid raw files (``ind.<name>.x`` and the like). A pickle names the
globals (functions, classes) that rebuild its objects, and plain
:func:`pickle.load` imports and calls whatever it names, so a crafted file
runs code. :class:`RestrictedUnpickler` resolves only the globals in
:data:`ALLOWED_GLOBALS` (numpy arrays, scalars and dtypes, scipy sparse
matrices and arrays, ``collections.OrderedDict`` and ``defaultdict``, a
few harmless ``builtins`` constructors, and the helpers that protocols below
3 name for ``bytes`` and plain objects) and refuses every other one with a
:class:`RefusedGlobalError` naming it, before it is imported.

Example:
    >>> import io, pickle
    >>> import numpy as np
    >>> from diffresnet_pyg.data.safe_pickle import safe_load
    >>> safe_load(io.BytesIO(pickle.dumps({"a": np.arange(3)})))
    {'a': array([0, 1, 2])}
"""

from __future__ import annotations

import builtins
import codecs
import collections
import copyreg
import importlib
import pickle
from typing import IO, Any

import scipy.sparse as sp

__all__ = [
    "ALLOWED_GLOBALS",
    "DAMAGED_PICKLE_ERRORS",
    "RefusedGlobalError",
    "RestrictedUnpickler",
    "safe_load",
]

#: numpy's pickle helpers, by module (old pickles name ``numpy.core``, new ones
#: ``numpy._core``; both resolve to the installed numpy's own module).
_NUMPY_HELPERS = {
    "multiarray": ("_reconstruct", "scalar"),
    "numeric": ("_frombuffer",),
}

#: ``builtins`` constructors of plain values (Python 2 pickles name the
#: module ``__builtin__`` and ``xrange``; ``object`` is the base class that
#: protocols 0 and 1 name with ``copyreg._reconstructor``).
_BUILTINS = (
    "bytearray",
    "complex",
    "dict",
    "frozenset",
    "list",
    "object",
    "range",
    "set",
    "slice",
    "tuple",
)

#: scipy.sparse's matrix and array classes (any ``scipy.sparse`` submodule:
#: old pickles name ``scipy.sparse.csr`` and the like).
_SPARSE_CLASSES = frozenset(
    f"{fmt}_{kind}"
    for fmt in ("csr", "csc", "coo", "bsr", "dia", "dok", "lil")
    for kind in ("matrix", "array")
)

#: Every global a pickle may name, as ``module.name`` (scipy sparse classes
#: may be named through any ``scipy.sparse`` submodule).
ALLOWED_GLOBALS: frozenset[str] = frozenset(
    {"numpy.ndarray", "numpy.dtype"}
    | {
        f"{package}.{module}.{name}"
        for package in ("numpy.core", "numpy._core")
        for module, names in _NUMPY_HELPERS.items()
        for name in names
    }
    | {
        f"{module}.{name}"
        for module in ("builtins", "__builtin__")
        for name in _BUILTINS
    }
    | {"__builtin__.xrange", "_codecs.encode"}
    | {"copyreg._reconstructor", "copy_reg._reconstructor"}
    | {"collections.OrderedDict", "collections.defaultdict"}
    | {f"scipy.sparse.{name}" for name in _SPARSE_CLASSES}
)


#: What unpickling a damaged (or crafted) pickle raises with the allowed
#: globals, besides :class:`RefusedGlobalError`: callers turn these into a
#: message naming the file.
DAMAGED_PICKLE_ERRORS: tuple[type[Exception], ...] = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    KeyError,
    IndexError,
)


class RefusedGlobalError(pickle.UnpicklingError):
    """A pickle names a global that is not allowed; nothing of it was imported.

    Attributes:
        global_name: The refused global, ``module.name``.
    """

    def __init__(self, global_name: str) -> None:
        super().__init__(
            f"refusing to unpickle the global {global_name} (only numpy arrays, "
            "scipy sparse matrices and plain containers are read)"
        )
        self.global_name = global_name

    @property
    def is_torch(self) -> bool:
        """Whether the refused global is torch's (a pickled tensor)."""
        return self.global_name.split(".", 1)[0] == "torch"


def _numpy_helper(module: str, name: str) -> Any:
    submodule = module.rsplit(".", 1)[1]
    try:
        found = importlib.import_module(f"numpy._core.{submodule}")
    except ImportError:  # numpy < 2
        found = importlib.import_module(f"numpy.core.{submodule}")
    return getattr(found, name)


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as Python 3 pickles ``bytes`` below protocol 3."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(
            f"refusing _codecs.encode with the encoding {encoding!r} (bytes are "
            "pickled with 'latin1')"
        )
    return codecs.encode(text, "latin1")


def _reconstructor(cls: type, base: type, state: Any) -> Any:
    """``copyreg._reconstructor`` (protocols 0 and 1, dict subclasses)."""
    if not (isinstance(cls, type) and base in (object, dict) and issubclass(cls, base)):
        raise pickle.UnpicklingError(
            f"refusing copyreg._reconstructor of {cls!r} from {base!r}"
        )
    return copyreg._reconstructor(cls, base, state)


def _resolve(module: str, name: str) -> Any:
    """The allowed global ``module.name`` (the caller has checked it)."""
    if module == "numpy":
        return getattr(importlib.import_module("numpy"), name)
    if module.startswith("numpy."):
        return _numpy_helper(module, name)
    if module.startswith("scipy.sparse"):
        return getattr(sp, name)
    if module in ("builtins", "__builtin__"):
        return range if name == "xrange" else getattr(builtins, name)
    if module == "_codecs":
        return _latin1_encode
    if module in ("copyreg", "copy_reg"):
        return _reconstructor
    return getattr(collections, name)


def _allowed(module: str, name: str) -> bool:
    if module.startswith("scipy.sparse.") and name in _SPARSE_CLASSES:
        return True
    return f"{module}.{name}" in ALLOWED_GLOBALS


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy, scipy sparse and plain objects only.

    Any global outside :data:`ALLOWED_GLOBALS` (a function such as
    ``os.system`` or ``builtins.exec``, a class of another package, a torch
    tensor) raises :class:`RefusedGlobalError` instead of being imported, so
    a crafted file cannot run code. The allowed globals are resolved here,
    not imported by the name the file gives.
    """

    def find_class(self, module: str, name: str) -> Any:
        """Return ``module.name`` if it is allowed, else refuse it.

        Raises:
            RefusedGlobalError: For any global that is not allowed.
        """
        if not _allowed(module, name):
            raise RefusedGlobalError(f"{module}.{name}")
        return _resolve(module, name)

    def persistent_load(self, pid: Any) -> Any:
        """Refuse persistent ids (pickles of this kind never use them)."""
        raise pickle.UnpicklingError("refusing a pickle with persistent ids")


def safe_load(file: IO[bytes], *, encoding: str = "ASCII") -> Any:
    """Unpickle :obj:`file` with :class:`RestrictedUnpickler`.

    Args:
        file (IO[bytes]): An open binary file.
        encoding (str, optional): How Python 2 ``str`` objects are decoded;
            ``"latin1"`` for pickles of numpy arrays written by Python 2.
            (default: :obj:`"ASCII"`)

    Returns:
        Any: The unpickled object.

    Raises:
        RefusedGlobalError: If the pickle names a global that is not allowed.
        Exception: One of :data:`DAMAGED_PICKLE_ERRORS` for a damaged pickle.
    """
    return RestrictedUnpickler(file, encoding=encoding).load()

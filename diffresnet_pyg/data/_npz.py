"""Reading ``.npz`` archives with clear errors, and pickled objects safely.

:func:`read_npz` reads every array of an archive at once, so that a file that
is not an npz archive, or one cut short, fails here with the file's name
rather than later with a zip or zlib error. Object arrays (pickles, as in the
GraphData files) are read with :class:`RestrictedUnpickler`, which rebuilds
numpy arrays and scipy sparse matrices and refuses every other global, so
reading a file never runs code named in it.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np

from diffresnet_pyg.data._common import DatasetFileError
from diffresnet_pyg.typing import PathLike

__all__ = ["RestrictedUnpickler", "read_npz", "require_keys"]

#: The globals a pickled object array may name: numpy's array rebuilding and
#: scipy's sparse matrix and array classes (by class name, any scipy.sparse
#: module, since old pickles name ``scipy.sparse.csr`` and the like).
_NUMPY_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}
_SPARSE_CLASSES = {
    f"{fmt}_{kind}"
    for fmt in ("csr", "csc", "coo", "bsr", "dia", "dok", "lil")
    for kind in ("matrix", "array")
}


class _PickledError(Exception):
    """An object array where plain arrays are expected (args: the member)."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler for numpy arrays and scipy sparse matrices only.

    Any other global (a function, a class of another package) raises
    :class:`pickle.UnpicklingError` instead of being imported, so a crafted
    file cannot run code.
    """

    def find_class(self, module: str, name: str) -> Any:
        """Import ``module.name`` if it is an allowed global, else refuse."""
        allowed = (module, name) in _NUMPY_GLOBALS or (
            (module == "scipy.sparse" or module.startswith("scipy.sparse."))
            and name in _SPARSE_CLASSES
        )
        if not allowed:
            raise pickle.UnpicklingError(
                f"refusing to unpickle the global {module}.{name} (only numpy "
                "arrays and scipy sparse matrices are read)"
            )
        return super().find_class(module, name)


def _read_member(stream: IO[bytes], allow_pickle: bool) -> Any:
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    if dtype.hasobject:
        if not allow_pickle:
            raise _PickledError(stream.name.removesuffix(".npy"))
        return RestrictedUnpickler(stream, encoding="latin1").load()
    count = int(np.prod(shape, dtype=np.int64))
    buffer = stream.read(count * dtype.itemsize)
    if len(buffer) != count * dtype.itemsize:
        raise EOFError("array data ends early")
    array = np.frombuffer(buffer, dtype=dtype, count=count).copy()
    if fortran:
        return array.reshape(shape[::-1]).transpose()
    return array.reshape(shape)


def read_npz(path: PathLike, *, allow_pickle: bool = False) -> dict[str, Any]:
    """Every array of the ``.npz`` archive :obj:`path`, by key.

    Args:
        path (str or os.PathLike): The file.
        allow_pickle (bool, optional): Read object arrays (with
            :class:`RestrictedUnpickler`: numpy arrays and scipy sparse
            matrices only). (default: :obj:`False`)

    Returns:
        dict[str, Any]: The arrays (a pickled 0-d object array is returned as
        numpy stores it: a 0-d object array holding the object).

    Raises:
        FileNotFoundError: If :obj:`path` does not exist.
        DatasetFileError: If the file is not an npz archive, is truncated or
            damaged, or holds pickled objects that are not allowed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file {path} not found")
    arrays: dict[str, Any] = {}
    try:
        with warnings.catch_warnings(), zipfile.ZipFile(path) as archive:
            # Old pickles name ``scipy.sparse.csr`` (a deprecated namespace).
            warnings.filterwarnings(
                "ignore", message=r".*scipy\.sparse\.\w+` namespace is deprecated"
            )
            for member in archive.namelist():
                key = member.removesuffix(".npy")
                with archive.open(member) as stream:
                    value = _read_member(stream, allow_pickle)
                arrays[key] = value
    except _PickledError as exc:
        raise DatasetFileError(
            f"{path}: the array {exc.args[0]!r} holds pickled Python objects, "
            "which this format does not read"
        ) from None
    except zipfile.BadZipFile as exc:
        raise DatasetFileError(
            f"{path} is not an npz archive, or it is truncated ({exc})"
        ) from None
    except (EOFError, zlib.error, OSError, ValueError, pickle.UnpicklingError) as exc:
        raise DatasetFileError(
            f"{path}: cannot read the npz archive, it is damaged or truncated "
            f"({type(exc).__name__}: {exc})"
        ) from None
    return arrays


def require_keys(
    arrays: dict[str, Any], keys: Iterable[str], path: PathLike, what: str
) -> None:
    """Raise if :obj:`arrays` lacks one of :obj:`keys`, naming them all.

    Raises:
        DatasetFileError: ``<path> is not a <what> file: keys [...] are
            missing (found [...])``.
    """
    missing = [key for key in keys if key not in arrays]
    if missing:
        raise DatasetFileError(
            f"{path} is not a {what} file: keys {missing} are missing "
            f"(found {sorted(arrays)})"
        )

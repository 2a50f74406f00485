"""Reading ``.npz`` archives with clear errors, and pickled objects safely.

:func:`read_npz` reads every array of an archive at once, so that a file that
is not an npz archive, or one cut short, fails here with the file's name
rather than later with a zip or zlib error. Object arrays (pickles, as in the
GraphData files) are read with
:class:`~diffresnet_pyg.data.safe_pickle.RestrictedUnpickler`, which rebuilds
numpy arrays, scipy sparse matrices and plain containers and refuses every
other global, so reading a file never runs code named in it.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np

from diffresnet_pyg.data._common import DatasetFileError
from diffresnet_pyg.data.safe_pickle import (
    DAMAGED_PICKLE_ERRORS,
    RefusedGlobalError,
    RestrictedUnpickler,
)
from diffresnet_pyg.typing import PathLike

__all__ = ["RestrictedUnpickler", "read_npz", "require_keys"]


class _PickledError(Exception):
    """An object array where plain arrays are expected (args: the member)."""


class _RefusedMemberError(Exception):
    """A pickled member names a refused global (args: the member, the global)."""


def _read_member(stream: IO[bytes], allow_pickle: bool) -> Any:
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    if dtype.hasobject:
        if not allow_pickle:
            raise _PickledError(stream.name.removesuffix(".npy"))
        try:
            return RestrictedUnpickler(stream, encoding="latin1").load()
        except RefusedGlobalError as exc:
            member = stream.name.removesuffix(".npy")
            raise _RefusedMemberError(member, exc.global_name) from None
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
            :class:`~diffresnet_pyg.data.safe_pickle.RestrictedUnpickler`:
            numpy arrays, scipy sparse matrices and plain containers only).
            (default: :obj:`False`)

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
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                key = member.removesuffix(".npy")
                with archive.open(member) as stream:
                    value = _read_member(stream, allow_pickle)
                arrays[key] = value
    except _RefusedMemberError as exc:
        member, global_name = exc.args
        raise DatasetFileError(
            f"{path}: refusing to unpickle the global {global_name} named by the "
            f"array {member!r} (pickled arrays may only hold numpy arrays, scipy "
            "sparse matrices and plain containers; nothing was run); convert the "
            "file to plain arrays, e.g. the csr format: np.savez(path, "
            "indptr=..., indices=..., features=..., labels=...)"
        ) from None
    except _PickledError as exc:
        raise DatasetFileError(
            f"{path}: the array {exc.args[0]!r} holds pickled Python objects, "
            "which this format does not read"
        ) from None
    except zipfile.BadZipFile as exc:
        raise DatasetFileError(
            f"{path} is not an npz archive, or it is truncated ({exc})"
        ) from None
    except (zlib.error, OSError, *DAMAGED_PICKLE_ERRORS) as exc:
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

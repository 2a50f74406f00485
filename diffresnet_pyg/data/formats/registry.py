"""The dataset-file registry: every format a file may be in, registered once.

A format is a reader ``read(path) -> Data`` registered under a name with
:func:`register_format`, together with a ``detect(probe)`` that says from a
:class:`FileProbe` (the file's extension and, for zip archives, its member
names) whether a file looks like this format. :func:`read_dataset_file`
picks the format (``"auto"``: the one format that recognizes the file),
reads the file and checks the result (:func:`check_graph`), so every reader
returns a graph whose edges, labels, features and masks are known to fit.

Adding a format is one new module in :mod:`diffresnet_pyg.data.formats` that
calls :func:`register_format`; the package imports every module in it.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.data import Data

from diffresnet_pyg.data._common import DatasetFileError
from diffresnet_pyg.data._validate import (
    check_edge_list,
    check_edge_weights,
    check_features,
    class_indices,
)
from diffresnet_pyg.typing import PathLike

__all__ = [
    "MASK_KEYS",
    "DatasetFileError",
    "DatasetFormat",
    "FileProbe",
    "check_graph",
    "detect_format",
    "format_names",
    "get_format",
    "read_dataset_file",
    "register_format",
]

#: The node masks of a dataset's own split, ``[num_nodes]`` or
#: ``[num_nodes, num_splits]`` (one column per split).
MASK_KEYS: tuple[str, ...] = ("train_mask", "val_mask", "test_mask")


@dataclass(frozen=True)
class FileProbe:
    """What format detection may look at without reading a file's arrays.

    Attributes:
        path: The file.
        suffix: Its extension, lowercased (``".npz"``, ``".pt"``).
        keys: For a zip archive (npz files, and ``torch.save`` files), its
            member names with ``.npy`` removed (an npz file's keys);
            :obj:`None` for any other file.
    """

    path: Path
    suffix: str
    keys: frozenset[str] | None

    @classmethod
    def of(cls, path: PathLike) -> FileProbe:
        """Probe :obj:`path` (only the zip directory is read)."""
        path = Path(path)
        keys = None
        if zipfile.is_zipfile(path):
            try:
                with zipfile.ZipFile(path) as archive:
                    names = archive.namelist()
            except (zipfile.BadZipFile, OSError):
                names = None
            if names is not None:
                keys = frozenset(n.removesuffix(".npy") for n in names)
        return cls(path, path.suffix.lower(), keys)

    def has_keys(self, *keys: str) -> bool:
        """Whether the file is a zip archive holding all of :obj:`keys`."""
        return self.keys is not None and set(keys) <= self.keys


@dataclass(frozen=True)
class DatasetFormat:
    """A registered dataset-file format (made by :func:`register_format`).

    Attributes:
        name: The ``dataset.format`` of configs and ``format`` of
            :func:`~diffresnet_pyg.data.load_dataset`.
        read: Reads a file into a :class:`~torch_geometric.data.Data` (no
            preprocessing); raises :class:`DatasetFileError`.
        detect: Whether a probed file looks like this format.
        signature: How the format is recognized, for error messages.
    """

    name: str
    read: Callable[[Path], Data]
    detect: Callable[[FileProbe], bool]
    signature: str


_FORMATS: dict[str, DatasetFormat] = {}


def register_format(
    name: str, *, detect: Callable[[FileProbe], bool], signature: str
) -> Callable[[Callable[[Path], Data]], Callable[[Path], Data]]:
    """Register a reader under :obj:`name` (a decorator; returns the reader).

    Args:
        name (str): The format's name.
        detect (callable): ``detect(probe) -> bool``, from a
            :class:`FileProbe`; it must not read the arrays.
        signature (str): How the format is recognized (keys, extension),
            shown when no format or several formats match a file.

    Raises:
        ValueError: If :obj:`name` is taken or is ``"auto"``.
    """
    if name in _FORMATS or name == "auto":
        raise ValueError(f"dataset format {name!r} is already registered")

    def decorator(read: Callable[[Path], Data]) -> Callable[[Path], Data]:
        _FORMATS[name] = DatasetFormat(name, read, detect, signature)
        return read

    return decorator


def format_names() -> tuple[str, ...]:
    """The registered format names, sorted."""
    return tuple(sorted(_FORMATS))


def get_format(name: str) -> DatasetFormat:
    """The registered format :obj:`name`.

    Raises:
        ValueError: For an unknown name (the message lists the formats).
    """
    if name not in _FORMATS:
        raise ValueError(
            f"unknown dataset format {name!r}; allowed: auto, "
            + ", ".join(format_names())
        )
    return _FORMATS[name]


def _formats_listing() -> str:
    return "; ".join(
        f"{f.name}: {f.signature}" for f in map(get_format, format_names())
    )


def detect_format(path: PathLike) -> str:
    """The one registered format that recognizes :obj:`path`.

    Raises:
        FileNotFoundError: If the file does not exist.
        DatasetFileError: If no format or several formats recognize it (the
            message lists the formats and how each is recognized).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file {path} not found")
    probe = FileProbe.of(path)
    matches = [name for name in format_names() if _FORMATS[name].detect(probe)]
    if len(matches) == 1:
        return matches[0]
    found = "" if probe.keys is None else f" (its keys: {sorted(probe.keys)})"
    if not matches:
        problem = "no dataset format recognizes it"
        if probe.keys is None and probe.suffix == ".npz":
            problem = "it is not an npz archive, or it is truncated"
        raise DatasetFileError(
            f"{path}: {problem}{found}; formats: {_formats_listing()}"
        )
    raise DatasetFileError(
        f"{path}: the format is ambiguous, it looks like {', '.join(matches)}"
        f"{found}; give the format explicitly (dataset.format / format=)"
    )


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def _bad(path: Path, text: str) -> DatasetFileError:
    return DatasetFileError(f"{path}: {text}")


def check_graph(data: Data, path: PathLike) -> Data:
    """Check that a graph read from :obj:`path` is consistent; return it.

    ``num_nodes`` must be set; ``edge_index`` must be ``[2, E]`` integers in
    ``[0, num_nodes)``; ``edge_weight`` (if any) finite and >= 0; ``x`` (if
    any) ``num_nodes`` rows of finite numbers; ``y`` ``num_nodes`` integer
    class indices ``0..C-1`` with every class present (no "unlabeled" value;
    or a ``[num_nodes, C]`` label matrix); the split masks (if any) boolean
    ``[num_nodes]`` or ``[num_nodes, S]``, all three with the same number of
    columns. Messages name the attribute, how many entries are wrong and
    the first of them.

    Raises:
        DatasetFileError: Naming the file and what is wrong.
    """
    path = Path(path)
    if data.num_nodes is None:
        raise _bad(path, "the number of nodes is unknown")
    num_nodes = int(data.num_nodes)
    edge_index = data.edge_index
    if edge_index is None:
        raise _bad(path, "the graph has no edges (edge_index)")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise _bad(path, f"edge_index must be [2, E], got {list(edge_index.shape)}")
    if edge_index.is_floating_point() or edge_index.dtype == torch.bool:
        raise _bad(path, f"edge_index must hold integers, got {edge_index.dtype}")
    check_edge_list(_numpy(edge_index), num_nodes, "edge_index", path, pairs=False)
    weight = data.edge_weight if "edge_weight" in data else None
    if weight is not None:
        if weight.numel() != edge_index.size(1):
            raise _bad(
                path,
                f"{weight.numel()} edge weights for {edge_index.size(1)} edges",
            )
        row, col = _numpy(edge_index)
        check_edge_weights(_numpy(weight.double()), "edge_weight", path, row, col)
    x = data.x
    if x is not None:
        if x.size(0) != num_nodes:
            raise _bad(path, f"{x.size(0)} feature rows for {num_nodes} nodes")
        values = x.coalesce().values() if x.layout == torch.sparse_coo else x
        if values.is_floating_point() and not bool(torch.isfinite(values).all()):
            if x.layout == torch.sparse_coo and x.dim() == 2:
                x = x.coalesce()
                row, col = _numpy(x.indices())
                values = _numpy(x.values().double())
                check_features(
                    sp.coo_matrix((values, (row, col)), shape=tuple(x.shape)),
                    "x",
                    path,
                )
            elif x.layout == torch.strided:
                check_features(_numpy(x.double()), "x", path)
            raise _bad(path, "features include NaN or infinite values")
    y = data.y
    if y is not None:
        if y.size(0) != num_nodes:
            raise _bad(path, f"{y.size(0)} labels for {num_nodes} nodes")
        if y.is_floating_point():
            raise _bad(path, f"labels must be integers, got {y.dtype}")
        if y.dim() == 1:
            class_indices(_numpy(y), "y", path)
    columns = set()
    for key in MASK_KEYS:
        if key not in data:
            continue
        mask = data[key]
        if mask.dtype != torch.bool or mask.dim() not in (1, 2):
            raise _bad(
                path,
                f"{key} must be boolean [num_nodes] or [num_nodes, num_splits], "
                f"got {mask.dtype} {list(mask.shape)}",
            )
        if mask.size(0) != num_nodes:
            raise _bad(path, f"{key} has {mask.size(0)} entries for {num_nodes} nodes")
        columns.add(1 if mask.dim() == 1 else mask.size(1))
    if len(columns) > 1:
        raise _bad(path, "train/val/test masks have different numbers of splits")
    return data


def read_dataset_file(path: PathLike, format: str = "auto") -> Data:
    """Read a dataset file in a registered format and check it.

    Args:
        path (str or os.PathLike): The file.
        format (str, optional): A registered format, or ``"auto"`` to detect
            it (:func:`detect_format`). (default: :obj:`"auto"`)

    Returns:
        torch_geometric.data.Data: The graph as stored (nothing normalized).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: For an unknown format.
        DatasetFileError: If the file cannot be read in the format or its
            content is inconsistent (:func:`check_graph`).
    """
    path = Path(path)
    if format != "auto":
        spec = get_format(format)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file {path} not found")
    spec = get_format(detect_format(path) if format == "auto" else format)
    return check_graph(spec.read(path), path)

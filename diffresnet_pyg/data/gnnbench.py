"""The gnn-benchmark (`shchur/gnn-benchmark`) npz datasets.

``<root>/gnnbench/<name>.npz``: the "Pitfalls of GNN evaluation"
(gnn-benchmark) files that the Diff-ResNet authors use. Cora and Citeseer ship
inside the package (``diffresnet_pyg/data/bundled/``, byte for byte
gnn-benchmark's files) and are read from there when the root lacks them; the
other files are downloaded from gnn-benchmark's repository when missing.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch_geometric.data
from torch_geometric.data import Data

from diffresnet_pyg.data._common import DatasetFileError, check_name
from diffresnet_pyg.data._convert import to_data
from diffresnet_pyg.data._npz import read_npz, require_keys
from diffresnet_pyg.data._validate import check_csr
from diffresnet_pyg.data.root import resolve_root
from diffresnet_pyg.typing import PathLike

__all__ = [
    "BUNDLED_NAMES",
    "GNNBENCH_NAMES",
    "GNNBENCH_URL",
    "bundled_path",
    "load_gnnbench",
    "load_gnnbench_npz",
]

logger = logging.getLogger(__name__)

#: Where gnn-benchmark's npz files are downloaded from (``<url><name>.npz``).
GNNBENCH_URL = "https://github.com/shchur/gnn-benchmark/raw/master/data/npz/"

#: The gnn-benchmark files (``<root>/gnnbench/<name>.npz``).
GNNBENCH_NAMES: tuple[str, ...] = (
    "cora",
    "citeseer",
    "pubmed",
    "cora_full",
    "amazon_electronics_computers",
    "amazon_electronics_photo",
    "ms_academic_cs",
    "ms_academic_phy",
)


#: The gnn-benchmark files shipped inside the package (no download needed).
BUNDLED_NAMES: tuple[str, ...] = ("cora", "citeseer")

_BUNDLED_FOLDER = Path(__file__).resolve().parent / "bundled"


def bundled_path(name: str) -> Path | None:
    """The copy of ``<name>.npz`` shipped with the package, or :obj:`None`.

    Example:
        >>> bundled_path("cora").name
        'cora.npz'
        >>> bundled_path("pubmed") is None
        True
    """
    path = _BUNDLED_FOLDER / f"{name}.npz"
    return path if name in BUNDLED_NAMES and path.is_file() else None


def _csr_from_parts(loader: Any, prefix: str, path: Path) -> sp.csr_matrix:
    """A CSR matrix from ``<prefix>_data, _indices, _indptr, _shape``."""
    require_keys(
        loader,
        [f"{prefix}_{part}" for part in ("data", "indices", "indptr", "shape")],
        path,
        "gnn-benchmark npz",
    )
    shape_array = np.asarray(loader[f"{prefix}_shape"])
    if (
        shape_array.shape != (2,)
        or not np.issubdtype(shape_array.dtype, np.integer)
        or bool((shape_array < 0).any())
    ):
        raise DatasetFileError(
            f"{path}: '{prefix}_shape' must be two sizes (rows, columns), got "
            f"{shape_array.tolist()}"
        )
    shape = (int(shape_array[0]), int(shape_array[1]))
    indptr, indices = loader[f"{prefix}_indptr"], loader[f"{prefix}_indices"]
    check_csr(
        indptr,
        indices,
        shape,
        path,
        (f"{prefix}_indptr", f"{prefix}_indices"),
        nodes=prefix == "adj",
    )
    values = np.asarray(loader[f"{prefix}_data"])
    if values.shape != np.shape(indices):
        raise DatasetFileError(
            f"{path}: '{prefix}_data' has shape {values.shape}, "
            f"'{prefix}_indices' {np.shape(indices)}; one value per stored entry"
        )
    if values.dtype == object or not (
        np.issubdtype(values.dtype, np.number) or values.dtype == bool
    ):
        raise DatasetFileError(
            f"{path}: '{prefix}_data' must hold numbers, got dtype {values.dtype}"
        )
    matrix = sp.csr_matrix((values, indices, indptr), shape=shape)
    return matrix


def _class_names(loader: Any, path: Path) -> list[str] | None:
    """The file's ``class_names`` (labels index them), if it has them."""
    if "class_names" not in loader:
        return None
    names = np.asarray(loader["class_names"])
    if names.ndim != 1:
        raise DatasetFileError(
            f"{path}: 'class_names' must be 1-D, got shape {names.shape}"
        )
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names.tolist()]


def load_gnnbench_npz(path: PathLike) -> Data:
    """Read one gnn-benchmark ``.npz`` file (no preprocessing).

    Reads the keys as gnn-benchmark's ``load_npz_to_sparse_graph`` does: the
    adjacency from ``adj_data, adj_indices, adj_indptr, adj_shape`` (CSR);
    features from ``attr_data, attr_indices, attr_indptr, attr_shape`` (CSR)
    or ``attr_matrix`` (dense), or none; labels from ``labels`` or the CSR parts
    ``labels_data, labels_indices, labels_indptr, labels_shape`` (one label per
    row becomes class indices, several a multi-hot ``[N, C]`` matrix).

    Every stored adjacency entry is an edge. If some stored weight is not 1
    the weights are kept as ``edge_weight``. The arrays are checked first:
    CSR indices within ``*_shape``, edge weights finite and ``>= 0``,
    features finite, labels class indices ``0..C-1`` with every class
    present (``C`` is the length of ``class_names`` when the file has it).

    Args:
        path (str or os.PathLike): The ``.npz`` file.

    Returns:
        torch_geometric.data.Data: ``edge_index``, ``x`` (dense float32; absent
        if the file has no attributes), ``y``, ``num_nodes``.

    Raises:
        DatasetFileError: If the file is not a gnn-benchmark npz file or an
            array is inconsistent or invalid; the message names the key.
    """
    path = Path(path)
    # Plain arrays only: nothing is unpickled.
    loader = read_npz(path)
    require_keys(
        loader,
        ("adj_data", "adj_indices", "adj_indptr", "adj_shape"),
        path,
        "gnn-benchmark npz",
    )
    adj = _csr_from_parts(loader, "adj", path)
    attr: sp.csr_matrix | np.ndarray | None
    attr_key = "attr_data"
    if "attr_data" in loader:
        attr = _csr_from_parts(loader, "attr", path)
    elif "attr_matrix" in loader:
        attr = np.asarray(loader["attr_matrix"])
        attr_key = "attr_matrix"
    else:
        attr = None
    labels: Any
    labels_key = "labels"
    if "labels_data" in loader:
        labels = _csr_from_parts(loader, "labels", path)
        labels_key = "labels_data"
    elif "labels" in loader:
        labels = loader["labels"]
    else:
        labels = None
    data = to_data(
        adj,
        attr,
        labels,
        path,
        keys=("adj_data", attr_key, labels_key),
        class_names=_class_names(loader, path),
    )
    logger.debug("loaded %s: %s", path, data)
    return data


def _download_failed_error(name: str, path: Path, url: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"dataset {name!r} is missing and could not be downloaded. Put the file "
        f"at {path} (download it from {url}), or point the dataset root "
        "elsewhere (argument 'root' or the DIFFRESNET_PYG_DATA environment "
        "variable)."
    )


def load_gnnbench(
    name: str, root: PathLike | None = None, *, download: bool = True
) -> Data:
    """Load ``<root>/gnnbench/<name>.npz``; the shipped copy or a download if missing.

    A file under the root always wins. Without one, ``"cora"`` and
    ``"citeseer"`` are read from the copies shipped with the package
    (:obj:`BUNDLED_NAMES`; nothing is downloaded or written). Other missing
    files are fetched with :func:`torch_geometric.data.download_url`
    from ``https://github.com/shchur/gnn-benchmark/raw/master/data/npz/<name>.npz``
    (into a temporary name first, so an interrupted download leaves nothing
    behind). No preprocessing is applied (see :func:`load_dataset`).

    Args:
        name (str): One of :obj:`GNNBENCH_NAMES` (``"cora"``, ``"citeseer"``,
            ``"pubmed"``, ``"cora_full"``, ``"amazon_electronics_computers"``,
            ``"amazon_electronics_photo"``, ``"ms_academic_cs"``,
            ``"ms_academic_phy"``).
        root (str or os.PathLike, optional): Dataset root, see
            :func:`~diffresnet_pyg.data.resolve_root`. (default: :obj:`None`)
        download (bool, optional): If :obj:`False`, never download.
            (default: :obj:`True`)

    Returns:
        torch_geometric.data.Data: The raw graph.

    Raises:
        ValueError: For an unknown name.
        FileNotFoundError: If the file is missing, is not shipped with the
            package and cannot be downloaded;
            the message names the path to put it at and the URL.
    """
    name = check_name(name, GNNBENCH_NAMES, "gnn-benchmark")
    folder = resolve_root(root) / "gnnbench"
    path = folder / f"{name}.npz"
    url = f"{GNNBENCH_URL}{name}.npz"
    if not path.is_file() and (shipped := bundled_path(name)) is not None:
        logger.debug("%s not found; reading the copy shipped at %s", path, shipped)
        return load_gnnbench_npz(shipped)
    if not path.is_file():
        if not download:
            raise _download_failed_error(name, path, url)
        logger.info("%s not found; downloading %s", path, url)
        part = folder / f"{name}.npz.part"
        folder.mkdir(parents=True, exist_ok=True)
        try:
            torch_geometric.data.download_url(
                url, os.fspath(folder), log=False, filename=part.name
            )
            os.replace(part, path)
        except Exception as exc:
            part.unlink(missing_ok=True)
            raise _download_failed_error(name, path, url) from exc
    return load_gnnbench_npz(path)

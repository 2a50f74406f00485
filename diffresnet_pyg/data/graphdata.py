"""The GraphData collection's npz files of pickled scipy objects.

``<root>/graphdata/<name>.npz``: the pickled-scipy files of the GraphData
collection (never downloaded).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from torch_geometric.data import Data

from diffresnet_pyg.data._common import DatasetFileError, check_name
from diffresnet_pyg.data._convert import to_data
from diffresnet_pyg.data._npz import read_npz, require_keys
from diffresnet_pyg.data._validate import checked_sparse
from diffresnet_pyg.data.root import resolve_root
from diffresnet_pyg.typing import PathLike

__all__ = ["GRAPHDATA_NAMES", "load_graphdata", "load_graphdata_npz"]

logger = logging.getLogger(__name__)

#: The GraphData files (``<root>/graphdata/<name>.npz``).
GRAPHDATA_NAMES: tuple[str, ...] = ("coauthor_cs", "coauthor_phy", "amazon_cs")


def _unwrap(value: Any) -> Any:
    """The object inside a pickled 0-d object array (other values unchanged)."""
    if isinstance(value, np.ndarray) and value.dtype == object and value.ndim == 0:
        return value.item()
    return value


def _to_csr(value: Any, what: str, path: Path) -> sp.csr_matrix | np.ndarray:
    """Unwrap a pickled 0-d object array; return CSR for sparse input.

    A pickled matrix was never validated: its indices are checked before it
    is converted (:func:`~diffresnet_pyg.data._validate.checked_sparse`).
    """
    value = _unwrap(value)
    if sp.issparse(value):
        return checked_sparse(value, what, path)
    if isinstance(value, np.ndarray):
        return value
    raise DatasetFileError(
        f"{path}: '{what}' must be a scipy sparse matrix or a numpy array "
        f"(got {type(value).__name__})"
    )


def _class_names(loader: Any, path: Path) -> list[str] | None:
    """``metadata['class_names']`` (labels index them), if the file has them."""
    metadata = _unwrap(loader.get("metadata"))
    if not isinstance(metadata, dict) or metadata.get("class_names") is None:
        return None
    names = np.asarray(metadata["class_names"])
    if names.ndim != 1 or not all(isinstance(n, (str, bytes)) for n in names.tolist()):
        raise DatasetFileError(
            f"{path}: metadata['class_names'] must be a 1-D array of names, got "
            f"{names.dtype} {names.shape}"
        )
    return [n.decode() if isinstance(n, bytes) else n for n in names.tolist()]


def load_graphdata_npz(path: PathLike) -> Data:
    """Read one GraphData ``.npz`` file of pickled scipy objects (no preprocessing).

    The file holds ``adj_matrix`` (a 0-d object array holding a CSR matrix),
    ``node_attr`` (CSR or dense), ``node_label`` and ``metadata``. The
    pickled objects are read with a restricted unpickler that rebuilds numpy
    arrays and scipy sparse matrices only and refuses any other global, so a
    file cannot run code.
    The adjacency is returned as stored (``amazon_cs`` is directed;
    :func:`~diffresnet_pyg.data.standardize` symmetrizes it). The content is
    checked: the sparse matrices' indices within their shapes, edge weights
    finite and ``>= 0``, features finite, labels class indices ``0..C-1``
    with every class present (``C`` is the length of
    ``metadata['class_names']`` when the file has it).

    Args:
        path (str or os.PathLike): The ``.npz`` file.

    Returns:
        torch_geometric.data.Data: ``edge_index``, ``x`` (dense float32),
        ``y``, ``num_nodes``.

    Raises:
        DatasetFileError: If the file is not a GraphData npz file, names a
            pickled global that is not allowed, or an array is invalid; the
            message names the key.
    """
    path = Path(path)
    loader = read_npz(path, allow_pickle=True)
    require_keys(
        loader, ("adj_matrix", "node_attr", "node_label"), path, "GraphData npz"
    )
    adj = _to_csr(loader["adj_matrix"], "adj_matrix", path)
    attr = _to_csr(loader["node_attr"], "node_attr", path)
    labels = _unwrap(loader["node_label"])
    data = to_data(
        adj,
        attr,
        labels,
        path,
        keys=("adj_matrix", "node_attr", "node_label"),
        class_names=_class_names(loader, path),
        names_key="metadata['class_names']",
    )
    logger.debug("loaded %s: %s", path, data)
    return data


def load_graphdata(name: str, root: PathLike | None = None) -> Data:
    """Load ``<root>/graphdata/<name>.npz`` (never downloaded).

    Args:
        name (str): One of :obj:`GRAPHDATA_NAMES` (``"coauthor_cs"``,
            ``"coauthor_phy"``, ``"amazon_cs"``).
        root (str or os.PathLike, optional): Dataset root. (default: :obj:`None`)

    Returns:
        torch_geometric.data.Data: The raw graph.

    Raises:
        ValueError: For an unknown name.
        FileNotFoundError: If the file is missing; the message names the path.
    """
    name = check_name(name, GRAPHDATA_NAMES, "GraphData")
    path = resolve_root(root) / "graphdata" / f"{name}.npz"
    if not path.is_file():
        raise FileNotFoundError(
            f"dataset 'graphdata/{name}' not found: put {name}.npz of the "
            "GraphData collection (github.com/EdisonLeeeee/GraphData, folder "
            f"datasets/) at {path}; it is not downloaded automatically"
        )
    return load_graphdata_npz(path)

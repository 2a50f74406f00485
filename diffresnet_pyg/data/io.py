"""Loaders of the graph datasets into :class:`torch_geometric.data.Data`.

Three on-disk formats are read, each under its own folder of the dataset root
(see :func:`~diffresnet_pyg.data.resolve_root`):

* ``<root>/gnnbench/<name>.npz``: the "Pitfalls of GNN evaluation"
  (gnn-benchmark) files that the Diff-ResNet authors use; downloaded from
  gnn-benchmark's repository when missing.
* ``<root>/planetoid``, ``<root>/coauthor``, ``<root>/amazon``: PyG's
  :class:`~torch_geometric.datasets.Planetoid`,
  :class:`~torch_geometric.datasets.Coauthor` and
  :class:`~torch_geometric.datasets.Amazon` in PyG's own layout (e.g.
  ``<root>/planetoid/Cora/raw/ind.cora.x``); PyG downloads missing raw files.
* ``<root>/graphdata/<name>.npz``: the pickled-scipy files of the GraphData
  collection (never downloaded).

Every loader returns ``x`` (dense :obj:`torch.float32`), ``y``
(:obj:`torch.long`), ``edge_index`` (:obj:`torch.long`, coalesced) and
``num_nodes``; nothing is normalized unless :func:`load_dataset` is asked to.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch_geometric.data
from torch_geometric.data import Data, InMemoryDataset
from torch_geometric.utils import coalesce

from diffresnet_pyg.data.root import resolve_root
from diffresnet_pyg.data.transforms import (
    remove_small_classes,
    row_normalize,
)
from diffresnet_pyg.data.transforms import standardize as _standardize

__all__ = [
    "DATASET_NAMES",
    "GNNBENCH_NAMES",
    "GNNBENCH_URL",
    "GRAPHDATA_NAMES",
    "PYG_DATASETS",
    "load_dataset",
    "load_gnnbench",
    "load_gnnbench_npz",
    "load_graphdata",
    "load_graphdata_npz",
    "load_pyg_dataset",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

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

#: The GraphData files (``<root>/graphdata/<name>.npz``).
GRAPHDATA_NAMES: tuple[str, ...] = ("coauthor_cs", "coauthor_phy", "amazon_cs")

#: PyG dataset families and their dataset names, as PyG spells them.
PYG_DATASETS: dict[str, tuple[str, ...]] = {
    "planetoid": ("Cora", "CiteSeer", "PubMed"),
    "coauthor": ("CS", "Physics"),
    "amazon": ("Computers", "Photo"),
}

#: Every name :func:`load_dataset` accepts (matched case-insensitively; the
#: gnn-benchmark names may also be written ``gnnbench/<name>``).
DATASET_NAMES: tuple[str, ...] = (
    GNNBENCH_NAMES
    + tuple(
        f"{family}/{name}" for family, names in PYG_DATASETS.items() for name in names
    )
    + tuple(f"graphdata/{name}" for name in GRAPHDATA_NAMES)
)

#: gnn-benchmark drops the classes of ``cora_full`` with at most
#: ``train + val = 20 + 30`` nodes before the split.
_CORA_FULL_MIN_CLASS_SIZE = 50


def _to_csr(value: Any, what: str, path: Path) -> sp.csr_matrix | np.ndarray:
    """Unwrap a pickled 0-d object array; return CSR for sparse input."""
    if isinstance(value, np.ndarray) and value.dtype == object and value.ndim == 0:
        value = value.item()
    if sp.issparse(value):
        return sp.csr_matrix(value)
    if isinstance(value, np.ndarray):
        return value
    raise ValueError(
        f"{path}: '{what}' must be a scipy sparse matrix or a numpy array "
        f"(got {type(value).__name__})"
    )


def _edges_from_adjacency(adj: sp.csr_matrix) -> tuple[torch.Tensor, torch.Tensor]:
    """``edge_index`` and weights of every stored entry (duplicates summed)."""
    adj = sp.csr_matrix(adj, copy=True)
    adj.sum_duplicates()
    coo = adj.tocoo()
    edge_index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    weight = torch.from_numpy(np.asarray(coo.data, dtype=np.float32))
    edge_index, weight = coalesce(edge_index, weight, num_nodes=adj.shape[0])
    return edge_index, weight


def _labels_to_tensor(labels: Any, num_nodes: int, path: Path) -> torch.Tensor:
    """Class indices (or a multi-hot matrix) as :obj:`torch.long`.

    A label matrix (sparse or dense) with exactly one nonzero per row becomes
    class indices; any other matrix a multi-hot ``[num_nodes, num_classes]``.
    """
    if sp.issparse(labels):
        labels = sp.csr_matrix(labels).toarray()
    labels = np.asarray(labels)
    if labels.ndim == 2:
        hot = labels != 0
        if np.all(hot.sum(axis=1) == 1):
            y = hot.argmax(axis=1).astype(np.int64)
        else:
            logger.warning(
                "%s: labels are multi-label; 'y' is a [num_nodes, num_classes] "
                "multi-hot matrix",
                path,
            )
            y = hot.astype(np.int64)
    else:
        y = labels.astype(np.int64).reshape(-1)
    if y.shape[0] != num_nodes:
        raise ValueError(
            f"{path}: {y.shape[0]} labels for {num_nodes} nodes; the file is "
            "inconsistent"
        )
    return torch.from_numpy(np.ascontiguousarray(y))


def _to_data(
    adj: sp.csr_matrix | np.ndarray,
    attr: sp.csr_matrix | np.ndarray | None,
    labels: Any,
    path: Path,
) -> Data:
    """Assemble a :class:`Data` from an adjacency, features and labels."""
    if not sp.issparse(adj):
        adj = sp.csr_matrix(np.asarray(adj))
    num_nodes = int(adj.shape[0])
    if adj.shape[0] != adj.shape[1]:
        raise ValueError(f"{path}: adjacency matrix is not square ({adj.shape})")
    edge_index, weight = _edges_from_adjacency(adj)
    data = Data(edge_index=edge_index, num_nodes=num_nodes)
    if weight.numel() and not bool(torch.all(weight == 1)):
        data.edge_weight = weight
    if attr is not None:
        dense = attr.toarray() if sp.issparse(attr) else np.asarray(attr)
        if dense.shape[0] != num_nodes:
            raise ValueError(
                f"{path}: {dense.shape[0]} feature rows for {num_nodes} nodes"
            )
        data.x = torch.from_numpy(np.ascontiguousarray(dense, dtype=np.float32))
    if labels is not None:
        data.y = _labels_to_tensor(labels, num_nodes, path)
    return data


def _csr_from_parts(loader: Any, prefix: str) -> sp.csr_matrix:
    """A CSR matrix from ``<prefix>_data, _indices, _indptr, _shape``."""
    return sp.csr_matrix(
        (
            loader[f"{prefix}_data"],
            loader[f"{prefix}_indices"],
            loader[f"{prefix}_indptr"],
        ),
        shape=tuple(int(s) for s in loader[f"{prefix}_shape"]),
    )


def load_gnnbench_npz(path: PathLike) -> Data:
    """Read one gnn-benchmark ``.npz`` file (no preprocessing).

    Reads the keys as gnn-benchmark's ``load_npz_to_sparse_graph`` does: the
    adjacency from ``adj_data, adj_indices, adj_indptr, adj_shape`` (CSR);
    features from ``attr_data, attr_indices, attr_indptr, attr_shape`` (CSR)
    or ``attr_matrix`` (dense), or none; labels from ``labels`` or the CSR parts
    ``labels_data, labels_indices, labels_indptr, labels_shape`` (one label per
    row becomes class indices, several a multi-hot ``[N, C]`` matrix).

    Every stored adjacency entry is an edge. If some stored weight is not 1
    the weights are kept as ``edge_weight``.

    Args:
        path (str or os.PathLike): The ``.npz`` file.

    Returns:
        torch_geometric.data.Data: ``edge_index``, ``x`` (dense float32; absent
        if the file has no attributes), ``y``, ``num_nodes``.
    """
    path = Path(path)
    # Only the needed keys are read, without unpickling anything.
    with np.load(path, allow_pickle=False) as loader:
        keys = set(loader.files)
        missing = [
            k
            for k in ("adj_data", "adj_indices", "adj_indptr", "adj_shape")
            if k not in keys
        ]
        if missing:
            raise ValueError(
                f"{path} is not a gnn-benchmark npz file: keys {missing} are "
                f"missing (found {sorted(keys)})"
            )
        adj = _csr_from_parts(loader, "adj")
        attr: sp.csr_matrix | np.ndarray | None
        if "attr_data" in keys:
            attr = _csr_from_parts(loader, "attr")
        elif "attr_matrix" in keys:
            attr = np.asarray(loader["attr_matrix"])
        else:
            attr = None
        labels: Any
        if "labels_data" in keys:
            labels = _csr_from_parts(loader, "labels")
        elif "labels" in keys:
            labels = loader["labels"]
        else:
            labels = None
    data = _to_data(adj, attr, labels, path)
    logger.debug("loaded %s: %s", path, data)
    return data


def _download_failed_error(name: str, path: Path, url: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"dataset {name!r} is missing and could not be downloaded. Put the file "
        f"at {path} (download it from {url}), or point the dataset root "
        "elsewhere (argument 'root' or the DIFFRESNET_PYG_DATA environment "
        "variable)."
    )


def _check_name(name: str, allowed: tuple[str, ...], what: str) -> str:
    lowered = {n.lower(): n for n in allowed}
    key = name.lower() if isinstance(name, str) else name
    if key not in lowered:
        raise ValueError(
            f"unknown {what} dataset {name!r}; allowed: {', '.join(allowed)}"
        )
    return lowered[key]


def load_gnnbench(
    name: str, root: PathLike | None = None, *, download: bool = True
) -> Data:
    """Load ``<root>/gnnbench/<name>.npz``, downloading it only if it is missing.

    Missing files are fetched with :func:`torch_geometric.data.download_url`
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
        FileNotFoundError: If the file is missing and cannot be downloaded;
            the message names the path to put it at and the URL.
    """
    name = _check_name(name, GNNBENCH_NAMES, "gnn-benchmark")
    folder = resolve_root(root) / "gnnbench"
    path = folder / f"{name}.npz"
    url = f"{GNNBENCH_URL}{name}.npz"
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


def load_graphdata_npz(path: PathLike) -> Data:
    """Read one GraphData ``.npz`` file of pickled scipy objects (no preprocessing).

    The file holds ``adj_matrix`` (a 0-d object array holding a CSR matrix),
    ``node_attr`` (CSR or dense), ``node_label`` and ``metadata``; it is read
    with ``numpy.load(path, allow_pickle=True)``, so only load files you trust.
    The adjacency is returned as stored (``amazon_cs`` is directed;
    :func:`~diffresnet_pyg.data.standardize` symmetrizes it).

    Args:
        path (str or os.PathLike): The ``.npz`` file.

    Returns:
        torch_geometric.data.Data: ``edge_index``, ``x`` (dense float32),
        ``y``, ``num_nodes``.
    """
    path = Path(path)
    with warnings.catch_warnings():
        # The pickles name ``scipy.sparse.csr.csr_matrix`` (an old namespace).
        warnings.filterwarnings(
            "ignore", message=r".*scipy\.sparse\.\w+` namespace is deprecated"
        )
        with np.load(path, allow_pickle=True) as loader:
            loader = {key: loader[key] for key in loader.files}
    missing = [k for k in ("adj_matrix", "node_attr", "node_label") if k not in loader]
    if missing:
        raise ValueError(
            f"{path} is not a GraphData npz file: keys {missing} are missing "
            f"(found {sorted(loader)})"
        )
    adj = _to_csr(loader["adj_matrix"], "adj_matrix", path)
    attr = _to_csr(loader["node_attr"], "node_attr", path)
    labels = loader["node_label"]
    if isinstance(labels, np.ndarray) and labels.dtype == object and labels.ndim == 0:
        labels = labels.item()
    data = _to_data(adj, attr, labels, path)
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
    name = _check_name(name, GRAPHDATA_NAMES, "GraphData")
    path = resolve_root(root) / "graphdata" / f"{name}.npz"
    if not path.is_file():
        raise FileNotFoundError(
            f"dataset 'graphdata/{name}' not found: put {name}.npz of the "
            "GraphData collection (github.com/EdisonLeeeee/GraphData, folder "
            f"datasets/) at {path}; it is not downloaded automatically"
        )
    return load_graphdata_npz(path)


def _pyg_class(family: str) -> type[InMemoryDataset]:
    from torch_geometric.datasets import Amazon, Coauthor, Planetoid

    return {"planetoid": Planetoid, "coauthor": Coauthor, "amazon": Amazon}[family]


def load_pyg_dataset(
    family: str, name: str, root: PathLike | None = None, *, download: bool = True
) -> Data:
    """Load a PyG dataset from ``<root>/<family>`` in PyG's own layout.

    ``load_pyg_dataset("planetoid", "Cora", root)`` is
    ``Planetoid(root / "planetoid", "Cora")[0]`` and reads
    ``root/planetoid/Cora/raw/ind.cora.*``; Coauthor reads
    ``root/coauthor/<CS|Physics>/raw/ms_academic_<cs|phy>.npz``, Amazon
    ``root/amazon/<Computers|Photo>/raw/amazon_electronics_<name>.npz``. PyG
    downloads only when a raw file is missing and writes ``processed/`` next
    to ``raw/``. Planetoid keeps its public-split masks.

    Args:
        family (str): ``"planetoid"``, ``"coauthor"`` or ``"amazon"``.
        name (str): ``"Cora"``, ``"CiteSeer"``, ``"PubMed"`` (planetoid),
            ``"CS"``, ``"Physics"`` (coauthor), ``"Computers"``, ``"Photo"``
            (amazon); case-insensitive.
        root (str or os.PathLike, optional): Dataset root. (default: :obj:`None`)
        download (bool, optional): If :obj:`False`, raise instead of letting
            PyG download missing raw files. (default: :obj:`True`)

    Returns:
        torch_geometric.data.Data: The graph as PyG builds it.

    Raises:
        ValueError: For an unknown family or name.
        FileNotFoundError: If raw files are missing and cannot be downloaded;
            the message names the folder and the files.
    """
    family_key = family.lower() if isinstance(family, str) else family
    if family_key not in PYG_DATASETS:
        raise ValueError(
            f"unknown PyG dataset family {family!r}; allowed: {', '.join(PYG_DATASETS)}"
        )
    name = _check_name(name, PYG_DATASETS[family_key], f"{family_key}")
    cls = _pyg_class(family_key)
    folder = resolve_root(root) / family_key
    raw_dir, raw_files = _pyg_raw_files(family_key, name, folder)
    missing = [f for f in raw_files if not (raw_dir / f).is_file()]
    if missing:
        hint = (
            f"dataset '{family_key}/{name}' is missing raw files {missing} in "
            f"{raw_dir}; put PyG's raw files for {cls.__name__}({name!r}) there "
            f"({cls.__name__}.url: {getattr(cls, 'url', '?')}), or point the "
            "dataset root elsewhere (argument 'root' or DIFFRESNET_PYG_DATA)"
        )
        if not download:
            raise FileNotFoundError(hint)
        logger.info("%s: raw files missing, PyG will download them", raw_dir)
        try:
            dataset = cls(os.fspath(folder), name)
        except Exception as exc:
            still = [f for f in raw_files if not (raw_dir / f).is_file()]
            if still:
                raise FileNotFoundError(f"download failed: {hint}") from exc
            raise
    else:
        dataset = cls(os.fspath(folder), name)
    data = dataset[0]
    if data.edge_index is not None and not data.is_coalesced():
        data = data.coalesce()
    logger.debug("loaded %s/%s: %s", family_key, name, data)
    return data


def _pyg_raw_files(family: str, name: str, folder: Path) -> tuple[Path, list[str]]:
    """The raw folder and file names PyG expects (mirrors PyG's properties)."""
    if family == "planetoid":
        parts = ["x", "tx", "allx", "y", "ty", "ally", "graph", "test.index"]
        return folder / name / "raw", [f"ind.{name.lower()}.{p}" for p in parts]
    if family == "coauthor":
        file = {"CS": "ms_academic_cs.npz", "Physics": "ms_academic_phy.npz"}[name]
        return folder / name / "raw", [file]
    return folder / name / "raw", [f"amazon_electronics_{name.lower()}.npz"]


def load_dataset(
    name: str,
    root: PathLike | None = None,
    *,
    standardize: bool = True,
    normalize_features: bool = True,
    download: bool = True,
    min_class_size: int | None = None,
) -> Data:
    r"""Load a graph dataset by name, preprocessed as in the Diff-ResNet protocol.

    Names (case-insensitive):

    * gnn-benchmark files, the authors' protocol (``<root>/gnnbench/``,
      downloaded if missing; ``gnnbench/<name>`` also works): ``"cora"``,
      ``"citeseer"``, ``"pubmed"``, ``"cora_full"``,
      ``"amazon_electronics_computers"``, ``"amazon_electronics_photo"``,
      ``"ms_academic_cs"``, ``"ms_academic_phy"``;
    * PyG datasets (``<root>/planetoid``, ``<root>/coauthor``,
      ``<root>/amazon``, downloaded by PyG if missing): ``"planetoid/Cora"``,
      ``"planetoid/CiteSeer"``, ``"planetoid/PubMed"``, ``"coauthor/CS"``,
      ``"coauthor/Physics"``, ``"amazon/Computers"``, ``"amazon/Photo"``;
    * GraphData files (``<root>/graphdata/``, never downloaded):
      ``"graphdata/coauthor_cs"``, ``"graphdata/coauthor_phy"``,
      ``"graphdata/amazon_cs"``.

    With the defaults the result is the authors' input: unweighted,
    undirected, no self loops, largest connected component, binary features
    divided by their row sums, labels :math:`0..C-1` (see
    :func:`~diffresnet_pyg.data.standardize` and
    :func:`~diffresnet_pyg.data.row_normalize`). For ``cora_full`` the
    classes with at most 50 nodes are removed and the graph standardized
    again, as gnn-benchmark does.

    Args:
        name (str): The dataset, one of the names above
            (:obj:`DATASET_NAMES`).
        root (str or os.PathLike, optional): Dataset root, see
            :func:`~diffresnet_pyg.data.resolve_root`. (default: :obj:`None`)
        standardize (bool, optional): Apply the gnn-benchmark standardization.
            (default: :obj:`True`)
        normalize_features (bool, optional): Divide each feature row by its
            sum afterwards (zero rows stay zero). (default: :obj:`True`)
        download (bool, optional): Allow downloading missing files.
            (default: :obj:`True`)
        min_class_size (int, optional): After standardizing, drop classes
            with at most this many nodes and standardize again; :obj:`None`
            means 50 for ``cora_full`` and no filtering otherwise, :obj:`0`
            disables it. Needs :obj:`standardize`. (default: :obj:`None`)

    Returns:
        torch_geometric.data.Data: ``x``, ``y``, ``edge_index``,
        ``num_nodes`` (and ``orig_index`` when standardized).

    Raises:
        ValueError: For an unknown name (the message lists the allowed ones).
        FileNotFoundError: If files are missing and cannot be downloaded.

    Example:
        >>> from diffresnet_pyg.data import load_dataset
        >>> data = load_dataset("cora")  # doctest: +SKIP
        >>> data.num_nodes  # doctest: +SKIP
        2485
    """
    if not isinstance(name, str):
        raise ValueError(f"dataset name must be a str (got {type(name).__name__})")
    key = name.strip().lower()
    if key.startswith("gnnbench/"):
        key = key[len("gnnbench/") :]
    family, _, sub = key.partition("/")
    canonical: str
    if not sub and key in GNNBENCH_NAMES:
        data = load_gnnbench(key, root, download=download)
        canonical = key
    elif family == "graphdata" and sub in GRAPHDATA_NAMES:
        data = load_graphdata(sub, root)
        canonical = key
    elif family in PYG_DATASETS and sub in {n.lower() for n in PYG_DATASETS[family]}:
        pyg_name = _check_name(sub, PYG_DATASETS[family], family)
        data = load_pyg_dataset(family, pyg_name, root, download=download)
        canonical = f"{family}/{pyg_name}"
    else:
        raise ValueError(
            f"unknown dataset {name!r}; allowed: {', '.join(DATASET_NAMES)}"
        )

    if min_class_size is not None and min_class_size < 0:
        raise ValueError(f"min_class_size must be >= 0 (got {min_class_size})")
    if standardize:
        data = _standardize(data)
        if min_class_size is None and canonical == "cora_full":
            min_class_size = _CORA_FULL_MIN_CLASS_SIZE
        if min_class_size:
            data = _standardize(remove_small_classes(data, min_class_size))
    elif min_class_size:
        raise ValueError("min_class_size needs standardize=True")
    if normalize_features and data.x is not None:
        data.x = row_normalize(data.x)
    logger.info("dataset %s: %s", canonical, data)
    return data

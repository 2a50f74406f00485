"""Loaders of the graph datasets into :class:`torch_geometric.data.Data`.

Four on-disk formats are read, each under its own folder of the dataset root
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
* ``<root>/ogb``: the OGB node-property-prediction datasets in OGB's own
  layout (e.g. ``<root>/ogb/ogbn_arxiv/raw/edge.csv.gz``), read and downloaded
  by :class:`ogb.nodeproppred.PygNodePropPredDataset`. ``ogb`` is an optional
  dependency (``pip install -e ".[ogb]"``), imported only when an OGB dataset
  is loaded.

Every loader returns ``x`` (dense :obj:`torch.float32`), ``y``
(:obj:`torch.long`), ``edge_index`` (:obj:`torch.long`, coalesced) and
``num_nodes``; nothing is normalized unless :func:`load_dataset` is asked to.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import warnings
from collections.abc import Iterator
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
    "OGB_NAMES",
    "PYG_DATASETS",
    "load_dataset",
    "load_gnnbench",
    "load_gnnbench_npz",
    "load_graphdata",
    "load_graphdata_npz",
    "load_ogb",
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

#: The OGB node-property-prediction datasets (``<root>/ogb/<name>``, read by
#: the optional ``ogb`` package): the homogeneous single-label ones.
OGB_NAMES: tuple[str, ...] = ("ogbn-arxiv", "ogbn-products")

#: Every name :func:`load_dataset` accepts (matched case-insensitively; the
#: gnn-benchmark names may also be written ``gnnbench/<name>``, the OGB names
#: without their ``ogb/`` prefix).
DATASET_NAMES: tuple[str, ...] = (
    GNNBENCH_NAMES
    + tuple(
        f"{family}/{name}" for family, names in PYG_DATASETS.items() for name in names
    )
    + tuple(f"graphdata/{name}" for name in GRAPHDATA_NAMES)
    + tuple(f"ogb/{name}" for name in OGB_NAMES)
)

#: How to install the optional ``ogb`` dependency.
_OGB_INSTALL_HINT = 'pip install -e ".[ogb]" (or: pip install "ogb>=1.3")'

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


def _import_ogb_dataset() -> type[InMemoryDataset]:
    """Import :class:`ogb.nodeproppred.PygNodePropPredDataset` on first use."""
    try:
        import ogb  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "the OGB datasets need the optional dependency 'ogb', which is not "
            f"installed; install it with {_OGB_INSTALL_HINT}"
        ) from exc
    try:
        from ogb.nodeproppred.dataset_pyg import PygNodePropPredDataset
    except ImportError as exc:
        raise ImportError(
            "'ogb' is installed but ogb.nodeproppred.PygNodePropPredDataset "
            f"cannot be imported ({exc}); reinstall it with {_OGB_INSTALL_HINT}"
        ) from exc
    return PygNodePropPredDataset


def _ogb_meta(name: str) -> dict[str, str]:
    """The row of ``ogb/nodeproppred/master.csv`` for :obj:`name`, as ogb reads it."""
    import ogb.nodeproppred
    import pandas as pd

    path = Path(ogb.nodeproppred.__file__).parent / "master.csv"
    master = pd.read_csv(path, index_col=0, keep_default_na=False)
    if name not in master:
        raise ValueError(
            f"the installed ogb does not know the dataset {name!r} ({path})"
        )
    return {str(k): str(v) for k, v in master[name].items()}


def _ogb_required_files(meta: dict[str, str]) -> tuple[list[str], list[str]]:
    """Files (relative to the dataset folder) that ogb reads for a CSV dataset.

    Returns the raw files that processing reads and the subset whose absence
    makes ogb download (its ``raw_file_names``).
    """
    trigger = ["edge"]
    if meta["has_node_attr"] == "True":
        trigger.append("node-feat")
    if meta["has_edge_attr"] == "True":
        trigger.append("edge-feat")
    extra = [
        f
        for key in ("additional node files", "additional edge files")
        if meta[key] != "None"
        for f in meta[key].split(",")
    ]
    raw = [*trigger, "num-node-list", "num-edge-list", "node-label", *extra]
    return (
        [f"raw/{f}.csv.gz" for f in raw],
        [f"raw/{f}.csv.gz" for f in trigger],
    )


def _ogb_missing_files(dataset_dir: Path, meta: dict[str, str]) -> list[str]:
    """The files ogb would need but cannot find (empty if it can load offline)."""
    raw_files, _ = _ogb_required_files(meta)
    missing: list[str] = []
    if not (dataset_dir / "processed" / "geometric_data_processed.pt").is_file():
        missing += [f for f in raw_files if not (dataset_dir / f).is_file()]
    split = f"split/{meta['split']}"
    if not (dataset_dir / split / "split_dict.pt").is_file():
        missing += [
            f"{split}/{part}.csv.gz"
            for part in ("train", "valid", "test")
            if not (dataset_dir / split / f"{part}.csv.gz").is_file()
        ]
    return missing


def _holds_no_file(folder: Path) -> bool:
    """Whether :obj:`folder` holds no file at any depth (only empty folders)."""
    return not any(p.is_file() or p.is_symlink() for p in folder.rglob("*"))


def _remove_if_empty(folder: Path) -> None:
    """Delete :obj:`folder` if it holds nothing but empty folders."""
    if folder.is_dir() and _holds_no_file(folder):
        logger.debug("removing empty leftover folder %s", folder)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _ogb_torch_load_allowlist() -> Iterator[None]:
    """Let ogb's ``torch.load`` read PyG's processed file under PyTorch >= 2.6.

    ogb 1.3.6 calls ``torch.load(path)`` on the ``(Data, slices)`` pair it
    saved itself; since PyTorch 2.6 that is ``weights_only=True``, which
    refuses PyG's storage classes. They are allowed for the duration only.
    """
    safe_globals = getattr(torch.serialization, "safe_globals", None)
    if safe_globals is None:  # PyTorch < 2.5: torch.load unpickles anything
        yield
        return
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import GlobalStorage

    with safe_globals([DataEdgeAttr, DataTensorAttr, GlobalStorage]):
        yield


@contextlib.contextmanager
def _stdout_to_log(what: str) -> Iterator[None]:
    """Capture what ogb prints on stdout and log it at DEBUG level."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        for line in buffer.getvalue().splitlines():
            if line.strip():
                logger.debug("%s: %s", what, line)


def _ogb_to_data(dataset: InMemoryDataset, name: str) -> Data:
    """Our :class:`Data` (x, flat y, coalesced edges, split masks) from ogb's."""
    raw = dataset[0]
    num_nodes = int(raw.num_nodes)
    y = raw.y
    if y is None or y.is_floating_point():
        raise ValueError(
            f"ogb dataset {name!r} has no integer class labels (got "
            f"{None if y is None else y.dtype}); only single-label datasets "
            f"are supported ({', '.join(OGB_NAMES)})"
        )
    if y.dim() == 2 and y.size(1) == 1:
        y = y.view(-1)
    if y.dim() != 1 or y.numel() != num_nodes:
        raise ValueError(
            f"ogb dataset {name!r}: expected one label per node, got labels of "
            f"shape {tuple(y.shape)} for {num_nodes} nodes"
        )
    edge_index = coalesce(raw.edge_index.long(), num_nodes=num_nodes)
    data = Data(edge_index=edge_index, num_nodes=num_nodes)
    if raw.x is not None:
        data.x = raw.x.to(torch.float32).contiguous()
    data.y = y.to(torch.long).contiguous()
    for key, value in raw.items():
        if key in ("x", "y", "edge_index", "num_nodes", "edge_attr"):
            continue
        if isinstance(value, torch.Tensor) and raw.is_node_attr(key):
            data[key] = value  # e.g. ogbn-arxiv's ``node_year``
    split = dataset.get_idx_split()  # type: ignore[attr-defined]
    masks = (("train", "train_mask"), ("valid", "val_mask"), ("test", "test_mask"))
    for part, attr in masks:
        index = torch.as_tensor(split[part], dtype=torch.long).view(-1)
        mask = torch.zeros(num_nodes, dtype=torch.bool)
        mask[index] = True
        data[attr] = mask
    return data


def load_ogb(name: str, root: PathLike | None = None, *, download: bool = True) -> Data:
    """Load an OGB node-property-prediction dataset from ``<root>/ogb``.

    ``load_ogb("ogbn-arxiv", root)`` is ``PygNodePropPredDataset(name=
    "ogbn-arxiv", root=root / "ogb")`` and reads OGB's own layout under
    ``root/ogb/ogbn_arxiv/`` (``RELEASE_v1.txt``; ``raw/edge.csv.gz``,
    ``node-feat.csv.gz``, ``node-label.csv.gz``, ``num-node-list.csv.gz``,
    ``num-edge-list.csv.gz``, ``node_year.csv.gz``; ``split/time/{train,
    valid,test}.csv.gz``); ogb downloads and unpacks the dataset's zip when
    the raw files are missing and writes ``processed/`` next to ``raw/``.
    ``ogb`` is an optional dependency, imported here only:
    ``pip install -e ".[ogb]"``.

    The graph is returned as ogb builds it, made uniform with the other
    loaders: ``x`` float32, ``y`` int64 of shape ``[num_nodes]``,
    ``edge_index`` int64 and coalesced (``ogbn-arxiv`` stays directed,
    ``ogbn-products`` is stored with both directions), other node-level
    tensors kept (``node_year`` of ``ogbn-arxiv``), and OGB's official split
    (``get_idx_split()``) as boolean ``train_mask``, ``val_mask`` (OGB's
    ``valid``) and ``test_mask``.

    ogb asks on stdin before downloading more than 1 GB (``ogbn-products``);
    declining raises :class:`FileNotFoundError` here. A dataset folder
    without ogb's ``RELEASE_v<version>.txt`` would make ogb ask on stdin
    whether to delete it; such a folder is removed if it holds no file (a
    failed download) and rejected with :class:`FileNotFoundError` otherwise.

    Args:
        name (str): One of :obj:`OGB_NAMES` (``"ogbn-arxiv"``,
            ``"ogbn-products"``), case-insensitive; an ``"ogb/"`` prefix is
            accepted.
        root (str or os.PathLike, optional): Dataset root, see
            :func:`~diffresnet_pyg.data.resolve_root`. (default: :obj:`None`)
        download (bool, optional): If :obj:`False`, raise instead of letting
            ogb download missing files. (default: :obj:`True`)

    Returns:
        torch_geometric.data.Data: The graph with the official split masks.

    Raises:
        ImportError: If ``ogb`` is not installed (the message says how to
            install it).
        ValueError: For an unknown name.
        FileNotFoundError: If files are missing and cannot be downloaded; the
            message names the folder, the files and the URL.
    """
    if isinstance(name, str) and name.lower().startswith("ogb/"):
        name = name[len("ogb/") :]
    name = _check_name(name, OGB_NAMES, "OGB")
    cls = _import_ogb_dataset()
    meta = _ogb_meta(name)
    folder = resolve_root(root) / "ogb"
    dir_name = name.replace("-", "_")
    if (folder / f"{dir_name}_pyg").exists():  # ogb prefers an old "_pyg" folder
        dir_name = f"{dir_name}_pyg"
    dataset_dir = folder / dir_name
    marker = f"RELEASE_v{meta['version']}.txt"
    url = meta["url"]
    hint = (
        f"put OGB's files for {name!r} in {dataset_dir}: ogb downloads {url} "
        f"and unpacks its folder '{meta['download_name']}' as {dataset_dir} "
        f"({marker}, raw/, split/{meta['split']}/); without network, download "
        "and unzip it there yourself, or point the dataset root elsewhere "
        "(argument 'root' or DIFFRESNET_PYG_DATA)"
    )

    if dataset_dir.is_dir() and not (dataset_dir / marker).is_file():
        if not _holds_no_file(dataset_dir):
            raise FileNotFoundError(
                f"dataset 'ogb/{name}': {dataset_dir} exists but has no "
                f"{marker}, so ogb would ask on stdin whether to delete it. "
                f"Add the complete release (unzip {url}: it holds {marker}), "
                "or delete the folder to download it again"
            )
        _remove_if_empty(dataset_dir)  # left over by a failed download

    missing = _ogb_missing_files(dataset_dir, meta)
    if not missing:
        with _stdout_to_log(name), _ogb_torch_load_allowlist():
            dataset = cls(name=name, root=os.fspath(folder))
    else:
        message = f"dataset 'ogb/{name}' is missing files {missing}; {hint}"
        _, trigger = _ogb_required_files(meta)
        if not download:
            raise FileNotFoundError(message)
        if all((dataset_dir / f).is_file() for f in trigger):
            # ogb would not download (its raw files are there) and then fail.
            raise FileNotFoundError(message)
        logger.info("%s: files missing, ogb will download %s", dataset_dir, url)
        folder_existed = folder.is_dir()
        try:
            with _ogb_torch_load_allowlist():
                dataset = cls(name=name, root=os.fspath(folder))
        except (Exception, SystemExit) as exc:  # ogb calls exit() on "no"
            _remove_if_empty(dataset_dir)
            if not folder_existed:
                _remove_if_empty(folder)
            if _ogb_missing_files(dataset_dir, meta):
                raise FileNotFoundError(f"download failed: {message}") from exc
            raise
    data = _ogb_to_data(dataset, name)
    logger.debug("loaded ogb/%s: %s", name, data)
    return data


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
      ``"graphdata/amazon_cs"``;
    * OGB node-property-prediction datasets (``<root>/ogb/``, read and
      downloaded by the optional ``ogb`` package, ``pip install -e ".[ogb]"``;
      the ``ogb/`` prefix may be left out): ``"ogb/ogbn-arxiv"``,
      ``"ogb/ogbn-products"``. They carry OGB's official split as
      ``train_mask``, ``val_mask`` and ``test_mask`` (see :func:`load_ogb`).

    With the defaults the result is the authors' input: unweighted,
    undirected, no self loops, largest connected component, binary features
    divided by their row sums, labels :math:`0..C-1` (see
    :func:`~diffresnet_pyg.data.standardize` and
    :func:`~diffresnet_pyg.data.row_normalize`). For ``cora_full`` the
    classes with at most 50 nodes are removed and the graph standardized
    again, as gnn-benchmark does.

    OGB graphs: their features are dense real-valued embeddings, so
    :obj:`standardize` does not binarize them (it would turn ``ogbn-arxiv``'s
    features into all ones); everything else applies: the graph becomes
    undirected (``ogbn-arxiv`` is stored directed) and only its largest
    connected component is kept. The split masks are then restricted to the
    kept nodes (``orig_index`` maps them back), so nodes outside the
    component leave the official train/valid/test sets and the result is not
    comparable with OGB's leaderboard; pass ``standardize=False`` for OGB's
    own setting. :obj:`normalize_features` divides rows by their sums as for
    the other datasets; the embeddings have negative entries, for which that is
    ill-defined (a warning is logged): pass ``normalize_features=False``.

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
        ``num_nodes`` (and ``orig_index`` when standardized; the split masks
        for Planetoid and OGB).

    Raises:
        ValueError: For an unknown name (the message lists the allowed ones).
        FileNotFoundError: If files are missing and cannot be downloaded.
        ImportError: For an OGB dataset when ``ogb`` is not installed.

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
    if key.startswith("ogbn-"):
        key = f"ogb/{key}"
    family, _, sub = key.partition("/")
    canonical: str
    binarize = True
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
    elif family == "ogb" and sub in {n.lower() for n in OGB_NAMES}:
        ogb_name = _check_name(sub, OGB_NAMES, "OGB")
        data = load_ogb(ogb_name, root, download=download)
        canonical = f"ogb/{ogb_name}"
        binarize = False  # dense real-valued embeddings
    else:
        raise ValueError(
            f"unknown dataset {name!r}; allowed: {', '.join(DATASET_NAMES)}"
        )

    if min_class_size is not None and min_class_size < 0:
        raise ValueError(f"min_class_size must be >= 0 (got {min_class_size})")
    if standardize:
        data = _standardize(data, binarize_features=binarize)
        if min_class_size is None and canonical == "cora_full":
            min_class_size = _CORA_FULL_MIN_CLASS_SIZE
        if min_class_size:
            data = _standardize(
                remove_small_classes(data, min_class_size),
                binarize_features=binarize,
            )
    elif min_class_size:
        raise ValueError("min_class_size needs standardize=True")
    if normalize_features and data.x is not None:
        if data.x.layout == torch.strided and bool((data.x < 0).any()):
            logger.warning(
                "dataset %s: row-normalizing features with negative entries "
                "(row sums may be near zero); pass normalize_features=False "
                "to keep them as they are",
                canonical,
            )
        data.x = row_normalize(data.x)
    logger.info("dataset %s: %s", canonical, data)
    return data

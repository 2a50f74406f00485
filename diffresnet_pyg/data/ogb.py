"""The OGB node-property-prediction datasets, read by the optional ``ogb``.

``<root>/ogb``: the OGB node-property-prediction datasets in OGB's own layout
(e.g. ``<root>/ogb/ogbn_arxiv/raw/edge.csv.gz``), read and downloaded by
:class:`ogb.nodeproppred.PygNodePropPredDataset`. ``ogb`` is an optional
dependency (``pip install -e ".[ogb]"``), imported only when an OGB dataset
is loaded, never when this module is.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import torch
from torch_geometric.data import Data, InMemoryDataset
from torch_geometric.utils import coalesce

from diffresnet_pyg.data._common import check_name
from diffresnet_pyg.data.root import resolve_root
from diffresnet_pyg.typing import PathLike

__all__ = ["OGB_NAMES", "load_ogb"]

logger = logging.getLogger(__name__)

#: The OGB node-property-prediction datasets (``<root>/ogb/<name>``, read by
#: the optional ``ogb`` package): the homogeneous single-label ones.
OGB_NAMES: tuple[str, ...] = ("ogbn-arxiv", "ogbn-products")

#: How to install the optional ``ogb`` dependency.
_OGB_INSTALL_HINT = 'pip install -e ".[ogb]" (or: pip install "ogb>=1.3")'


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
    name = check_name(name, OGB_NAMES, "OGB")
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

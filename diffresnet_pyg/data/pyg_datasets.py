"""PyG's Planetoid, Coauthor and Amazon datasets, in PyG's own layout.

``<root>/planetoid``, ``<root>/coauthor``, ``<root>/amazon``: PyG's
:class:`~torch_geometric.datasets.Planetoid`,
:class:`~torch_geometric.datasets.Coauthor` and
:class:`~torch_geometric.datasets.Amazon` in PyG's own layout (e.g.
``<root>/planetoid/Cora/raw/ind.cora.x``); PyG downloads missing raw files.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from torch_geometric.data import Data, InMemoryDataset

from diffresnet_pyg.data._common import DatasetFileError, check_name
from diffresnet_pyg.data.root import resolve_root
from diffresnet_pyg.data.safe_pickle import (
    DAMAGED_PICKLE_ERRORS,
    RefusedGlobalError,
    safe_load,
)
from diffresnet_pyg.typing import PathLike

__all__ = ["PYG_DATASETS", "load_pyg_dataset"]

logger = logging.getLogger(__name__)

#: PyG dataset families and their dataset names, as PyG spells them.
PYG_DATASETS: dict[str, tuple[str, ...]] = {
    "planetoid": ("Cora", "CiteSeer", "PubMed"),
    "coauthor": ("CS", "Physics"),
    "amazon": ("Computers", "Photo"),
}


def _pyg_class(family: str) -> type[InMemoryDataset]:
    """The PyG dataset class of :obj:`family` (imported on first use)."""
    from torch_geometric.datasets import Amazon, Coauthor, Planetoid

    return {"planetoid": Planetoid, "coauthor": Coauthor, "amazon": Amazon}[family]


def _check_pickled_raw_files(raw_dir: Path, names: list[str], url: str) -> None:
    """Unpickle every pickled Planetoid raw file once with the restricted unpickler.

    PyG reads ``ind.<name>.{x,tx,allx,y,ty,ally,graph}`` with plain
    :func:`pickle.load`, which runs whatever code a file names; they are
    checked first (``test.index`` is text).

    Raises:
        DatasetFileError: If a file names a global other than numpy's, scipy
            sparse's or a plain container's, or is not a readable pickle.
    """
    for name in names:
        if name.endswith(".test.index"):
            continue
        path = raw_dir / name
        try:
            with open(path, "rb") as handle:
                safe_load(handle, encoding="latin1")
        except RefusedGlobalError as exc:
            raise DatasetFileError(
                f"{path}: refusing to unpickle the global {exc.global_name} "
                "(Planetoid raw files may only hold numpy arrays, scipy sparse "
                "matrices and plain containers; nothing was run); replace the "
                f"file with the original from {url}"
            ) from None
        except DAMAGED_PICKLE_ERRORS as exc:
            raise DatasetFileError(
                f"{path}: not a readable Planetoid raw file, it is damaged or "
                f"truncated ({type(exc).__name__}: {exc}); replace the file "
                f"with the original from {url}"
            ) from None


def _processing_elsewhere(
    cls: type[InMemoryDataset], folder: str
) -> type[InMemoryDataset]:
    """:obj:`cls` with PyG's ``processed/`` folder moved to :obj:`folder`.

    PyG writes its processed files next to ``raw/``, inside the dataset root;
    a shared or read-only root must stay untouched, so they go to a
    temporary folder instead (processing these datasets takes about a second).
    Before PyG processes Planetoid's pickled raw files (downloaded or not),
    they are checked with the restricted unpickler
    (:func:`_check_pickled_raw_files`).
    """

    def process(self: InMemoryDataset) -> None:
        if issubclass(cls, _pyg_class("planetoid")):
            url = getattr(cls, "url", "PyG's Planetoid.url")
            _check_pickled_raw_files(Path(self.raw_dir), self.raw_file_names, url)
        cls.process(self)

    return type(
        cls.__name__,
        (cls,),
        {"processed_dir": property(lambda self: folder), "process": process},
    )


def _pyg_raw_files(family: str, name: str) -> list[str]:
    """The raw file names PyG expects (mirrors PyG's properties)."""
    if family == "planetoid":
        parts = ["x", "tx", "allx", "y", "ty", "ally", "graph", "test.index"]
        return [f"ind.{name.lower()}.{p}" for p in parts]
    if family == "coauthor":
        return [{"CS": "ms_academic_cs.npz", "Physics": "ms_academic_phy.npz"}[name]]
    return [f"amazon_electronics_{name.lower()}.npz"]


def load_pyg_dataset(
    family: str, name: str, root: PathLike | None = None, *, download: bool = True
) -> Data:
    """Load a PyG dataset from ``<root>/<family>`` in PyG's own layout.

    ``load_pyg_dataset("planetoid", "Cora", root)`` is
    ``Planetoid(root / "planetoid", "Cora")[0]`` and reads
    ``root/planetoid/Cora/raw/ind.cora.*``; Coauthor reads
    ``root/coauthor/<CS|Physics>/raw/ms_academic_<cs|phy>.npz``, Amazon
    ``root/amazon/<Computers|Photo>/raw/amazon_electronics_<name>.npz``. PyG
    downloads only when a raw file is missing (into ``raw/``); nothing else
    is written under the root: PyG's processed files go to a temporary
    folder that is deleted after loading. Planetoid keeps its public-split
    masks. Planetoid's raw files are pickles: before PyG reads them, each one
    is unpickled once with the restricted unpickler of
    :mod:`~diffresnet_pyg.data.safe_pickle` (numpy arrays, scipy sparse
    matrices and plain containers only), so a crafted file cannot run code.

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
        DatasetFileError: If a Planetoid raw file names a global that is not
            allowed, or is not a readable pickle.
    """
    family_key = family.lower() if isinstance(family, str) else family
    if family_key not in PYG_DATASETS:
        raise ValueError(
            f"unknown PyG dataset family {family!r}; allowed: {', '.join(PYG_DATASETS)}"
        )
    name = check_name(name, PYG_DATASETS[family_key], family_key)
    cls = _pyg_class(family_key)
    folder = resolve_root(root) / family_key
    raw_dir = folder / name / "raw"
    raw_files = _pyg_raw_files(family_key, name)
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
    with tempfile.TemporaryDirectory(prefix="diffresnet_pyg_processed_") as tmp:
        build = _processing_elsewhere(cls, tmp)
        try:
            data = build(os.fspath(folder), name)[0]
        except Exception as exc:
            if missing and any(not (raw_dir / f).is_file() for f in raw_files):
                raise FileNotFoundError(f"download failed: {hint}") from exc
            raise
    if data.edge_index is not None and not data.is_coalesced():
        data = data.coalesce()
    logger.debug("loaded %s/%s: %s", family_key, name, data)
    return data

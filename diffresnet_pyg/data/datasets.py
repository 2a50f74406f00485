"""Load the graph datasets by name into :class:`torch_geometric.data.Data`.

Four on-disk formats are read, each under its own folder of the dataset root
(see :func:`~diffresnet_pyg.data.resolve_root`):

* ``<root>/gnnbench/<name>.npz`` (:mod:`~diffresnet_pyg.data.gnnbench`): the
  "Pitfalls of GNN evaluation" (gnn-benchmark) files that the Diff-ResNet
  authors use; downloaded from gnn-benchmark's repository when missing.
* ``<root>/planetoid``, ``<root>/coauthor``, ``<root>/amazon``
  (:mod:`~diffresnet_pyg.data.pyg_datasets`): PyG's
  :class:`~torch_geometric.datasets.Planetoid`,
  :class:`~torch_geometric.datasets.Coauthor` and
  :class:`~torch_geometric.datasets.Amazon` in PyG's own layout (e.g.
  ``<root>/planetoid/Cora/raw/ind.cora.x``); PyG downloads missing raw files.
* ``<root>/graphdata/<name>.npz`` (:mod:`~diffresnet_pyg.data.graphdata`):
  the pickled-scipy files of the GraphData collection (never downloaded).
* ``<root>/ogb`` (:mod:`~diffresnet_pyg.data.ogb`): the OGB
  node-property-prediction datasets in OGB's own layout (e.g.
  ``<root>/ogb/ogbn_arxiv/raw/edge.csv.gz``), read and downloaded by
  :class:`ogb.nodeproppred.PygNodePropPredDataset`. ``ogb`` is an optional
  dependency (``pip install -e ".[ogb]"``), imported only when an OGB dataset
  is loaded.

Every loader returns ``x`` (dense :obj:`torch.float32`), ``y``
(:obj:`torch.long`), ``edge_index`` (:obj:`torch.long`, coalesced) and
``num_nodes``; nothing is normalized unless :func:`load_dataset` is asked to.
"""

from __future__ import annotations

import logging

import torch
from torch_geometric.data import Data

from diffresnet_pyg.data._common import PathLike, check_name
from diffresnet_pyg.data.gnnbench import GNNBENCH_NAMES, load_gnnbench
from diffresnet_pyg.data.graphdata import GRAPHDATA_NAMES, load_graphdata
from diffresnet_pyg.data.ogb import OGB_NAMES, load_ogb
from diffresnet_pyg.data.pyg_datasets import PYG_DATASETS, load_pyg_dataset
from diffresnet_pyg.data.transforms import remove_small_classes, row_normalize
from diffresnet_pyg.data.transforms import standardize as _standardize

__all__ = ["DATASET_NAMES", "load_dataset"]

logger = logging.getLogger(__name__)

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

#: gnn-benchmark drops the classes of ``cora_full`` with at most
#: ``train + val = 20 + 30`` nodes before the split.
_CORA_FULL_MIN_CLASS_SIZE = 50


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
        pyg_name = check_name(sub, PYG_DATASETS[family], family)
        data = load_pyg_dataset(family, pyg_name, root, download=download)
        canonical = f"{family}/{pyg_name}"
    elif family == "ogb" and sub in {n.lower() for n in OGB_NAMES}:
        ogb_name = check_name(sub, OGB_NAMES, "OGB")
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

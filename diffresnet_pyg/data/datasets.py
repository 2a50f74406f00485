"""Load the graph datasets by name into :class:`torch_geometric.data.Data`.

Four on-disk formats are read, each under its own folder of the dataset root
(see :func:`~diffresnet_pyg.data.resolve_root`):

* ``<root>/gnnbench/<name>.npz`` (:mod:`~diffresnet_pyg.data.gnnbench`): the
  "Pitfalls of GNN evaluation" (gnn-benchmark) files that the Diff-ResNet
  authors use; Cora and Citeseer ship with the package, the others are
  downloaded from gnn-benchmark's repository when missing.
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

Any other file is read through :mod:`~diffresnet_pyg.data.formats`
(``load_dataset(path=...)``).

Every loader returns ``x`` (dense :obj:`torch.float32`), ``y``
(:obj:`torch.long`), ``edge_index`` (:obj:`torch.long`, coalesced) and
``num_nodes``; nothing is normalized unless :func:`load_dataset` is asked to.
"""

from __future__ import annotations

import logging

import torch
from torch_geometric.data import Data

from diffresnet_pyg.data._common import check_name
from diffresnet_pyg.data.formats import read_dataset_file
from diffresnet_pyg.data.gnnbench import GNNBENCH_NAMES, load_gnnbench
from diffresnet_pyg.data.graphdata import GRAPHDATA_NAMES, load_graphdata
from diffresnet_pyg.data.ogb import OGB_NAMES, load_ogb
from diffresnet_pyg.data.pyg_datasets import PYG_DATASETS, load_pyg_dataset
from diffresnet_pyg.data.transforms import remove_small_classes, row_normalize
from diffresnet_pyg.data.transforms import standardize as _standardize
from diffresnet_pyg.typing import PathLike

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
    name: str | None = None,
    root: PathLike | None = None,
    *,
    path: PathLike | None = None,
    format: str = "auto",
    standardize: bool = True,
    largest_component: bool | None = None,
    symmetrize: bool | None = None,
    binarize: bool | None = None,
    normalize_features: bool = True,
    download: bool = True,
    min_class_size: int | None = None,
) -> Data:
    r"""Load a graph dataset by name or from a file, preprocessed as in the protocol.

    Names (case-insensitive):

    * gnn-benchmark files, the authors' protocol (``<root>/gnnbench/``;
      Cora and Citeseer ship with the package, the others are downloaded if
      missing; ``gnnbench/<name>`` also works): ``"cora"``,
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

    Instead of a name, :obj:`path` reads any dataset file in a registered
    format (:mod:`diffresnet_pyg.data.formats`: ``gnnbench``, ``graphdata``,
    ``heterophilous``, ``pyg``, ``csr``; :obj:`format` ``"auto"`` detects it
    from the file's keys and extension). Every file (named datasets too) is
    checked when it is read, before any preprocessing: edges past the node
    count, NaN, infinite or negative edge weights, NaN or infinite features,
    a label count that is not the node count, labels that are not integers,
    negative labels, labels past the file's class names and classes
    ``0..C-1`` without any node are errors naming the file, the key, the
    number of bad entries and the first one. Split masks in the file (``train_mask``,
    ``val_mask``, ``test_mask``, ``[N]`` or ``[N, S]``) are kept and, like
    every node attribute, restricted to the nodes kept.

    With the defaults the result is the authors' input: unweighted,
    undirected, no self loops, largest connected component, binary features
    divided by their row sums, labels :math:`0..C-1` (see
    :func:`~diffresnet_pyg.data.standardize` and
    :func:`~diffresnet_pyg.data.row_normalize`). :obj:`largest_component`,
    :obj:`symmetrize` and :obj:`binarize` turn single steps of that
    standardization on or off; left at :obj:`None` they follow
    :obj:`standardize`. For ``cora_full`` the classes with at most 50 nodes
    are removed and the graph standardized again, as gnn-benchmark does.

    OGB graphs: their features are dense real-valued embeddings, so
    :obj:`standardize` does not binarize them (it would turn ``ogbn-arxiv``'s
    features into all ones); everything else applies: the graph becomes
    undirected (``ogbn-arxiv`` is stored directed) and only its largest
    connected component is kept. The split masks are then restricted to the
    kept nodes (``orig_index`` maps them back), so nodes outside the
    component leave the official train/valid/test sets and the result is not
    comparable with OGB's leaderboard; pass ``largest_component=False`` (or
    ``standardize=False``) for OGB's own setting. :obj:`normalize_features`
    divides rows by their sums as for the other datasets; the embeddings have
    negative entries, for which that is ill-defined (a warning is logged):
    pass ``normalize_features=False``.

    Args:
        name (str, optional): The dataset, one of the names above
            (:obj:`DATASET_NAMES`); give it or :obj:`path`, not both.
            (default: :obj:`None`)
        root (str or os.PathLike, optional): Dataset root of named datasets,
            see :func:`~diffresnet_pyg.data.resolve_root`.
            (default: :obj:`None`)
        path (str or os.PathLike, optional): A dataset file to read instead
            of a named dataset. (default: :obj:`None`)
        format (str, optional): The format of :obj:`path`, a name of
            :func:`~diffresnet_pyg.data.formats.format_names` or ``"auto"``.
            (default: :obj:`"auto"`)
        standardize (bool, optional): Apply the gnn-benchmark standardization:
            unweighted, self loops removed, labels made consecutive, and the
            three steps below. (default: :obj:`True`)
        largest_component (bool, optional): Keep only the largest connected
            component; :obj:`True` needs :obj:`standardize`. :obj:`None`:
            :obj:`standardize`. (default: :obj:`None`)
        symmetrize (bool, optional): Make the graph undirected
            (:math:`\mathbf{A} + \mathbf{A}^{\top}`); :obj:`True` needs
            :obj:`standardize`. :obj:`None`: :obj:`standardize`.
            (default: :obj:`None`)
        binarize (bool, optional): Set nonzero features to 1 (works with or
            without :obj:`standardize`). :obj:`None`: :obj:`standardize`,
            except for OGB datasets (never binarized by default).
            (default: :obj:`None`)
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
        for Planetoid, OGB and files that have them).

    Raises:
        ValueError: For an unknown name or format, for both or neither of
            :obj:`name` and :obj:`path`, or for a step that needs
            :obj:`standardize`.
        FileNotFoundError: If files are missing and cannot be downloaded.
        ~diffresnet_pyg.data.DatasetFileError: If :obj:`path` cannot be read
            or its content is inconsistent (a :class:`ValueError`).
        ImportError: For an OGB dataset when ``ogb`` is not installed.

    Example:
        >>> from diffresnet_pyg.data import load_dataset
        >>> data = load_dataset("cora")  # doctest: +SKIP
        >>> data.num_nodes  # doctest: +SKIP
        2485
    """
    if (name is None) == (path is None):
        raise ValueError(
            "give a dataset name or a dataset file path (path=...), not "
            + ("both" if path is not None else "neither")
        )
    if min_class_size is not None and min_class_size < 0:
        raise ValueError(f"min_class_size must be >= 0 (got {min_class_size})")
    lcc = standardize if largest_component is None else largest_component
    sym = standardize if symmetrize is None else symmetrize
    if not standardize and (lcc or sym):
        step = "largest_component" if lcc else "symmetrize"
        raise ValueError(
            f"{step}=True is a step of the standardization and needs standardize=True"
        )
    if path is not None:
        if root is not None:
            raise ValueError("root is only used with a dataset name, not with path")
        data = read_dataset_file(path, format)
        canonical = str(path)
        default_binarize = True
    else:
        if format != "auto":
            raise ValueError("format is only used with path, not with a name")
        data, canonical, default_binarize = _load_named(name, root, download)
    do_binarize = (standardize and default_binarize) if binarize is None else binarize

    def preprocess(graph: Data) -> Data:
        return _standardize(
            graph,
            largest_component=lcc,
            binarize_features=do_binarize,
            symmetrize=sym,
        )

    if standardize:
        data = preprocess(data)
        if min_class_size is None and canonical == "cora_full":
            min_class_size = _CORA_FULL_MIN_CLASS_SIZE
        if min_class_size:
            data = preprocess(remove_small_classes(data, min_class_size))
    else:
        if min_class_size:
            raise ValueError("min_class_size needs standardize=True")
        if do_binarize and data.x is not None:
            x = data.x.to_dense() if data.x.layout != torch.strided else data.x
            data.x = (x != 0).to(x.dtype if x.is_floating_point() else torch.float32)
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


def _load_named(
    name: str, root: PathLike | None, download: bool
) -> tuple[Data, str, bool]:
    """The raw named dataset, its canonical name and whether to binarize it."""
    if not isinstance(name, str):
        raise ValueError(f"dataset name must be a str (got {type(name).__name__})")
    key = name.strip().lower()
    if key.startswith("gnnbench/"):
        key = key[len("gnnbench/") :]
    if key.startswith("ogbn-"):
        key = f"ogb/{key}"
    family, _, sub = key.partition("/")
    if not sub and key in GNNBENCH_NAMES:
        return load_gnnbench(key, root, download=download), key, True
    if family == "graphdata" and sub in GRAPHDATA_NAMES:
        return load_graphdata(sub, root), key, True
    if family in PYG_DATASETS and sub in {n.lower() for n in PYG_DATASETS[family]}:
        pyg_name = check_name(sub, PYG_DATASETS[family], family)
        data = load_pyg_dataset(family, pyg_name, root, download=download)
        return data, f"{family}/{pyg_name}", True
    if family == "ogb" and sub in {n.lower() for n in OGB_NAMES}:
        ogb_name = check_name(sub, OGB_NAMES, "OGB")
        data = load_ogb(ogb_name, root, download=download)
        return data, f"ogb/{ogb_name}", False  # dense real-valued embeddings
    raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(DATASET_NAMES)}")

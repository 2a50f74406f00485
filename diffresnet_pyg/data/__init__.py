"""Datasets, splits and transforms of the Diff-ResNet graph protocol.

* :func:`load_dataset` and the per-format loaders read gnn-benchmark,
  PyG (Planetoid, Coauthor, Amazon), GraphData and OGB (:func:`load_ogb`,
  optional ``ogb`` dependency) datasets into
  :class:`torch_geometric.data.Data`; :func:`resolve_root` says where.
* :func:`read_dataset_file` (and ``load_dataset(path=...)``) reads a
  dataset file in any registered format (:mod:`~diffresnet_pyg.data.formats`,
  one module per format; :func:`format_names`, :func:`detect_format`).
* :func:`standardize` / :class:`Standardize` and :func:`row_normalize` /
  :class:`RowNormalizeFeatures` are gnn-benchmark's preprocessing.
* :func:`per_class_split` and :func:`protocol_splits` draw the authors' exact
  random splits and initialization seeds.
"""

from diffresnet_pyg.data._common import DatasetFileError
from diffresnet_pyg.data.datasets import DATASET_NAMES, load_dataset
from diffresnet_pyg.data.formats import (
    detect_format,
    format_names,
    read_dataset_file,
)
from diffresnet_pyg.data.gnnbench import (
    GNNBENCH_NAMES,
    GNNBENCH_URL,
    load_gnnbench,
    load_gnnbench_npz,
)
from diffresnet_pyg.data.graphdata import (
    GRAPHDATA_NAMES,
    load_graphdata,
    load_graphdata_npz,
)
from diffresnet_pyg.data.ogb import OGB_NAMES, load_ogb
from diffresnet_pyg.data.pyg_datasets import PYG_DATASETS, load_pyg_dataset
from diffresnet_pyg.data.root import DATA_ENV_VAR, resolve_cache, resolve_root
from diffresnet_pyg.data.split import (
    Split,
    apply_split,
    per_class_split,
    protocol_split,
    protocol_splits,
    split_seeds,
)
from diffresnet_pyg.data.transforms import (
    RowNormalizeFeatures,
    Standardize,
    remove_small_classes,
    row_normalize,
    standardize,
)

__all__ = [
    "DATASET_NAMES",
    "DATA_ENV_VAR",
    "DatasetFileError",
    "GNNBENCH_NAMES",
    "GNNBENCH_URL",
    "GRAPHDATA_NAMES",
    "OGB_NAMES",
    "PYG_DATASETS",
    "RowNormalizeFeatures",
    "Split",
    "Standardize",
    "apply_split",
    "detect_format",
    "format_names",
    "load_dataset",
    "load_gnnbench",
    "load_gnnbench_npz",
    "load_graphdata",
    "load_graphdata_npz",
    "load_ogb",
    "load_pyg_dataset",
    "per_class_split",
    "protocol_split",
    "protocol_splits",
    "read_dataset_file",
    "remove_small_classes",
    "resolve_cache",
    "resolve_root",
    "row_normalize",
    "split_seeds",
    "standardize",
]

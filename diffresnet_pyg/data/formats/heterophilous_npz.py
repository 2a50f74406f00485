"""The npz layout of the heterophilous-graph benchmark (Platonov et al., 2023).

Keys (``yandex-research/heterophily_graphs``, e.g. ``roman_empire.npz``):

* ``node_features`` ``[N, F]``, ``node_labels`` ``[N]``;
* ``edges`` ``[E, 2]``, one row per edge (source, target) as stored (the
  files list each undirected edge once; standardization symmetrizes);
* optional ``train_masks``, ``val_masks``, ``test_masks`` ``[S, N]``: one
  row per split. They become ``train_mask``, ``val_mask``, ``test_mask`` of
  shape ``[N, S]`` (PyG's layout; split ``i`` is column ``i``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data

from diffresnet_pyg.data._common import DatasetFileError
from diffresnet_pyg.data._npz import read_npz, require_keys
from diffresnet_pyg.data._validate import check_edge_list
from diffresnet_pyg.data.formats import _arrays
from diffresnet_pyg.data.formats.registry import register_format

_MASKS = {
    "train_masks": "train_mask",
    "val_masks": "val_mask",
    "test_masks": "test_mask",
}


@register_format(
    "heterophilous",
    detect=lambda probe: probe.has_keys("node_features", "node_labels", "edges"),
    signature="npz with node_features, node_labels, edges [E, 2] "
    "(optional train_masks/val_masks/test_masks [S, N])",
)
def read_heterophilous_npz(path: Path) -> Data:
    """Read a heterophilous-benchmark npz file (no preprocessing)."""
    arrays = read_npz(path)
    require_keys(
        arrays, ("node_features", "node_labels", "edges"), path, "heterophilous npz"
    )
    x = _arrays.features(arrays["node_features"], "node_features", path)
    y = _arrays.labels(arrays["node_labels"], "node_labels", path)
    edges = np.asarray(arrays["edges"])
    if (
        edges.ndim != 2
        or edges.shape[1] != 2
        or not np.issubdtype(edges.dtype, np.integer)
    ):
        raise DatasetFileError(
            f"{path}: 'edges' must be integer pairs [E, 2], got {edges.dtype} "
            f"{edges.shape}"
        )
    check_edge_list(edges, x.size(0), "edges", path, pairs=True)
    data = Data(
        x=x,
        y=y,
        edge_index=torch.from_numpy(np.ascontiguousarray(edges.T, dtype=np.int64)),
        num_nodes=x.size(0),
    )
    for name, value in _arrays.split_masks(
        arrays, _MASKS, path, splits_first=True
    ).items():
        data[name] = value
    return data

"""A plain CSR npz file: the simplest way to write your own graph.

Keys (``N`` nodes, ``E`` stored edges):

* ``indptr`` ``[N + 1]`` and ``indices`` ``[E]``: the adjacency in CSR form,
  row ``i`` (the edges leaving node ``i``) is
  ``indices[indptr[i]:indptr[i + 1]]``;
* ``data`` ``[E]``, optional: edge weights (>= 0; all 1 when absent);
* ``features`` or ``x`` ``[N, F]``: dense node features, finite;
* ``labels`` or ``y`` ``[N]``: class indices ``0..C-1``, every class with
  at least one node (no "unlabeled" value);
* ``train_mask``, ``val_mask``, ``test_mask``, optional (all three or none):
  ``[N]``, or ``[N, S]`` for ``S`` splits (split ``i`` is column ``i``),
  booleans or 0/1.

Example:
    >>> import numpy as np, scipy.sparse as sp, tempfile, os
    >>> adj = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]]))
    >>> path = os.path.join(tempfile.mkdtemp(), "graph.npz")
    >>> np.savez(path, indptr=adj.indptr, indices=adj.indices,
    ...          features=np.eye(3), labels=np.array([0, 1, 0]))
    >>> from diffresnet_pyg.data import read_dataset_file
    >>> read_dataset_file(path)
    Data(x=[3, 3], edge_index=[2, 4], y=[3], num_nodes=3)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data

from diffresnet_pyg.data._common import DatasetFileError
from diffresnet_pyg.data._npz import read_npz, require_keys
from diffresnet_pyg.data._validate import check_csr, check_edge_weights
from diffresnet_pyg.data.formats import _arrays
from diffresnet_pyg.data.formats.registry import MASK_KEYS, register_format


def _one_of(arrays: dict, keys: tuple[str, str], path: Path) -> str:
    present = [key for key in keys if key in arrays]
    if len(present) != 1:
        what = "both" if present else "neither"
        raise DatasetFileError(
            f"{path}: a CSR npz file needs exactly one of the keys {list(keys)} "
            f"({what} found; keys: {sorted(arrays)})"
        )
    return present[0]


@register_format(
    "csr",
    detect=lambda probe: probe.has_keys("indptr", "indices"),
    signature="npz with indptr, indices (optional data), features or x, "
    "labels or y (optional train_mask/val_mask/test_mask)",
)
def read_csr_npz(path: Path) -> Data:
    """Read a plain CSR npz file (no preprocessing; keys in the module doc).

    Raises:
        DatasetFileError: If a key is missing or an array is invalid: row
            pointers that do not fit ``indices``, a column index outside the
            nodes, NaN, infinite or negative weights, NaN or infinite
            features, labels that are not class indices ``0..C-1`` with every
            class present. The message names the key and the first offender.
    """
    arrays = read_npz(path)
    require_keys(arrays, ("indptr", "indices"), path, "CSR npz")
    x_key = _one_of(arrays, ("features", "x"), path)
    y_key = _one_of(arrays, ("labels", "y"), path)
    indptr = np.asarray(arrays["indptr"])
    indices = np.asarray(arrays["indices"])
    if indptr.ndim != 1 or indptr.size < 2:
        raise DatasetFileError(
            f"{path}: 'indptr' must be 1-D with num_nodes + 1 >= 2 entries, got "
            f"shape {indptr.shape}"
        )
    num_nodes = indptr.size - 1
    check_csr(
        indptr, indices, (num_nodes, num_nodes), path, ("indptr", "indices"), nodes=True
    )
    row = np.repeat(np.arange(num_nodes, dtype=np.int64), np.diff(indptr))
    edge_index = torch.from_numpy(np.vstack([row, indices.astype(np.int64)]))
    x = _arrays.features(arrays[x_key], x_key, path)
    data = Data(
        edge_index=edge_index,
        x=x,
        y=_arrays.labels(arrays[y_key], y_key, path),
        num_nodes=num_nodes,
    )
    if "data" in arrays:
        weight = np.asarray(arrays["data"])
        if weight.shape != indices.shape:
            raise DatasetFileError(
                f"{path}: 'data' has shape {weight.shape}, 'indices' "
                f"{indices.shape}; one weight per stored edge"
            )
        check_edge_weights(weight, "data", path, row, indices)
        data.edge_weight = torch.from_numpy(
            np.ascontiguousarray(weight, dtype=np.float32)
        )
    masks = {key: key for key in MASK_KEYS}
    for name, value in _arrays.split_masks(
        arrays, masks, path, splits_first=False
    ).items():
        data[name] = value
    return data

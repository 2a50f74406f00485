"""Conversion of a scipy/numpy adjacency, features and labels into :class:`Data`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.data import Data
from torch_geometric.utils import coalesce

from diffresnet_pyg.data._common import DatasetFileError
from diffresnet_pyg.data._validate import (
    check_edge_weights,
    check_features,
    checked_sparse,
    class_indices,
)

logger = logging.getLogger(__name__)


def _edges_from_adjacency(adj: sp.csr_matrix) -> tuple[torch.Tensor, torch.Tensor]:
    """``edge_index`` and weights of every stored entry (duplicates summed)."""
    adj = sp.csr_matrix(adj, copy=True)
    adj.sum_duplicates()
    coo = adj.tocoo()
    edge_index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    weight = torch.from_numpy(np.asarray(coo.data, dtype=np.float32))
    return coalesce(edge_index, weight, num_nodes=adj.shape[0])


def _labels_to_tensor(
    labels: Any,
    num_nodes: int,
    path: Path,
    key: str,
    class_names: Sequence[str] | None,
    names_key: str,
) -> torch.Tensor:
    """Class indices (or a multi-hot matrix) as :obj:`torch.long`, checked.

    A label matrix (sparse or dense) with exactly one nonzero per row becomes
    class indices; one with several nonzeros in some row a multi-hot
    ``[num_nodes, num_classes]``; one whose rows hold at most one label but
    some none is refused (nodes without a label).
    """
    if sp.issparse(labels):
        labels = checked_sparse(labels, key, path).toarray()
    labels = np.asarray(labels)
    if labels.shape[:1] != (num_nodes,):
        count = labels.shape[0] if labels.ndim else 1
        raise DatasetFileError(
            f"{path}: '{key}' has {count} labels for {num_nodes} nodes; the file "
            "is inconsistent"
        )
    if labels.ndim == 2:
        if labels.dtype == object or not (
            np.issubdtype(labels.dtype, np.number) or labels.dtype == bool
        ):
            raise DatasetFileError(
                f"{path}: '{key}' must hold numbers, got dtype {labels.dtype}"
            )
        check_features(labels, key, path)
        per_node = (labels != 0).sum(axis=1)
        if np.all(per_node == 1):
            indices = (labels != 0).argmax(axis=1)
            y = class_indices(indices, key, path, class_names, names_key)
        elif np.all(per_node <= 1):
            missing = np.flatnonzero(per_node == 0)
            raise DatasetFileError(
                f"{path}: '{key}' (a label matrix) has {missing.size} "
                f"{'row' if missing.size == 1 else 'rows'} without a label, the "
                f"first at node {missing[0]}; every node needs a label "
                "(unlabeled nodes are not supported)"
            )
        else:
            logger.warning(
                "%s: labels are multi-label; 'y' is a [num_nodes, num_classes] "
                "multi-hot matrix",
                path,
            )
            y = (labels != 0).astype(np.int64)
    else:
        y = class_indices(labels, key, path, class_names, names_key)
    return torch.from_numpy(np.ascontiguousarray(y))


def to_data(
    adj: Any,
    attr: sp.csr_matrix | np.ndarray | None,
    labels: Any,
    path: Path,
    *,
    keys: tuple[str, str, str] = ("adjacency", "features", "labels"),
    class_names: Sequence[str] | None = None,
    names_key: str = "'class_names'",
) -> Data:
    """Assemble a :class:`Data` from an adjacency, features and labels, checked.

    Every stored adjacency entry is an edge; the weights are kept as
    ``edge_weight`` only if some weight is not 1. Before anything is built,
    the adjacency's indices must fit its shape and its weights be finite and
    ``>= 0``, the features finite, and the labels class indices ``0..C-1``
    with every class present (``C = len(class_names)`` when the file names
    its classes).

    Args:
        adj: The adjacency (scipy sparse, maybe unpickled, or dense).
        attr: The features, or :obj:`None`.
        labels: The labels (``[N]``, or a ``[N, C]`` label matrix), or
            :obj:`None`.
        path: The file read, for error messages.
        keys: What the file calls the adjacency (weights), the features and
            the labels, for error messages.
        class_names: The file's class names, if it has them.
        names_key: Where the file keeps the class names, as messages show it.

    Raises:
        DatasetFileError: Naming the file, the key and the first offender.
    """
    adj_key, attr_key, labels_key = keys
    if sp.issparse(adj):
        adj = checked_sparse(adj, adj_key, path)
    else:
        dense = np.asarray(adj)
        if dense.ndim != 2 or dense.dtype == object:
            raise DatasetFileError(
                f"{path}: '{adj_key}' must be a 2-D matrix, got {dense.dtype} "
                f"{dense.shape}"
            )
        adj = sp.csr_matrix(dense)
    num_nodes = int(adj.shape[0])
    if adj.shape[0] != adj.shape[1]:
        raise DatasetFileError(f"{path}: adjacency matrix is not square ({adj.shape})")
    coo = adj.tocoo()
    check_edge_weights(coo.data, adj_key, path, coo.row, coo.col)
    edge_index, weight = _edges_from_adjacency(adj)
    data = Data(edge_index=edge_index, num_nodes=num_nodes)
    if weight.numel() and not bool(torch.all(weight == 1)):
        data.edge_weight = weight
    if attr is not None:
        if sp.issparse(attr):
            attr = checked_sparse(attr, attr_key, path)
        check_features(attr, attr_key, path)
        dense = attr.toarray() if sp.issparse(attr) else np.asarray(attr)
        if dense.ndim != 2 or dense.shape[0] != num_nodes:
            raise DatasetFileError(
                f"{path}: '{attr_key}' has {dense.shape[0] if dense.ndim else 0} "
                f"feature rows for {num_nodes} nodes"
            )
        data.x = torch.from_numpy(np.ascontiguousarray(dense, dtype=np.float32))
    if labels is not None:
        data.y = _labels_to_tensor(
            labels, num_nodes, path, labels_key, class_names, names_key
        )
    return data

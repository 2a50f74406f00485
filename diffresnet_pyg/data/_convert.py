"""Conversion of a scipy/numpy adjacency, features and labels into :class:`Data`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.data import Data
from torch_geometric.utils import coalesce

from diffresnet_pyg.data._common import DatasetFileError

logger = logging.getLogger(__name__)


def _edges_from_adjacency(adj: sp.csr_matrix) -> tuple[torch.Tensor, torch.Tensor]:
    """``edge_index`` and weights of every stored entry (duplicates summed)."""
    adj = sp.csr_matrix(adj, copy=True)
    adj.sum_duplicates()
    coo = adj.tocoo()
    edge_index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    weight = torch.from_numpy(np.asarray(coo.data, dtype=np.float32))
    return coalesce(edge_index, weight, num_nodes=adj.shape[0])


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
        raise DatasetFileError(
            f"{path}: {y.shape[0]} labels for {num_nodes} nodes; the file is "
            "inconsistent"
        )
    return torch.from_numpy(np.ascontiguousarray(y))


def to_data(
    adj: sp.csr_matrix | np.ndarray,
    attr: sp.csr_matrix | np.ndarray | None,
    labels: Any,
    path: Path,
) -> Data:
    """Assemble a :class:`Data` from an adjacency, features and labels.

    Every stored adjacency entry is an edge; the weights are kept as
    ``edge_weight`` only if some weight is not 1. :obj:`path` (the file read)
    only goes into error messages.
    """
    if not sp.issparse(adj):
        adj = sp.csr_matrix(np.asarray(adj))
    num_nodes = int(adj.shape[0])
    if adj.shape[0] != adj.shape[1]:
        raise DatasetFileError(f"{path}: adjacency matrix is not square ({adj.shape})")
    edge_index, weight = _edges_from_adjacency(adj)
    data = Data(edge_index=edge_index, num_nodes=num_nodes)
    if weight.numel() and not bool(torch.all(weight == 1)):
        data.edge_weight = weight
    if attr is not None:
        dense = attr.toarray() if sp.issparse(attr) else np.asarray(attr)
        if dense.shape[0] != num_nodes:
            raise DatasetFileError(
                f"{path}: {dense.shape[0]} feature rows for {num_nodes} nodes"
            )
        data.x = torch.from_numpy(np.ascontiguousarray(dense, dtype=np.float32))
    if labels is not None:
        data.y = _labels_to_tensor(labels, num_nodes, path)
    return data

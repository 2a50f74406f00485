r"""Graph standardization and feature normalization of the gnn-benchmark protocol.

These reproduce the preprocessing of the "Pitfalls of Graph Neural Network
Evaluation" benchmark (`shchur/gnn-benchmark`, ``SparseGraph.standardize()``
plus the binarization of the node features) that the Diff-ResNet authors use
for their graph experiments, and their feature row normalization.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform
from torch_geometric.utils import coalesce, select

__all__ = [
    "RowNormalizeFeatures",
    "Standardize",
    "remove_small_classes",
    "row_normalize",
    "standardize",
]

logger = logging.getLogger(__name__)


def _dense_features(x: Tensor) -> Tensor:
    """Return :obj:`x` as a dense tensor (torch sparse layouts are densified)."""
    if x.layout != torch.strided:
        return x.to_dense()
    return x


def _rebuild(
    data: Data,
    keep: np.ndarray,
    edge_index: Tensor,
    *,
    x: Tensor | None,
    y: Tensor | None,
) -> Data:
    """Build a new :class:`Data` on the nodes :obj:`keep` of :obj:`data`.

    Node-level attributes are indexed by :obj:`keep`, edge-level attributes
    (weights, edge features) are dropped because the edge set was rebuilt,
    graph-level attributes are copied. ``orig_index`` is composed so that it
    always refers to the node ids of the very first graph.
    """
    num_nodes = int(data.num_nodes)
    keep_t = torch.from_numpy(keep)
    out = Data()
    for key, value in data.items():
        if key in ("x", "y", "edge_index", "num_nodes"):
            continue
        if "edge" in key or (not data.is_node_attr(key) and data.is_edge_attr(key)):
            logger.debug("standardize: dropping edge attribute %r", key)
            continue
        if data.is_node_attr(key):
            cat_dim = data.__cat_dim__(key, value)
            if isinstance(value, np.ndarray):
                out[key] = np.take(value, keep, axis=cat_dim)
            elif isinstance(value, Tensor):
                out[key] = select(value, keep_t.to(value.device), dim=cat_dim)
            else:
                out[key] = select(value, keep_t, dim=cat_dim)
            continue
        out[key] = value
    if "orig_index" not in out:
        out.orig_index = keep_t.clone()
    out.edge_index = edge_index
    if x is not None:
        out.x = x
    if y is not None:
        out.y = y
    out.num_nodes = int(keep.size)
    logger.debug("standardize: kept %d of %d nodes", keep.size, num_nodes)
    return out


def _symmetric_adjacency(
    edge_index: Tensor, num_nodes: int, symmetrize: bool = True
) -> sp.csr_matrix:
    """Unweighted adjacency without self loops (``A + A^T`` if symmetrized, -> 1)."""
    row, col = edge_index.detach().cpu().numpy().astype(np.int64)
    mask = row != col
    row, col = row[mask], col[mask]
    ones = np.ones(row.size, dtype=np.float32)
    adj = sp.coo_matrix((ones, (row, col)), shape=(num_nodes, num_nodes)).tocsr()
    if symmetrize:
        adj = (adj + adj.T).tocsr()
    adj.data[:] = 1.0
    return adj


def standardize(
    data: Data,
    *,
    largest_component: bool = True,
    binarize_features: bool = True,
    symmetrize: bool = True,
) -> Data:
    r"""Standardize a graph exactly as gnn-benchmark's ``SparseGraph.standardize()``.

    The steps, in gnn-benchmark's order:

    1. **unweighted**: every stored edge gets weight 1 (edge weights and edge
       features are dropped; an edge listed in :obj:`edge_index` is an edge
       whatever its weight),
    2. **undirected**: :math:`\mathbf{A} \leftarrow \mathbf{A} + \mathbf{A}^{\top}`,
       nonzero entries set to 1,
    3. **self loops removed**,
    4. **largest connected component** (``scipy.sparse.csgraph``; among
       components of equal size the one picked by
       ``np.argsort(component_sizes)[::-1][:1]``, as gnn-benchmark does); the
       kept nodes stay in their original index order (the components of a
       graph left directed are its weakly connected ones),
    5. **binary features**: every nonzero entry of :obj:`x` becomes 1,
    6. **consecutive labels**: a 1-D :obj:`y` is remapped to
       :math:`0, \ldots, C - 1` in sorted order of the labels that remain
       (like ``sklearn.preprocessing.LabelBinarizer.classes_``); a 2-D
       (multi-hot) :obj:`y` is only restricted to the kept nodes.

    The result holds ``edge_index`` (coalesced, both directions of every
    edge), ``x`` (dense, floating point), ``y`` (:obj:`torch.long`),
    ``num_nodes`` and ``orig_index``, the ids of the kept nodes in the input
    graph (composed with an existing ``orig_index``, so that standardizing
    twice still refers to the first graph). Other node-level attributes (e.g.
    Planetoid's masks) are restricted to the kept nodes; graph-level ones are
    copied. The input is not modified.

    Args:
        data (torch_geometric.data.Data): The graph. :obj:`x` may be dense or
            a torch sparse tensor (it is densified).
        largest_component (bool, optional): If :obj:`False`, skip step 4 and
            keep every node. (default: :obj:`True`)
        binarize_features (bool, optional): If :obj:`False`, skip step 5.
            (default: :obj:`True`)
        symmetrize (bool, optional): If :obj:`False`, skip step 2 and keep
            the edges' directions. (default: :obj:`True`)

    Returns:
        torch_geometric.data.Data: The standardized graph.

    Example:
        >>> import torch
        >>> from torch_geometric.data import Data
        >>> from diffresnet_pyg.data import standardize
        >>> data = Data(edge_index=torch.tensor([[0, 1, 3], [1, 1, 3]]),
        ...             x=torch.tensor([[2.0], [0.5], [0.0], [1.0]]),
        ...             y=torch.tensor([5, 7, 5, 9]))
        >>> out = standardize(data)
        >>> out.edge_index.tolist(), out.x.tolist(), out.y.tolist()
        ([[0, 1], [1, 0]], [[1.0], [1.0]], [0, 1])
        >>> out.orig_index.tolist()
        [0, 1]
    """
    if data.edge_index is None:
        raise ValueError("standardize() needs a graph with 'edge_index'")
    num_nodes = data.num_nodes
    if num_nodes is None or num_nodes == 0:
        raise ValueError("standardize() needs a graph with at least one node")
    num_nodes = int(num_nodes)

    adj = _symmetric_adjacency(data.edge_index, num_nodes, symmetrize)

    if largest_component:
        _, component = connected_components(adj, connection="weak")
        component_sizes = np.bincount(component)
        components_to_keep = np.argsort(component_sizes)[::-1][:1]
        keep = np.flatnonzero(np.isin(component, components_to_keep))
        if keep.size != num_nodes:
            adj = adj[keep][:, keep]
        logger.info(
            "standardize: largest connected component has %d of %d nodes "
            "(%d components)",
            keep.size,
            num_nodes,
            component_sizes.size,
        )
    else:
        keep = np.arange(num_nodes)
    keep = keep.astype(np.int64)

    coo = adj.tocoo()
    edge_index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    edge_index = coalesce(edge_index, num_nodes=int(keep.size))

    x = None
    if data.x is not None:
        x = _dense_features(data.x)
        x = x[torch.from_numpy(keep).to(x.device)]
        if binarize_features:
            dtype = x.dtype if x.is_floating_point() else torch.float32
            x = (x != 0).to(dtype)

    y = None
    if data.y is not None:
        y = data.y
        y = y[torch.from_numpy(keep).to(y.device)]
        if y.dim() == 1:
            _, inverse = np.unique(y.cpu().numpy(), return_inverse=True)
            y = torch.from_numpy(inverse.astype(np.int64).reshape(-1)).to(y.device)
        else:
            y = y.long()

    return _rebuild(data, keep, edge_index, x=x, y=y)


def remove_small_classes(data: Data, min_size: int) -> Data:
    """Drop the nodes of every class with at most :obj:`min_size` nodes.

    gnn-benchmark's ``remove_underrepresented_classes``: a class is kept only if
    it has **more than** :obj:`min_size` nodes (gnn-benchmark uses
    ``train + val`` per class, i.e. 50, for ``cora_full``). The remaining nodes
    keep their order; edges among them are kept, edge attributes too. Labels
    are *not* remapped and the graph may become disconnected: run
    :func:`standardize` afterwards, as gnn-benchmark does.

    Args:
        data (torch_geometric.data.Data): A graph with a 1-D :obj:`y`.
        min_size (int): Classes with this many nodes or fewer are removed.

    Returns:
        torch_geometric.data.Data: The subgraph (``orig_index`` is kept
        composed, or created).
    """
    if data.y is None or data.y.dim() != 1:
        raise ValueError("remove_small_classes() needs a 1-D label tensor 'y'")
    if min_size < 0:
        raise ValueError(f"min_size must be >= 0 (got {min_size})")
    y = data.y.cpu().numpy()
    classes, counts = np.unique(y, return_counts=True)
    keep_classes = classes[counts > min_size]
    keep = np.flatnonzero(np.isin(y, keep_classes)).astype(np.int64)
    removed = classes[counts <= min_size]
    if removed.size:
        logger.info(
            "remove_small_classes: dropping classes %s (<= %d nodes), %d nodes",
            removed.tolist(),
            min_size,
            y.size - keep.size,
        )
    subset = torch.from_numpy(keep)
    had_orig = "orig_index" in data
    out = data.subgraph(subset)
    if not had_orig:
        out.orig_index = subset.clone()
    return out


def row_normalize(x: Tensor) -> Tensor:
    r"""Divide every row of :obj:`x` by its sum; all-zero rows stay zero.

    .. math::
        \mathbf{x}_i \leftarrow \frac{\mathbf{x}_i}{\sum_j x_{ij}}

    computed as the authors do (``r_inv = rowsum ** -1``, ``r_inv[isinf] = 0``,
    then a multiplication by ``r_inv``). Meant for non-negative features.
    Unlike :class:`torch_geometric.transforms.NormalizeFeatures` nothing is
    subtracted first.

    Args:
        x (torch.Tensor): Features of shape :obj:`[num_nodes, num_features]`,
            dense or torch sparse COO (the result has the same layout).

    Returns:
        torch.Tensor: The row-normalized features (a new tensor).

    Example:
        >>> import torch
        >>> from diffresnet_pyg.data import row_normalize
        >>> row_normalize(torch.tensor([[1.0, 3.0], [0.0, 0.0]])).tolist()
        [[0.25, 0.75], [0.0, 0.0]]
    """
    if x.dim() != 2:
        raise ValueError(f"row_normalize() expects a 2-D tensor (got {x.dim()}-D)")
    if x.layout == torch.sparse_coo:
        x = x.coalesce()
        if not x.is_floating_point():
            x = x.float()
        row = x.indices()[0]
        rowsum = torch.zeros(x.size(0), dtype=x.dtype, device=x.device)
        rowsum.index_add_(0, row, x.values())
        r_inv = rowsum.pow(-1)
        r_inv[torch.isinf(r_inv)] = 0.0
        values = x.values() * r_inv[row]
        return torch.sparse_coo_tensor(
            x.indices(),
            values,
            x.size(),
            is_coalesced=True,
            check_invariants=False,
        )
    x = _dense_features(x)
    if not x.is_floating_point():
        x = x.float()
    rowsum = x.sum(dim=1)
    r_inv = rowsum.pow(-1)
    r_inv[torch.isinf(r_inv)] = 0.0
    return x * r_inv.unsqueeze(-1)


class Standardize(BaseTransform):
    r"""The gnn-benchmark standardization as a PyG transform.

    Unweighted, undirected, no self loops, largest connected component,
    binary features, consecutive labels; see :func:`standardize`.

    Args:
        largest_component (bool, optional): Keep only the largest connected
            component. (default: :obj:`True`)
        binarize_features (bool, optional): Set nonzero features to 1.
            (default: :obj:`True`)

    Example:
        >>> from torch_geometric.transforms import Compose
        >>> from diffresnet_pyg.data import RowNormalizeFeatures, Standardize
        >>> transform = Compose([Standardize(), RowNormalizeFeatures()])
    """

    def __init__(
        self, largest_component: bool = True, binarize_features: bool = True
    ) -> None:
        self.largest_component = largest_component
        self.binarize_features = binarize_features

    def forward(self, data: Data) -> Data:
        """Standardize :obj:`data` (returns a new graph)."""
        return standardize(
            data,
            largest_component=self.largest_component,
            binarize_features=self.binarize_features,
        )

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(largest_component="
            f"{self.largest_component}, binarize_features={self.binarize_features})"
        )


class RowNormalizeFeatures(BaseTransform):
    r"""Row-normalize :obj:`data.x` (rows sum to 1, zero rows stay zero).

    See :func:`row_normalize`. Unlike
    :class:`torch_geometric.transforms.NormalizeFeatures`, the row minimum is
    not subtracted.

    Args:
        attr (str, optional): The node attribute to normalize.
            (default: :obj:`"x"`)
    """

    def __init__(self, attr: str = "x") -> None:
        self.attr = attr

    def forward(self, data: Data) -> Data:
        """Normalize the attribute in place on the (copied) data."""
        value = data[self.attr] if self.attr in data else None
        if value is not None:
            data[self.attr] = row_normalize(value)
        return data

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(attr={self.attr!r})"

r"""PyG's compiled mini-batch loaders, built only when their backends exist.

* :func:`neighbor_loader`: :class:`torch_geometric.loader.NeighborLoader`
  (GraphSAGE neighbour sampling, `Hamilton et al., NeurIPS 2017
  <https://arxiv.org/abs/1706.02216>`_) needs ``pyg-lib`` or
  ``torch-sparse`` for its sampling kernels;
* :func:`cluster_loader`: :class:`torch_geometric.loader.ClusterLoader` over
  :class:`torch_geometric.loader.ClusterData` (Cluster-GCN, `Chiang et al.,
  KDD 2019 <https://arxiv.org/abs/1905.07953>`_) needs METIS, from
  ``pyg-lib`` (``pyg_lib.partition``) or ``torch-sparse`` built with METIS.

Without them :class:`MissingBackendError` names what to install; the pure
PyTorch :class:`~diffresnet_pyg.loader.RandomPartitionLoader` always works.
The flags are read at call time as module attributes
(:data:`diffresnet_pyg.typing.WITH_PYG_LIB`,
:data:`diffresnet_pyg.typing.WITH_TORCH_SPARSE`,
``torch_geometric.typing.WITH_METIS``), so they can be switched off in tests.

Batches follow the convention of :class:`RandomPartitionLoader`: ``n_id``
(node ids in the whole graph), ``edge_index`` (relabelled) and
``num_nodes``. Neighbour batches also have ``batch_size``: their targets are
the first ``batch_size`` nodes of ``n_id`` (the seeds); cluster batches have
none, every node is a target.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch_geometric.typing as pyg_typing
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from diffresnet_pyg import typing as dtyping

__all__ = [
    "MissingBackendError",
    "cluster_loader",
    "has_metis",
    "has_neighbor_sampler",
    "neighbor_loader",
]


class MissingBackendError(ImportError):
    """A loader whose compiled backend (``pyg-lib`` / ``torch-sparse``) is absent."""


def has_neighbor_sampler() -> bool:
    """Whether :class:`~torch_geometric.loader.NeighborLoader` can sample."""
    return bool(dtyping.WITH_PYG_LIB or dtyping.WITH_TORCH_SPARSE)


def has_metis() -> bool:
    """Whether :class:`~torch_geometric.loader.ClusterData` may find METIS.

    ``pyg_lib.partition`` is METIS; ``torch-sparse`` has it only when built
    with METIS, which :func:`cluster_loader` finds out when it partitions.
    """
    return bool(pyg_typing.WITH_METIS or dtyping.WITH_TORCH_SPARSE)


def _graph(edge_index: Tensor, num_nodes: int) -> Data:
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(
            f"'edge_index' must have shape [2, E], got {tuple(edge_index.shape)}"
        )
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, int) or num_nodes < 1:
        raise ValueError(f"'num_nodes' must be an integer >= 1, got {num_nodes!r}")
    n_id = torch.arange(num_nodes, device=edge_index.device)
    return Data(edge_index=edge_index, n_id=n_id, num_nodes=num_nodes)


def _symmetrize(batch: Data) -> Data:
    batch.edge_index = to_undirected(batch.edge_index, num_nodes=batch.num_nodes)
    return batch


def neighbor_loader(
    edge_index: Tensor,
    num_nodes: int,
    input_nodes: Tensor,
    num_neighbors: Sequence[int],
    batch_size: int,
    *,
    undirected: bool = True,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
):
    r"""A :class:`~torch_geometric.loader.NeighborLoader` over ``input_nodes``.

    Each batch holds ``batch_size`` seed nodes (the first ``batch.batch_size``
    entries of ``batch.n_id``) and, per hop :math:`h`, at most
    ``num_neighbors[h]`` sampled neighbours of the previous hop's nodes
    (``-1``: all of them).

    Args:
        edge_index (torch.Tensor): ``[2, E]`` edges of the whole graph.
        num_nodes (int): :math:`N`.
        input_nodes (torch.Tensor): The seed nodes of an epoch.
        num_neighbors (Sequence[int]): Neighbours per hop (each >= 1 or -1).
        batch_size (int): Seed nodes per batch.
        undirected (bool, optional): Make each sampled subgraph undirected
            (sampling gives edges towards the seeds only), so that a
            symmetric Laplacian can be built on it. (default: :obj:`True`)
        shuffle (bool, optional): Shuffle the seeds every epoch.
            (default: :obj:`True`)
        generator (torch.Generator, optional): The shuffling's randomness
            (the neighbour draws come from the sampling backend).
            (default: :obj:`None`)

    Raises:
        MissingBackendError: Neither ``pyg-lib`` nor ``torch-sparse`` is
            installed.
    """
    graph = _graph(edge_index, num_nodes)
    hops = list(num_neighbors)
    if not hops or any(
        isinstance(h, bool) or not isinstance(h, int) or (h < 1 and h != -1)
        for h in hops
    ):
        raise ValueError(
            f"'num_neighbors' must be a non-empty list of integers >= 1 or -1, "
            f"got {num_neighbors!r}"
        )
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or batch_size < 1
    ):
        raise ValueError(f"'batch_size' must be an integer >= 1, got {batch_size!r}")
    if not has_neighbor_sampler():
        raise MissingBackendError(
            "neighbour sampling (torch_geometric.loader.NeighborLoader) needs the "
            "compiled package 'pyg-lib' or 'torch-sparse', and neither is "
            "installed; install one of them, or use random partitions "
            "(diffresnet_pyg.loader.RandomPartitionLoader)"
        )
    from torch_geometric.loader import NeighborLoader

    return NeighborLoader(
        graph,
        num_neighbors=hops,
        input_nodes=input_nodes,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        transform=_symmetrize if undirected else None,
    )


def cluster_loader(
    edge_index: Tensor,
    num_nodes: int,
    num_parts: int,
    parts_per_batch: int = 1,
    *,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
):
    r"""A :class:`~torch_geometric.loader.ClusterLoader` of METIS parts.

    The graph (undirected, as METIS requires) is partitioned once into
    ``num_parts`` parts; every epoch groups them (shuffled) ``parts_per_batch``
    at a time, and a batch carries the subgraph induced by its parts,
    including the edges between them.

    Args:
        edge_index (torch.Tensor): ``[2, E]`` undirected edges.
        num_nodes (int): :math:`N`.
        num_parts (int): METIS parts, :math:`\geq 1`.
        parts_per_batch (int, optional): Parts per batch. (default: :obj:`1`)
        shuffle (bool, optional): Shuffle the parts every epoch.
            (default: :obj:`True`)
        generator (torch.Generator, optional): The shuffling's randomness.
            (default: :obj:`None`)

    Raises:
        MissingBackendError: No METIS is available (neither ``pyg-lib`` nor
            ``torch-sparse`` built with METIS).
    """
    missing = (
        "Cluster-GCN batches (torch_geometric.loader.ClusterData) need METIS from "
        "the compiled package 'pyg-lib' (pyg_lib.partition) or 'torch-sparse' "
        "built with METIS; {what}. Install one of them, or use random partitions "
        "(diffresnet_pyg.loader.RandomPartitionLoader)"
    )
    graph = _graph(edge_index, num_nodes)
    for name, value in (("num_parts", num_parts), ("parts_per_batch", parts_per_batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"'{name}' must be an integer >= 1, got {value!r}")
    if parts_per_batch > num_parts:
        raise ValueError(
            f"'parts_per_batch' ({parts_per_batch}) must not exceed 'num_parts' "
            f"({num_parts})"
        )
    if not has_metis():
        raise MissingBackendError(missing.format(what="neither is installed"))
    from torch_geometric.loader import ClusterData, ClusterLoader

    try:
        clusters = ClusterData(graph, num_parts, log=False)
    except ImportError as exc:
        raise MissingBackendError(
            missing.format(what=f"partitioning failed ({exc})")
        ) from exc
    return ClusterLoader(
        clusters, batch_size=parts_per_batch, shuffle=shuffle, generator=generator
    )

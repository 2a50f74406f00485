r"""Mini-batches of a large graph from random node partitions (pure PyTorch).

The nodes :math:`V = \{0, \dots, N-1\}` are split into ``num_parts``
disjoint parts of sizes :math:`\lfloor N / P \rfloor` or
:math:`\lceil N / P \rceil` by a random permutation drawn from a
:class:`torch.Generator`. A batch is the union :math:`S` of
``parts_per_batch`` parts and carries the subgraph *induced* by :math:`S`,
relabelled to :math:`0, \dots, |S| - 1`:

.. math::
    \mathbf{A}_S = \mathbf{A}[S, S], \qquad
    (s_a, s_b) \in \mathcal{E}_S \iff (S_a, S_b) \in \mathcal{E},

so a layer that normalizes the graph it is given (such as
:class:`~diffresnet_pyg.nn.DiffusionConv`, whose cache is keyed on the graph)
builds the Laplacian of :math:`\mathbf{A}_S`, renormalized with the degrees
inside the batch. For feature graphs a batch can instead carry the :math:`k`-nearest-
neighbour graph of its own features (made undirected).

This is Cluster-GCN's scheme (`Chiang et al., KDD 2019
<https://arxiv.org/abs/1905.07953>`_) with random instead of METIS parts: it
needs no compiled extension. Edges between parts of different batches are
not seen in that epoch; with ``resample=True`` every epoch draws a new
partition, so every edge is seen in some epochs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import subgraph, to_undirected

from diffresnet_pyg.loader.features import select_rows
from diffresnet_pyg.nn.knn import knn_graph

__all__ = ["RandomPartitionLoader", "induced_subgraph", "random_partition"]


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"'{name}' must be an integer >= {minimum}, got {value!r}")
    return value


def random_partition(
    num_nodes: int, num_parts: int, generator: torch.Generator | None = None
) -> list[Tensor]:
    r"""Split ``range(num_nodes)`` into ``num_parts`` random disjoint parts.

    A random permutation (from ``generator``) is cut into ``num_parts``
    consecutive pieces whose sizes differ by at most one; each part is
    returned sorted.

    Args:
        num_nodes (int): :math:`N \geq 1`.
        num_parts (int): :math:`P`, with :math:`1 \leq P \leq N`.
        generator (torch.Generator, optional): The source of randomness (the
            global generator if :obj:`None`). (default: :obj:`None`)

    Returns:
        list[torch.Tensor]: ``num_parts`` sorted ``long`` tensors whose union
        is ``range(num_nodes)``.

    Example:
        >>> parts = random_partition(10, 3, torch.Generator().manual_seed(0))
        >>> [p.numel() for p in parts]
        [4, 3, 3]
        >>> torch.cat(parts).sort().values.tolist() == list(range(10))
        True
    """
    _check_int("num_nodes", num_nodes, 1)
    _check_int("num_parts", num_parts, 1)
    if num_parts > num_nodes:
        raise ValueError(
            f"'num_parts' ({num_parts}) must not exceed 'num_nodes' ({num_nodes})"
        )
    perm = torch.randperm(num_nodes, generator=generator)
    return [part.sort().values for part in perm.tensor_split(num_parts)]


def induced_subgraph(edge_index: Tensor, nodes: Tensor, num_nodes: int) -> Tensor:
    r"""The edges among ``nodes``, relabelled to positions in ``nodes``.

    Node ``nodes[a]`` becomes ``a``; an edge is kept when both ends are in
    ``nodes`` (:func:`torch_geometric.utils.subgraph`).

    Args:
        edge_index (torch.Tensor): ``[2, E]`` edges of the whole graph.
        nodes (torch.Tensor): Distinct node ids :math:`S` of the subgraph.
        num_nodes (int): :math:`N`, the number of nodes of the whole graph.

    Returns:
        torch.Tensor: ``[2, E_S]`` edges of :math:`\mathbf{A}[S, S]`.

    Example:
        >>> edge_index = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
        >>> induced_subgraph(edge_index, torch.tensor([1, 2, 3]), 4).tolist()
        [[0, 1, 1, 2], [1, 0, 2, 1]]
    """
    edges, _ = subgraph(nodes, edge_index, relabel_nodes=True, num_nodes=num_nodes)
    return edges


class RandomPartitionLoader:
    r"""Iterate over mini-batches of random node partitions.

    Each epoch (one pass of ``iter``) the nodes are covered exactly once:
    the parts of a random partition (:func:`random_partition`) are shuffled
    and grouped ``parts_per_batch`` at a time. With ``resample=True`` a new
    partition is drawn every epoch; with ``resample=False`` one partition is
    drawn when the loader is built and only its grouping changes (Cluster-GCN's
    stochastic multiple partitions, with random parts). All randomness comes
    from ``generator``, so a loader built with a generator seeded the same way
    yields the same batches.

    Every batch is a :class:`~torch_geometric.data.Data` with

    * ``n_id``: the batch's node ids in the whole graph, ascending;
    * ``edge_index``: the subgraph induced by ``n_id`` (:func:`induced_subgraph`),
      or, with ``knn``, the undirected :math:`k`-nearest-neighbour graph of
      ``x[n_id]`` (:func:`~diffresnet_pyg.nn.knn_graph`, then
      :func:`~torch_geometric.utils.to_undirected`);
    * ``num_nodes`` and ``batch_size``, both :math:`|S|` (every node of a
      batch is a target, as opposed to neighbour sampling's seed nodes).

    Features are not copied into the batches: index them with
    :func:`~diffresnet_pyg.loader.select_rows` (``x[n_id]``).

    Args:
        edge_index (torch.Tensor, optional): ``[2, E]`` edges of the whole
            graph; :obj:`None` only with ``knn``.
        num_nodes (int): :math:`N`.
        num_parts (int): Parts per epoch, :math:`1 \leq P \leq N`.
        parts_per_batch (int, optional): Parts joined into one batch,
            :math:`\leq P`. (default: :obj:`1`)
        resample (bool, optional): Draw a new partition every epoch.
            (default: :obj:`True`)
        x (torch.Tensor, optional): Node features (dense or sparse), needed
            for ``knn``. (default: :obj:`None`)
        knn (int, optional): Build each batch's graph as the :math:`k`-nearest-
            neighbour graph of its features instead of the induced subgraph.
            (default: :obj:`None`)
        generator (torch.Generator, optional): Source of randomness (the
            global generator if :obj:`None`). (default: :obj:`None`)

    Example:
        >>> edge_index = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
        >>> loader = RandomPartitionLoader(edge_index, 4, num_parts=2,
        ...                                generator=torch.Generator().manual_seed(0))
        >>> len(loader), [b.num_nodes for b in loader]
        (2, [2, 2])
    """

    def __init__(
        self,
        edge_index: Tensor | None,
        num_nodes: int,
        num_parts: int,
        parts_per_batch: int = 1,
        *,
        resample: bool = True,
        x: Tensor | None = None,
        knn: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        _check_int("num_nodes", num_nodes, 1)
        _check_int("num_parts", num_parts, 1)
        _check_int("parts_per_batch", parts_per_batch, 1)
        if num_parts > num_nodes:
            raise ValueError(
                f"'num_parts' ({num_parts}) must not exceed 'num_nodes' ({num_nodes})"
            )
        if parts_per_batch > num_parts:
            raise ValueError(
                f"'parts_per_batch' ({parts_per_batch}) must not exceed "
                f"'num_parts' ({num_parts})"
            )
        if not isinstance(resample, bool):
            raise ValueError(f"'resample' must be True or False, got {resample!r}")
        if knn is not None:
            _check_int("knn", knn, 1)
            if x is None:
                raise ValueError("'knn' builds graphs from features: pass 'x'")
            if x.dim() != 2 or x.size(0) != num_nodes:
                raise ValueError(
                    f"'x' must have shape [num_nodes={num_nodes}, F], got "
                    f"{tuple(x.shape)}"
                )
            smallest = (num_nodes // num_parts) * (
                num_parts % parts_per_batch or parts_per_batch
            )
            if knn >= smallest:
                raise ValueError(
                    f"'knn' ({knn}) must be smaller than the smallest batch "
                    f"({smallest} nodes: {num_nodes} nodes in {num_parts} parts, "
                    f"{parts_per_batch} per batch); use fewer parts or a smaller k"
                )
        elif edge_index is None:
            raise ValueError("'edge_index' is required unless 'knn' is given")
        if edge_index is not None:
            if edge_index.dim() != 2 or edge_index.size(0) != 2:
                shape = tuple(edge_index.shape)
                raise ValueError(f"'edge_index' must have shape [2, E], got {shape}")
            if edge_index.numel() and (
                int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes
            ):
                raise ValueError(
                    f"'edge_index' holds node ids outside [0, {num_nodes - 1}]"
                )
        self.edge_index = edge_index
        self.num_nodes = num_nodes
        self.num_parts = num_parts
        self.parts_per_batch = parts_per_batch
        self.resample = resample
        self.x = x
        self.knn = knn
        self.generator = generator
        self._parts = (
            None if resample else random_partition(num_nodes, num_parts, generator)
        )

    def __len__(self) -> int:
        """Batches per epoch: ``ceil(num_parts / parts_per_batch)``."""
        return math.ceil(self.num_parts / self.parts_per_batch)

    def __iter__(self) -> Iterator[Data]:
        """One epoch of batches (see the class description)."""
        parts = self._parts
        if parts is None:
            parts = random_partition(self.num_nodes, self.num_parts, self.generator)
        order = torch.randperm(self.num_parts, generator=self.generator).tolist()
        for start in range(0, self.num_parts, self.parts_per_batch):
            group = [parts[i] for i in order[start : start + self.parts_per_batch]]
            nodes = torch.cat(group).sort().values
            yield self.batch(nodes)

    def batch(self, nodes: Tensor) -> Data:
        """The batch of the distinct, ascending node ids ``nodes``."""
        if self.knn is not None:
            feats = select_rows(self.x, nodes.to(self.x.device))
            feats = feats.to_dense() if feats.layout != torch.strided else feats
            edges = knn_graph(feats.float(), self.knn)
            edges = to_undirected(edges, num_nodes=nodes.numel())
        else:
            edges = induced_subgraph(
                self.edge_index, nodes.to(self.edge_index.device), self.num_nodes
            )
        size = int(nodes.numel())
        return Data(edge_index=edges, n_id=nodes, num_nodes=size, batch_size=size)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(num_nodes={self.num_nodes}, "
            f"num_parts={self.num_parts}, parts_per_batch={self.parts_per_batch}, "
            f"resample={self.resample}, knn={self.knn})"
        )

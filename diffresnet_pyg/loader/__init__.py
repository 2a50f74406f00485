"""Mini-batches of large graphs: random partitions, and PyG's compiled loaders.

A batch is a :class:`~torch_geometric.data.Data` with the batch's node ids in
the whole graph (``n_id``) and its relabelled ``edge_index``; its features
are ``select_rows(x, batch.n_id)``.
"""

from diffresnet_pyg.loader.features import select_rows
from diffresnet_pyg.loader.partition import (
    RandomPartitionLoader,
    induced_subgraph,
    random_partition,
)
from diffresnet_pyg.loader.pyg_loaders import (
    MissingBackendError,
    cluster_loader,
    has_metis,
    has_neighbor_sampler,
    neighbor_loader,
)

__all__ = [
    "MissingBackendError",
    "RandomPartitionLoader",
    "cluster_loader",
    "has_metis",
    "has_neighbor_sampler",
    "induced_subgraph",
    "neighbor_loader",
    "random_partition",
    "select_rows",
]

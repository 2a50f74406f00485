"""gnn-benchmark npz files (``shchur/gnn-benchmark``).

Keys: the adjacency in CSR parts ``adj_data``, ``adj_indices``,
``adj_indptr``, ``adj_shape``; features ``attr_data``, ``attr_indices``,
``attr_indptr``, ``attr_shape`` (CSR) or ``attr_matrix`` (dense), optional;
labels ``labels`` or CSR parts ``labels_*``. Read by
:func:`~diffresnet_pyg.data.load_gnnbench_npz`.
"""

from diffresnet_pyg.data.formats.registry import register_format
from diffresnet_pyg.data.gnnbench import load_gnnbench_npz

register_format(
    "gnnbench",
    detect=lambda probe: probe.has_keys(
        "adj_data", "adj_indices", "adj_indptr", "adj_shape"
    ),
    signature="npz with adj_data, adj_indices, adj_indptr, adj_shape",
)(load_gnnbench_npz)

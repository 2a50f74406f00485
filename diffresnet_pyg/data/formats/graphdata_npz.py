"""GraphData npz files (``EdisonLeeeee/GraphData``): pickled scipy objects.

Keys: ``adj_matrix`` (a pickled scipy sparse matrix), ``node_attr`` (sparse
or dense), ``node_label``. The pickles are read with a restricted unpickler
(numpy arrays and scipy sparse matrices only). Read by
:func:`~diffresnet_pyg.data.load_graphdata_npz`.
"""

from diffresnet_pyg.data.formats.registry import register_format
from diffresnet_pyg.data.graphdata import load_graphdata_npz

register_format(
    "graphdata",
    detect=lambda probe: probe.has_keys("adj_matrix", "node_attr", "node_label"),
    signature="npz with adj_matrix, node_attr, node_label",
)(load_graphdata_npz)

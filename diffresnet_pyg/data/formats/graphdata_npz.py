"""GraphData npz files (``EdisonLeeeee/GraphData``): pickled scipy objects.

Keys: ``adj_matrix`` (a pickled scipy sparse matrix), ``node_attr`` (sparse
or dense), ``node_label``, optional ``metadata`` (its ``class_names``, if
any, are the classes the labels index). The pickles are read with the
restricted unpickler of :mod:`~diffresnet_pyg.data.safe_pickle` (numpy
arrays, scipy sparse matrices and plain containers only). Read by
:func:`~diffresnet_pyg.data.load_graphdata_npz`.
"""

from diffresnet_pyg.data.formats.registry import register_format
from diffresnet_pyg.data.graphdata import load_graphdata_npz

register_format(
    "graphdata",
    detect=lambda probe: probe.has_keys("adj_matrix", "node_attr", "node_label"),
    signature="npz with adj_matrix, node_attr, node_label",
)(load_graphdata_npz)

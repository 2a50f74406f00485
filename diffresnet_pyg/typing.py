"""Flags for optional compiled PyG extensions.

Read them as module attributes (``diffresnet_pyg.typing.WITH_TORCH_CLUSTER``)
so that tests can flip them to exercise the pure-torch fallbacks.
"""

import importlib.util

WITH_TORCH_SPARSE: bool = importlib.util.find_spec("torch_sparse") is not None
WITH_TORCH_CLUSTER: bool = importlib.util.find_spec("torch_cluster") is not None
WITH_PYG_LIB: bool = importlib.util.find_spec("pyg_lib") is not None

"""Shared type aliases and flags for optional compiled PyG extensions.

:data:`PathLike` is the path type of every function that takes a file or
folder.

A flag is ``True`` only when the package imports (a wheel built against another
torch fails to load and counts as absent). Read them as module attributes
(``diffresnet_pyg.typing.WITH_TORCH_CLUSTER``) so that tests can flip them to
exercise the pure-torch fallbacks.
"""

import os

import torch_geometric.typing as pyg_typing

#: A file or folder path: a string or an :class:`os.PathLike`.
PathLike = str | os.PathLike[str]

WITH_TORCH_SPARSE: bool = pyg_typing.WITH_TORCH_SPARSE
WITH_PYG_LIB: bool = pyg_typing.WITH_PYG_LIB

try:
    import torch_cluster  # noqa: F401

    WITH_TORCH_CLUSTER: bool = True
except (ImportError, OSError):
    WITH_TORCH_CLUSTER = False

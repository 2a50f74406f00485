"""A PyG :class:`~torch_geometric.data.Data` saved with :func:`torch.save`.

Either ``torch.save(data, "graph.pt")`` or ``torch.save(data.to_dict(),
"graph.pt")``; recognized by the extension ``.pt`` or ``.pth``, or by the
``data.pkl`` member of ``torch.save``'s zip archive.

Loading never unpickles arbitrary code: the file is read with
``torch.load(path, weights_only=True)``, whose unpickler only rebuilds
tensors and plain containers. A saved ``Data`` object also names PyG's
``Data``, ``DataEdgeAttr``, ``DataTensorAttr`` and ``GlobalStorage``
classes; PyG itself allows ``Data`` on import, the others are allowed for
this one call only (:func:`torch.serialization.safe_globals`, not a global
``add_safe_globals``), and a file naming any other class is refused. (PyG's
own ``torch_geometric.io.fs.torch_load`` falls back to ``weights_only=False``
in that case, which is why it is not used.) A saved ``data.to_dict()`` needs
no extra class at all.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch_geometric.data import Data
from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
from torch_geometric.data.storage import GlobalStorage

from diffresnet_pyg.data._common import DatasetFileError
from diffresnet_pyg.data.formats.registry import FileProbe, register_format

#: The PyG classes a pickled ``Data`` names, allowed while loading.
SAFE_PYG_CLASSES = (Data, DataEdgeAttr, DataTensorAttr, GlobalStorage)


def _detect(probe: FileProbe) -> bool:
    if probe.suffix in (".pt", ".pth"):
        return True
    return probe.keys is not None and any(
        key.endswith("/data.pkl") for key in probe.keys
    )


@register_format(
    "pyg",
    detect=_detect,
    signature="torch.save of a PyG Data or of data.to_dict() (.pt, .pth)",
)
def read_pyg_data(path: Path) -> Data:
    """Read a saved :class:`Data` (or ``Data.to_dict()``) without unsafe pickles."""
    try:
        # Only the classes not already allowed are added, and removed again
        # on exit: PyG allows ``Data`` globally on import, and that must stay.
        allowed = torch.serialization.get_safe_globals()
        extra = [c for c in SAFE_PYG_CLASSES if c not in allowed]
        with torch.serialization.safe_globals(extra):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = str(exc).strip().splitlines() or [""]
        reason = next((line for line in lines if "GLOBAL" in line), lines[-1])
        raise DatasetFileError(
            f"{path}: not loaded, it names a class that is not a PyG Data class "
            f"({reason.strip()}); save the graph as "
            "torch.save(data.to_dict(), path) instead"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise DatasetFileError(
            f"{path}: not a readable torch.save file, or it is truncated "
            f"({type(exc).__name__}: {exc})"
        ) from None
    if isinstance(obj, Mapping) and not isinstance(obj, Data):
        obj = Data.from_dict(dict(obj))
    if not isinstance(obj, Data):
        raise DatasetFileError(
            f"{path}: holds a {type(obj).__name__}, not a torch_geometric Data "
            "(or a Data.to_dict())"
        )
    if obj.edge_index is None:
        raise DatasetFileError(f"{path}: the Data has no 'edge_index'")
    return obj

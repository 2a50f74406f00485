"""The dataset-file formats :func:`read_dataset_file` reads, one module each.

:mod:`~diffresnet_pyg.data.formats.registry` holds the registry; every other
module of this package registers one format
(:func:`~diffresnet_pyg.data.formats.registry.register_format`) and is
imported here, so a new format is one new module:

* :mod:`~.gnnbench_npz`: ``gnnbench``, gnn-benchmark's npz files;
* :mod:`~.graphdata_npz`: ``graphdata``, the GraphData npz files;
* :mod:`~.heterophilous_npz`: ``heterophilous``, the npz files of the
  heterophilous-graph benchmark, with their split masks;
* :mod:`~.pyg_data`: ``pyg``, a ``torch.save``-d PyG ``Data``;
* :mod:`~.csr_npz`: ``csr``, a plain CSR npz file (the format to write your
  own graph in).

Example:
    >>> from diffresnet_pyg.data.formats import format_names
    >>> format_names()
    ('csr', 'gnnbench', 'graphdata', 'heterophilous', 'pyg')
"""

import importlib
import pkgutil

from diffresnet_pyg.data.formats.registry import (
    MASK_KEYS,
    DatasetFileError,
    DatasetFormat,
    FileProbe,
    check_graph,
    detect_format,
    format_names,
    get_format,
    read_dataset_file,
    register_format,
)

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module != "registry" and not _module.startswith("_"):
        importlib.import_module(f"{__name__}.{_module}")

__all__ = [
    "MASK_KEYS",
    "DatasetFileError",
    "DatasetFormat",
    "FileProbe",
    "check_graph",
    "detect_format",
    "format_names",
    "get_format",
    "read_dataset_file",
    "register_format",
]

"""Checks of a dataset file's arrays, with messages that say what and where.

Every loader runs its edges, edge weights, features and labels through these
checks before anything is built from them, whatever preprocessing follows.
A failed check raises :class:`~diffresnet_pyg.data.DatasetFileError` with
a one-line message naming the file, the key, how many entries are wrong and
the first of them, e.g. ``g.npz: 'features' has 2 NaN or infinite values,
the first (nan) at row 1, column 0; features must be finite``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from diffresnet_pyg.data._common import DatasetFileError

__all__ = [
    "check_csr",
    "check_edge_list",
    "check_edge_weights",
    "check_features",
    "checked_sparse",
    "class_indices",
    "numeric_array",
]

#: How many empty classes a message lists before "...".
_LIST_AT_MOST = 10


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def _value(value: Any) -> str:
    """A number as a message shows it (integers without a decimal point)."""
    value = np.asarray(value).item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def numeric_array(value: Any, key: str, path: Path) -> np.ndarray:
    """:obj:`value` as an array of numbers (or booleans), else refused."""
    array = np.asarray(value)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == bool
    ):
        raise DatasetFileError(
            f"{path}: '{key}' must hold numbers, got dtype {array.dtype}"
        )
    return array


def check_features(value: np.ndarray | sp.sparray, key: str, path: Path) -> None:
    """Refuse NaN or infinite features (dense, or the stored sparse entries).

    Raises:
        DatasetFileError: If dense features are not numbers, or with
            ``<path>: '<key>' has <n> NaN or infinite values, the first
            (<value>) at row <i>, column <j>; features must be finite``.
    """
    if sp.issparse(value):
        coo = sp.coo_matrix(value)
        data = np.asarray(coo.data)
        if not np.issubdtype(data.dtype, np.inexact) or bool(np.isfinite(data).all()):
            return
        bad = np.flatnonzero(~np.isfinite(data))
        order = np.lexsort((coo.col[bad], coo.row[bad]))
        first = bad[order[0]]
        count, row, col, found = bad.size, coo.row[first], coo.col[first], data[first]
    else:
        array = numeric_array(value, key, path)
        if not np.issubdtype(array.dtype, np.inexact) or bool(np.isfinite(array).all()):
            return
        bad = ~np.isfinite(array)
        position = tuple(np.argwhere(bad)[0])
        count, found = int(bad.sum()), array[position]
        row, col = position[0], position[1] if len(position) > 1 else 0
    raise DatasetFileError(
        f"{path}: '{key}' has {_plural(int(count), 'NaN or infinite value')}, "
        f"the first ({_value(found)}) at row {int(row)}, column {int(col)}; "
        "features must be finite"
    )


def class_indices(
    value: Any,
    key: str,
    path: Path,
    class_names: Sequence[str] | None = None,
    names_key: str = "'class_names'",
) -> np.ndarray:
    """One class index per node, checked: ``0..C-1``, every class present.

    ``C`` is ``len(class_names)`` when the file names its classes, else the
    largest label plus one. Labels that are not integers (``1.5``, NaN),
    negative labels (there is no "unlabeled" value), labels ``>= C`` and
    classes ``0..C-1`` without any node are refused.

    Args:
        value: The labels, ``[num_nodes]``.
        key: The file's key, for messages.
        path: The file, for messages.
        class_names: The file's class names, if it has them.
        names_key: Where the file keeps them, as messages show it.

    Returns:
        np.ndarray: The labels as :obj:`numpy.int64`.

    Raises:
        DatasetFileError: Naming the key, the count and the first offender.
    """
    array = numeric_array(value, key, path)
    if array.ndim != 1:
        raise DatasetFileError(
            f"{path}: '{key}' must be [num_nodes] class indices, got shape "
            f"{array.shape}"
        )
    if not np.issubdtype(array.dtype, np.integer) and array.dtype != bool:
        whole = np.isfinite(array) & (array == np.round(array))
        if not bool(whole.all()):
            bad = np.flatnonzero(~whole)
            raise DatasetFileError(
                f"{path}: '{key}' has {_plural(bad.size, 'label')} that "
                f"{'is not an integer' if bad.size == 1 else 'are not integers'}, "
                "the first "
                f"({_value(array[bad[0]])}) at node {bad[0]}; labels must be "
                "class indices 0..C-1"
            )
    labels = array.astype(np.int64)
    if labels.size == 0:
        return labels
    negative = np.flatnonzero(labels < 0)
    if negative.size:
        raise DatasetFileError(
            f"{path}: '{key}' has {_plural(negative.size, 'negative label')}, the "
            f"first {labels[negative[0]]} at node {negative[0]}; labels must be "
            "class indices 0..C-1 (unlabeled nodes are not supported)"
        )
    if class_names is not None:
        num_classes = len(class_names)
        beyond = np.flatnonzero(labels >= num_classes)
        if beyond.size:
            raise DatasetFileError(
                f"{path}: '{key}' has {_plural(beyond.size, 'label')} >= "
                f"{num_classes}, the number of classes in {names_key}, the "
                f"first {labels[beyond[0]]} at node {beyond[0]}"
            )
    else:
        num_classes = int(labels.max()) + 1
    empty = np.flatnonzero(np.bincount(labels, minlength=num_classes) == 0)
    if empty.size:
        shown = [
            f"{c} ({class_names[c]!r})" if class_names is not None else str(c)
            for c in empty[:_LIST_AT_MOST].tolist()
        ]
        more = f", ... ({empty.size} in all)" if empty.size > _LIST_AT_MOST else ""
        where = names_key if class_names is not None else "0..max label"
        raise DatasetFileError(
            f"{path}: '{key}' leaves {_plural(empty.size, 'class', 'classes')} of "
            f"the {num_classes} in {where} without any node: {', '.join(shown)}"
            f"{more}; labels must be consecutive class indices 0..C-1"
        )
    return labels


def check_csr(
    indptr: Any,
    indices: Any,
    shape: tuple[int, int],
    path: Path,
    keys: tuple[str, str],
    *,
    nodes: bool = False,
) -> None:
    """Check the structure of CSR arrays: pointers, and indices in range.

    Args:
        indptr: ``[rows + 1]`` row pointers.
        indices: ``[nnz]`` column indices.
        shape: ``(rows, columns)``.
        path: The file, for messages.
        keys: What the file calls ``indptr`` and ``indices``.
        nodes: The matrix is an adjacency (messages say "node index").

    Raises:
        DatasetFileError: If the pointers do not start at 0, decrease, or
            do not end at ``len(indices)``, or a column index is outside
            ``0..columns-1`` (the message gives the count and the first).
    """
    ptr_key, idx_key = keys
    indptr, indices = np.asarray(indptr), np.asarray(indices)
    for key, array in ((ptr_key, indptr), (idx_key, indices)):
        if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
            raise DatasetFileError(
                f"{path}: '{key}' must be a 1-D integer array, got {array.dtype} "
                f"{array.shape}"
            )
    rows, cols = shape
    problem = None
    if indptr.size != rows + 1:
        problem = f"has {indptr.size} entries for {rows} rows (needs {rows + 1})"
    elif indptr[0] != 0:
        problem = f"starts at {indptr[0]}, not 0"
    elif indptr[-1] != indices.size:
        problem = f"ends at {indptr[-1]}, not at len('{idx_key}') = {indices.size}"
    else:
        drops = np.flatnonzero(np.diff(indptr) < 0)
        if drops.size:
            problem = f"decreases after position {drops[0]}"
    if problem is not None:
        raise DatasetFileError(
            f"{path}: '{ptr_key}' {problem}; row pointers must start at 0, never "
            f"decrease and end at len('{idx_key}')"
        )
    outside = np.flatnonzero((indices < 0) | (indices >= cols))
    if outside.size:
        first = outside[0]
        row = int(np.searchsorted(indptr, first, side="right")) - 1
        what, unit = ("node", "nodes") if nodes else ("column", "columns")
        raise DatasetFileError(
            f"{path}: '{idx_key}' has "
            f"{_plural(outside.size, f'{what} index', f'{what} indices')} outside "
            f"0..{cols - 1} ({cols} {unit}), the first {indices[first]} in row "
            f"{row} (stored entry {first})"
        )


def check_edge_weights(
    weight: Any,
    key: str,
    path: Path,
    row: np.ndarray | None = None,
    col: np.ndarray | None = None,
) -> None:
    """Refuse edge weights that are NaN, infinite or negative.

    Args:
        weight: ``[E]`` stored weights.
        key: The file's key, for messages.
        path: The file, for messages.
        row: The edges' sources, to name the first bad edge.
        col: The edges' targets.

    Raises:
        DatasetFileError: Naming the key, the count and the first bad edge.
    """
    weight = numeric_array(weight, key, path).reshape(-1)
    for bad, what in (
        (~np.isfinite(weight), "NaN or infinite edge weight"),
        (weight < 0, "negative edge weight"),
    ):
        positions = np.flatnonzero(bad)
        if positions.size:
            first = positions[0]
            edge = ""
            if row is not None and col is not None:
                edge = f", edge {row[first]} -> {col[first]}"
            raise DatasetFileError(
                f"{path}: '{key}' has {_plural(positions.size, what)}, the first "
                f"({_value(weight[first])}) at stored entry {first}{edge}; edge "
                "weights must be finite and >= 0"
            )


def check_edge_list(
    edges: np.ndarray, num_nodes: int, key: str, path: Path, *, pairs: bool
) -> None:
    """Refuse node indices outside ``0..num_nodes-1`` in an edge list.

    Args:
        edges: ``[E, 2]`` (:obj:`pairs`) or ``[2, E]`` integer node indices.
        num_nodes: The number of nodes.
        key: The file's key, for messages.
        path: The file, for messages.
        pairs: Whether :obj:`edges` is ``[E, 2]``.

    Raises:
        DatasetFileError: ``<path>: '<key>' has <n> node indices outside
            0..N-1 (N nodes), the first <v> at <key>[i, j]``.
    """
    edges = np.asarray(edges)
    outside = (edges < 0) | (edges >= num_nodes)
    if bool(outside.any()):
        position = np.argwhere(outside.T if not pairs else outside)[0]
        index = (position[0], position[1]) if pairs else (position[1], position[0])
        raise DatasetFileError(
            f"{path}: '{key}' has "
            f"{_plural(int(outside.sum()), 'node index', 'node indices')} outside "
            f"0..{num_nodes - 1} ({num_nodes} nodes), the first {edges[index]} at "
            f"{key}[{index[0]}, {index[1]}]"
        )


def checked_sparse(value: Any, key: str, path: Path) -> sp.csr_matrix:
    """A scipy sparse matrix read from a file (maybe unpickled), checked, as CSR.

    An unpickled matrix was never validated by scipy: its index arrays are
    checked (:func:`check_csr`, or the COO coordinates) before any
    conversion touches them.

    Raises:
        DatasetFileError: If the indices are inconsistent or out of range.
    """
    shape = tuple(int(s) for s in value.shape)
    if len(shape) != 2 or min(shape) < 0:
        raise DatasetFileError(f"{path}: '{key}' has the shape {shape}, not 2-D")
    fmt = value.format
    parts = (f"{key}.indptr", f"{key}.indices")
    try:
        if fmt == "csr":
            check_csr(value.indptr, value.indices, shape, path, parts)
        elif fmt == "csc":
            check_csr(value.indptr, value.indices, shape[::-1], path, parts)
        elif fmt == "bsr":
            value.check_format(full_check=True)
        coo = value.tocoo()
    except (ValueError, TypeError, IndexError) as exc:
        if isinstance(exc, DatasetFileError):
            raise
        raise DatasetFileError(
            f"{path}: '{key}' is not a consistent {fmt} matrix ({exc})"
        ) from None
    row, col, data = np.asarray(coo.row), np.asarray(coo.col), np.asarray(coo.data)
    if not row.size == col.size == data.size:
        raise DatasetFileError(
            f"{path}: '{key}' has {row.size} rows, {col.size} columns and "
            f"{data.size} values; one of each per stored entry"
        )
    for what, index, size in (("row", row, shape[0]), ("column", col, shape[1])):
        outside = np.flatnonzero((index < 0) | (index >= size))
        if outside.size:
            raise DatasetFileError(
                f"{path}: '{key}' has "
                f"{_plural(outside.size, f'{what} index', f'{what} indices')} "
                f"outside 0..{size - 1} ({size} {what}s), the first "
                f"{index[outside[0]]} at stored entry {outside[0]}"
            )
    return sp.csr_matrix((data, (row, col)), shape=shape)

"""Arrays of a dataset file turned into tensors, with checks naming the key."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from diffresnet_pyg.data._common import DatasetFileError
from diffresnet_pyg.data._validate import (
    check_features,
    class_indices,
    numeric_array,
)


def features(value: Any, key: str, path: Path) -> Tensor:
    """A ``[num_nodes, num_features]`` float32 tensor of finite numbers."""
    array = numeric_array(value, key, path)
    if array.ndim != 2:
        raise DatasetFileError(
            f"{path}: '{key}' must be [num_nodes, num_features], got shape "
            f"{array.shape}"
        )
    check_features(array, key, path)
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def labels(value: Any, key: str, path: Path) -> Tensor:
    """A ``[num_nodes]`` long tensor of class indices ``0..C-1``, all present."""
    return torch.from_numpy(class_indices(value, key, path))


def mask(value: Any, key: str, path: Path, *, splits_first: bool) -> Tensor:
    """A boolean ``[num_nodes]`` or ``[num_nodes, num_splits]`` mask.

    ``splits_first``: a 2-D array is stored ``[num_splits, num_nodes]`` and
    is transposed.
    """
    array = numeric_array(value, key, path)
    if array.ndim not in (1, 2):
        raise DatasetFileError(
            f"{path}: '{key}' must be a 1-D or 2-D mask, got shape {array.shape}"
        )
    if array.dtype != bool:
        if not bool(np.isin(array, (0, 1)).all()):
            raise DatasetFileError(f"{path}: '{key}' must hold 0/1 or booleans")
        array = array.astype(bool)
    if array.ndim == 2 and splits_first:
        array = array.T
    return torch.from_numpy(np.ascontiguousarray(array))


def split_masks(
    arrays: Mapping[str, Any],
    names: Mapping[str, str],
    path: Path,
    *,
    splits_first: bool,
) -> dict[str, Tensor]:
    """The split masks of a file: all of ``names`` or none of them.

    Args:
        arrays: The file's arrays.
        names: The file's mask keys (train, val, test) and the ``Data``
            attribute each one becomes.
        path: The file, for error messages.
        splits_first: See :func:`mask`.

    Returns:
        dict[str, Tensor]: ``Data`` attribute -> mask; empty if the file has
        no masks.

    Raises:
        DatasetFileError: If some of the masks are present and others not.
    """
    present = [key for key in names if key in arrays]
    if present and len(present) != len(names):
        missing = [key for key in names if key not in arrays]
        raise DatasetFileError(
            f"{path}: has {present} but keys {missing} are missing (all three "
            "masks or none)"
        )
    return {
        names[key]: mask(arrays[key], key, path, splits_first=splits_first)
        for key in present
    }

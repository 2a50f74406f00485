r"""Per-class feature tables for few-shot evaluation, and their file formats.

A few-shot benchmark draws its episodes from the embedded features of a set of
*novel* classes. :class:`ClassFeatures` stores them as one ``[M, d]`` matrix
whose rows are grouped by class, with a CSR-style pointer vector
:math:`\text{ptr}` such that class :math:`c` owns the rows
:math:`\text{ptr}_c, \dots, \text{ptr}_{c+1} - 1`:

.. math::
    \mathbf{X} = \begin{bmatrix} \mathbf{X}_0 \\ \vdots \\
    \mathbf{X}_{C-1} \end{bmatrix} \in \mathbb{R}^{M \times d},
    \qquad
    \mathbf{X}_c \in \mathbb{R}^{n_c \times d},
    \qquad
    \text{ptr}_{c+1} - \text{ptr}_c = n_c.

:func:`load_feature_file` reads the precomputed-feature files that are common
in few-shot work (the miniImageNet / tieredImageNet / CUB feature pickles of
S2M2, SimpleShot, LaplacianShot and the Diff-ResNet authors' code, and NumPy
``.npz`` archives); :func:`save_feature_file` writes the ``.npz`` layout.
"""

from __future__ import annotations

import logging
import numbers
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from diffresnet_pyg.data.safe_pickle import (
    DAMAGED_PICKLE_ERRORS,
    RefusedGlobalError,
    safe_load,
)

__all__ = ["ClassFeatures", "load_feature_file", "save_feature_file"]

logger = logging.getLogger(__name__)

_PICKLE_SUFFIXES = (".pkl", ".pickle", ".plk")
_NPZ_SUFFIXES = (".npz",)
_FEATURE_KEYS = ("features", "data")
_RESERVED_KEYS = (*_FEATURE_KEYS, "labels", "class_names")

_ACCEPTED_FORMATS = (
    "accepted formats: a pickle ('.pkl', '.pickle' or '.plk') holding either a "
    "dict class -> array [n_c, d] or a dict with keys 'features' (or 'data') "
    "[M, d] and 'labels' [M] (optional 'class_names'); or an '.npz' archive "
    "with arrays 'features' [M, d] and 'labels' [M] (optional 'class_names'), "
    "or one [n_c, d] array per class"
)


def _to_tensor(value: Any, what: str) -> Tensor:
    """Converts an array-like (tensor, NumPy array, nested list) to a tensor."""
    if isinstance(value, Tensor):
        return value
    if (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(v, Tensor) for v in value)
    ):
        try:
            return torch.stack(list(value))
        except RuntimeError as err:
            raise ValueError(f"{what}: cannot stack the row tensors: {err}") from err
    try:
        array = np.asarray(value)
    except ValueError as err:
        raise ValueError(f"{what}: not a rectangular array: {err}") from err
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"{what}: expected numeric values, got an array of dtype {array.dtype}"
        )
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if _holds_python_floats(value):
        # Nested lists of Python floats follow torch.tensor: the default dtype.
        tensor = tensor.to(torch.get_default_dtype())
    return tensor


def _holds_python_floats(value: Any) -> bool:
    """Whether :obj:`value` is a nested list whose first leaf is a Python float."""
    while isinstance(value, (list, tuple)) and len(value) > 0:
        value = value[0]
    return isinstance(value, float) and not isinstance(value, np.generic)


def _as_float(x: Tensor) -> Tensor:
    """Returns floating-point tensors unchanged, others in the default dtype."""
    return x if x.is_floating_point() else x.to(torch.get_default_dtype())


def _encode_labels(labels: Any) -> tuple[Tensor, tuple[str, ...]]:
    """Maps labels to positions ``0..C-1`` of their sorted unique values.

    Returns the positions (long) and the names ``str(value)`` of the classes.
    """
    if isinstance(labels, Tensor):
        if labels.is_floating_point() or labels.is_complex():
            raise TypeError(
                f"ClassFeatures.from_labels: 'labels' must hold integers or "
                f"strings, got a tensor of dtype {labels.dtype}"
            )
        array = labels.detach().cpu().numpy()
    else:
        array = np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(
            f"ClassFeatures.from_labels: 'labels' must be 1-D, got shape "
            f"{tuple(array.shape)}"
        )
    if array.dtype.kind not in "iuUS":
        raise TypeError(
            f"ClassFeatures.from_labels: 'labels' must hold integers or strings, "
            f"got dtype {array.dtype}"
        )
    if array.size == 0:
        raise ValueError("ClassFeatures.from_labels: 'labels' is empty")
    values, inverse = np.unique(array, return_inverse=True)
    names = tuple(
        v.decode() if isinstance(v, bytes) else str(v) for v in values.tolist()
    )
    return torch.from_numpy(inverse.reshape(-1).astype(np.int64)), names


@dataclass(frozen=True)
class ClassFeatures:
    r"""Feature vectors of :math:`C` classes, rows grouped by class.

    Class :math:`c` owns the rows ``features[ptr[c]:ptr[c + 1]]``; its name is
    ``class_names[c]``. Episodes index rows of :obj:`features` (see
    :func:`~diffresnet_pyg.fewshot.episodes.sample_episodes`). Classes may be
    empty (``ptr[c] == ptr[c + 1]``); sampling from them is an error.

    Args:
        features (torch.Tensor): Floating-point matrix of shape ``[M, d]``.
        ptr (torch.Tensor): Integer vector of shape ``[C + 1]``, non-decreasing,
            ``ptr[0] == 0`` and ``ptr[-1] == M`` (stored as :obj:`torch.long`).
        class_names (Sequence[str]): :math:`C` distinct class names (stored as a
            tuple).

    Raises:
        TypeError: If an argument has the wrong type or dtype.
        ValueError: If the shapes or the pointer vector are inconsistent.

    Example:
        >>> feats = ClassFeatures.from_dict({"cat": [[1.0, 0.0], [3.0, 0.0]],
        ...                                  "dog": [[0.0, 2.0]]})
        >>> feats.num_classes, feats.dim, feats.counts.tolist()
        (2, 2, [2, 1])
        >>> feats.class_features("cat")
        tensor([[1., 0.],
                [3., 0.]])
        >>> feats.mean()
        tensor([1.3333, 0.6667])
    """

    features: Tensor
    ptr: Tensor
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        features, ptr, names = self.features, self.ptr, self.class_names
        if not isinstance(features, Tensor):
            raise TypeError(
                f"ClassFeatures: 'features' must be a torch.Tensor, got "
                f"{type(features).__name__}"
            )
        if features.dim() != 2:
            raise ValueError(
                f"ClassFeatures: 'features' must be 2-D [num_samples, dim], got "
                f"shape {tuple(features.shape)}"
            )
        if not features.is_floating_point():
            raise TypeError(
                f"ClassFeatures: 'features' must be floating point, got "
                f"{features.dtype} (convert with .float())"
            )
        if not isinstance(ptr, Tensor):
            raise TypeError(
                f"ClassFeatures: 'ptr' must be a torch.Tensor, got {type(ptr).__name__}"
            )
        if ptr.is_floating_point() or ptr.is_complex() or ptr.dtype == torch.bool:
            raise TypeError(
                f"ClassFeatures: 'ptr' must be an integer tensor, got {ptr.dtype}"
            )
        if ptr.dim() != 1 or ptr.numel() < 2:
            raise ValueError(
                f"ClassFeatures: 'ptr' must be 1-D with C + 1 >= 2 entries, got "
                f"shape {tuple(ptr.shape)}"
            )
        ptr = ptr.long()
        num_rows = features.size(0)
        if int(ptr[0]) != 0 or int(ptr[-1]) != num_rows:
            raise ValueError(
                f"ClassFeatures: 'ptr' must start at 0 and end at the number of "
                f"rows of 'features' ({num_rows}), got {int(ptr[0])} ... "
                f"{int(ptr[-1])}"
            )
        if bool((ptr[1:] < ptr[:-1]).any()):
            raise ValueError("ClassFeatures: 'ptr' must be non-decreasing")
        if isinstance(names, str) or not isinstance(names, Sequence):
            raise TypeError(
                f"ClassFeatures: 'class_names' must be a sequence of strings, got "
                f"{type(names).__name__}"
            )
        names = tuple(names)
        if not all(isinstance(name, str) for name in names):
            raise TypeError("ClassFeatures: every entry of 'class_names' must be a str")
        if len(names) != ptr.numel() - 1:
            raise ValueError(
                f"ClassFeatures: 'class_names' has {len(names)} entries but 'ptr' "
                f"describes {ptr.numel() - 1} classes"
            )
        if len(set(names)) != len(names):
            raise ValueError("ClassFeatures: 'class_names' must be distinct")
        object.__setattr__(self, "ptr", ptr)
        object.__setattr__(self, "class_names", names)

    # ------------------------------------------------------------------
    # Properties
    # ------------------------------------------------------------------

    @property
    def num_classes(self) -> int:
        """The number of classes :math:`C`."""
        return len(self.class_names)

    @property
    def dim(self) -> int:
        """The feature dimension :math:`d`."""
        return self.features.size(1)

    @property
    def counts(self) -> Tensor:
        """The number of rows :math:`n_c` of each class, shape ``[C]`` (long)."""
        return self.ptr[1:] - self.ptr[:-1]

    @property
    def labels(self) -> Tensor:
        """The class index of every row, shape ``[M]`` (long)."""
        return torch.repeat_interleave(
            torch.arange(self.num_classes, device=self.ptr.device), self.counts
        )

    # ------------------------------------------------------------------
    # Constructors
    # ------------------------------------------------------------------

    @classmethod
    def from_dict(cls, mapping: Mapping[Any, Any]) -> ClassFeatures:
        r"""Builds the table from a mapping ``class -> array [n_c, d]``.

        Classes keep the mapping's insertion order (they are not sorted); class
        names are ``str(key)``. Values may be tensors, NumPy arrays, nested
        lists, or lists of 1-D rows (the ``defaultdict(list)`` layout of the
        common feature pickles). Integer or boolean values are converted to
        the default floating-point dtype; mixed float dtypes are promoted.

        Args:
            mapping (Mapping): Class key to its ``[n_c, d]`` feature rows.

        Returns:
            ClassFeatures: The concatenated table.

        Raises:
            TypeError: If :obj:`mapping` is not a mapping or holds non-numeric
                values.
            ValueError: If it is empty, a value is not 2-D, the dimensions
                differ, or two keys have the same string form.

        Example:
            >>> import numpy as np
            >>> mapping = {3: np.ones((2, 4)), 1: np.zeros((1, 4))}
            >>> feats = ClassFeatures.from_dict(mapping)
            >>> feats.class_names, feats.ptr.tolist()
            (('3', '1'), [0, 2, 3])
        """
        if not isinstance(mapping, Mapping):
            raise TypeError(
                f"ClassFeatures.from_dict: 'mapping' must be a mapping class -> "
                f"array [n_c, d], got {type(mapping).__name__}"
            )
        if len(mapping) == 0:
            raise ValueError("ClassFeatures.from_dict: 'mapping' is empty")
        blocks = []
        for key, value in mapping.items():
            block = _to_tensor(value, f"ClassFeatures.from_dict: class {key!r}")
            if block.dim() != 2:
                raise ValueError(
                    f"ClassFeatures.from_dict: class {key!r} must be a 2-D array "
                    f"[n_c, d], got shape {tuple(block.shape)}"
                )
            if blocks and block.size(1) != blocks[0].size(1):
                raise ValueError(
                    f"ClassFeatures.from_dict: class {key!r} has dimension "
                    f"{block.size(1)}, the first class has {blocks[0].size(1)}"
                )
            blocks.append(block)
        counts = torch.tensor([b.size(0) for b in blocks], dtype=torch.long)
        features = _as_float(torch.cat(blocks, dim=0))
        ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        return cls(features, ptr, tuple(str(key) for key in mapping))

    @classmethod
    def from_labels(
        cls,
        features: Any,
        labels: Any,
        class_names: Sequence[str] | None = None,
    ) -> ClassFeatures:
        r"""Builds the table from a feature matrix and one label per row.

        Without :obj:`class_names`, the classes are the distinct label values in
        sorted order, named ``str(value)``; labels may be integers or strings.
        With :obj:`class_names`, labels must be integers in
        ``[0, len(class_names))`` and class :math:`c` is named
        ``class_names[c]`` (classes without rows are kept, empty). Rows are
        grouped by class with a stable sort, so each class keeps its rows in
        their original order.

        Args:
            features (array-like): Shape ``[M, d]``; integer values are
                converted to the default floating-point dtype.
            labels (array-like): Shape ``[M]``.
            class_names (Sequence[str], optional): Names indexed by label.
                (default: :obj:`None`)

        Returns:
            ClassFeatures: The grouped table.

        Raises:
            TypeError: If the labels are neither integers nor strings.
            ValueError: If the shapes disagree or a label is out of range.

        Example:
            >>> x = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
            >>> feats = ClassFeatures.from_labels(x, torch.tensor([7, 2, 7, 2]))
            >>> feats.class_names, feats.features.flatten().tolist()
            (('2', '7'), [1.0, 3.0, 0.0, 2.0])
        """
        x = _as_float(_to_tensor(features, "ClassFeatures.from_labels: 'features'"))
        if x.dim() != 2:
            raise ValueError(
                f"ClassFeatures.from_labels: 'features' must be 2-D [M, d], got "
                f"shape {tuple(x.shape)}"
            )
        if class_names is None:
            codes, names = _encode_labels(labels)
        else:
            codes = _to_tensor(labels, "ClassFeatures.from_labels: 'labels'")
            if codes.is_floating_point() or codes.dtype == torch.bool:
                raise TypeError(
                    f"ClassFeatures.from_labels: with 'class_names', 'labels' must "
                    f"be integers, got dtype {codes.dtype}"
                )
            if codes.dim() != 1:
                raise ValueError(
                    f"ClassFeatures.from_labels: 'labels' must be 1-D, got shape "
                    f"{tuple(codes.shape)}"
                )
            names = tuple(class_names)
            codes = codes.long().cpu()
            if codes.numel() > 0 and (
                int(codes.min()) < 0 or int(codes.max()) >= len(names)
            ):
                raise ValueError(
                    f"ClassFeatures.from_labels: 'labels' must lie in "
                    f"[0, {len(names)}) (one per class name), got values in "
                    f"[{int(codes.min())}, {int(codes.max())}]"
                )
        if codes.numel() != x.size(0):
            raise ValueError(
                f"ClassFeatures.from_labels: 'labels' has {codes.numel()} entries, "
                f"'features' has {x.size(0)} rows"
            )
        order = torch.sort(codes, stable=True).indices
        counts = torch.bincount(codes, minlength=len(names))
        ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        return cls(x[order.to(x.device)], ptr, names)

    @classmethod
    def from_tensor(
        cls, x: Tensor, class_names: Sequence[str] | None = None
    ) -> ClassFeatures:
        r"""Builds the table from a dense ``[C, n, d]`` tensor (n rows per class).

        Args:
            x (torch.Tensor): Shape ``[C, n, d]``; integer values are converted
                to the default floating-point dtype.
            class_names (Sequence[str], optional): :math:`C` names.
                (default: ``"0"``, ``"1"``, ...)

        Returns:
            ClassFeatures: The table with ``ptr = [0, n, 2n, ..., Cn]``.

        Raises:
            ValueError: If :obj:`x` is not 3-D.

        Example:
            >>> ClassFeatures.from_tensor(torch.zeros(3, 4, 2)).ptr.tolist()
            [0, 4, 8, 12]
        """
        if not isinstance(x, Tensor) or x.dim() != 3:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"ClassFeatures.from_tensor: 'x' must be a 3-D tensor "
                f"[num_classes, num_per_class, dim], got {shape}"
            )
        num_classes, num_per_class, dim = x.shape
        if class_names is None:
            class_names = tuple(str(c) for c in range(num_classes))
        ptr = torch.arange(num_classes + 1, dtype=torch.long) * num_per_class
        return cls(
            _as_float(x).reshape(num_classes * num_per_class, dim),
            ptr,
            tuple(class_names),
        )

    # ------------------------------------------------------------------
    # Access
    # ------------------------------------------------------------------

    def class_index(self, c: int | str) -> int:
        """The position of class :obj:`c`, given by position (int) or name (str).

        Raises:
            TypeError: If :obj:`c` is neither an integer nor a string.
            ValueError: If the position is out of range or the name unknown.
        """
        if isinstance(c, str):
            try:
                return self.class_names.index(c)
            except ValueError:
                raise ValueError(
                    f"ClassFeatures: unknown class name {c!r}; known names start "
                    f"with {list(self.class_names[:5])}"
                ) from None
        if isinstance(c, bool) or not isinstance(c, numbers.Integral):
            raise TypeError(
                f"ClassFeatures: a class is selected by position (int) or name "
                f"(str), got {type(c).__name__}"
            )
        if not 0 <= int(c) < self.num_classes:
            raise ValueError(
                f"ClassFeatures: class position must lie in [0, "
                f"{self.num_classes}), got {int(c)}"
            )
        return int(c)

    def class_features(self, c: int | str) -> Tensor:
        """The ``[n_c, d]`` rows of class :obj:`c` (position or name), a view."""
        index = self.class_index(c)
        return self.features[int(self.ptr[index]) : int(self.ptr[index + 1])]

    def select(self, classes: Sequence[int | str]) -> ClassFeatures:
        """A new table with the given classes (positions or names), in that order.

        Raises:
            ValueError: If :obj:`classes` is empty, repeats a class or names an
                unknown one.

        Example:
            >>> feats = ClassFeatures.from_tensor(torch.arange(6.0).view(3, 2, 1))
            >>> sub = feats.select(["2", 0])
            >>> sub.class_names, sub.features.flatten().tolist()
            (('2', '0'), [4.0, 5.0, 0.0, 1.0])
        """
        if isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence):
            raise TypeError(
                f"ClassFeatures.select: 'classes' must be a sequence of positions "
                f"or names, got {type(classes).__name__}"
            )
        indices = [self.class_index(c) for c in classes]
        if not indices:
            raise ValueError("ClassFeatures.select: 'classes' is empty")
        if len(set(indices)) != len(indices):
            raise ValueError(
                f"ClassFeatures.select: 'classes' selects a class twice: {classes!r}"
            )
        blocks = [self.class_features(i) for i in indices]
        counts = torch.tensor([b.size(0) for b in blocks], dtype=torch.long)
        ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        names = tuple(self.class_names[i] for i in indices)
        return ClassFeatures(torch.cat(blocks, dim=0), ptr, names)

    def mean(self) -> Tensor:
        r"""The mean of all rows, shape ``[d]``.

        On the base classes this is the *base-class mean*
        :math:`\bar{\mathbf{x}} = \frac{1}{M} \sum_i \mathbf{x}_i` subtracted
        from every feature before an episode is solved.
        """
        return self.features.mean(dim=0)

    def to(
        self,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> ClassFeatures:
        """The same table with :obj:`features` cast to a float dtype and/or device.

        Raises:
            TypeError: If :obj:`dtype` is not a floating-point dtype.
        """
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(
                f"ClassFeatures.to: 'dtype' must be a floating-point dtype, got {dtype}"
            )
        features = self.features.to(device=device, dtype=dtype)
        return ClassFeatures(features, self.ptr.to(features.device), self.class_names)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(num_classes={self.num_classes}, "
            f"num_samples={self.features.size(0)}, dim={self.dim}, "
            f"dtype={self.features.dtype})"
        )


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------


def _from_labelled(
    content: Mapping[str, Any], path: Path, keys: Sequence[str]
) -> ClassFeatures:
    """Builds the table from a mapping with feature and ``labels`` entries."""
    feature_key = next((k for k in _FEATURE_KEYS if k in keys), None)
    if feature_key is None or "labels" not in keys:
        raise ValueError(
            f"load_feature_file: {str(path)!r} has keys {list(keys)} but needs "
            f"both 'features' (or 'data') and 'labels'; {_ACCEPTED_FORMATS}"
        )
    names = content["class_names"] if "class_names" in keys else None
    if names is not None:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in list(names)]
    return ClassFeatures.from_labels(content[feature_key], content["labels"], names)


_CONVERT_HINT = (
    "convert it to the .npz layout, which is read with allow_pickle=False: "
    "np.savez('features.npz', features=X, labels=y) with numpy arrays X [M, d] "
    "and y [M] (or save_feature_file)"
)


def _load_pickle(path: Path) -> ClassFeatures:
    with open(path, "rb") as handle:
        try:
            content = safe_load(handle, encoding="latin1")
        except RefusedGlobalError as err:
            if err.is_torch:
                reason = (
                    "it holds torch tensors, which are not unpickled (that can "
                    "run code); turn them into numpy arrays (tensor.numpy()) and "
                )
            else:
                reason = (
                    "feature pickles may only hold numpy arrays, scipy sparse "
                    "matrices and plain containers; nothing was run. To read a "
                    "file you trust, "
                )
            raise ValueError(
                f"load_feature_file: {str(path)!r}: refusing to unpickle the "
                f"global {err.global_name}; {reason}{_CONVERT_HINT}"
            ) from None
        except DAMAGED_PICKLE_ERRORS as err:
            raise ValueError(
                f"load_feature_file: {str(path)!r} is not a readable pickle "
                f"({err}); {_ACCEPTED_FORMATS}"
            ) from err
    if not isinstance(content, Mapping):
        raise ValueError(
            f"load_feature_file: {str(path)!r} holds a {type(content).__name__}, "
            f"not a dict; {_ACCEPTED_FORMATS}"
        )
    if len(content) == 0:
        raise ValueError(
            f"load_feature_file: {str(path)!r} holds an empty dict, expected a "
            f"non-empty dict; {_ACCEPTED_FORMATS}"
        )
    keys = list(content.keys())
    if any(isinstance(k, str) and k in _RESERVED_KEYS for k in keys):
        return _from_labelled(content, path, keys)
    return ClassFeatures.from_dict(content)


def _load_npz(path: Path) -> ClassFeatures:
    try:
        with np.load(path, allow_pickle=False) as archive:
            content = {key: archive[key] for key in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"load_feature_file: {str(path)!r} is not a readable .npz archive of "
            f"plain arrays ({err}); {_ACCEPTED_FORMATS}"
        ) from err
    keys = list(content)
    if not keys:
        raise ValueError(
            f"load_feature_file: {str(path)!r} is empty; {_ACCEPTED_FORMATS}"
        )
    if any(k in _RESERVED_KEYS for k in keys):
        return _from_labelled(content, path, keys)
    return ClassFeatures.from_dict(content)


def load_feature_file(path: str | os.PathLike[str]) -> ClassFeatures:
    r"""Loads precomputed per-class features from a pickle or ``.npz`` file.

    Accepted layouts (chosen by the suffix, then by the keys):

    * ``.pkl`` / ``.pickle`` / ``.plk``: a dict ``class -> array [n_c, d]``
      (the feature pickles of S2M2, SimpleShot and the Diff-ResNet authors,
      e.g. ``output.plk`` or ``*_embedded_feature.plk``, whose values are lists
      of 1-D rows), or a dict with ``"features"`` (or ``"data"``) ``[M, d]`` and
      ``"labels"`` ``[M]`` entries and an optional ``"class_names"``. Values may
      be NumPy arrays or lists (not torch tensors, see below).
    * ``.npz``: arrays ``"features"`` (or ``"data"``) ``[M, d]`` and ``"labels"``
      ``[M]``, optionally ``"class_names"`` (then labels index the names), or
      one ``[n_c, d]`` array per class, the array name being the class name.

    Dict layouts keep the file's key order as class order
    (:meth:`ClassFeatures.from_dict`); label layouts sort the classes by label
    (:meth:`ClassFeatures.from_labels`).

    Pickles are read with a restricted unpickler
    (:class:`~diffresnet_pyg.data.safe_pickle.RestrictedUnpickler`) that
    rebuilds numpy arrays, scipy sparse matrices and plain containers only, so
    a file cannot run code; any other object (a pickled torch tensor, a
    function) is refused with a message saying how to convert the file to the
    ``.npz`` layout. ``.npz`` files are read with ``allow_pickle=False``.

    Args:
        path (str or os.PathLike): The file.

    Returns:
        ClassFeatures: The features.

    Raises:
        FileNotFoundError: If :obj:`path` does not exist.
        ValueError: If the suffix is unknown, a pickle names a global that is
            not allowed, or the content matches none of the layouts; the
            message names the path and the accepted formats.

    Example:
        >>> import tempfile
        >>> feats = ClassFeatures.from_tensor(torch.ones(2, 3, 4))
        >>> with tempfile.TemporaryDirectory() as root:
        ...     save_feature_file(f"{root}/novel.npz", feats)
        ...     load_feature_file(f"{root}/novel.npz")
        ClassFeatures(num_classes=2, num_samples=6, dim=4, dtype=torch.float32)
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _PICKLE_SUFFIXES + _NPZ_SUFFIXES:
        raise ValueError(
            f"load_feature_file: unknown suffix {path.suffix!r} of {str(path)!r}; "
            f"{_ACCEPTED_FORMATS}"
        )
    if not path.is_file():
        raise FileNotFoundError(f"load_feature_file: no such file: {str(path)!r}")
    try:
        features = _load_pickle(path) if suffix in _PICKLE_SUFFIXES else _load_npz(path)
    except (TypeError, ValueError) as err:
        if str(err).startswith("load_feature_file:"):
            raise
        raise ValueError(
            f"load_feature_file: malformed content in {str(path)!r}: {err}; "
            f"{_ACCEPTED_FORMATS}"
        ) from err
    logger.info("loaded %r from %s", features, path)
    return features


def save_feature_file(path: str | os.PathLike[str], features: ClassFeatures) -> None:
    r"""Writes :obj:`features` to an ``.npz`` archive (see :func:`load_feature_file`).

    The archive holds ``features`` ``[M, d]``, ``labels`` ``[M]`` (class
    positions) and ``class_names`` ``[C]`` (unicode strings), so a round trip
    restores the rows, their grouping, the class order and the names.

    Args:
        path (str or os.PathLike): Destination; must end in ``.npz``.
        features (ClassFeatures): The table to write.

    Raises:
        TypeError: If :obj:`features` is not a :class:`ClassFeatures`.
        ValueError: If :obj:`path` does not end in ``.npz``.
    """
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise ValueError(
            f"save_feature_file: 'path' must end in '.npz', got {str(path)!r}"
        )
    if not isinstance(features, ClassFeatures):
        raise TypeError(
            f"save_feature_file: 'features' must be a ClassFeatures, got "
            f"{type(features).__name__}"
        )
    np.savez(
        path,
        features=features.features.detach().cpu().numpy(),
        labels=features.labels.cpu().numpy(),
        class_names=np.array(features.class_names, dtype=np.str_),
    )

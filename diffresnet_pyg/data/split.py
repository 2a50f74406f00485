r"""The exact random-split protocol of gnn-benchmark as used by the Diff-ResNet authors.

Per split, a :class:`numpy.random.RandomState` draws :obj:`num_train_per_class`
training nodes per class, then :obj:`num_val_per_class` validation nodes per
class from the rest; every other node is a test node. Splits and weight
initializations are seeded from one master seed:

.. code-block:: python

    master = np.random.RandomState(42)
    split_seeds = master.randint(0, 1000000, 100)
    for s in split_seeds:
        rs = np.random.RandomState(s)
        train, val, test = per_class_split(y, rs)       # consumes rs
        init_seeds = rs.randint(0, 1000000, 20)         # after the split

Every random draw matches the authors' code call for call, so the node sets
and the initialization seeds are the same as theirs.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

__all__ = [
    "Split",
    "apply_split",
    "per_class_split",
    "protocol_split",
    "protocol_splits",
    "small_classes",
    "split_seeds",
]

#: The exclusive upper bound of the seeds drawn by the protocol.
SEED_HIGH = 1_000_000


def _labels_to_numpy(y: Tensor | np.ndarray) -> np.ndarray:
    """Validate a 1-D integer label vector and return it as ``int64`` numpy."""
    if isinstance(y, Tensor):
        y_np = y.detach().cpu().numpy()
    else:
        y_np = np.asarray(y)
    if y_np.ndim != 1:
        raise ValueError(
            f"labels must be a 1-D vector of class indices (got shape {y_np.shape})"
        )
    if y_np.size == 0:
        raise ValueError("labels must not be empty")
    if not np.issubdtype(y_np.dtype, np.integer):
        if not np.all(np.equal(np.mod(y_np, 1), 0)):
            raise ValueError(f"labels must be integers (got dtype {y_np.dtype})")
    y_np = y_np.astype(np.int64)
    if y_np.min() < 0:
        raise ValueError(
            "labels must be class indices 0..C-1 (found a negative label "
            f"{int(y_np.min())}); unlabeled nodes are not supported"
        )
    return y_np


def small_classes(y: Tensor | np.ndarray, min_size: int) -> dict[int, int]:
    """The classes :math:`0..C-1` with fewer than :obj:`min_size` nodes.

    Args:
        y (torch.Tensor or numpy.ndarray): Class indices :math:`0..C-1`.
        min_size (int): The nodes a class needs.

    Returns:
        dict[int, int]: Class index to its number of nodes, for the classes
        that are too small (empty if none is).

    Example:
        >>> small_classes([0, 0, 1, 2, 2, 2], 2)
        {1: 1}
    """
    sizes = np.bincount(_labels_to_numpy(y))
    return {int(c): int(sizes[c]) for c in np.flatnonzero(sizes < min_size)}


def _random_state(random_state: np.random.RandomState | int) -> np.random.RandomState:
    if isinstance(random_state, np.random.RandomState):
        return random_state
    if isinstance(random_state, (int, np.integer)) and not isinstance(
        random_state, bool
    ):
        return np.random.RandomState(int(random_state))
    raise ValueError(
        "random_state must be a numpy.random.RandomState or an int seed "
        f"(got {type(random_state).__name__})"
    )


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int (got {type(value).__name__})")
    if value < 0:
        raise ValueError(f"{name} must be >= 0 (got {value})")


def _sample_per_class(
    rs: np.random.RandomState,
    y: np.ndarray,
    num_classes: int,
    num_per_class: int,
    forbidden: np.ndarray | None,
    what: str,
) -> np.ndarray:
    """Draw :obj:`num_per_class` nodes of every class, classes in order."""
    allowed = np.ones(y.size, dtype=bool)
    if forbidden is not None:
        allowed[forbidden] = False
    chosen = []
    for c in range(num_classes):
        candidates = np.flatnonzero((y == c) & allowed).astype(np.int64)
        if candidates.size < num_per_class:
            total = int(np.sum(y == c))
            raise ValueError(
                f"class {c} has {candidates.size} nodes available for the {what} "
                f"set ({total} nodes in total) but {num_per_class} per class are "
                f"requested; every class 0..{num_classes - 1} needs at least "
                "num_train_per_class + num_val_per_class nodes (drop small "
                "classes first, e.g. with remove_small_classes)"
            )
        chosen.append(rs.choice(candidates, num_per_class, replace=False))
    return np.concatenate(chosen).astype(np.int64)


def per_class_split(
    y: Tensor | np.ndarray,
    random_state: np.random.RandomState | int,
    num_train_per_class: int = 20,
    num_val_per_class: int = 30,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Draw one gnn-benchmark split with a fixed number of nodes per class.

    For each class :math:`c = 0, \ldots, C - 1` in order (:math:`C` =
    ``max(y) + 1``), the ascending list of the nodes of class :math:`c` is
    sampled with ``random_state.choice(list, n, replace=False)``; the training
    nodes are drawn for all classes first, then the validation nodes (from the
    nodes not in training); the test set is every remaining node in ascending
    order (``np.setdiff1d``). This is call for call gnn-benchmark's
    ``get_train_val_test_split(..., test_size=None)``.

    Args:
        y (torch.Tensor or numpy.ndarray): Class indices :math:`0..C-1` of
            shape :obj:`[num_nodes]`.
        random_state (numpy.random.RandomState or int): The random state, which
            is advanced (pass the same object on to draw more numbers after
            the split), or an int seed for a fresh one.
        num_train_per_class (int, optional): Training nodes per class.
            (default: :obj:`20`)
        num_val_per_class (int, optional): Validation nodes per class.
            (default: :obj:`30`)

    Returns:
        (numpy.ndarray, numpy.ndarray, numpy.ndarray): ``int64`` node indices
        ``(train_idx, val_idx, test_idx)``; train and val are grouped by class
        in drawing order, test is sorted.

    Raises:
        ValueError: If :obj:`y` is not a 1-D vector of non-negative integers or
            a class has too few nodes.

    Example:
        >>> import numpy as np
        >>> from diffresnet_pyg.data import per_class_split
        >>> y = np.array([0, 1, 0, 1, 0, 1, 0, 1])
        >>> train, val, test = per_class_split(y, 0, 1, 2)
        >>> len(train), len(val), len(test)
        (2, 4, 2)
    """
    y_np = _labels_to_numpy(y)
    _check_count("num_train_per_class", num_train_per_class)
    _check_count("num_val_per_class", num_val_per_class)
    rs = _random_state(random_state)
    num_classes = int(y_np.max()) + 1
    needed = num_train_per_class + num_val_per_class
    small = small_classes(y_np, needed)
    if small:
        listed = ", ".join(f"class {c} has {n} nodes" for c, n in small.items())
        raise ValueError(
            f"{listed}, but num_train_per_class + num_val_per_class = "
            f"{num_train_per_class} + {num_val_per_class} = {needed} are needed "
            f"per class (classes 0..{num_classes - 1}); drop small classes first "
            "(load_dataset(min_class_size=...) or remove_small_classes) or use "
            "fewer nodes per class"
        )
    train_idx = _sample_per_class(
        rs, y_np, num_classes, num_train_per_class, None, "training"
    )
    val_idx = _sample_per_class(
        rs, y_np, num_classes, num_val_per_class, train_idx, "validation"
    )
    test_idx = np.setdiff1d(
        np.arange(y_np.size), np.concatenate([train_idx, val_idx])
    ).astype(np.int64)
    return train_idx, val_idx, test_idx


@dataclass(frozen=True, eq=False)
class Split:
    """One split of the protocol and the initialization seeds that go with it.

    Attributes:
        index (int): Position of the split in the protocol (0-based).
        seed (int): The split seed drawn from the master random state.
        train_idx (torch.Tensor): Training node indices (:obj:`torch.long`).
        val_idx (torch.Tensor): Validation node indices (:obj:`torch.long`).
        test_idx (torch.Tensor): Test node indices (:obj:`torch.long`, sorted).
        init_seeds (tuple[int, ...]): Seeds for :func:`torch.manual_seed`, one
            per weight initialization, drawn after the split.
    """

    index: int
    seed: int
    train_idx: Tensor
    val_idx: Tensor
    test_idx: Tensor
    init_seeds: tuple[int, ...]

    @property
    def num_nodes(self) -> int:
        """Number of nodes covered by the split."""
        return int(
            self.train_idx.numel() + self.val_idx.numel() + self.test_idx.numel()
        )

    def masks(self, num_nodes: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Boolean ``(train_mask, val_mask, test_mask)`` of length :obj:`num_nodes`.

        Args:
            num_nodes (int, optional): Mask length; defaults to the number of
                nodes covered by the split. (default: :obj:`None`)
        """
        size = self.num_nodes if num_nodes is None else int(num_nodes)
        masks = []
        for name, idx in (
            ("train", self.train_idx),
            ("val", self.val_idx),
            ("test", self.test_idx),
        ):
            if idx.numel() and int(idx.max()) >= size:
                raise ValueError(
                    f"split {self.index} has a {name} node {int(idx.max())} but "
                    f"the graph has only {size} nodes"
                )
            mask = torch.zeros(size, dtype=torch.bool)
            mask[idx] = True
            masks.append(mask)
        return masks[0], masks[1], masks[2]


def split_seeds(master_seed: int = 42, num_splits: int = 100) -> list[int]:
    """The split seeds: ``RandomState(master_seed).randint(0, 1000000, num_splits)``.

    Args:
        master_seed (int, optional): The master seed. (default: :obj:`42`; the
            gnn-benchmark configs use :obj:`2018`)
        num_splits (int, optional): How many seeds. (default: :obj:`100`)

    Returns:
        list[int]: The seeds; from master seed 42 they start 121958, 671155,
        131932.
    """
    _check_count("num_splits", num_splits)
    master = np.random.RandomState(master_seed)
    return [int(s) for s in master.randint(0, SEED_HIGH, num_splits)]


def _make_split(
    y_np: np.ndarray,
    index: int,
    seed: int,
    num_inits: int,
    num_train_per_class: int,
    num_val_per_class: int,
) -> Split:
    rs = np.random.RandomState(seed)
    train_idx, val_idx, test_idx = per_class_split(
        y_np, rs, num_train_per_class, num_val_per_class
    )
    init_seeds = tuple(int(s) for s in rs.randint(0, SEED_HIGH, num_inits))
    return Split(
        index=index,
        seed=seed,
        train_idx=torch.from_numpy(train_idx),
        val_idx=torch.from_numpy(val_idx),
        test_idx=torch.from_numpy(test_idx),
        init_seeds=init_seeds,
    )


def protocol_splits(
    y: Tensor | np.ndarray,
    master_seed: int = 42,
    num_splits: int = 100,
    num_inits: int = 20,
    num_train_per_class: int = 20,
    num_val_per_class: int = 30,
) -> Iterator[Split]:
    """Yield the protocol's splits, each with its initialization seeds.

    ``split_seeds = RandomState(master_seed).randint(0, 1000000, num_splits)``;
    for each seed :math:`s`, ``rs = RandomState(s)`` draws the split with
    :func:`per_class_split` and then ``init_seeds = rs.randint(0, 1000000,
    num_inits)``. Arguments are validated when this function is called, the
    splits are drawn lazily.

    Args:
        y (torch.Tensor or numpy.ndarray): Class indices :math:`0..C-1`.
        master_seed (int, optional): The master seed. (default: :obj:`42`)
        num_splits (int, optional): Number of splits. (default: :obj:`100`)
        num_inits (int, optional): Initialization seeds per split.
            (default: :obj:`20`)
        num_train_per_class (int, optional): (default: :obj:`20`)
        num_val_per_class (int, optional): (default: :obj:`30`)

    Returns:
        Iterator[Split]: The splits in order, ``Split.index`` = 0, 1, ...

    Example:
        >>> import numpy as np
        >>> from diffresnet_pyg.data import protocol_splits
        >>> y = np.repeat(np.arange(3), 60)
        >>> [s.seed for s in protocol_splits(y, num_splits=3)]
        [121958, 671155, 131932]
    """
    y_np = _labels_to_numpy(y)
    _check_count("num_inits", num_inits)
    _check_count("num_train_per_class", num_train_per_class)
    _check_count("num_val_per_class", num_val_per_class)
    seeds = split_seeds(master_seed, num_splits)

    def generate() -> Iterator[Split]:
        for index, seed in enumerate(seeds):
            yield _make_split(
                y_np, index, seed, num_inits, num_train_per_class, num_val_per_class
            )

    return generate()


def protocol_split(
    y: Tensor | np.ndarray,
    index: int,
    master_seed: int = 42,
    num_inits: int = 20,
    num_train_per_class: int = 20,
    num_val_per_class: int = 30,
) -> Split:
    """The split number :obj:`index` (0-based) of :func:`protocol_splits`.

    Useful to resume a protocol run or to run splits in parallel; equal to
    ``list(protocol_splits(y, master_seed, index + 1, ...))[index]``.

    Args:
        y (torch.Tensor or numpy.ndarray): Class indices :math:`0..C-1`.
        index (int): Which split (0-based).
        master_seed (int, optional): (default: :obj:`42`)
        num_inits (int, optional): (default: :obj:`20`)
        num_train_per_class (int, optional): (default: :obj:`20`)
        num_val_per_class (int, optional): (default: :obj:`30`)

    Returns:
        Split: The split.
    """
    _check_count("index", index)
    _check_count("num_inits", num_inits)
    y_np = _labels_to_numpy(y)
    seed = split_seeds(master_seed, index + 1)[index]
    return _make_split(
        y_np, index, seed, num_inits, num_train_per_class, num_val_per_class
    )


def apply_split(data: Data, split: Split) -> Data:
    """Return a shallow copy of :obj:`data` with the split's boolean masks.

    Sets ``train_mask``, ``val_mask`` and ``test_mask`` (replacing existing
    ones, e.g. Planetoid's public split); :obj:`data` itself is unchanged.

    Args:
        data (torch_geometric.data.Data): The graph the split was drawn on.
        split (Split): The split.

    Returns:
        torch_geometric.data.Data: The copy with masks.
    """
    num_nodes = data.num_nodes
    if num_nodes is None:
        raise ValueError("apply_split() needs a graph with a known number of nodes")
    train_mask, val_mask, test_mask = split.masks(int(num_nodes))
    out = copy.copy(data)
    out.train_mask = train_mask
    out.val_mask = val_mask
    out.test_mask = test_mask
    return out

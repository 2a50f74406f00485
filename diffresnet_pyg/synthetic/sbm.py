r"""A stochastic block model sampler that scales to millions of nodes.

In a stochastic block model the nodes are split into consecutive blocks of
sizes :math:`n_0, \dots, n_{B-1}` and every pair of distinct nodes
:math:`(i, j)`, :math:`i` in block :math:`a` and :math:`j` in block
:math:`b`, is an edge independently with probability :math:`P_{ab}`.
:func:`torch_geometric.utils.stochastic_blockmodel_graph` draws one Bernoulli
variable per pair, :math:`O(N^2)` time and memory. Here each block pair is
sampled at once, which gives exactly the same distribution: the number of
edges between blocks :math:`a` and :math:`b` is
:math:`K_{ab} \sim \mathrm{Binomial}(m_{ab}, P_{ab})` over the
:math:`m_{ab}` possible pairs, and given :math:`K_{ab}` the edge set is a
uniformly random :math:`K_{ab}`-subset of those pairs. The cost is
:math:`O(B^2 + E \log E)` for :math:`E` edges.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
from torch import Tensor

from diffresnet_pyg.synthetic.datasets import resolve_generator

__all__ = ["DENSE_SAMPLING_MAX_PAIRS", "sparse_stochastic_blockmodel_graph"]

#: Block pairs with at most this many possible edges are sampled from a full
#: random permutation of the pairs; larger ones by drawing with replacement and
#: rejecting repeats (efficient when the block pair is sparse).
DENSE_SAMPLING_MAX_PAIRS: int = 1 << 22


def _check_block_sizes(block_sizes: Sequence[int] | Tensor) -> list[int]:
    if isinstance(block_sizes, Tensor):
        if block_sizes.dim() != 1 or block_sizes.dtype.is_floating_point:
            raise ValueError(
                "'block_sizes' must be a 1-D integer tensor, got shape "
                f"{tuple(block_sizes.shape)} and dtype {block_sizes.dtype}"
            )
        sizes = block_sizes.tolist()
    else:
        sizes = list(block_sizes)
    if not sizes:
        raise ValueError("'block_sizes' must hold at least one block")
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise ValueError(
                f"'block_sizes' must be integers >= 1, got {sizes!r}"[:300]
            )
    return [int(size) for size in sizes]


def _check_edge_probs(
    edge_probs: Sequence[Sequence[float]] | Tensor, num_blocks: int, directed: bool
) -> Tensor:
    probs = torch.as_tensor(edge_probs, dtype=torch.float64)
    if probs.shape != (num_blocks, num_blocks):
        raise ValueError(
            f"'edge_probs' must have shape [{num_blocks}, {num_blocks}] (one row "
            f"and column per block), got {tuple(probs.shape)}"
        )
    if not bool(torch.isfinite(probs).all()) or bool(((probs < 0) | (probs > 1)).any()):
        raise ValueError(
            "'edge_probs' must be probabilities in [0, 1], got values in "
            f"[{float(probs.min())}, {float(probs.max())}]"
        )
    if not directed and not torch.equal(probs, probs.t()):
        raise ValueError(
            "'edge_probs' must be symmetric for an undirected graph; pass "
            "directed=True for a non-symmetric matrix"
        )
    return probs


def _distinct_uniform(num_pairs: int, count: int, generator: torch.Generator) -> Tensor:
    """``count`` distinct integers, a uniformly random subset of ``[0, num_pairs)``.

    Large ranges: draw with replacement until at least ``count`` distinct values
    are found, then keep a uniformly random ``count`` of them. The procedure is
    invariant under relabelling the range, so given its size the set found is a
    uniform subset, and so is the random part of it that is kept.
    """
    if count == 0:
        return torch.empty(0, dtype=torch.long)
    if num_pairs <= DENSE_SAMPLING_MAX_PAIRS:
        return torch.randperm(num_pairs, generator=generator)[:count]
    found = torch.empty(0, dtype=torch.long)
    while found.numel() < count:
        missing = count - found.numel()
        fresh = (num_pairs - found.numel()) / num_pairs
        draws = int(missing / fresh * 1.02) + 16
        new = torch.randint(num_pairs, (draws,), generator=generator)
        found = torch.cat([found, new]).unique()
    keep = torch.randperm(found.numel(), generator=generator)[:count]
    return found[keep]


def _triangle_pairs(t: Tensor, n: int) -> tuple[Tensor, Tensor]:
    r"""Unordered pair number ``t`` of ``n`` nodes as ``(i, j)``, ``i < j``.

    Pairs are numbered row by row: row :math:`i` holds :math:`n - 1 - i` pairs
    and starts at :math:`o(i) = i (2n - i - 1) / 2`.
    """

    def offset(i: Tensor) -> Tensor:
        return i * (2 * n - i - 1) // 2

    b = 2.0 * n - 1.0
    disc = (b * b - 8.0 * t.to(torch.float64)).clamp(min=0.0)
    i = ((b - disc.sqrt()) / 2.0).floor().to(torch.long).clamp(0, max(n - 2, 0))
    for _ in range(2):  # float rounding is off by at most one row
        i = torch.where(offset(i) > t, i - 1, i)
        i = torch.where(offset(i + 1) <= t, i + 1, i)
    return i, t - offset(i) + i + 1


def sparse_stochastic_blockmodel_graph(
    block_sizes: Sequence[int] | Tensor,
    edge_probs: Sequence[Sequence[float]] | Tensor,
    directed: bool = False,
    *,
    seed: int | torch.Generator = 0,
) -> Tensor:
    r"""Sample a stochastic block model graph in :math:`O(B^2 + E \log E)`.

    Node :math:`i` belongs to block :math:`a` when
    :math:`\sum_{c<a} n_c \le i < \sum_{c \le a} n_c` (blocks are consecutive,
    as in :func:`torch_geometric.utils.stochastic_blockmodel_graph`). Every
    pair of distinct nodes in blocks :math:`a, b` is an edge independently
    with probability :math:`P_{ab}`; no self loops. Undirected graphs (the
    default) draw each unordered pair once and return both directions;
    directed graphs draw each ordered pair. Per block pair the edge count is
    :math:`\mathrm{Binomial}(m_{ab}, P_{ab})` with

    .. math::
        m_{ab} = n_a n_b \;(a \ne b), \qquad
        m_{aa} = n_a (n_a - 1) / 2 \text{ (undirected) or }
        n_a (n_a - 1) \text{ (directed)},

    and the edges are a uniformly random subset of that size, which is the
    same distribution as independent Bernoulli draws per pair.

    Args:
        block_sizes: Sizes :math:`n_a \geq 1` of the :math:`B` blocks.
        edge_probs: The :math:`B \times B` matrix :math:`P` of edge
            probabilities in :math:`[0, 1]`; symmetric unless ``directed``.
        directed: Sample a directed graph. (default: :obj:`False`)
        seed: An ``int`` seed or a CPU :class:`torch.Generator`.
            (default: :obj:`0`)

    Returns:
        ``edge_index`` of shape ``[2, E]`` (int64, CPU), sorted by source then
        target, without duplicates or self loops.

    Raises:
        ValueError: On block sizes that are not positive integers, a
            probability matrix of the wrong shape, outside :math:`[0, 1]` or
            not symmetric for an undirected graph, or an invalid seed.

    Example:
        >>> edge_index = sparse_stochastic_blockmodel_graph(
        ...     [3, 2], [[1.0, 0.0], [0.0, 1.0]], seed=0
        ... )
        >>> edge_index.tolist()
        [[0, 0, 1, 1, 2, 2, 3, 4], [1, 2, 0, 2, 0, 1, 4, 3]]
    """
    sizes = _check_block_sizes(block_sizes)
    if not isinstance(directed, bool):
        raise ValueError(f"'directed' must be a bool, got {directed!r}")
    probs = _check_edge_probs(edge_probs, len(sizes), directed)
    generator = resolve_generator(seed)
    starts = [0]
    for size in sizes[:-1]:
        starts.append(starts[-1] + size)
    num_nodes = starts[-1] + sizes[-1]

    rows, cols = [], []
    for a, (start_a, n_a) in enumerate(zip(starts, sizes, strict=True)):
        for b, (start_b, n_b) in enumerate(zip(starts, sizes, strict=True)):
            if not directed and b < a:
                continue
            if a != b:
                num_pairs = n_a * n_b
            elif directed:
                num_pairs = n_a * (n_a - 1)
            else:
                num_pairs = n_a * (n_a - 1) // 2
            p = probs[a, b]
            if num_pairs == 0 or p == 0:
                continue
            count = torch.binomial(
                torch.tensor(float(num_pairs), dtype=torch.float64), p, generator
            )
            t = _distinct_uniform(num_pairs, int(count), generator)
            if a != b:
                i, j = t // n_b, t % n_b
            elif directed:
                i, r = t // (n_a - 1), t % (n_a - 1)
                j = r + (r >= i).to(torch.long)
            else:
                i, j = _triangle_pairs(t, n_a)
            rows.append(i + start_a)
            cols.append(j + start_b)
    if not rows:
        return torch.empty(2, 0, dtype=torch.long)
    row, col = torch.cat(rows), torch.cat(cols)
    if not directed:
        row, col = torch.cat([row, col]), torch.cat([col, row])
    key = (row * num_nodes + col).sort().values
    return torch.stack([key // num_nodes, key % num_nodes])

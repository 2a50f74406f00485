r"""Fast Bernoulli keep-masks for dropout on the CPU.

``torch.nn.functional.dropout`` draws one 32-bit Mersenne-Twister number per
element and compares floats; on the Diff-ResNet Cora configuration (20 masks of
2485 x 1433 per epoch) that is most of the epoch. Here the random bits come
from NumPy's SFC64 generator (seeded from torch's generator, so
``torch.manual_seed`` still makes runs reproducible), 64 bits per draw, split
into uniform 8- or 16-bit chunks; an element is dropped when its chunk falls
below :math:`p \cdot 2^{b}`. The drop probability is therefore exactly
:math:`p` whenever :math:`p \cdot 2^{b}` is an integer (``p = 0.25``, ``0.5``,
``0.1015625``, ... with 8 bits; any multiple of :math:`2^{-16}` with 16 bits).
Other values of :math:`p`, and non-CPU devices, use ``torch.rand`` on a
private generator seeded the same way. A mask is a function of its seed
(:func:`keep_mask_from_seed`), so it can be regenerated instead of stored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor


def _chunk_bits(p: float) -> int | None:
    for bits in (8, 16):
        if (p * 2**bits).is_integer():
            return bits
    return None


def draw_mask_seed(generator: torch.Generator | None = None) -> int:
    """One seed for :func:`keep_mask_from_seed`, drawn from a torch generator.

    Args:
        generator: The generator to draw from (default: the global one, so
            ``torch.manual_seed`` makes masks reproducible).
    """
    return int(torch.randint(2**62, (), generator=generator))


def _random_chunks(numel: int, bits: int, seed: int) -> Tensor:
    """``numel`` independent uniform ``bits``-bit integers (uint8 or int16)."""
    words = np.random.SFC64(seed).random_raw(math.ceil(numel * bits / 64))
    dtype = np.uint8 if bits == 8 else np.int16
    return torch.from_numpy(words.view(dtype)[:numel])


def _check_p(p: float) -> None:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"Dropout probability must be in [0, 1), got {p}")


def keep_mask_from_seed(
    shape: torch.Size | tuple[int, ...],
    p: float,
    seed: int,
    device: torch.device | str | None = None,
) -> Tensor:
    """The ``torch.uint8`` keep-mask that ``seed`` determines.

    The same ``(shape, p, seed, device)`` always gives the same mask, so a
    mask can be regenerated instead of stored (as
    :class:`~diffresnet_pyg.nn.DiffusionConv` does with
    ``recompute_masks=True``).

    Args:
        shape: Shape of the mask.
        p: Drop probability in ``[0, 1)``.
        seed: A seed, e.g. from :func:`draw_mask_seed`.
        device: Device of the mask.

    Example:
        >>> a = keep_mask_from_seed((4, 5), 0.5, seed=7)
        >>> torch.equal(a, keep_mask_from_seed((4, 5), 0.5, seed=7))
        True
    """
    _check_p(p)
    device = torch.device(device) if device is not None else torch.device("cpu")
    if p == 0.0:
        return torch.ones(shape, dtype=torch.uint8, device=device)
    bits = _chunk_bits(p)
    if device.type != "cpu" or bits is None:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
        rand = torch.rand(shape, device=device, generator=generator)
        return (rand >= p).view(torch.uint8)
    numel = math.prod(int(size) for size in shape)
    chunks = _random_chunks(numel, bits, seed)
    threshold = int(p * 2**bits)
    if bits == 8:  # keep iff chunk >= threshold, in saturating uint8 arithmetic
        floor = threshold - 1
        keep = chunks.clamp(min=floor).sub_(floor).clamp_(max=1)
    else:  # signed chunks, uniform on [-2**15, 2**15)
        keep = (chunks >= threshold - 2**15).view(torch.uint8)
    return keep.view(shape)


def draw_member_seeds(
    generators: Sequence[torch.Generator] | None,
) -> int | tuple[int, ...]:
    """One mask seed per member generator (one global seed without them).

    The seeds of :func:`member_keep_mask`: member :math:`b`'s seed is the one
    its plain model would draw (:func:`draw_mask_seed`) from a generator in
    the state of ``generators[b]``.
    """
    if generators is None:
        return draw_mask_seed()
    return tuple(draw_mask_seed(g) for g in generators)


def member_keep_mask(
    shape: torch.Size | tuple[int, ...],
    p: float,
    seeds: int | tuple[int, ...],
    device: torch.device | str | None = None,
) -> Tensor:
    """The keep-mask of ``[N, B * C]`` columns, one block of ``C`` per member.

    With one seed, :func:`keep_mask_from_seed` of the whole shape. With ``B``
    seeds (:func:`draw_member_seeds`), block :math:`b` is
    ``keep_mask_from_seed((N, C), p, seeds[b])``: the mask member
    :math:`b`'s plain model draws for its ``[N, C]`` features.

    Example:
        >>> m = member_keep_mask((3, 4), 0.5, (7, 8))
        >>> torch.equal(m[:, 2:], keep_mask_from_seed((3, 2), 0.5, 8))
        True
    """
    if isinstance(seeds, int):
        return keep_mask_from_seed(shape, p, seeds, device)
    n, width = (int(s) for s in shape)
    members = len(seeds)
    if width % members:
        raise ValueError(f"{width} columns do not split into {members} members")
    device = torch.device(device) if device is not None else torch.device("cpu")
    c = width // members
    _check_p(p)
    bits = _chunk_bits(p)
    if p == 0.0 or device.type != "cpu" or bits is None:
        out = torch.empty(n, members, c, dtype=torch.uint8, device=device)
        for b, seed in enumerate(seeds):
            out[:, b] = keep_mask_from_seed((n, c), p, seed, device)
        return out.view(n, width)
    # keep_mask_from_seed's arithmetic, written straight into each block
    threshold = int(p * 2**bits)
    if bits == 8:
        floor = threshold - 1
        out = torch.empty(n, members, c, dtype=torch.uint8)
        for b, seed in enumerate(seeds):
            chunks = _random_chunks(n * c, bits, seed).view(n, c)
            torch.clamp(chunks, min=floor, out=out[:, b])
        return out.sub_(floor).clamp_(max=1).view(n, width)
    keep = torch.empty(n, members, c, dtype=torch.bool)
    for b, seed in enumerate(seeds):
        chunks = _random_chunks(n * c, bits, seed).view(n, c)
        torch.ge(chunks, threshold - 2**15, out=keep[:, b])
    return keep.view(torch.uint8).view(n, width)


def keep_mask_bytes(
    shape: torch.Size | tuple[int, ...],
    p: float,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Like :func:`keep_mask`, but as ``torch.uint8`` zeros and ones.

    Multiplying a float tensor by ``mask.to(x.dtype)`` is several times faster
    on the CPU than multiplying it by a boolean mask.
    """
    _check_p(p)
    if p == 0.0:
        return keep_mask_from_seed(shape, p, 0, device)
    return keep_mask_from_seed(shape, p, draw_mask_seed(generator), device)


def keep_mask(
    shape: torch.Size | tuple[int, ...],
    p: float,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Draw a boolean mask whose entries are ``True`` with probability ``1 - p``.

    Args:
        shape: Shape of the mask.
        p: Drop probability in ``[0, 1)``.
        device: Device of the mask.
        generator: Optional torch generator that seeds the draw (default: the
            global one, so ``torch.manual_seed`` makes masks reproducible).

    Returns:
        A ``torch.bool`` tensor of the given shape.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> mask = keep_mask((1000, 100), 0.25)
        >>> abs(mask.float().mean().item() - 0.75) < 0.01
        True
    """
    return keep_mask_bytes(shape, p, device, generator).view(torch.bool)

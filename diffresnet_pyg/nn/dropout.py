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
Other values of :math:`p`, and non-CPU devices, use ``torch.rand``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def _chunk_bits(p: float) -> int | None:
    for bits in (8, 16):
        if (p * 2**bits).is_integer():
            return bits
    return None


def _random_chunks(numel: int, bits: int, generator: torch.Generator | None) -> Tensor:
    """``numel`` independent uniform ``bits``-bit integers (uint8 or int16)."""
    seed = int(torch.randint(2**62, (), generator=generator))
    words = np.random.SFC64(seed).random_raw(math.ceil(numel * bits / 64))
    dtype = np.uint8 if bits == 8 else np.int16
    return torch.from_numpy(words.view(dtype)[:numel])


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
    if not 0.0 <= p < 1.0:
        raise ValueError(f"Dropout probability must be in [0, 1), got {p}")
    device = torch.device(device) if device is not None else torch.device("cpu")
    if p == 0.0:
        return torch.ones(shape, dtype=torch.uint8, device=device)
    numel = math.prod(int(size) for size in shape)
    bits = _chunk_bits(p)
    if device.type != "cpu" or bits is None:
        rand = torch.rand(shape, device=device, generator=generator)
        return (rand >= p).view(torch.uint8)
    chunks = _random_chunks(numel, bits, generator)
    threshold = int(p * 2**bits)
    if bits == 8:  # keep iff chunk >= threshold, in saturating uint8 arithmetic
        floor = threshold - 1
        keep = chunks.clamp(min=floor).sub_(floor).clamp_(max=1)
    else:  # signed chunks, uniform on [-2**15, 2**15)
        keep = (chunks >= threshold - 2**15).view(torch.uint8)
    return keep.view(shape)


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

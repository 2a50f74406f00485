r"""Fast Bernoulli keep-masks for dropout on the CPU.

``torch.nn.functional.dropout`` draws one 32-bit Mersenne-Twister number per
element; on the Diff-ResNet Cora configuration (20 masks of 2485 x 1433 per
epoch) that is most of the epoch. Here one 64-bit draw yields several
independent uniform chunks of 8 or 16 bits, and an element is dropped when its
chunk falls below :math:`p \cdot 2^{b}`. The drop probability is therefore
exactly :math:`p` whenever :math:`p \cdot 2^{b}` is an integer (``p = 0.25``,
``0.5``, ``0.125``, ... with 8 bits; any multiple of :math:`2^{-16}` with 16
bits). Other values of :math:`p`, and non-CPU devices, use ``torch.rand``.
"""

from __future__ import annotations

import sys

import torch
from torch import Tensor

# Only the low 7 bytes (3 int16 words) of a draw are used: ``random_()`` on
# int64 yields values in [0, 2**63), so the top bit is always zero.
_CHUNKS = {8: (torch.uint8, 8, 7), 16: (torch.int16, 4, 3)}


def _chunk_bits(p: float) -> int | None:
    for bits in (8, 16):
        threshold = p * 2**bits
        if threshold == int(threshold):
            return bits
    return None


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
        generator: Optional random generator (default: the global one, so
            ``torch.manual_seed`` makes masks reproducible).

    Returns:
        A ``torch.bool`` tensor of the given shape.

    Example:
        >>> torch.manual_seed(0)
        >>> mask = keep_mask((1000, 100), 0.25)
        >>> abs(mask.float().mean().item() - 0.75) < 0.01
        True
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"Dropout probability must be in [0, 1), got {p}")
    device = torch.device(device) if device is not None else torch.device("cpu")
    numel = 1
    for size in shape:
        numel *= int(size)
    bits = _chunk_bits(p)
    if device.type != "cpu" or bits is None or sys.byteorder != "little":
        return torch.rand(shape, device=device, generator=generator) >= p
    dtype, per_draw, used = _CHUNKS[bits]
    draws = torch.empty((numel + used - 1) // used, dtype=torch.int64)
    draws.random_(generator=generator)
    chunks = draws.view(dtype).view(-1, per_draw)[:, :used]
    threshold = int(p * 2**bits)
    if dtype == torch.int16:  # signed: uniform on [-2**15, 2**15)
        threshold -= 2**15
    return (chunks >= threshold).reshape(-1)[:numel].view(shape)

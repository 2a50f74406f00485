r"""Seeded 2-D toy data sets of the Diff-ResNet synthetic studies.

The four data sets of section V.A of `"Diffusion Mechanism in Residual Neural
Network: Theory and Applications" <https://arxiv.org/abs/2105.03155>`_ (Wang
et al., TPAMI 2024), with the parameters of the authors' scripts
(``synthetic/*_example.py`` of github.com/shwangtangjun/Diff-ResNet):

* :func:`make_xor_discs`: four uniform discs of diameter 1.5 (100 points each)
  centred at :math:`(0,0), (2,2), (2,0), (0,2)`; the first two discs are
  class 0, the last two class 1 (an XOR pattern).
* :func:`make_two_circles`: two noisy concentric circles of radii 1 and 2.
* :func:`make_two_moons`: two interleaving noisy half circles.
* :func:`make_two_spirals`: two interleaving noisy Archimedean spirals.

Every generator draws from an explicit :class:`torch.Generator` (or one seeded
from an ``int``), never from the global random state, and returns a
:class:`SyntheticData` with the points, the class labels and the cluster ids
(the disc of each XOR point; the class for the other data sets). Points are
stored cluster by cluster, as in the authors' scripts.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = [
    "XOR_CENTERS",
    "XOR_CLASSES",
    "SyntheticData",
    "make_two_circles",
    "make_two_moons",
    "make_two_spirals",
    "make_xor_discs",
    "resolve_generator",
]

XOR_CENTERS: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),
    (2.0, 2.0),
    (2.0, 0.0),
    (0.0, 2.0),
)
"""Centres of the four XOR discs, in the order the points are stored."""

XOR_CLASSES: tuple[int, ...] = (0, 0, 1, 1)
"""Class of each XOR disc: :math:`\\{(0,0),(2,2)\\}` vs :math:`\\{(2,0),(0,2)\\}`."""


class SyntheticData(NamedTuple):
    """A labelled 2-D point set.

    Attributes:
        x: The points, shape ``[N, 2]``.
        y: The class of each point (``int64``), shape ``[N]``.
        cluster: The cluster of each point (``int64``), shape ``[N]``: the
            disc for XOR, the class otherwise.
    """

    x: Tensor
    y: Tensor
    cluster: Tensor


def resolve_generator(seed: int | torch.Generator) -> torch.Generator:
    """A CPU :class:`torch.Generator` from an ``int`` seed (or the generator itself).

    Args:
        seed: A non-negative integer seed or a CPU generator (used as is, so
            its state advances).

    Returns:
        The generator.

    Raises:
        ValueError: If ``seed`` is neither a non-negative ``int`` nor a CPU
            generator.

    Example:
        >>> g = resolve_generator(0)
        >>> resolve_generator(g) is g
        True
    """
    if isinstance(seed, torch.Generator):
        if seed.device.type != "cpu":
            raise ValueError(
                f"'seed' must be a CPU generator, got one on {seed.device}"
            )
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(
            f"'seed' must be an int >= 0 or a torch.Generator, got {seed!r}"
        )
    return torch.Generator().manual_seed(seed)


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"'{name}' must be an integer >= 1, got {value!r}")


def _check_nonnegative(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"'{name}' must be a finite number >= 0, got {value!r}")


def _check_dtype(dtype: torch.dtype) -> None:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"'dtype' must be a floating torch.dtype, got {dtype!r}")


def _two_classes(
    first: Tensor, second: Tensor, noise: float, generator: torch.Generator
) -> SyntheticData:
    x = torch.cat([first, second])
    x = x + noise * torch.randn(x.shape, generator=generator, dtype=x.dtype)
    y = torch.arange(2).repeat_interleave(first.size(0))
    return SyntheticData(x, y, y.clone())


def make_xor_discs(
    num_per_disc: int = 100,
    *,
    diameter: float = 1.5,
    seed: int | torch.Generator = 0,
    dtype: torch.dtype = torch.float64,
) -> SyntheticData:
    r"""Four uniform discs in an XOR pattern.

    Disc :math:`k` holds ``num_per_disc`` points drawn uniformly from the disc
    of diameter :math:`D` around :data:`XOR_CENTERS` ``[k]``: radius
    :math:`\tfrac{D}{2}\sqrt{u}` and angle :math:`2\pi v` with
    :math:`u, v \sim U[0, 1)` (the square root makes the density uniform in
    area). With :math:`D = 1.5` and centres 2 apart, the gap between adjacent
    discs is :math:`L = 0.5 < D`.

    Args:
        num_per_disc: Points per disc. (default: :obj:`100`)
        diameter: Disc diameter :math:`D > 0`. (default: :obj:`1.5`)
        seed: An ``int`` seed or a :class:`torch.Generator`. (default: :obj:`0`)
        dtype: Floating dtype of the points. (default: :obj:`torch.float64`)

    Returns:
        :class:`SyntheticData` with ``4 * num_per_disc`` points; ``cluster`` is
        the disc (0 to 3), ``y`` its class from :data:`XOR_CLASSES`.

    Example:
        >>> data = make_xor_discs(5, seed=0)
        >>> data.x.shape, data.y.tolist()[::5], data.cluster.tolist()[::5]
        (torch.Size([20, 2]), [0, 0, 1, 1], [0, 1, 2, 3])
    """
    _check_count("num_per_disc", num_per_disc)
    _check_nonnegative("diameter", diameter)
    if diameter == 0:
        raise ValueError("'diameter' must be > 0, got 0")
    _check_dtype(dtype)
    generator = resolve_generator(seed)
    n = 4 * num_per_disc
    radius = 0.5 * diameter * torch.rand(n, generator=generator, dtype=dtype).sqrt()
    angle = 2.0 * math.pi * torch.rand(n, generator=generator, dtype=dtype)
    cluster = torch.arange(4).repeat_interleave(num_per_disc)
    centers = torch.tensor(XOR_CENTERS, dtype=dtype)
    x = torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1)
    x = x + centers[cluster]
    y = torch.tensor(XOR_CLASSES)[cluster]
    return SyntheticData(x, y, cluster)


def make_two_circles(
    num_per_class: int = 500,
    *,
    radii: tuple[float, float] = (1.0, 2.0),
    noise: float = 0.05,
    seed: int | torch.Generator = 0,
    dtype: torch.dtype = torch.float64,
) -> SyntheticData:
    r"""Two noisy concentric circles.

    Class :math:`c` has ``num_per_class`` points at equally spaced angles
    :math:`\theta_k = 2\pi k / n` on the circle of radius ``radii[c]``, plus
    i.i.d. Gaussian noise of standard deviation ``noise`` on each coordinate.

    Args:
        num_per_class: Points per circle. (default: :obj:`500`)
        radii: Radius of class 0 and of class 1. (default: :obj:`(1.0, 2.0)`)
        noise: Noise standard deviation. (default: :obj:`0.05`)
        seed: An ``int`` seed or a :class:`torch.Generator`. (default: :obj:`0`)
        dtype: Floating dtype of the points. (default: :obj:`torch.float64`)

    Returns:
        :class:`SyntheticData` with ``2 * num_per_class`` points.

    Example:
        >>> data = make_two_circles(100, noise=0.0)
        >>> data.x.norm(dim=1)[[0, 100]].tolist()
        [1.0, 2.0]
    """
    _check_count("num_per_class", num_per_class)
    _check_nonnegative("noise", noise)
    if len(radii) != 2:
        raise ValueError(f"'radii' must hold two radii, got {radii!r}")
    for r in radii:
        _check_nonnegative("radii", r)
    _check_dtype(dtype)
    generator = resolve_generator(seed)
    angle = 2.0 * math.pi * torch.arange(num_per_class, dtype=dtype) / num_per_class
    unit = torch.stack([angle.cos(), angle.sin()], dim=1)
    return _two_classes(radii[0] * unit, radii[1] * unit, noise, generator)


def make_two_moons(
    num_per_class: int = 500,
    *,
    noise: float = 0.05,
    seed: int | torch.Generator = 0,
    dtype: torch.dtype = torch.float64,
) -> SyntheticData:
    r"""Two interleaving noisy half circles ("moons").

    With :math:`\theta` equally spaced in :math:`[0, \pi]` (both ends
    included), class 0 lies on :math:`(\cos\theta, \sin\theta)` and class 1 on
    :math:`(1 - \cos\theta, \tfrac12 - \sin\theta)`, plus i.i.d. Gaussian noise
    of standard deviation ``noise`` on each coordinate.

    Args:
        num_per_class: Points per moon. (default: :obj:`500`)
        noise: Noise standard deviation. (default: :obj:`0.05`)
        seed: An ``int`` seed or a :class:`torch.Generator`. (default: :obj:`0`)
        dtype: Floating dtype of the points. (default: :obj:`torch.float64`)

    Returns:
        :class:`SyntheticData` with ``2 * num_per_class`` points.

    Example:
        >>> data = make_two_moons(3, noise=0.0)
        >>> data.x.round(decimals=4).tolist()[::2]
        [[1.0, 0.0], [-1.0, 0.0], [1.0, -0.5]]
    """
    _check_count("num_per_class", num_per_class)
    _check_nonnegative("noise", noise)
    _check_dtype(dtype)
    generator = resolve_generator(seed)
    angle = torch.linspace(0.0, math.pi, num_per_class, dtype=dtype)
    first = torch.stack([angle.cos(), angle.sin()], dim=1)
    second = torch.stack([1.0 - angle.cos(), 0.5 - angle.sin()], dim=1)
    return _two_classes(first, second, noise, generator)


def make_two_spirals(
    num_per_class: int = 500,
    *,
    noise: float = 0.1,
    seed: int | torch.Generator = 0,
    dtype: torch.dtype = torch.float64,
) -> SyntheticData:
    r"""Two interleaving noisy Archimedean spirals.

    With :math:`\theta` equally spaced in :math:`[0, 2\pi]` (both ends
    included), class 0 lies on :math:`(1 + \theta)(\cos\theta, \sin\theta)`
    and class 1 on its point reflection :math:`-(1 + \theta)(\cos\theta,
    \sin\theta)`, plus i.i.d. Gaussian noise of standard deviation ``noise``
    on each coordinate.

    Args:
        num_per_class: Points per spiral. (default: :obj:`500`)
        noise: Noise standard deviation. (default: :obj:`0.1`)
        seed: An ``int`` seed or a :class:`torch.Generator`. (default: :obj:`0`)
        dtype: Floating dtype of the points. (default: :obj:`torch.float64`)

    Returns:
        :class:`SyntheticData` with ``2 * num_per_class`` points.

    Example:
        >>> data = make_two_spirals(2, noise=0.0)
        >>> data.x.round(decimals=4).tolist()
        [[1.0, 0.0], [7.2832, -0.0], [-1.0, -0.0], [-7.2832, 0.0]]
    """
    _check_count("num_per_class", num_per_class)
    _check_nonnegative("noise", noise)
    _check_dtype(dtype)
    generator = resolve_generator(seed)
    angle = torch.linspace(0.0, 2.0 * math.pi, num_per_class, dtype=dtype)
    first = (1.0 + angle).unsqueeze(1) * torch.stack([angle.cos(), angle.sin()], dim=1)
    return _two_classes(first, -first, noise, generator)

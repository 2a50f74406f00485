r"""Descriptive statistics of a sample: mean, population std, 95% t interval.

:func:`summarize` reduces a list of numbers to a :class:`Summary`; the
reports print its population standard deviation (``ddof=0``, the spread the
Diff-ResNet authors report) and the Student :math:`t` confidence interval of
the mean.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["Summary", "summarize"]


@dataclass(frozen=True)
class Summary:
    r"""Descriptive statistics of a sample :math:`x_1, \dots, x_n`.

    Attributes:
        n (int): The sample size :math:`n`.
        mean (float): The mean :math:`\bar x = \frac{1}{n} \sum_i x_i`.
        std (float): The population standard deviation
            :math:`\sigma = \sqrt{\frac{1}{n} \sum_i (x_i - \bar x)^2}`
            (``ddof=0``), the spread the Diff-ResNet authors report.
        ci95 (tuple[float, float]): The 95% confidence interval of the mean
            :math:`\bar x \pm t_{0.975,\,n-1} \, s / \sqrt{n}` with the sample
            standard deviation :math:`s = \sqrt{\frac{1}{n-1} \sum_i (x_i -
            \bar x)^2}` (``ddof=1``) and Student's :math:`t` quantile. It is
            the degenerate interval :math:`(\bar x, \bar x)` when :math:`n = 1`.
        min (float): The smallest value.
        max (float): The largest value.
        median (float): The median.
    """

    n: int
    mean: float
    std: float
    ci95: tuple[float, float]
    min: float
    max: float
    median: float

    def to_dict(self) -> dict[str, Any]:
        """Return the statistics as a JSON-serializable dictionary.

        Example:
            >>> summarize([1.0, 3.0]).to_dict()["ci95"][0] < 1.0
            True
        """
        out = asdict(self)
        out["ci95"] = [self.ci95[0], self.ci95[1]]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Summary:
        """Rebuild a :class:`Summary` from :meth:`to_dict` output.

        Example:
            >>> s = summarize([1.0, 2.0, 4.0])
            >>> Summary.from_dict(s.to_dict()) == s
            True
        """
        lo, hi = data["ci95"]
        return cls(
            n=int(data["n"]),
            mean=float(data["mean"]),
            std=float(data["std"]),
            ci95=(float(lo), float(hi)),
            min=float(data["min"]),
            max=float(data["max"]),
            median=float(data["median"]),
        )


def summarize(values: Sequence[float] | np.ndarray) -> Summary:
    r"""Compute mean, population std, 95% CI, min, max and median of values.

    The confidence interval is the :math:`t` interval of the mean,

    .. math::
        \bar x \pm t_{0.975,\,n-1} \frac{s}{\sqrt{n}}, \qquad
        s = \sqrt{\frac{1}{n-1} \sum_{i=1}^n (x_i - \bar x)^2},

    while :attr:`Summary.std` is the population standard deviation
    (``ddof=0``). With a single value the interval is :math:`(x_1, x_1)`.

    Args:
        values (sequence of float): The sample, a 1-D sequence of finite numbers.

    Returns:
        Summary: The statistics.

    Raises:
        ValueError: If :obj:`values` is empty, not 1-D, or holds a non-finite
            value.

    Example:
        >>> s = summarize([80.0, 82.0, 84.0])
        >>> s.n, s.mean, round(s.std, 4)
        (3, 82.0, 1.633)
        >>> [round(b, 2) for b in s.ci95]
        [77.03, 86.97]
        >>> summarize([83.0]).ci95
        (83.0, 83.0)
    """
    try:
        x = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"values must be numbers ({exc})") from exc
    if x.ndim != 1:
        raise ValueError(f"values must be a 1-D sequence (got shape {x.shape})")
    if x.size == 0:
        raise ValueError("cannot summarize an empty sequence of values")
    if not np.all(np.isfinite(x)):
        bad = [i for i, v in enumerate(x.tolist()) if not math.isfinite(v)]
        raise ValueError(
            f"values must be finite (found {x[bad[0]]} at index {bad[0]}"
            + (f" and {len(bad) - 1} more" if len(bad) > 1 else "")
            + ")"
        )
    n = int(x.size)
    mean = float(np.mean(x))
    if n == 1:
        ci95 = (mean, mean)
    else:
        half = float(stats.t.ppf(0.975, n - 1)) * float(np.std(x, ddof=1)) / n**0.5
        ci95 = (mean - half, mean + half)
    return Summary(
        n=n,
        mean=mean,
        std=float(np.std(x, ddof=0)),
        ci95=ci95,
        min=float(np.min(x)),
        max=float(np.max(x)),
        median=float(np.median(x)),
    )

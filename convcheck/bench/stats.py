"""Summary statistics of repeated timings: minimum, quartiles, interquartile range, runs.

A measurement yields ``runs`` samples; each sample is the time of one call in
seconds (when a call is shorter than the timer's block, a sample is the mean
of ``number`` back-to-back calls). Quartiles interpolate linearly between the
sorted samples ``s[0] <= ... <= s[n-1]``: the ``q``-quantile is

    s[i] + (p - i) * (s[i+1] - s[i]),   p = q * (n - 1),  i = floor(p)

(type 7 of Hyndman and Fan: ``numpy.quantile``'s default ``linear`` method, which
computes it here, and ``statistics.quantiles(method="inclusive")``). The median is the ``0.5``
quantile, the interquartile range ``IQR = Q3 - Q1``; both are robust to the
occasional slow run that a busy machine adds, which the mean is not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


def quantile(sorted_samples: Sequence[float], q: float) -> float:
    """The ``q``-quantile (``0 <= q <= 1``) of samples, by linear interpolation (NumPy's ``linear``)."""
    if not len(sorted_samples):
        raise ValueError("quantile of no samples: measure at least one run")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q={q!r} must lie in [0, 1]")
    return float(np.quantile(np.asarray(sorted_samples, dtype=np.float64), q, method="linear"))


@dataclass(frozen=True)
class Stats:
    """Per-call times in seconds over ``runs`` samples of ``number`` calls each."""

    runs: int
    number: int
    min: float
    q1: float
    median: float
    q3: float
    max: float
    mean: float

    @property
    def iqr(self) -> float:
        """Interquartile range ``Q3 - Q1``: the spread of the middle half of the runs."""
        return self.q3 - self.q1

    @property
    def calls(self) -> int:
        """Timed calls in all: ``runs * number``."""
        return self.runs * self.number

    def to_dict(self) -> dict[str, Any]:
        """JSON form: every field, ``iqr`` and ``calls`` (times in seconds)."""
        return {**asdict(self), "iqr": self.iqr, "calls": self.calls}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Stats:
        """Inverse of ``to_dict`` (derived keys are ignored)."""
        return cls(**{k: d[k] for k in ("runs", "number", "min", "q1", "median", "q3", "max", "mean")})


def summarize(samples: Sequence[float], number: int = 1) -> Stats:
    """``Stats`` of per-call ``samples`` (seconds), each the mean of ``number`` calls."""
    if not samples:
        raise ValueError("cannot summarise zero samples: measure at least one run")
    s = sorted(float(x) for x in samples)
    return Stats(
        runs=len(s),
        number=number,
        min=s[0],
        q1=quantile(s, 0.25),
        median=quantile(s, 0.5),
        q3=quantile(s, 0.75),
        max=s[-1],
        mean=math.fsum(s) / len(s),
    )


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares line through ``(log10 x, log10 y)``: ``(slope, intercept)``.

    For times ``y`` against FLOPs ``x`` a slope of 1 means time grows in
    proportion to the work; below 1, larger problems run at a higher rate.
    Needs two distinct positive ``x`` values.
    """
    pts = [(math.log10(x), math.log10(y)) for x, y in zip(xs, ys) if x > 0 and y > 0]
    if len({p[0] for p in pts}) < 2:
        raise ValueError(f"a slope needs two distinct positive x values, got {list(xs)!r}")
    mx = math.fsum(p[0] for p in pts) / len(pts)
    my = math.fsum(p[1] for p in pts) / len(pts)
    sxx = math.fsum((p[0] - mx) ** 2 for p in pts)
    sxy = math.fsum((p[0] - mx) * (p[1] - my) for p in pts)
    slope = sxy / sxx
    return slope, my - slope * mx


__all__ = ["Stats", "loglog_slope", "quantile", "summarize"]

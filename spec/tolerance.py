"""The tolerance policy: how far a correct implementation may be from the float64 oracle.

Element-wise bound (direct algorithms). An output element that is a sum of
``K`` products, computed in a floating-point format with unit roundoff ``u``
and *any* summation order, is within ``gamma_K * S`` of the exact value, where
``gamma_K = K*u / (1 - K*u)`` and ``S`` is the same sum taken over absolute
values (Higham, *Accuracy and Stability of Numerical Algorithms*, 3.1). ``S`` is
computed by running the float64 oracle on ``|x|, |w|`` (or ``|dy|, |w|`` and
``|x|, |dy|`` for the gradients); ``K`` comes from the operation's spec
(``reduction_lengths``). The oracle carries the same bound at ``u = 2**-53``,
and the final rounding to the output dtype adds ``u * |expected|``::

    bound = SAFETY * (gamma_K(u) + gamma_K(u64)) * S + u * |expected| + tiny

``SAFETY = 2`` covers what the textbook bound leaves out without hiding bugs:
a bias added after the sum, an intermediate stored in the output dtype (the
im2col column, a scattered partial of ``dx``) and a divisor applied as a
reciprocal multiply. Each adds at most one rounding, i.e. at most doubling the
``K`` that the spec counts. A correct implementation sits at an *error ratio*
``max |got - expected| / bound`` below 1, typically far below (random rounding
errors grow like ``sqrt(K) u``, not ``K u``).

Exact data. On the exact-integer value family every partial sum is an integer
below ``2**24`` (checked when the case is built), so a direct implementation of
conv2d or max-pool must match the oracle *exactly*, in float32 too.

Non-direct algorithms (FFT, Winograd) round intermediate transforms whose
error is bounded in norm, not per element; for them the bound is applied to
the Frobenius norm of the error against the norm of ``S``, with ``K`` grown by
the transform's ``log2`` length, and the report says so.

Aggregate (after the TOSA reference model). With errors normalised as
``e = (got - expected) / (u * S)``, a correct implementation has no systematic
bias, ``|sum e| <= 2 sqrt(K T)``, and bounded variance, ``sum e**2 <= 0.4 K T``
over the ``T`` elements with ``S > 0``. A consistent tiny error (a scale of
``1 + 1e-6``, an off-by-one divisor on one window) hides under every
per-element bound and fails these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SAFETY = 2.0
"""Multiplier on the textbook bound; see the module docstring for why 2."""

TINY = {"float32": 2.0**-126, "float64": 2.0**-1022}
"""Smallest normal numbers: an absolute floor so that subnormal noise never fails."""

MISTRUST_ZERO_FRACTION = 0.9
"""An expected output with more zeros than this fraction tested little (benchdnn's MISTRUSTED)."""


def unit_roundoff(dtype: str | np.dtype) -> float:
    """``u``: half the distance from 1 to the next float (``2**-24`` for float32)."""
    return float(np.finfo(np.dtype(dtype)).eps) / 2


def gamma(k: int, u: float) -> float:
    """``gamma_k = k u / (1 - k u)``, the relative error bound of a length-``k`` sum."""
    ku = k * u
    return ku / (1 - ku) if ku < 1 else math.inf


def elementwise_bound(
    abs_sum: np.ndarray, expected: np.ndarray, k: int, dtype: str, safety: float = SAFETY
) -> np.ndarray:
    """Per-element bound for a correct direct implementation (module docstring)."""
    u = unit_roundoff(dtype)
    u64 = unit_roundoff("float64")
    return (
        safety * (gamma(k, u) + gamma(k, u64)) * np.abs(abs_sum)
        + u * np.abs(expected)
        + TINY[str(np.dtype(dtype))]
    )


def ulp_distance(got: np.ndarray, expected: np.ndarray, dtype: str) -> np.ndarray:
    """Units in the last place between ``got`` and ``expected`` rounded to ``dtype``.

    Uses the ordered-integer view of IEEE floats, so ``+0`` and ``-0`` are 0 apart.
    """
    dt = np.dtype(dtype)
    itype = np.int32 if dt == np.float32 else np.int64

    def ordered(a: np.ndarray) -> np.ndarray:
        i = np.ascontiguousarray(a, dtype=dt).view(itype).astype(np.int64)
        # Map sign-magnitude to a monotone integer line (-0 and +0 both -> 0).
        return np.where(i < 0, -(i & np.iinfo(itype).max), i)

    return np.abs(ordered(got) - ordered(expected))


@dataclass
class Comparison:
    """The measured agreement of one output with the oracle, and the verdict.

    ``error_ratio`` is ``max |got - expected| / bound`` (0 when equal, ``inf``
    for any difference where exactness is required); ``passed`` is true when it
    is at most 1 and the aggregate tests hold.
    """

    name: str
    size: int
    exact: bool
    mode: str
    error_ratio: float
    max_abs: float
    max_rel: float
    max_ulp: int
    mismatches: int
    worst_index: tuple[int, ...]
    worst_got: float
    worst_expected: float
    worst_bound: float
    bias: float = 0.0
    bias_limit: float = math.inf
    variance: float = 0.0
    variance_limit: float = math.inf
    zero_fraction: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def aggregate_ok(self) -> bool:
        return self.bias <= self.bias_limit and self.variance <= self.variance_limit

    @property
    def passed(self) -> bool:
        return self.error_ratio <= 1.0 and self.aggregate_ok

    @property
    def mistrusted(self) -> bool:
        """Expected output almost all zeros: the comparison could hardly have failed."""
        return self.zero_fraction > MISTRUST_ZERO_FRACTION

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["worst_index"] = list(self.worst_index)
        d["passed"] = self.passed
        d["mistrusted"] = self.mistrusted
        return d


def compare(
    name: str,
    got: np.ndarray,
    expected: np.ndarray,
    abs_sum: np.ndarray,
    k: int,
    dtype: str,
    *,
    exact: bool = False,
    algorithm: str = "direct",
    scale: float = 1.0,
) -> Comparison:
    """Compare ``got`` (in the implementation's dtype) with a float64 ``expected``.

    ``abs_sum`` is the oracle run on absolute values, ``k`` the reduction length,
    ``exact`` demands bitwise equality with the (exactly representable)
    expected values, ``scale`` multiplies the bound (a user's override).
    Shapes must already agree.
    """
    g = np.asarray(got, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    s = np.asarray(abs_sum, dtype=np.float64)
    err = np.abs(g - e)
    size = int(e.size)
    zero_fraction = float(np.mean(e == 0)) if size else 1.0
    both_nan = np.isnan(g) & np.isnan(e)
    err = np.where(both_nan, 0.0, err)
    err = np.where(np.isnan(err), np.inf, err)
    mode = "exact" if exact else ("elementwise" if algorithm == "direct" else "normwise")

    bound = np.zeros_like(e) if exact else elementwise_bound(s, e, k, dtype) * scale
    if mode == "normwise":
        k_eff = k + max(1, math.ceil(math.log2(max(2, size))))
        nb = SAFETY * scale * (gamma(k_eff, unit_roundoff(dtype)) + gamma(k_eff, 2.0**-53))
        denom = nb * float(np.linalg.norm(s)) + TINY[dtype] * math.sqrt(max(size, 1))
        ratios = np.full_like(e, float(np.linalg.norm(err)) / denom)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = np.where(err == 0, 0.0, err / bound)
    if size == 0:
        return Comparison(name, 0, exact, mode, 0.0, 0.0, 0.0, 0, 0, (), 0.0, 0.0, 0.0)
    flat = int(np.argmax(ratios)) if mode != "normwise" else int(np.argmax(err))
    idx = tuple(int(i) for i in np.unravel_index(flat, e.shape))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(err == 0, 0.0, err / np.abs(e))
    ulps = ulp_distance(np.nan_to_num(g), np.nan_to_num(e), dtype)
    comp = Comparison(
        name=name,
        size=size,
        exact=exact,
        mode=mode,
        error_ratio=float(ratios.flat[flat]),
        max_abs=float(err.max()),
        max_rel=float(rel.max()),
        max_ulp=int(ulps.max()),
        mismatches=int(np.count_nonzero(ratios > 1.0)),
        worst_index=idx,
        worst_got=float(g[idx]),
        worst_expected=float(e[idx]),
        worst_bound=float(bound[idx]) if mode != "normwise" else float(ratios.flat[0]),
        zero_fraction=zero_fraction,
    )
    if not exact and mode == "elementwise" and k > 0:
        _aggregate(comp, g - e, s, k, dtype, scale)
    return comp


def _aggregate(comp: Comparison, diff: np.ndarray, s: np.ndarray, k: int, dtype: str, scale: float) -> None:
    """TOSA-style bias and variance checks over the elements with ``S > 0``."""
    mask = s > 0
    t = int(np.count_nonzero(mask))
    if t == 0 or not np.all(np.isfinite(diff[mask])):
        return
    e = diff[mask] / (unit_roundoff(dtype) * s[mask])
    comp.bias = float(abs(e.sum()))
    comp.bias_limit = 2.0 * math.sqrt(k * t) * SAFETY * scale
    comp.variance = float((e * e).sum())
    comp.variance_limit = 0.4 * k * t * (SAFETY * scale) ** 2


def inner_product_bound(k: int, dtype: str, abs_terms: float, dot_terms: float, n_terms: int) -> float:
    """Bound on ``|<a, b> - <c, d>|`` for an adjoint identity evaluated in float64.

    ``abs_terms`` is ``sum S_a * |b| + sum |c| * S_d``: the operands' error
    scales (each computed element is within ``gamma_k S`` of exact) weighted by
    the other factor; ``dot_terms`` is ``sum |a b| + sum |c d|``, the scale of
    the float64 dot products' own rounding over ``n_terms`` products.
    """
    u = unit_roundoff(dtype)
    u64 = unit_roundoff("float64")
    return (
        SAFETY * ((gamma(k, u) + gamma(k, u64)) * abs_terms + gamma(n_terms, u64) * dot_terms) + TINY[dtype]
    )

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

Half precision. ``float16`` (``u = 2**-11``) and ``bfloat16`` (``u = 2**-8``) are
storage dtypes: inputs and outputs are held in them, while the sums may be kept in float32
(``accumulate = "float32"``, the default and what BLAS and cuDNN half kernels do) or in the
storage dtype itself (``accumulate = "storage"``), as the capabilities declare. The products
of two half numbers are exact in float32, so the accumulation error is that of a ``K``-term
sum at the accumulation precision's ``u_acc``, and the one rounding of the result to storage
adds ``u * |expected|``::

    bound = SAFETY * (gamma_K(u_acc) + gamma_K(u64)) * S + u * |expected| + tiny

with ``u`` and ``tiny`` (the smallest normal number: ``2**-14`` for float16, ``2**-126`` for
bfloat16) those of the storage dtype; for float32 and float64 ``u_acc = u`` and this is the
bound above. An implementation declaring float32 accumulation that sums in half precision
errs by about ``sqrt(K) u S`` and fails it. The aggregate checks below normalise by the
coarser of ``u`` and ``u_acc``; with float32 accumulation the rounding of the result
dominates, and the variance model's ``K`` becomes ``K (u_acc / u)**2 + 1`` (the sum's
rounding in the result's units, plus the result's own rounding).

Underflow. The relative model above holds for results in the normal range. With gradual
underflow (IEEE subnormals) a product or a quotient whose result is subnormal is rounded with an
absolute error of at most ``eta``, half the smallest subnormal of the dtype, while a sum of
subnormals is exact (Higham, 2.1, the model ``fl(x op y) = (x op y)(1 + d) + e``, ``|e| <= eta``).
A sum of ``K`` products therefore carries at most ``K`` such errors, and the final rounding to
the output dtype (or a divisor) one more: the absolute floor of a sum of products is
``SAFETY * (K + 1) * eta`` (``underflow_floor``), not the smallest normal number. That floor is
what lets the ``subnormal`` value family tell gradual underflow from code that flushes
subnormals to zero (whose error is the whole subnormal result, far above ``K`` half-subnormals).
Functions evaluated through transcendental formulas (the activations and losses, whose ``S`` is
the spec's ``magnitude``) may lose a subnormal result in ``exp`` or a reciprocal; they keep the
floor ``TINY``, the smallest normal number.

Overflow. The bound assumes no intermediate overflows. A direct evaluation forms partial sums of
at most ``K`` terms, each at most ``S`` in magnitude: a convolution's partial sums are below ``S``
itself, and an average pool that adds a window's ``D`` cells before dividing (as PyTorch and cuDNN
do) reaches ``D S``. In whatever order the terms are added (one by one, pairwise, in blocks), a
partial sum lies between minus the sum of the negative terms and the sum of the positive ones,
which are ``(S - e)/2`` and ``(S + e)/2`` for a result ``e``, times ``K`` at most. So where
``K (S + e)/2 (1 + gamma_K(u_acc))`` passes the largest finite value of the accumulation dtype,
correct code may return ``+inf``; where ``K (S - e)/2`` does, ``-inf``; where both do, NaN (two
partial sums overflowing opposite ways, then added); and where ``|expected| (1 + u)`` passes the
storage dtype's largest value, an infinity of the expected sign. Those are no error
(``overflow_explains``; ``overflow_possible`` is where any of them may happen): which one comes is
decided by the order of the sum, which the contract leaves open. Elsewhere an infinite or NaN
answer for a finite expected value is an error of ratio ``inf``: a float16 average pool that keeps
its sum in float16 (past 65504) while declaring float32 accumulation, or a convolution whose
intermediate scaling overflows. Matching infinities and NaN at the same position count as equal.

Exact data. On the exact-integer value family every partial sum is an integer
below ``2**24`` (checked when the case is built), so a direct implementation of
conv2d or max-pool must match the oracle *exactly*, in float32 too. In the half dtypes the
sums stay exact in float32, and the expected value is rounded once to the storage dtype
before the bitwise comparison (an integer sum above 2048, or 256 in bfloat16, is not
representable there); with ``accumulate = "storage"`` the partial sums round, so nothing is
exact.

Non-direct algorithms (FFT, Winograd) round intermediate transforms whose
error is bounded in norm, not per element; for them the bound is applied to
the Frobenius norm of the error against the norm of ``S``, with ``K`` grown by
the transform's ``log2`` length, and the report says so.

Aggregate (after the TOSA reference model). With errors normalised as
``e = (got - expected) / (u * S)`` over the ``T`` elements with ``S > 0``, a
correct implementation has no systematic bias beyond one rounding of its result
(``|sum e|`` small) and bounded variance (``sum e**2`` near ``T`` times TOSA's
per-element variance ``0.4 K``). A consistent tiny error (a scale of
``1 + 1e-6``, one ULP too high everywhere, an off-by-one divisor on one window)
hides under every per-element bound and fails these. The limits are derived,
not tuned, for a false-alarm probability of ``FALSE_ALARM = 1e-6`` per check on
correct code: a self-normalised sign test for the bias (``bias_limit``) and
Bernstein's inequality for the variance (``variance_limit``). An output too
small for either to say anything (fewer than ``AGGREGATE_MIN_ELEMENTS = 31``
elements, ``z**2`` for the bias test's ``z``, or limits that no element inside
its bound could cross) gets no aggregate verdict: the comparison notes "too few
elements to judge".

Mistrusted examples (after benchdnn's MISTRUSTED). An expected output that is
more than ``MISTRUST_ZERO_FRACTION`` zeros could hardly have failed: the
comparison is measured and kept, but reports count such examples apart.

Overrides. A user may loosen or tighten the policy per operation (or whole network) and dtype
(``ToleranceOverrides``, from ``--tolerance OP:DTYPE=VALUE`` or a TOML/JSON
file): a ``factor`` multiplies every bound of the policy (element-wise,
norm-wise and aggregate; exact mode stays exact), while ``rtol``/``atol``
replace it by the classic ``atol + rtol * |expected|`` (mode ``"override"``,
no aggregate checks, not even exact mode). Every comparison made under an
override carries its description, and reports say so.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import dtypes as _dtypes
from .errors import UsageError

if TYPE_CHECKING:
    from .capabilities import Capabilities
    from .case import Case

SAFETY = 2.0
"""Multiplier on the textbook bound; see the module docstring for why 2."""

TINY = {name: _dtypes.tiny(name) for name in _dtypes.DTYPES}
"""Smallest normal numbers per dtype: an absolute floor so that subnormal noise never fails."""

FALSE_ALARM = 1e-6
"""Designed probability that one aggregate check (bias or variance) fails correct code."""

MISTRUST_ZERO_FRACTION = 0.9
"""An expected output with more zeros than this fraction tested little (benchdnn's MISTRUSTED)."""


unit_roundoff = _dtypes.unit_roundoff


def gamma(k: int, u: float) -> float:
    """``gamma_k = k u / (1 - k u)``, the relative error bound of a length-``k`` sum."""
    ku = k * u
    return ku / (1 - ku) if ku < 1 else math.inf


def weighted(g: float, scale: Any) -> Any:
    """``g * scale``, 0 where ``scale`` is 0: an infinite ``gamma`` (``k u >= 1``, a sum too long for
    the dtype to bound) times a zero scale (nothing to sum, every term 0) adds no error, where the
    plain product would be NaN and fail every comparison made with it."""
    with np.errstate(invalid="ignore"):
        out = np.where(np.asarray(scale) == 0, 0.0, g * np.asarray(scale, dtype=np.float64))
    return float(out) if np.ndim(out) == 0 else out


def underflow_floor(k: int, dtype: str, safety: float = SAFETY) -> float:
    """``SAFETY * (K + 1) * eta``: the absolute error that gradual underflow may add to a sum of ``K``
    products (``eta`` half the dtype's smallest subnormal; module docstring, Underflow)."""
    least = float(_dtypes.finfo(dtype).smallest_subnormal)
    return safety * (k + 1) / 2 * least  # eta = least / 2 itself underflows to 0: halve the count


def elementwise_bound(
    abs_sum: np.ndarray,
    expected: np.ndarray,
    k: int,
    dtype: str,
    safety: float = SAFETY,
    accumulate: str | None = None,
    *,
    gradual_underflow: bool = False,
) -> np.ndarray:
    """Per-element bound for a correct direct implementation (module docstring): sums of ``k``
    terms kept in ``accumulate`` (the storage ``dtype`` when ``None``), the result rounded once
    to ``dtype``; the absolute floor is ``underflow_floor`` for a sum of products
    (``gradual_underflow``), else ``TINY``."""
    u_acc = unit_roundoff(accumulate or dtype)
    u64 = unit_roundoff("float64")
    floor = underflow_floor(k, dtype, safety) if gradual_underflow else TINY[_name(dtype)]
    bound: np.ndarray = (
        safety * weighted(gamma(k, u_acc) + gamma(k, u64), np.abs(abs_sum))
        + unit_roundoff(dtype) * np.abs(expected)
        + floor
    )
    return bound


def _name(dtype: str | np.dtype) -> str:
    """The contract's name of a dtype (``"bfloat16"`` for ``ml_dtypes.bfloat16``)."""
    return str(_dtypes.numpy_dtype(dtype))


def _overflow_reach(
    abs_sum: np.ndarray, expected: np.ndarray, k: int, dtype: str, accumulate: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where a correct evaluation's partial sums may pass the accumulation dtype's largest value
    upwards (``K (S + e)/2 (1 + gamma_K)``) and downwards (``K (S - e)/2 (1 + gamma_K)``), and where the
    result itself passes the storage dtype's (``|e| (1 + u)``): the module docstring, Overflow."""
    acc = accumulate or dtype
    s = np.abs(np.asarray(abs_sum, dtype=np.float64))
    e = np.asarray(expected, dtype=np.float64)
    reach = max(k, 1) * (1 + gamma(k, unit_roundoff(acc))) / 2
    top = _dtypes.largest(acc)
    with np.errstate(over="ignore", invalid="ignore"):
        up = reach * (s + e) > top
        down = reach * (s - e) > top
        result = np.abs(e) * (1 + unit_roundoff(dtype)) > _dtypes.largest(dtype)
    return up, down, result


def overflow_possible(
    abs_sum: np.ndarray, expected: np.ndarray, k: int, dtype: str, accumulate: str | None = None
) -> np.ndarray:
    """Where a correct evaluation may overflow in some order of its sum (module docstring, Overflow)."""
    up, down, result = _overflow_reach(abs_sum, expected, k, dtype, accumulate)
    possible: np.ndarray = up | down | result
    return possible


def overflow_explains(
    got: np.ndarray,
    abs_sum: np.ndarray,
    expected: np.ndarray,
    k: int,
    dtype: str,
    accumulate: str | None = None,
) -> np.ndarray:
    """Where ``got``'s NaN or infinity is one a correct evaluation can give, for some order of its sum:
    ``+inf`` where the positive terms can pass the accumulation range, ``-inf`` where the negative
    ones can, NaN where both can, and an infinity of the expected sign where the result passes the
    storage range (module docstring, Overflow). False at every finite ``got``."""
    g = np.asarray(got, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    up, down, result = _overflow_reach(abs_sum, e, k, dtype, accumulate)
    explained: np.ndarray = (
        (np.isposinf(g) & (up | (result & (e > 0))))
        | (np.isneginf(g) & (down | (result & (e < 0))))
        | (np.isnan(g) & up & down)
    )
    return explained


def ulp_distance(got: np.ndarray, expected: np.ndarray, dtype: str) -> np.ndarray:
    """Units in the last place between ``got`` and ``expected`` rounded to ``dtype``.

    Uses the ordered-integer view of IEEE floats, so ``+0`` and ``-0`` are 0 apart.
    Values beyond the dtype's range count as its largest finite number.
    """
    dt = _dtypes.numpy_dtype(dtype)
    itype = _dtypes.bits_dtype(dt)
    top = _dtypes.largest(dt)

    def ordered(a: np.ndarray) -> np.ndarray:
        i = np.ascontiguousarray(np.clip(a, -top, top), dtype=dt).view(itype).astype(np.int64)
        # Map sign-magnitude to a monotone integer line (-0 and +0 both -> 0).
        line: np.ndarray = np.where(i < 0, -(i & np.iinfo(itype).max), i)
        return line

    distance: np.ndarray = np.abs(ordered(got) - ordered(expected))
    return distance


def exact_required(case: Case, caps: Capabilities) -> bool:
    """Whether the answer must match the oracle bit for bit (the module docstring's exact data).

    An operation that is always exact (data movement, selection), or integer data and a direct
    algorithm (``Operation.exact``, noted on the case as ``notes["exact"]`` when it is built).
    Splitting a tied max-pool gradient divides it, so that declaration (or ``any``, or a tied case
    under the course contract, where a split is a convention) is never exact.
    """
    from .contracts import COURSE

    if case.op.family == "max_pool" and (
        caps.value(case.op, "ties") in ("split", "any")
        or (caps.contract == COURSE and case.notes.get("ties"))  # the course accepts a split
    ):
        return False
    if case.op.exact != "always" and _dtypes.is_half(case.dtype) and caps.accumulate == "storage":
        return False  # partial sums rounded to half precision: integers are exact only below 2**11
    return bool(case.notes.get("exact")) and caps.algorithm == "direct"


def error_scale(case: Case, function: str, oracle: Callable[..., Any]) -> dict[str, np.ndarray]:
    """``S``, the bound's error scale, for each output of the contract function ``function``.

    The spec's ``magnitude`` where the operation defines one (element-wise functions, losses);
    otherwise the float64 oracle on absolute values, ``oracle(function, *arrays)``: ``|inputs|`` for
    the forward, ``|dy|`` and ``|inputs|`` for the backward, where max-pool routes by the real ``x`` so
    that the same cells win. Keys are the output names (``y``; the gradients; ``loss`` and ``dz``).
    """
    op = case.op
    forward = function == op.forward
    names = op.outputs if forward else op.grads
    if op.magnitude is not None:
        return {name: case.magnitude(name) for name in names}
    args = [
        None if a is None else np.abs(a) for a in (case.forward_args() if forward else case.backward_args())
    ]
    if not forward and op.family == "max_pool":
        args[1] = case.x
    out = oracle(function, *args)
    values = (out,) if forward or len(op.grads) == 1 else out
    return dict(zip(names, values, strict=True))


@dataclass
class Comparison:
    """The measured agreement of one output with the oracle, and the verdict.

    ``error_ratio`` is ``max |got - expected| / bound`` (0 when equal, ``inf``
    for any difference where exactness is required); ``passed`` is true when it
    is at most 1 and the aggregate tests hold. ``mode`` says which bound was
    applied: ``"exact"``, ``"elementwise"``, ``"normwise"`` (a declared FFT or
    Winograd algorithm) or ``"override"`` (a user's rtol/atol); ``override``
    describes a user's override when one applied.
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
    aggregate_judged: bool = False
    zero_fraction: float = 0.0
    dtype: str = ""
    k: int = 0
    override: str | None = None
    accumulate: str = ""
    """The dtype the bound assumed sums were kept in (the storage dtype, or float32 for a half
    dtype declared to accumulate in float32)."""
    notes: list[str] = field(default_factory=list)

    @property
    def aggregate_ok(self) -> bool:
        """The bias and variance checks hold, or the output is too small for them to judge."""
        if not self.aggregate_judged:
            return True
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
    override: Override | None = None,
    accumulate: str | None = None,
    gradual_underflow: bool = False,
) -> Comparison:
    """Compare ``got`` (in the implementation's dtype) with a float64 ``expected``.

    ``abs_sum`` is the oracle run on absolute values, ``k`` the reduction length,
    ``exact`` demands bitwise equality with the (exactly representable)
    expected values, ``scale`` multiplies the bound (a property comparing two
    computed sides), ``override`` is a user's override for this operation and
    dtype (see ``ToleranceOverrides``), ``accumulate`` the dtype sums are kept in (``dtype``
    when ``None``; ``spec.dtypes.accumulation_dtype``), ``gradual_underflow`` selects the floor of a
    sum of products (``underflow_floor``). Equal infinities and NaN against NaN count as equal; an
    infinity or NaN that a correct evaluation can give by overflowing (``overflow_explains``) is no
    error. Shapes must already agree. In exact mode ``expected`` is rounded once to ``dtype``
    first (a no-op on float32/float64 exact data).
    """
    g = np.asarray(got, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if exact and (override is None or not override.replaces_bound):
        e = _dtypes.round_to(e, dtype)
    s = np.asarray(abs_sum, dtype=np.float64)
    with np.errstate(invalid="ignore"):  # inf - inf: judged below
        err = np.abs(g - e)
    size = int(e.size)
    zero_fraction = float(np.mean(e == 0)) if size else 1.0
    both_nan = np.isnan(g) & np.isnan(e)
    overflowed = overflow_explains(g, s, e, k, dtype, accumulate)
    err = np.where(both_nan | (g == e) | overflowed, 0.0, err)
    err = np.where(np.isnan(err), np.inf, err)
    label = override.describe() if override is not None else None
    if override is not None and override.replaces_bound:
        mode, exact = "override", False
        bound = (override.atol_or_zero + override.rtol_or_zero * np.abs(e)) * scale
    else:
        if override is not None:
            scale *= override.factor_or_one
        mode = "exact" if exact else ("elementwise" if algorithm == "direct" else "normwise")
        bound = (
            np.zeros_like(e)
            if exact
            else elementwise_bound(s, e, k, dtype, accumulate=accumulate, gradual_underflow=gradual_underflow)
            * scale
        )
    if size == 0:
        return Comparison(name, 0, exact, mode, 0.0, 0.0, 0.0, 0, 0, (), 0.0, 0.0, 0.0, dtype=dtype, k=k)
    if mode == "normwise":
        ratios = np.full_like(e, _normwise_ratio(err, s, k, dtype, scale, accumulate))
    else:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            ratios = np.where(err == 0, 0.0, err / bound)
    flat = int(np.argmax(ratios)) if mode != "normwise" else int(np.argmax(err))
    idx = tuple(int(i) for i in np.unravel_index(flat, e.shape))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
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
        dtype=_name(dtype),
        k=k,
        override=label,
        accumulate=_name(accumulate or dtype),
    )
    if mode == "elementwise" and k > 0:
        with np.errstate(invalid="ignore"):  # inf - inf: no aggregate verdict on non-finite errors
            diff = g - e
        _aggregate(comp, diff, e, s, bound, k, dtype, scale, accumulate)
    return comp


def _normwise_ratio(
    err: np.ndarray, s: np.ndarray, k: int, dtype: str, scale: float, accumulate: str | None = None
) -> float:
    """``||got - expected||_F / (SAFETY * gamma_K' * ||S||_F)`` with ``K' = K + log2(size)``.

    A transform-based algorithm (FFT, Winograd) spreads its rounding over the
    whole output, so the bound holds for the error's norm, not per element.
    """
    size = err.size
    k_eff = k + max(1, math.ceil(math.log2(max(2, size))))
    nb = SAFETY * scale * (gamma(k_eff, unit_roundoff(accumulate or dtype)) + gamma(k_eff, 2.0**-53))
    rounding = unit_roundoff(dtype) * float(np.linalg.norm(s)) if accumulate not in (None, dtype) else 0.0
    denom = (
        float(weighted(nb, float(np.linalg.norm(s))))
        + rounding
        + TINY[_name(dtype)] * math.sqrt(max(size, 1))
    )
    return float(np.linalg.norm(err)) / denom


def _aggregate(
    comp: Comparison,
    diff: np.ndarray,
    expected: np.ndarray,
    s: np.ndarray,
    bound: np.ndarray,
    k: int,
    dtype: str,
    scale: float,
    accumulate: str | None = None,
) -> None:
    """Bias and variance checks (``bias_limit``, ``variance_limit``) over the elements whose
    scale ``u * S`` is above the underflow threshold (below it the error is the absolute
    ``TINY`` floor, not a rounding relative to ``S``, and the model does not apply) and whose
    expected value is 0 or a normal number of the storage dtype (a nonzero result below the
    smallest normal rounds with an absolute error, and below half the smallest subnormal to 0,
    every time: a bias towards 0 that correct rounding makes, as ``tanh'`` of large inputs
    does in bfloat16). When
    neither limit can be crossed by elements inside their own bounds, the output is too small
    to judge and the comparison says so. Sums kept wider than the storage dtype (half precision
    with float32 accumulation) are judged in the storage's ``u`` with ``variance_k``'s ``K``."""
    u = max(unit_roundoff(dtype), unit_roundoff(accumulate or dtype))
    tiny = TINY[_name(dtype)]
    mask = (u * s > tiny) & ~((expected != 0) & (np.abs(expected) < tiny))
    t = int(np.count_nonzero(mask))
    if t == 0 or not np.all(np.isfinite(diff[mask])):
        return
    us = u * s[mask]
    e = diff[mask] / us
    reach = bound[mask] / us  # |e_i| <= reach_i for every element inside its bound
    allowed = (1.0 + unit_roundoff("float64") / u) * scale * np.abs(expected[mask]) / s[mask]
    # Two directions of bias: one sign everywhere (an offset, one ULP up) and one sign relative
    # to the result (a scale error), whichever is further past its limit.
    signed = e * np.sign(expected[mask])
    (comp.bias, comp.bias_limit) = max(
        ((float(abs(v.sum())), bias_limit(v, allowed)) for v in (e, signed)), key=_excess
    )
    comp.variance = float((e * e).sum())
    comp.variance_limit = variance_limit(variance_k(k, dtype, accumulate), t, float(reach.max()), scale)
    comp.aggregate_judged = t >= AGGREGATE_MIN_ELEMENTS and (
        comp.bias_limit < float(reach.sum()) or comp.variance_limit < float((reach * reach).sum())
    )
    if not comp.aggregate_judged:
        comp.notes.append(f"aggregate checks: too few elements to judge ({t})")


def variance_k(k: int, dtype: str, accumulate: str | None = None) -> float:
    """The ``K`` of the variance model: ``k`` when sums are kept in the storage dtype; with a
    finer accumulation (``u_acc < u``) the sum's rounding in units of the storage's ``u``,
    ``k (u_acc / u)**2``, plus the one rounding of the result."""
    u, u_acc = unit_roundoff(dtype), unit_roundoff(accumulate or dtype)
    if u_acc >= u:
        return k
    return k * (u_acc / u) ** 2 + 1.0


def _excess(stat_and_limit: tuple[float, float]) -> float:
    """How far a statistic is past its limit, as a ratio (a zero limit: 0 when the statistic is too)."""
    stat, limit = stat_and_limit
    if limit > 0:
        return stat / limit
    return math.inf if stat > 0 else 0.0


BIAS_Z = math.sqrt(2.0 * math.log(4.0 / FALSE_ALARM))
"""``z`` with ``2 exp(-z**2 / 2) = FALSE_ALARM / 2``: the threshold (5.52) of each of the two
self-normalised bias tests (errors as they come, and errors signed by the result)."""

AGGREGATE_MIN_ELEMENTS = math.ceil(BIAS_Z**2)
"""Fewest elements (31) with an aggregate verdict: below ``z**2`` the bias test cannot fail
(Cauchy-Schwarz, see ``bias_limit``), and a variance verdict on so few elements would rest
on a handful of errors that each passed its own bound."""


def bias_limit(e: np.ndarray, allowed: np.ndarray) -> float:
    """Limit on ``|sum e|`` for normalised errors ``e = error / (u S)``.

    Model: ``e_i = b_i + n_i``, a systematic part no larger than one rounding of the
    result per computing side (``|b_i| <= allowed_i``, e.g. a divisor applied as a rounded
    reciprocal, a relative ``u`` on every element) and rounding noise ``n_i`` independent and
    symmetric about 0. Given the magnitudes, the signs of ``n`` are fair coins, so Hoeffding's
    inequality gives ``P(|sum n| >= z sqrt(sum n**2)) <= 2 exp(-z**2 / 2)`` for any number of
    elements and any distribution of magnitudes; ``z = BIAS_Z`` makes that ``FALSE_ALARM / 2``.
    The test runs on ``e`` (an offset of one sign) and on ``e * sign(expected)`` (a scale error,
    whose sign follows the result's), so both together fail correct code with probability at
    most ``FALSE_ALARM``.
    With ``sqrt(sum n**2) <= sqrt(sum e**2) + sqrt(sum b**2)``::

        |sum e| <= sum allowed + z (sqrt(sum e**2) + sqrt(sum allowed**2))

    By Cauchy-Schwarz ``|sum e| <= sqrt(T) sqrt(sum e**2)``, so below ``T = z**2`` (31)
    elements the test cannot fail. A bias of one ULP on every element (1.44 ``u |y|`` on
    average, against the ``u |y|`` allowed) is caught from about a thousand elements on.
    """
    return float(
        allowed.sum()
        + BIAS_Z * (math.sqrt(float((e * e).sum())) + math.sqrt(float((allowed * allowed).sum())))
    )


def variance_limit(k: float, t: int, reach: float, scale: float = 1.0) -> float:
    """Limit on ``sum e**2`` over ``t`` normalised errors, each with ``|e_i| <= reach``.

    Model: the ``e_i`` are independent with second moment at most ``sigma2 = 0.4 K (SAFETY *
    scale)**2`` (TOSA's per-element variance, in the policy's units). The ``e_i**2`` then lie
    in ``[0, reach**2]`` with variance at most ``reach**2 sigma2``, and Bernstein's inequality,
    ``P(sum e**2 - t sigma2 >= d) <= exp(-d**2 / (2 (t reach**2 sigma2 + reach**2 d / 3)))``,
    set equal to ``FALSE_ALARM``, gives ``d = a + sqrt(a**2 + 2 t reach**2 sigma2 L)`` with
    ``a = reach**2 L / 3`` and ``L = ln(1 / FALSE_ALARM)``. The limit is ``t sigma2 + d``; for
    small ``t`` it exceeds ``t reach**2``, which no output inside its bounds can reach.
    """
    sigma2 = 0.4 * k * (SAFETY * scale) ** 2
    log_term = math.log(1.0 / FALSE_ALARM)
    a = reach * reach * log_term / 3.0
    return t * sigma2 + a + math.sqrt(a * a + 2.0 * t * reach * reach * sigma2 * log_term)


def inner_product_bound(k: int, dtype: str, abs_terms: float, dot_terms: float, n_terms: int) -> float:
    """Bound on ``|<a, b> - <c, d>|`` for an adjoint identity evaluated in float64.

    ``abs_terms`` is ``sum S_a * |b| + sum |c| * S_d``: the operands' error
    scales (each computed element is within ``gamma_k S`` of exact) weighted by
    the other factor; ``dot_terms`` is ``sum |a b| + sum |c d|``, the scale of
    the float64 dot products' own rounding over ``n_terms`` products.
    """
    u = unit_roundoff(dtype)
    u64 = unit_roundoff("float64")
    summed = weighted(gamma(k, u) + gamma(k, u64), abs_terms) + weighted(gamma(n_terms, u64), dot_terms)
    return SAFETY * float(summed) + TINY[_name(dtype)]


# --------------------------------------------------------------------------- user overrides

WILDCARD = "*"
"""Matches every operation (or every dtype) in an override."""


@dataclass(frozen=True)
class Override:
    """A user's tolerance for one operation and dtype (either may be ``"*"``).

    Either ``factor`` (multiplies the policy's bounds) or ``rtol``/``atol``
    (replace them by ``atol + rtol * |expected|``); ``source`` says where it
    came from (``"cli"`` or a file name), for the report.
    """

    op: str
    dtype: str
    factor: float | None = None
    rtol: float | None = None
    atol: float | None = None
    source: str = "cli"

    def __post_init__(self) -> None:
        from .networks import NETWORKS
        from .ops import DTYPES, OPERATIONS

        where = f"tolerance override {self.op}:{self.dtype} (from {self.source})"
        if self.op != WILDCARD and self.op not in OPERATIONS and self.op not in NETWORKS:
            raise UsageError(
                f"{where}: unknown operation {self.op!r}; expected one of {', '.join(OPERATIONS)}, "
                f"a network ({', '.join(NETWORKS)}) or *"
            )
        if self.dtype != WILDCARD and self.dtype not in DTYPES:
            raise UsageError(
                f"{where}: unknown dtype {self.dtype!r}; expected one of {', '.join(DTYPES)} or *"
            )
        if self.factor is None and self.rtol is None and self.atol is None:
            raise UsageError(f"{where}: give a factor, or rtol and/or atol")
        if self.factor is not None and (self.rtol is not None or self.atol is not None):
            raise UsageError(f"{where}: give either a factor or rtol/atol, not both")
        for key in ("factor", "rtol", "atol"):
            value = getattr(self, key)
            if value is not None and not (
                isinstance(value, int | float) and math.isfinite(value) and value >= 0
            ):
                raise UsageError(f"{where}: {key}={value!r} must be a finite number >= 0")
        if self.factor is not None and self.factor <= 0:
            raise UsageError(f"{where}: factor={self.factor!r} must be positive (1 keeps the policy)")

    @property
    def replaces_bound(self) -> bool:
        """True for an rtol/atol override (the policy's bound is not used at all)."""
        return self.factor is None

    @property
    def factor_or_one(self) -> float:
        return 1.0 if self.factor is None else float(self.factor)

    @property
    def rtol_or_zero(self) -> float:
        return 0.0 if self.rtol is None else float(self.rtol)

    @property
    def atol_or_zero(self) -> float:
        return 0.0 if self.atol is None else float(self.atol)

    def specificity(self) -> int:
        """2 for an exact operation (plus 1 for an exact dtype): the most specific override wins."""
        return 2 * (self.op != WILDCARD) + (self.dtype != WILDCARD)

    def describe(self) -> str:
        """E.g. ``conv2d:float32 x4 (cli)`` or ``*:float32 rtol=1e-05 atol=0 (tol.toml)``."""
        if self.factor is not None:
            rule = f"x{self.factor:g}"
        else:
            rule = f"rtol={self.rtol_or_zero:g} atol={self.atol_or_zero:g}"
        return f"{self.op}:{self.dtype} {rule} ({self.source})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "dtype": self.dtype,
            "factor": self.factor,
            "rtol": self.rtol,
            "atol": self.atol,
            "source": self.source,
            "description": self.describe(),
        }


@dataclass(frozen=True)
class ToleranceOverrides:
    """Every override of a run; ``lookup`` finds the one for an operation and dtype.

    The most specific entry wins (an exact operation beats ``*``, then an exact
    dtype beats ``*``); among equally specific ones the later wins, so command
    line entries (given after the file's) take precedence.
    """

    entries: tuple[Override, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.entries)

    def lookup(self, op: str, dtype: str) -> Override | None:
        """The override applying to ``op`` in ``dtype``, or ``None``."""
        best: Override | None = None
        for o in self.entries:
            applies = o.op in (op, WILDCARD) and o.dtype in (str(dtype), WILDCARD)
            if applies and (best is None or o.specificity() >= best.specificity()):
                best = o
        return best

    def __add__(self, other: ToleranceOverrides) -> ToleranceOverrides:
        return ToleranceOverrides(self.entries + other.entries)

    def to_list(self) -> list[dict[str, Any]]:
        return [o.to_dict() for o in self.entries]

    @classmethod
    def from_cli(cls, items: Iterable[str]) -> ToleranceOverrides:
        """Parse ``--tolerance`` values (see ``parse_cli_override``)."""
        return cls(tuple(parse_cli_override(item) for item in items))

    @classmethod
    def from_mapping(cls, raw: Any, source: str) -> ToleranceOverrides:
        """Parse ``{op: {dtype: {"factor": F} | {"rtol": R, "atol": A}}}`` (``*`` allowed for either).

        An optional top-level ``"tolerance"`` table holding that mapping is unwrapped.
        """
        if isinstance(raw, Mapping) and set(raw) == {"tolerance"}:
            raw = raw["tolerance"]
        if not isinstance(raw, Mapping):
            raise UsageError(
                f"{source}: expected a table of operation -> dtype -> settings, got {type(raw).__name__}"
            )
        entries = []
        for op, per_dtype in raw.items():
            if not isinstance(per_dtype, Mapping):
                raise UsageError(
                    f"{source}: [{op}] must be a table of dtype -> settings, e.g. [{op}.float32]"
                )
            for dtype, settings in per_dtype.items():
                if not isinstance(settings, Mapping):
                    raise UsageError(
                        f"{source}: [{op}.{dtype}] must be a table with factor, or rtol and/or atol"
                    )
                unknown = set(settings) - {"factor", "rtol", "atol"}
                if unknown:
                    raise UsageError(
                        f"{source}: [{op}.{dtype}] has unknown key(s) {', '.join(sorted(unknown))}; "
                        "expected factor, rtol, atol"
                    )
                entries.append(Override(str(op), str(dtype), source=source, **settings))
        return cls(tuple(entries))

    @classmethod
    def from_file(cls, path: str | Path) -> ToleranceOverrides:
        """Read overrides from a ``.toml`` or ``.json`` file (format of ``from_mapping``)."""
        p = Path(path)
        if not p.is_file():
            raise UsageError(f"tolerance file {str(p)!r} does not exist")
        text = p.read_text(encoding="utf-8")
        try:
            raw = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
            kind = "JSON" if p.suffix.lower() == ".json" else "TOML"
            raise UsageError(f"tolerance file {str(p)!r} is not valid {kind}: {e}") from None
        return cls.from_mapping(raw, p.name)


def parse_cli_override(item: str) -> Override:
    """Parse ``OP[:DTYPE]=VALUE``: VALUE is a factor (``4``) or ``rtol=R[,atol=A]``.

    ``OP`` and ``DTYPE`` may be ``*``; a missing ``DTYPE`` means every dtype.
    Examples: ``conv2d:float32=4``, ``*:float64=0.5``, ``avg_pool2d=rtol=1e-6,atol=1e-9``.
    """
    usage = "expected OP[:DTYPE]=FACTOR or OP[:DTYPE]=rtol=R[,atol=A], e.g. conv2d:float32=4"
    target, sep, value = item.partition("=")
    if not sep or not target or not value:
        raise UsageError(f"--tolerance {item!r}: {usage}")
    op, _, dtype = target.partition(":")
    op, dtype = op.strip(), (dtype.strip() or WILDCARD)
    value = value.strip()
    if "=" not in value:
        try:
            return Override(op, dtype, factor=float(value))
        except ValueError:
            raise UsageError(f"--tolerance {item!r}: {value!r} is not a number; {usage}") from None
    settings: dict[str, float] = {}
    for part in value.split(","):
        key, _, number = part.partition("=")
        key = key.strip()
        if key not in ("rtol", "atol"):
            raise UsageError(f"--tolerance {item!r}: unknown setting {key!r}; {usage}")
        try:
            settings[key] = float(number)
        except ValueError:
            raise UsageError(f"--tolerance {item!r}: {key}={number!r} is not a number") from None
    return Override(op, dtype, rtol=settings.get("rtol"), atol=settings.get("atol"))


_ACTIVE = ToleranceOverrides()


def use_overrides(overrides: ToleranceOverrides) -> None:
    """Install the overrides of this run (the pytest plug-in does, in every process)."""
    global _ACTIVE
    _ACTIVE = overrides


def active_overrides() -> ToleranceOverrides:
    """The overrides installed for this run (none by default)."""
    return _ACTIVE


def override_for(op: str, dtype: str) -> Override | None:
    """The active override for ``op`` in ``dtype``, or ``None``."""
    return _ACTIVE.lookup(op, dtype)


def policy_summary() -> dict[str, Any]:
    """The policy's constants and rules, for reports."""
    return {
        "safety": SAFETY,
        "safety_reason": (
            "the textbook gamma_K bound leaves out a bias added after the sum, intermediates stored in "
            "the output dtype (im2col columns, scattered partials of dx) and divisors applied as a "
            "reciprocal multiply; each adds at most one rounding, at most doubling K"
        ),
        "elementwise": (
            "SAFETY*(gamma_K(u_acc)+gamma_K(u64))*S + u*|expected| + tiny, S = oracle on |inputs|; "
            "u_acc = u except float16/bfloat16 declared to accumulate in float32 (u_acc = 2^-24)"
        ),
        "unit_roundoff": {name: unit_roundoff(name) for name in _dtypes.DTYPES},
        "tiny": dict(TINY),
        "exact": "integer data and a direct algorithm: bitwise equality",
        "normwise": "FFT/Winograd: ||error||_F <= SAFETY*gamma_(K+log2 n)*||S||_F",
        "aggregate": (
            "e = error/(u*S) over T elements, a = (1+u64/u)*|expected|/S (one systematic rounding "
            f"allowed per element), false-alarm probability {FALSE_ALARM:g} per check: |sum e| <= sum a "
            f"+ {BIAS_Z:.2f}*(sqrt(sum e^2) + sqrt(sum a^2)), and the same for e*sign(expected) (self-normalised "
            "sign tests for an offset and a scale error); sum e^2 <= "
            "T*s2 + Bernstein deviation, s2 = 0.4*K*SAFETY^2, |e| <= the element-wise bound; no verdict "
            f"below T = {AGGREGATE_MIN_ELEMENTS} or when passing elements could not cross either limit "
            "(too few elements to judge)"
        ),
        "mistrust_zero_fraction": MISTRUST_ZERO_FRACTION,
    }

"""Value families and memory layouts: how a case's arrays are filled and handed over.

Arrays are built from ``(family, dtype, seed)`` with NumPy's generator rather
than drawn element by element, so an example stays cheap, a shrunk example is
rebuilt exactly from a few numbers, and a reproduction needs no hypothesis.

Families:

``normal``
    standard normal floats (the everyday case);
``exact``
    small integers in ``[-4, 4]`` with about a quarter of the ``x`` entries
    zeroed (benchdnn's density trick): every partial sum is an integer of
    magnitude below ``2**24``, so a direct float32 implementation of conv2d and
    max-pool must match the oracle *exactly*;
``ties``
    integers in ``[0, 2]``: max-pool windows tie on purpose;
``distinct``
    a random permutation of distinct integers for ``x``: no ties, and gaps of 1
    keep finite differences away from max-pool kinks;
``zeros``
    ``x`` all zeros (every max-pool window a tie, every conv output the bias);
``large``
    normal floats scaled by ``2**12``: large magnitudes without overflow (and
    logits beyond ``spec.loss.LARGE_LOGIT``, where a naive log-sum-exp overflows);

and three families drawn only where a property asks for them:

``offset``
    ``distinct`` shifted by one half: no ties and no zeros, so finite
    differences stay off the kinks of relu as well as max-pool;
``soft``
    binary cross-entropy targets anywhere in ``[0, 1]`` (logits normal);
``distinct_exact``
    ``distinct`` for ``x`` and small integers in ``[-4, 4]`` for the other arrays:
    no ties, and every array the same in float32 as in float64 (the small-scope
    sweep, ``tests/small_scope.py``).

Extreme families (``EDGE_FAMILIES``), drawn by the forward and backward properties for
convolution and pooling, compared under the tolerance policy like any other; each is defined
from ``np.finfo`` of the case's dtype, so it means the same in every dtype:

``below_sentinel``
    (max-pooling) every ``x`` in ``[-max, -max/2]``, ``-max`` itself included (``max`` the dtype's
    largest finite value): every window that touches the padding or a ceil-mode overhang holds
    only values below any finite stand-in for ``-inf`` (``-1e30``, ``finfo.min / 2``);
``huge``
    ``x`` of magnitude in ``[max/2, max]``, random signs (capped at ``ORACLE_HEADROOM``, which only
    float64 reaches); ``w``, ``b`` and ``dy`` normal floats
    scaled by ``SMALL_PARTNER`` so that every sum of products stays below ``max / 4`` (the oracle's
    result is finite) while an average pool that adds a window before dividing overflows;
``subnormal``
    ``x`` and ``b`` subnormal (below the smallest normal, down to a few units of the smallest
    subnormal), ``w`` and ``dy`` normal: results are subnormal or barely normal, so code that
    flushes subnormals to zero loses all of them;
``signed_zeros``
    about half of ``x`` ``+0.0`` or ``-0.0`` (both present when there is room), the rest normal:
    the two zeros compare equal, so max-pool windows tie across signs.

Non-finite families (``NONFINITE_FAMILIES``), checked against the non-finite contract
(``spec.nonfinite``) position by position, not by the tolerance:

``nonfinite``
    about a sixth of ``x`` NaN, ``+inf`` or ``-inf`` (each present when there is room), the rest
    normal; ``w``, ``b`` and ``dy`` normal;
``nonfinite_dy``
    ``x``, ``w`` and ``b`` normal, ``dy`` with NaN and infinities as above.

The first input (``x``, or a loss's logits ``z``) carries the family; a
loss's class ``labels`` are uniform over the classes and its binary targets
``y`` are 0 or 1 (uniform in ``[0, 1]`` for ``soft``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from convcheck.spec import OPERATIONS, dtypes
from convcheck.spec.case import Case
from convcheck.spec.params import MaxPoolParams, Params

PRIMARY = ("x", "z")
"""Roles whose values the family describes (a layer's input, a loss's logits)."""

FAMILIES = ("normal", "exact", "ties", "distinct", "zeros", "large")
"""The families every operation is drawn from."""
EXTRA_FAMILIES = ("offset", "soft", "distinct_exact")
"""Families for particular properties (see the module docstring)."""
EDGE_FAMILIES = ("below_sentinel", "huge", "subnormal", "signed_zeros")
"""Extreme families compared under the tolerance policy (see the module docstring)."""
NONFINITE_FAMILIES = ("nonfinite", "nonfinite_dy")
"""Families checked against the non-finite contract (``spec.nonfinite``)."""
EDGE_OPERATIONS = ("conv", "max_pool", "avg_pool")
"""Operation families the extreme and non-finite families are drawn for."""
SMALL_PARTNER = 2.0**-14
"""Scale of ``w``, ``b`` and ``dy`` next to a ``huge`` ``x``: at most 1024 products of an ``x``
below ``max`` and a partner below ``4 * SMALL_PARTNER`` (normal draws stay under 4 in practice)
sum to at most ``max / 4``."""
ORACLE_HEADROOM = float(np.finfo(np.float64).max) / 2.0**11
"""Largest ``huge`` magnitude: the float64 oracles add up to 64 cells of a window before dividing,
which must stay finite (for float64 the family is near, not at, the largest value)."""
INTEGER_FAMILIES = ("exact", "ties", "distinct_exact")
"""Families whose every array holds small integers (so sums are exact)."""

OUT_OF_RANGE = {"float16": ("large",)}
"""Families whose results a dtype cannot hold: in float16 (largest 65504) the products of two
``large`` values (about ``2**24``) overflow, so a correct implementation would return inf."""

SUMMED_OUT_OF_RANGE = {"float16": ("distinct",)}
"""Families whose weighted sums a dtype cannot hold: ``distinct`` values reach half the array's
size (thousands), and a convolution or dense layer sums dozens of them times the weights."""


def for_dtype(families: tuple[str, ...], dtype: str, op_name: str | None = None) -> tuple[str, ...]:
    """``families`` without those whose results ``dtype`` cannot hold (``OUT_OF_RANGE``, and
    ``SUMMED_OUT_OF_RANGE`` for ``op_name`` a convolution or dense layer); never empty."""
    summing = op_name is not None and OPERATIONS[op_name].family in ("conv", "linear")
    dropped = (*OUT_OF_RANGE.get(dtype, ()), *(SUMMED_OUT_OF_RANGE.get(dtype, ()) if summing else ()))
    kept = tuple(f for f in families if f not in dropped)
    return kept or families


LAYOUTS = ("contiguous", "fortran", "channels_last", "sliced", "reversed")
"""Memory layouts an implementation must accept: C order, Fortran order,
channels-last memory seen through a channels-first view, every other element
of a larger buffer, and negative strides."""


def finfo(dtype: str) -> np.finfo:
    """The ``finfo`` of a dtype named by the spec (bfloat16's from ``ml_dtypes``)."""
    return dtypes.finfo(dtype)


def fill(
    family: str, role: str, shape: tuple[int, ...], rng: np.random.Generator, dtype: str = "float64"
) -> np.ndarray:
    """Float64 values of ``family`` for the array playing ``role`` (x, w, b, dy, or a loss's z and y);
    the extreme and non-finite families are defined relative to ``dtype`` (module docstring)."""
    if family in EDGE_FAMILIES or family in NONFINITE_FAMILIES:
        return _fill_edge(family, role, shape, rng, finfo(dtype))
    if role == "y":
        return rng.random(shape) if family == "soft" else rng.integers(0, 2, size=shape).astype(np.float64)
    primary = role in PRIMARY
    if family == "exact" or (family in ("ties", "distinct_exact") and not primary):
        a = rng.integers(-4, 5, size=shape).astype(np.float64)
        if primary:
            a[rng.random(shape) < 0.25] = 0.0
        return a
    if family == "ties":
        return rng.integers(0, 3, size=shape).astype(np.float64)
    if family in ("distinct", "offset", "distinct_exact") and primary:
        size = int(np.prod(shape))
        shift = 0.5 if family == "offset" else 0.0
        return (rng.permutation(size).astype(np.float64) - size // 2 + shift).reshape(shape)
    if family == "zeros" and primary:
        return np.zeros(shape)
    if family == "large":
        return rng.standard_normal(shape) * 2.0**12
    return rng.standard_normal(shape)


def _fill_edge(
    family: str, role: str, shape: tuple[int, ...], rng: np.random.Generator, fi: np.finfo
) -> np.ndarray:
    """The extreme and non-finite families (module docstring)."""
    primary = role in PRIMARY
    top = float(fi.max)
    if family == "below_sentinel" and primary:
        a = -top * 2.0 ** -rng.random(shape)
        a.flat[:1] = -top
        return a
    if family == "huge":
        if not primary:
            return rng.standard_normal(shape) * SMALL_PARTNER
        top = min(top, ORACLE_HEADROOM)
        return rng.choice([-1.0, 1.0], size=shape) * top * 2.0 ** -rng.random(shape)
    if family == "subnormal" and role in ("x", "b"):
        tiny, least = float(fi.tiny), float(fi.smallest_subnormal)
        # 2**-U(1, nmant): from just below the smallest normal down to a few smallest subnormals
        a = rng.choice([-1.0, 1.0], size=shape) * tiny * 2.0 ** -rng.uniform(1, int(fi.nmant) - 2, size=shape)
        return np.where(np.abs(a) < least, least, a)
    a = rng.standard_normal(shape)
    if family == "signed_zeros" and primary:
        _scatter_specials(a, rng, (0.0, -0.0), 0.5)
    if (family == "nonfinite" and primary) or (family == "nonfinite_dy" and role == "dy"):
        _scatter_specials(a, rng, (np.nan, np.inf, -np.inf), 1 / 6)
    return a


def _scatter_specials(
    a: np.ndarray, rng: np.random.Generator, specials: tuple[float, ...], share: float
) -> None:
    """Set about ``share`` of ``a`` (in place) to values taken in turn from ``specials``, the first
    ``len(specials)`` elements always (each special present when ``a`` has room)."""
    flat = a.reshape(-1)
    chosen = np.flatnonzero(rng.random(flat.size) < share)
    chosen = np.union1d(chosen, np.arange(min(len(specials), flat.size)))
    rng.shuffle(chosen)
    for i, at in enumerate(chosen):
        flat[at] = specials[i % len(specials)]


def make_case(
    op_name: str,
    params: Params,
    shapes: dict[str, tuple[int, ...] | None],
    dtype: str,
    family: str = "normal",
    seed: int = 0,
    layout: str = "contiguous",
) -> Case:
    """Build a case deterministically from its description (used by strategies and repro scripts)."""
    op = OPERATIONS[op_name]
    rng = np.random.default_rng(seed)
    inputs: dict[str, np.ndarray | None] = {}
    for name in op.inputs:
        shape = shapes.get(name)
        if shape is None:
            inputs[name] = None
        elif name == "labels":
            classes = (shapes.get("z") or (1, 1))[-1]
            inputs[name] = rng.integers(0, classes, size=shape).astype(np.int64)
        else:
            inputs[name] = fill(family, name, shape, rng, dtype).astype(dtype)
    actual = {k: (None if v is None else v.shape) for k, v in inputs.items()}
    op.check(actual, params)
    dy = None if op.is_loss else fill(family, "dy", op.output_shape(actual, params), rng, dtype).astype(dtype)
    case = Case(op_name, params, inputs, dy, dtype, family, seed, layout)
    case.notes["exact"] = op.exact == "always" or (op.exact == "integer" and family in INTEGER_FAMILIES)
    return case


def pool_windows(x: np.ndarray, p: MaxPoolParams, pad_value: float = -np.inf) -> np.ndarray:
    """Every max-pool window's cells as ``(N, C, *out, prod(kernel))``, padding as ``pad_value``
    (the contract's ``-inf``, or a declared one), the taps in row-major window order.

    Windows that the ``ceil_mode`` overhang pushes past the padded input read
    ``pad_value`` there too (``-inf`` never wins).
    """
    from convcheck.spec import pool

    out = pool.output_spatial(x.shape, p)
    lows = [p.pads(a)[0] for a in range(p.NDIM)]
    need = [
        max((o - 1) * s + d * (k - 1) + 1, n + lo)
        for o, s, d, k, n, lo in zip(out, p.stride, p.dilation, p.kernel_size, x.shape[2:], lows, strict=True)
    ]
    xp = np.full((*x.shape[:2], *need), pad_value)
    xp[(slice(None), slice(None), *(slice(lo, lo + n) for lo, n in zip(lows, x.shape[2:], strict=True)))] = x
    taps = []
    for tap in np.ndindex(*p.kernel_size):
        index = tuple(
            slice(t * d, t * d + (o - 1) * s + 1, s)
            for t, d, o, s in zip(tap, p.dilation, out, p.stride, strict=True)
        )
        taps.append(xp[(slice(None), slice(None), *index)])
    return np.stack(taps, axis=-1)


def window_has_ties(x: np.ndarray, p: MaxPoolParams) -> bool:
    """Whether any max-pool window's maximum is reached by two or more cells."""
    win = pool_windows(x, p)
    return bool(np.any((win == win.max(axis=-1, keepdims=True)).sum(axis=-1) > 1))


def _contiguous(a: np.ndarray) -> np.ndarray:
    return np.array(a, order="C", copy=True)


def _fortran(a: np.ndarray) -> np.ndarray:
    return np.array(a, order="F", copy=True)


def _channels_last(a: np.ndarray) -> np.ndarray:
    """Channels-last memory (NHWC, NLC, NDHWC) seen through the contract's channels-first view."""
    if a.ndim < 3:
        return _contiguous(a)
    last = np.array(np.moveaxis(a, 1, -1), order="C", copy=True)
    return np.moveaxis(last, -1, 1)


def _sliced(a: np.ndarray) -> np.ndarray:
    base = np.zeros((*a.shape[:-1], 2 * a.shape[-1]), dtype=a.dtype)
    base[..., ::2] = a
    return base[..., ::2]


def _reversed(a: np.ndarray) -> np.ndarray:
    axes = tuple(range(max(0, a.ndim - 2), a.ndim))
    flipped = np.array(np.flip(a, axis=axes), order="C", copy=True)
    return np.flip(flipped, axis=axes)


_LAYOUT_FNS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "contiguous": _contiguous,
    "fortran": _fortran,
    "channels_last": _channels_last,
    "sliced": _sliced,
    "reversed": _reversed,
}


def fresh(a: np.ndarray | None, layout: str = "contiguous") -> np.ndarray | None:
    """A new array equal to ``a`` in the given memory layout, sharing no memory with ``a``.

    Made explicitly every time an implementation is called: layout conversions
    such as ``np.asfortranarray`` return the very same object when the array is
    already in that layout, and an implementation that writes into its input
    would then corrupt the suite's own data.
    """
    if a is None:
        return None
    out = _LAYOUT_FNS[layout](a)
    assert not np.shares_memory(out, a)
    return out

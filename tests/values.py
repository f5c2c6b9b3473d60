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
    normal floats scaled by ``2**12``: large magnitudes without overflow.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from convcheck.spec import OPERATIONS
from convcheck.spec.case import Case
from convcheck.spec.params import MaxPool2dParams, Params

FAMILIES = ("normal", "exact", "ties", "distinct", "zeros", "large")
INTEGER_FAMILIES = ("exact", "ties")
"""Families whose every array holds small integers (so sums are exact)."""

LAYOUTS = ("contiguous", "fortran", "channels_last", "sliced", "reversed")
"""Memory layouts an implementation must accept: C order, Fortran order, NHWC
memory seen through an NCHW view, every other element of a larger buffer, and
negative strides."""


def fill(family: str, role: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Float64 values of ``family`` for the array playing ``role`` (x, w, b or dy)."""
    if family == "exact" or (family == "ties" and role != "x"):
        a = rng.integers(-4, 5, size=shape).astype(np.float64)
        if role == "x":
            a[rng.random(shape) < 0.25] = 0.0
        return a
    if family == "ties":
        return rng.integers(0, 3, size=shape).astype(np.float64)
    if family == "distinct" and role == "x":
        size = int(np.prod(shape))
        return (rng.permutation(size).astype(np.float64) - size // 2).reshape(shape)
    if family == "zeros" and role == "x":
        return np.zeros(shape)
    if family == "large":
        return rng.standard_normal(shape) * 2.0**12
    return rng.standard_normal(shape)


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
        inputs[name] = None if shape is None else fill(family, name, shape, rng).astype(dtype)
    op.check({k: (None if v is None else v.shape) for k, v in inputs.items()}, params)
    out_shape = op.output_shape({k: (None if v is None else v.shape) for k, v in inputs.items()}, params)
    dy = fill(family, "dy", out_shape, rng).astype(dtype)
    case = Case(op_name, params, inputs, dy, dtype, family, seed, layout)
    case.notes["exact"] = family in INTEGER_FAMILIES and op_name in ("conv2d", "max_pool2d")
    return case


def pool_windows(x: np.ndarray, p: MaxPool2dParams) -> np.ndarray:
    """Every max-pool window's cells as ``(N, C, OH, OW, KH*KW)``, padding as ``-inf``.

    Windows that the ``ceil_mode`` overhang pushes past the padded input read
    ``-inf`` there too, which never wins.
    """
    from convcheck.spec import pool

    (kh, kw), (sh, sw), (dh, dw) = p.kernel_size, p.stride, p.dilation
    t, _, l, _ = p.padding
    oh, ow = pool.output_hw(x.shape, p)
    need_h = (oh - 1) * sh + dh * (kh - 1) + 1
    need_w = (ow - 1) * sw + dw * (kw - 1) + 1
    xp = np.full((*x.shape[:2], max(need_h, x.shape[2] + t), max(need_w, x.shape[3] + l)), -np.inf)
    xp[:, :, t : t + x.shape[2], l : l + x.shape[3]] = x
    taps = [
        xp[:, :, a * dh : a * dh + (oh - 1) * sh + 1 : sh, e * dw : e * dw + (ow - 1) * sw + 1 : sw]
        for a in range(kh)
        for e in range(kw)
    ]
    return np.stack(taps, axis=-1)


def window_has_ties(x: np.ndarray, p: MaxPool2dParams) -> bool:
    """Whether any max-pool window's maximum is reached by two or more cells."""
    win = pool_windows(x, p)
    return bool(np.any((win == win.max(axis=-1, keepdims=True)).sum(axis=-1) > 1))


def _contiguous(a: np.ndarray) -> np.ndarray:
    return np.array(a, order="C", copy=True)


def _fortran(a: np.ndarray) -> np.ndarray:
    return np.array(a, order="F", copy=True)


def _channels_last(a: np.ndarray) -> np.ndarray:
    if a.ndim != 4:
        return _contiguous(a)
    return np.array(a.transpose(0, 2, 3, 1), order="C", copy=True).transpose(0, 3, 1, 2)


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

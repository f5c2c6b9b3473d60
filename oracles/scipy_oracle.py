"""conv2d by the textbook derivation on ``scipy.signal``, one channel pair at a time.

Notation (one spatial axis; the other is the same): ``xp`` the input zero-padded
by ``(lo, hi)``, kernel ``w`` of length ``K``, stride ``s``, dilation ``d``. Write
``up(a, t)`` for ``a`` with ``t - 1`` zeros inserted between neighbouring
entries, so ``up(w, d)`` is the dilated kernel and ``up(dy, s)`` the
stride-dilated output gradient. For a channel pair (output ``co``, input ``ci``
of the same group)::

    y[i]   = sum_a xp[i*s + a*d] w[a]           = corr_valid(xp, up(w, d))[i*s]
    dxp[p] = sum_{i*s + a*d = p} dy[i] w[a]     = conv_full(up(dy, s), up(w, d))[p]
    dw[a]  = sum_i dy[i] xp[i*s + a*d]          = corr_valid(xp, up(dy, s))[a*d]
    db     = sum_{n, i, j} dy

summed over the batch and, for ``y`` and ``dx``, over the channels the pair
connects. ``conv_full`` is ``convolve2d(mode="full")`` (correlation with the
180-degree rotated kernel); it has length ``(OH-1)*s + d*(K-1) + 1``, which may
fall short of the padded input: the trailing rows/columns that no window
reaches get zero gradient. ``dx`` is then ``dxp`` with the padding cropped off.

Convention ``"convolution"``: the effective kernel is ``flip(w)`` (180 degrees).
Since correlating with a flipped kernel is convolving, ``y`` uses
``convolve2d`` where the cross-correlation uses ``correlate2d`` and ``dxp``
``correlate2d`` where it uses ``convolve2d``; ``dw`` (with respect to the
declared ``w``) is the cross-correlation ``dw`` flipped.

Readability over speed: the loops are meant for the small arrays of a test.
The pooling functions are re-exported from ``numpy_pool`` so that this module
is a complete oracle.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy.signal import convolve2d, correlate2d

from convcheck.spec import conv
from convcheck.spec.errors import InvalidConfiguration
from convcheck.spec.ops import OPERATIONS
from convcheck.spec.params import Conv2dParams

from .numpy_pool import avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward

Pair = tuple[int, int]
Padding = tuple[int, int, int, int]

CROSS_CORRELATION = "cross-correlation"
CONVOLUTION = "convolution"
CONVENTIONS: tuple[str, ...] = OPERATIONS["conv2d"].feature("convention").choices

__all__ = [
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "conv2d_backward",
    "conv2d_forward",
    "max_pool2d_backward",
    "max_pool2d_forward",
]


# --------------------------------------------------------------------------- helpers


def _upsample(a: np.ndarray, step: Pair) -> np.ndarray:
    """``a`` (2-D) with ``step - 1`` zeros inserted between neighbours on each axis."""
    (h, w), (sh, sw) = a.shape, step
    out = np.zeros(((h - 1) * sh + 1, (w - 1) * sw + 1), dtype=np.float64)
    out[::sh, ::sw] = a
    return out


def _pad(x: np.ndarray, padding: Padding) -> np.ndarray:
    """``x`` (NCHW) zero-padded by ``(top, bottom, left, right)``."""
    t, b, l, r = padding
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)))


def _check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"convention={convention!r} must be one of {list(CONVENTIONS)}")


def _prepare(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, p: Conv2dParams, convention: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Float64 ``x, w, b`` after the spec's validity check (raises ``InvalidConfiguration``)."""
    _check_convention(convention)
    x, w = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)
    b = None if b is None else np.asarray(b, dtype=np.float64)
    conv.check(tuple(x.shape), tuple(w.shape), None if b is None else tuple(b.shape), p)
    return x, w, b


def _channel_pairs(w_shape: tuple[int, ...], groups: int) -> Iterator[tuple[int, int, int]]:
    """Yield ``(co, c, ci)``: output channel, its kernel's input slot, and the input channel read."""
    c_out, c_per_group = w_shape[0], w_shape[1]
    out_per_group = c_out // groups
    for co in range(c_out):
        group = co // out_per_group
        for c in range(c_per_group):
            yield co, c, group * c_per_group + c


def _forward_pair(
    xp: np.ndarray, w: np.ndarray, p: Conv2dParams, out_hw: Pair, convention: str
) -> np.ndarray:
    """One channel pair's contribution to ``y``: ``corr_valid(xp, up(w, d))`` at multiples of the stride."""
    corr = correlate2d if convention == CROSS_CORRELATION else convolve2d
    full = corr(xp, _upsample(w, p.dilation), mode="valid")
    (sh, sw), (oh, ow) = p.stride, out_hw
    return full[::sh, ::sw][:oh, :ow]


def _dx_pair(dy: np.ndarray, w: np.ndarray, p: Conv2dParams, padded_hw: Pair, convention: str) -> np.ndarray:
    """One channel pair's ``dxp``: ``conv_full(up(dy, s), up(w, d))`` placed in the padded frame."""
    full = convolve2d if convention == CROSS_CORRELATION else correlate2d
    part = full(_upsample(dy, p.stride), _upsample(w, p.dilation), mode="full")
    dxp = np.zeros(padded_hw, dtype=np.float64)
    dxp[: part.shape[0], : part.shape[1]] = part  # rows/cols no window reaches stay zero
    return dxp


def _dw_pair(xp: np.ndarray, dy: np.ndarray, p: Conv2dParams, k_hw: Pair, convention: str) -> np.ndarray:
    """One channel pair's ``dw``: ``corr_valid(xp, up(dy, s))`` at multiples of the dilation."""
    taps = correlate2d(xp, _upsample(dy, p.stride), mode="valid")
    (dh, dw), (kh, kw) = p.dilation, k_hw
    dw_cc = taps[::dh, ::dw][:kh, :kw]
    return dw_cc if convention == CROSS_CORRELATION else dw_cc[::-1, ::-1]


# --------------------------------------------------------------------------- contract functions


def conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    *,
    stride: Pair,
    padding: Padding,
    dilation: Pair,
    groups: int,
    convention: str = CROSS_CORRELATION,
) -> np.ndarray:
    """``y[n, co] = b[co] + sum_{c} corr_valid(xp[n, g(co)*Cg + c], up(w[co, c], d))[::sh, ::sw]``.

    Cropped to ``spec.conv.output_shape``. With ``convention="convolution"``
    ``convolve2d`` replaces ``correlate2d`` (the kernel is flipped).
    """
    p = Conv2dParams(stride=stride, padding=padding, dilation=dilation, groups=groups)
    x, w, b = _prepare(x, w, b, p, convention)
    y = np.zeros(conv.output_shape(x.shape, w.shape, p), dtype=np.float64)
    xp = _pad(x, p.padding)
    out_hw = (y.shape[2], y.shape[3])
    for n in range(x.shape[0]):
        for co, c, ci in _channel_pairs(w.shape, groups):
            y[n, co] += _forward_pair(xp[n, ci], w[co, c], p, out_hw, convention)
    if b is not None:
        y += b[None, :, None, None]
    return y


def conv2d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    *,
    stride: Pair,
    padding: Padding,
    dilation: Pair,
    groups: int,
    convention: str = CROSS_CORRELATION,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(dx, dw, db)``, the vector-Jacobian products of ``L = sum(y * dy)``.

    ``dx[n, ci] = crop(sum_co conv_full(up(dy[n, co], s), up(w[co, c], d)))``,
    ``dw[co, c] = sum_n corr_valid(xp[n, ci], up(dy[n, co], s))[::dh, ::dw]``,
    ``db[co] = sum_{n, i, j} dy[n, co, i, j]`` (``None`` when ``b`` is ``None``).
    With ``convention="convolution"`` the kernel is flipped (see the module docstring).
    """
    p = Conv2dParams(stride=stride, padding=padding, dilation=dilation, groups=groups)
    x, w, b = _prepare(x, w, b, p, convention)
    dy = np.asarray(dy, dtype=np.float64)
    expected = conv.output_shape(x.shape, w.shape, p)
    if tuple(dy.shape) != expected:
        raise InvalidConfiguration(f"dy.shape={tuple(dy.shape)}, but the output shape is {expected}")
    xp = _pad(x, p.padding)
    dxp = np.zeros(xp.shape, dtype=np.float64)
    dw = np.zeros(w.shape, dtype=np.float64)
    padded_hw, k_hw = (xp.shape[2], xp.shape[3]), (w.shape[2], w.shape[3])
    for n in range(x.shape[0]):
        for co, c, ci in _channel_pairs(w.shape, groups):
            dxp[n, ci] += _dx_pair(dy[n, co], w[co, c], p, padded_hw, convention)
            dw[co, c] += _dw_pair(xp[n, ci], dy[n, co], p, k_hw, convention)
    t, _, l, _ = p.padding
    dx = dxp[:, :, t : t + x.shape[2], l : l + x.shape[3]].copy()
    db = None if b is None else dy.sum(axis=(0, 2, 3))
    return dx, dw, db

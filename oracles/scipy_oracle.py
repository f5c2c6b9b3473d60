"""The SciPy/NumPy oracle: convolution by the textbook derivation on ``scipy.signal``, in 1, 2 and 3-D.

Notation (one spatial axis; the others are the same): ``xp`` the input
zero-padded by ``(lo, hi)``, kernel ``w`` of length ``K``, stride ``s``, dilation
``d``. Write ``up(a, t)`` for ``a`` with ``t - 1`` zeros inserted between
neighbouring entries, so ``up(w, d)`` is the dilated kernel and ``up(dy, s)``
the stride-dilated output gradient. For a channel pair (output ``co``, input
``ci`` of the same group)::

    y[i]   = sum_a xp[i*s + a*d] w[a]           = corr_valid(xp, up(w, d))[i*s]
    dxp[p] = sum_{i*s + a*d = p} dy[i] w[a]     = conv_full(up(dy, s), up(w, d))[p]
    dw[a]  = sum_i dy[i] xp[i*s + a*d]          = corr_valid(xp, up(dy, s))[a*d]
    db     = sum over the batch and every spatial position of dy

summed over the batch and, for ``y`` and ``dx``, over the channels the pair
connects. ``conv_full`` is the full convolution (correlation with the kernel
reversed on every axis, i.e. rotated by 180 degrees in 2-D); it has length
``(O-1)*s + d*(K-1) + 1``, which may fall short of the padded input: the
trailing cells that no window reaches get zero gradient. ``dx`` is then ``dxp``
with the padding cropped off.

One derivation serves every dimension; only the SciPy primitive changes:
``correlate2d``/``convolve2d`` in 2-D, the N-d ``correlate``/``convolve``
(``method="direct"``, never FFT) in 1-D and 3-D.

Convention ``"convolution"``: the effective kernel is ``flip(w)`` (reversed on
every spatial axis). Since correlating with a flipped kernel is convolving,
``y`` uses the convolution where the cross-correlation uses the correlation and
``dxp`` the correlation where it uses the convolution; ``dw`` (with respect to
the declared ``w``) is the cross-correlation ``dw`` flipped.

Readability over speed: the loops are meant for the small arrays of a test.
Pooling (``numpy_pool``) and the other layers and losses (``layers``) are
re-exported so that this module is a complete oracle for every contract function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

import numpy as np
from scipy.signal import convolve, convolve2d, correlate, correlate2d

from convcheck.spec import conv
from convcheck.spec.errors import InvalidConfiguration
from convcheck.spec.ops import OPERATIONS
from convcheck.spec.ops import bind_contract as _bind_contract
from convcheck.spec.ops import contract_names as _contract_names
from convcheck.spec.params import ConvParams

from . import layers as _layers
from . import numpy_pool as _numpy_pool
from .contract import CROSS_CORRELATION
from .contract import oracle_functions as _oracle_functions

Ints = tuple[int, ...]
Filter = Callable[[np.ndarray, np.ndarray, str], np.ndarray]
"""A SciPy primitive: ``f(a, kernel, mode)`` with ``mode`` ``"valid"`` or ``"full"``."""

CONVOLUTION = "convolution"
CONVENTIONS: tuple[str, ...] = OPERATIONS["conv2d"].feature("convention").choices


# --------------------------------------------------------------------------- helpers


def _primitives(ndim: int) -> tuple[Filter, Filter]:
    """``(correlate, convolve)`` for arrays of ``ndim`` axes: the 2-D routines in 2-D, else the N-d ones."""
    if ndim == 2:
        return correlate2d, convolve2d
    return partial(correlate, method="direct"), partial(convolve, method="direct")


def _upsample(a: np.ndarray, step: Ints) -> np.ndarray:
    """``a`` with ``step - 1`` zeros inserted between neighbours on each axis."""
    out = np.zeros(tuple((n - 1) * s + 1 for n, s in zip(a.shape, step, strict=True)), dtype=np.float64)
    out[tuple(slice(None, None, s) for s in step)] = a
    return out


def _every(step: Ints, count: Ints) -> tuple[slice, ...]:
    """Index taking every ``step``-th entry on each axis, the first ``count`` of them."""
    return tuple(slice(None, s * (c - 1) + 1, s) for s, c in zip(step, count, strict=True))


def _pad(x: np.ndarray, p: ConvParams) -> np.ndarray:
    """``x`` (``N, C, *spatial``) zero-padded by ``p.pads(a)`` on each spatial axis ``a``."""
    return np.pad(x, ((0, 0), (0, 0), *(p.pads(a) for a in range(p.NDIM))))


def _check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"convention={convention!r} must be one of {list(CONVENTIONS)}")


def _prepare(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, p: ConvParams, convention: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Float64 ``x, w, b`` after the spec's validity check (raises ``InvalidConfiguration``)."""
    _check_convention(convention)
    x, w = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)
    b = None if b is None else np.asarray(b, dtype=np.float64)
    conv.check(tuple(x.shape), tuple(w.shape), None if b is None else tuple(b.shape), p)
    return x, w, b


def _channel_pairs(w_shape: Ints, groups: int) -> Iterator[tuple[int, int, int]]:
    """Yield ``(co, c, ci)``: output channel, its kernel's input slot, and the input channel read."""
    c_out, c_per_group = w_shape[0], w_shape[1]
    out_per_group = c_out // groups
    for co in range(c_out):
        group = co // out_per_group
        for c in range(c_per_group):
            yield co, c, group * c_per_group + c


def _forward_pair(xp: np.ndarray, w: np.ndarray, p: ConvParams, out: Ints, convention: str) -> np.ndarray:
    """One channel pair's contribution to ``y``: ``corr_valid(xp, up(w, d))`` at multiples of the stride."""
    correlate_, convolve_ = _primitives(p.NDIM)
    corr = correlate_ if convention == CROSS_CORRELATION else convolve_
    full = corr(xp, _upsample(w, p.dilation), "valid")
    return full[_every(p.stride, out)]


def _dx_pair(dy: np.ndarray, w: np.ndarray, p: ConvParams, padded: Ints, convention: str) -> np.ndarray:
    """One channel pair's ``dxp``: ``conv_full(up(dy, s), up(w, d))`` placed in the padded frame."""
    correlate_, convolve_ = _primitives(p.NDIM)
    full = convolve_ if convention == CROSS_CORRELATION else correlate_
    part = full(_upsample(dy, p.stride), _upsample(w, p.dilation), "full")
    dxp = np.zeros(padded, dtype=np.float64)
    dxp[tuple(slice(n) for n in part.shape)] = part  # cells no window reaches stay zero
    return dxp


def _dw_pair(xp: np.ndarray, dy: np.ndarray, p: ConvParams, k: Ints, convention: str) -> np.ndarray:
    """One channel pair's ``dw``: ``corr_valid(xp, up(dy, s))`` at multiples of the dilation."""
    correlate_, _ = _primitives(p.NDIM)
    taps = correlate_(xp, _upsample(dy, p.stride), "valid")
    dw_cc = taps[_every(p.dilation, k)]
    return dw_cc if convention == CROSS_CORRELATION else dw_cc[(slice(None, None, -1),) * p.NDIM]


# --------------------------------------------------------------------------- generic definitions


def conv_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, p: ConvParams, convention: str = CROSS_CORRELATION
) -> np.ndarray:
    """``y[n, co] = b[co] + sum_c corr_valid(xp[n, g(co)*Cg + c], up(w[co, c], d))`` at stride multiples.

    Any dimension (``p.NDIM``); cropped to ``spec.conv.output_shape``. With
    ``convention="convolution"`` the convolution replaces the correlation (the
    kernel is flipped).
    """
    x, w, b = _prepare(x, w, b, p, convention)
    y = np.zeros(conv.output_shape(x.shape, w.shape, p), dtype=np.float64)
    xp = _pad(x, p)
    out = y.shape[2:]
    for n in range(x.shape[0]):
        for co, c, ci in _channel_pairs(w.shape, p.groups):
            y[n, co] += _forward_pair(xp[n, ci], w[co, c], p, out, convention)
    if b is not None:
        y += b.reshape(-1, *(1,) * p.NDIM)
    return y


def conv_backward(
    dy: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    p: ConvParams,
    convention: str = CROSS_CORRELATION,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(dx, dw, db)``, the vector-Jacobian products of ``L = sum(y * dy)``, any dimension.

    ``dx[n, ci] = crop(sum_co conv_full(up(dy[n, co], s), up(w[co, c], d)))``,
    ``dw[co, c] = sum_n corr_valid(xp[n, ci], up(dy[n, co], s))`` at dilation multiples,
    ``db[co] = sum of dy[:, co]`` over the batch and space (``None`` when ``b`` is ``None``).
    With ``convention="convolution"`` the kernel is flipped (see the module docstring).
    """
    x, w, b = _prepare(x, w, b, p, convention)
    dy = np.asarray(dy, dtype=np.float64)
    expected = conv.output_shape(x.shape, w.shape, p)
    if tuple(dy.shape) != expected:
        raise InvalidConfiguration(f"dy.shape={tuple(dy.shape)}, but the output shape is {expected}")
    xp = _pad(x, p)
    dxp = np.zeros(xp.shape, dtype=np.float64)
    dw = np.zeros(w.shape, dtype=np.float64)
    padded, k = xp.shape[2:], w.shape[2:]
    for n in range(x.shape[0]):
        for co, c, ci in _channel_pairs(w.shape, p.groups):
            dxp[n, ci] += _dx_pair(dy[n, co], w[co, c], p, padded, convention)
            dw[co, c] += _dw_pair(xp[n, ci], dy[n, co], p, k, convention)
    crop = tuple(slice(p.pads(a)[0], p.pads(a)[0] + size) for a, size in enumerate(x.shape[2:]))
    dx = dxp[(slice(None), slice(None), *crop)].copy()
    db = None if b is None else dy.sum(axis=(0, *range(2, dy.ndim)))
    return dx, dw, db


# --------------------------------------------------------------------------- contract functions


_BY_ND = "SciPy's N-d ``correlate``/``convolve``"
_BY_2D = "SciPy's ``correlate2d``/``convolve2d``"

# Pooling and the layers without windows are computed by their own modules.
globals().update(
    {name: getattr(m, name) for m in (_layers, _numpy_pool) for name in _contract_names(vars(m))}
)

__all__ = sorted(
    [
        "conv_backward",
        "conv_forward",
        *_bind_contract(
            globals(),
            per_dimension=_oracle_functions(lambda op: _BY_2D if op.ndim == 2 else _BY_ND),
        ),
    ]
)

"""Readable NumPy reference implementation of the convcheck contract, written from the equations.

Clarity first: convolution and pooling loop over the output positions ``o`` (one
index per spatial axis, ``(i, j)`` in 2-D) and let NumPy handle the batch and
channel axes; no stride tricks, no im2col. One N-d function per operation and
direction serves the 1-D, 2-D and 3-D contract functions alike (the rank of
``x`` tells them apart). It is slow on large inputs and meant as a readable
statement of the semantics. The layers without windows (activations,
``linear``, ``flatten``, the losses) are the one-line formulas of
``numpy_layers``.

Notation: ``x`` is (N, C_in, *spatial); ``padding`` holds a ``(lo, hi)`` pair per
spatial axis (``(top, bottom, left, right)`` in 2-D); on each axis, window ``o``
reads the padded-input cells ``o*s + a*d`` for the kernel taps ``a < k``, i.e.
the input cells ``o*s - lo + a*d``. In 2-D, for window ``(i, j)`` and tap ``(a, e)``:

conv (cross-correlation; ``xp`` is ``x`` zero-padded, ``G = groups``,
``Cg = C_in / G``, ``g(co)`` the group of output channel ``co``)::

    y[n, co, i, j] = b[co] + sum_{c < Cg, a, e} xp[n, g(co)*Cg + c, i*sh + a*dh, j*sw + e*dw] * w[co, c, a, e]

and for ``L = sum(y * dy)`` (batch summed)::

    dw[co, c, a, e]  = sum_{n, i, j} dy[n, co, i, j] * xp[n, g(co)*Cg + c, i*sh + a*dh, j*sw + e*dw]
    dxp[n, g*Cg + c, i*sh + a*dh, j*sw + e*dw] += sum_{co in g} dy[n, co, i, j] * w[co, c, a, e]
    db[co]           = sum_{n, i, j} dy[n, co, i, j]

with ``dx`` the interior of ``dxp`` (gradients landing on padding are dropped).

max pool (padding counts as ``-inf``, so only real cells compete)::

    y[n, c, i, j] = max over the real cells of window (i, j)
    dx[n, c, winner(i, j)] += dy[n, c, i, j]

where ``winner`` is the *first* maximum in row-major window order.

avg pool (``D(i, j)`` the product over the axes of ``spec.shapes.avg_divisor``)::

    y[n, c, i, j] = (sum over the real cells of window (i, j)) / D(i, j)
    dx[n, c, cell] += dy[n, c, i, j] / D(i, j)   for every real cell of window (i, j)

The same holds with one spatial index (1-D) or three (3-D). Arrays keep the
input's dtype throughout; outputs are fresh arrays.
"""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING as _TYPE_CHECKING

import numpy as np

from convcheck.spec.ops import bind_contract as _bind_contract
from convcheck.spec.shapes import at as _at
from convcheck.spec.shapes import avg_divisor

from ._windows import conv_output_shape, pad_pairs, pool_output_shape, real_taps
from .numpy_layers import *  # noqa: F403  (the contract's layers without windows, re-exported)

CONVCHECK_CAPABILITIES: dict = {}

Sizes = tuple[int, ...]


# --------------------------------------------------------------------------- conv


def _conv_window(position: Sizes, kernel: Sizes, stride: Sizes, dilation: Sizes) -> tuple[slice, ...]:
    """Padded-input slices of the window at output ``position``: cells ``o*s + a*d`` on each axis."""
    return tuple(
        slice(o * s, o * s + d * (k - 1) + 1, d) for o, k, s, d in zip(position, kernel, stride, dilation)
    )


def _zero_pad(x: np.ndarray, padding: Sizes) -> np.ndarray:
    """``x`` padded with zeros by the ``(lo, hi)`` pairs of ``padding`` (a fresh array, same dtype)."""
    return np.pad(x, ((0, 0), (0, 0), *pad_pairs(padding)))


def conv_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    *,
    stride: Sizes,
    padding: Sizes,
    dilation: Sizes,
    groups: int,
) -> np.ndarray:
    """``y[n, co, o] = b[co] + sum_{c, a} xp[n, g(co)*Cg + c, o*s + a*d] * w[co, c, a]`` (``o``, ``a`` N-d)."""
    w = np.asarray(w, dtype=x.dtype)
    c_out, cg = w.shape[:2]
    cog = c_out // groups
    out = conv_output_shape(x.shape[2:], w.shape[2:], stride, padding, dilation)
    reduced = tuple(range(1, w.ndim))  # (c, *kernel taps)
    xp = _zero_pad(x, padding)
    y = np.zeros((x.shape[0], c_out, *out), dtype=x.dtype)
    for position in np.ndindex(*out):
        patch = xp[_at(..., *_conv_window(position, w.shape[2:], stride, dilation))]  # (N, C_in, *K)
        for g in range(groups):
            cin, cout = slice(g * cg, (g + 1) * cg), slice(g * cog, (g + 1) * cog)
            # sum over (c, *taps): (N, Cg, *K) x (Cog, Cg, *K) -> (N, Cog)
            y[(slice(None), cout, *position)] = np.tensordot(patch[:, cin], w[cout], axes=(reduced, reduced))
    if b is not None:
        y += np.asarray(b, dtype=x.dtype).reshape(-1, *(1,) * len(out))
    return y


def conv_backward(
    dy: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    *,
    stride: Sizes,
    padding: Sizes,
    dilation: Sizes,
    groups: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(dx, dw, db)``: each window scatters ``dy[n, co, o] * w`` into ``dxp`` and ``dy * xp`` into ``dw``."""
    w = np.asarray(w, dtype=x.dtype)
    dy = np.asarray(dy, dtype=x.dtype)
    c_out, cg = w.shape[:2]
    cog = c_out // groups
    xp = _zero_pad(x, padding)
    dxp = np.zeros_like(xp)
    dw = np.zeros(w.shape, dtype=x.dtype)
    for position in np.ndindex(*dy.shape[2:]):
        window = _conv_window(position, w.shape[2:], stride, dilation)
        patch = xp[_at(..., *window)]  # (N, C_in, *K)
        for g in range(groups):
            cin, cout = slice(g * cg, (g + 1) * cg), slice(g * cog, (g + 1) * cog)
            d = dy[(slice(None), cout, *position)]  # (N, Cog)
            # dw[co, c, a] += sum_n d[n, co] * patch[n, c, a]
            dw[cout] += np.tensordot(d, patch[:, cin], axes=([0], [0]))
            # dxp[n, c, window] += sum_co d[n, co] * w[co, c, a]
            dxp[(slice(None), cin, *window)] += np.tensordot(d, w[cout], axes=([1], [0]))
    interior = tuple(slice(lo, lo + n) for n, (lo, _) in zip(x.shape[2:], pad_pairs(padding)))
    dx = np.ascontiguousarray(dxp[_at(..., *interior)])
    db = None if b is None else dy.sum(axis=(0, *range(2, dy.ndim)))
    return dx, dw, db


# --------------------------------------------------------------------------- pooling


def _real_window(
    position: Sizes, spatial: Sizes, kernel: Sizes, stride: Sizes, padding: Sizes, dilation: Sizes
) -> tuple[range, ...]:
    """Input coordinates (in window order) of the real cells of the window at ``position``, per axis."""
    return tuple(
        real_taps(o, n, k, s, lo, d)
        for o, n, k, s, (lo, _), d in zip(position, spatial, kernel, stride, pad_pairs(padding), dilation)
    )


def _as_slices(cells: tuple[range, ...]) -> tuple[slice, ...]:
    """The slices selecting the (non-empty) index ranges ``cells``."""
    return tuple(slice(r.start, r[-1] + 1, r.step) for r in cells)


def max_pool_forward(
    x: np.ndarray,
    *,
    kernel_size: Sizes,
    stride: Sizes,
    padding: Sizes,
    dilation: Sizes,
    ceil_mode: bool,
) -> np.ndarray:
    """``y[n, c, o] = max`` of the real cells of window ``o`` (padding is ``-inf``)."""
    spatial = x.shape[2:]
    out = pool_output_shape(spatial, kernel_size, stride, padding, dilation, ceil_mode)
    y = np.empty((*x.shape[:2], *out), dtype=x.dtype)
    for position in np.ndindex(*out):
        cells = _real_window(position, spatial, kernel_size, stride, padding, dilation)
        y[_at(..., *position)] = x[_at(..., *_as_slices(cells))].max(axis=tuple(range(2, x.ndim)))
    return y


def max_pool_backward(
    dy: np.ndarray,
    x: np.ndarray,
    *,
    kernel_size: Sizes,
    stride: Sizes,
    padding: Sizes,
    dilation: Sizes,
    ceil_mode: bool,
) -> np.ndarray:
    """``dx[n, c, winner(o)] += dy[n, c, o]``, ``winner`` the first maximum in row-major window order."""
    dy = np.asarray(dy, dtype=x.dtype)
    n, c, *spatial = x.shape
    dx = np.zeros(x.shape, dtype=x.dtype)
    batch, chan = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
    for position in np.ndindex(*dy.shape[2:]):
        cells = _real_window(position, tuple(spatial), kernel_size, stride, padding, dilation)
        patch = x[_at(..., *_as_slices(cells))]  # (N, C, *window)
        first = patch.reshape(n, c, -1).argmax(axis=2)  # argmax returns the first maximum
        taps = np.unravel_index(first, tuple(len(r) for r in cells))
        winner = tuple(np.asarray(r)[t] for r, t in zip(cells, taps))
        # one winner per (n, c): the fancy-indexed cells are distinct, so += does not lose updates
        dx[(batch, chan, *winner)] += dy[(..., *position)]
    return dx


def _avg_window_divisor(
    position: Sizes, spatial: Sizes, kernel: Sizes, stride: Sizes, padding: Sizes, count_include_pad: bool
) -> int:
    """``D(o)``: the product over the axes of ``spec.shapes.avg_divisor``."""
    return prod(
        avg_divisor(o, n, k, s, lo, hi, count_include_pad)
        for o, n, k, s, (lo, hi) in zip(position, spatial, kernel, stride, pad_pairs(padding))
    )


def avg_pool_forward(
    x: np.ndarray,
    *,
    kernel_size: Sizes,
    stride: Sizes,
    padding: Sizes,
    ceil_mode: bool,
    count_include_pad: bool,
) -> np.ndarray:
    """``y[n, c, o] = sum of (the real cells of window o) / D(o)``, each cell divided first."""
    spatial = x.shape[2:]
    ones = (1,) * len(spatial)
    out = pool_output_shape(spatial, kernel_size, stride, padding, ones, ceil_mode)
    y = np.empty((*x.shape[:2], *out), dtype=x.dtype)
    for position in np.ndindex(*out):
        cells = _real_window(position, spatial, kernel_size, stride, padding, ones)
        div = _avg_window_divisor(position, spatial, kernel_size, stride, padding, count_include_pad)
        # each cell divided before the sum: no partial sum exceeds the largest |x| (no overflow)
        y[_at(..., *position)] = (x[_at(..., *_as_slices(cells))] / x.dtype.type(div)).sum(
            axis=tuple(range(2, x.ndim))
        )
    return y


def avg_pool_backward(
    dy: np.ndarray,
    x: np.ndarray,
    *,
    kernel_size: Sizes,
    stride: Sizes,
    padding: Sizes,
    ceil_mode: bool,
    count_include_pad: bool,
) -> np.ndarray:
    """``dx[n, c, cell] += dy[n, c, o] / D(o)`` for every real cell of window ``o``."""
    dy = np.asarray(dy, dtype=x.dtype)
    spatial = x.shape[2:]
    ones = (1,) * len(spatial)
    dx = np.zeros(x.shape, dtype=x.dtype)
    for position in np.ndindex(*dy.shape[2:]):
        cells = _real_window(position, spatial, kernel_size, stride, padding, ones)
        div = _avg_window_divisor(position, spatial, kernel_size, stride, padding, count_include_pad)
        dx[_at(..., *_as_slices(cells))] += (dy[_at(..., *position)] / div)[_at(..., *(None,) * len(spatial))]
    return dx


# --------------------------------------------------------------------------- the contract's names
# One N-d function per operation and direction; the rank of ``x`` selects the dimension.

if _TYPE_CHECKING:  # bind_contract binds the per-dimension names at import, where mypy cannot see
    from collections.abc import Callable
    from typing import Any

    def __getattr__(name: str) -> Callable[..., Any]:
        raise AttributeError(name)


__all__ = ["CONVCHECK_CAPABILITIES", *_bind_contract(globals())]

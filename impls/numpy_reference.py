"""Readable NumPy reference implementation of the convcheck contract, written from the equations.

Clarity first: every function loops over the output positions ``(i, j)`` and
lets NumPy handle the batch and channel axes; no stride tricks, no im2col. It is
slow on large inputs and meant as a readable statement of the semantics.

Notation: ``x`` is (N, C_in, H, W); ``padding = (top, bottom, left, right)``;
window ``(i, j)`` reads the padded-input cells ``(i*sh + a*dh, j*sw + e*dw)``
for the kernel taps ``a < KH``, ``e < KW``, i.e. the input cells
``(i*sh - top + a*dh, j*sw - left + e*dw)``.

conv2d (cross-correlation; ``xp`` is ``x`` zero-padded, ``G = groups``,
``Cg = C_in / G``, ``g(co)`` the group of output channel ``co``)::

    y[n, co, i, j] = b[co] + sum_{c < Cg, a, e} xp[n, g(co)*Cg + c, i*sh + a*dh, j*sw + e*dw] * w[co, c, a, e]

and for ``L = sum(y * dy)`` (batch summed)::

    dw[co, c, a, e]  = sum_{n, i, j} dy[n, co, i, j] * xp[n, g(co)*Cg + c, i*sh + a*dh, j*sw + e*dw]
    dxp[n, g*Cg + c, i*sh + a*dh, j*sw + e*dw] += sum_{co in g} dy[n, co, i, j] * w[co, c, a, e]
    db[co]           = sum_{n, i, j} dy[n, co, i, j]

with ``dx`` the interior of ``dxp`` (gradients landing on padding are dropped).

max_pool2d (padding counts as ``-inf``, so only real cells compete)::

    y[n, c, i, j] = max over the real cells of window (i, j)
    dx[n, c, winner(i, j)] += dy[n, c, i, j]

where ``winner`` is the *first* maximum in row-major window order.

avg_pool2d (``D(i, j)`` the divisor of ``spec.shapes.avg_divisor``, one factor per axis)::

    y[n, c, i, j] = (sum over the real cells of window (i, j)) / D(i, j)
    dx[n, c, cell] += dy[n, c, i, j] / D(i, j)   for every real cell of window (i, j)

Arrays keep the input's dtype throughout; outputs are fresh arrays.
"""

from __future__ import annotations

import numpy as np

from convcheck.spec.shapes import avg_divisor

from ._windows import conv_output_hw, pool_output_hw, real_taps

CONVCHECK_CAPABILITIES: dict = {}

Pair = tuple[int, int]
Padding = tuple[int, int, int, int]


# --------------------------------------------------------------------------- conv2d


def _conv_window(i: int, j: int, kernel: Pair, stride: Pair, dilation: Pair) -> tuple[slice, slice]:
    """Padded-input slices of window ``(i, j)``: rows ``i*sh + a*dh``, columns ``j*sw + e*dw``."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
    cols = slice(j * sw, j * sw + dw * (kw - 1) + 1, dw)
    return rows, cols


def _zero_pad(x: np.ndarray, padding: Padding) -> np.ndarray:
    """``x`` padded with zeros by ``(top, bottom, left, right)`` (a fresh array, same dtype)."""
    top, bottom, left, right = padding
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))


def conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    *,
    stride: Pair,
    padding: Padding,
    dilation: Pair,
    groups: int,
) -> np.ndarray:
    """``y[n, co, i, j] = b[co] + sum_{c, a, e} xp[n, g(co)*Cg + c, i*sh + a*dh, j*sw + e*dw] * w[co, c, a, e]``."""
    w = np.asarray(w, dtype=x.dtype)
    n, _, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    cog = c_out // groups
    oh, ow = conv_output_hw((h, wd), (kh, kw), stride, padding, dilation)
    xp = _zero_pad(x, padding)
    y = np.zeros((n, c_out, oh, ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            rows, cols = _conv_window(i, j, (kh, kw), stride, dilation)
            patch = xp[:, :, rows, cols]  # (N, C_in, KH, KW)
            for g in range(groups):
                cin, cout = slice(g * cg, (g + 1) * cg), slice(g * cog, (g + 1) * cog)
                # sum over (c, a, e): (N, Cg, KH, KW) x (Cog, Cg, KH, KW) -> (N, Cog)
                y[:, cout, i, j] = np.tensordot(patch[:, cin], w[cout], axes=([1, 2, 3], [1, 2, 3]))
    if b is not None:
        y += np.asarray(b, dtype=x.dtype)[:, None, None]
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
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(dx, dw, db)``: each window scatters ``dy[n, co, i, j] * w`` into ``dxp`` and ``dy * xp`` into ``dw``."""
    w = np.asarray(w, dtype=x.dtype)
    dy = np.asarray(dy, dtype=x.dtype)
    _, _, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    cog = c_out // groups
    top, _, left, _ = padding
    oh, ow = dy.shape[2:]
    xp = _zero_pad(x, padding)
    dxp = np.zeros_like(xp)
    dw = np.zeros(w.shape, dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            rows, cols = _conv_window(i, j, (kh, kw), stride, dilation)
            patch = xp[:, :, rows, cols]  # (N, C_in, KH, KW)
            for g in range(groups):
                cin, cout = slice(g * cg, (g + 1) * cg), slice(g * cog, (g + 1) * cog)
                d = dy[:, cout, i, j]  # (N, Cog)
                # dw[co, c, a, e] += sum_n d[n, co] * patch[n, c, a, e]
                dw[cout] += np.tensordot(d, patch[:, cin], axes=([0], [0]))
                # dxp[n, c, window] += sum_co d[n, co] * w[co, c, a, e]
                dxp[:, cin, rows, cols] += np.tensordot(d, w[cout], axes=([1], [0]))
    dx = np.ascontiguousarray(dxp[:, :, top : top + h, left : left + wd])
    db = None if b is None else dy.sum(axis=(0, 2, 3))
    return dx, dw, db


# --------------------------------------------------------------------------- pooling


def _real_window(
    i: int, j: int, hw: Pair, kernel: Pair, stride: Pair, padding: Padding, dilation: Pair
) -> tuple[range, range]:
    """Input rows and columns (in window order) of the real cells of window ``(i, j)``."""
    rows = real_taps(i, hw[0], kernel[0], stride[0], padding[0], dilation[0])
    cols = real_taps(j, hw[1], kernel[1], stride[1], padding[2], dilation[1])
    return rows, cols


def _as_slice(r: range) -> slice:
    """The slice selecting the (non-empty) index range ``r``."""
    return slice(r.start, r[-1] + 1, r.step)


def max_pool2d_forward(
    x: np.ndarray,
    *,
    kernel_size: Pair,
    stride: Pair,
    padding: Padding,
    dilation: Pair,
    ceil_mode: bool,
) -> np.ndarray:
    """``y[n, c, i, j] = max`` of the real cells of window ``(i, j)`` (padding is ``-inf``)."""
    n, c, h, wd = x.shape
    oh, ow = pool_output_hw((h, wd), kernel_size, stride, padding, dilation, ceil_mode)
    y = np.empty((n, c, oh, ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            rows, cols = _real_window(i, j, (h, wd), kernel_size, stride, padding, dilation)
            y[:, :, i, j] = x[:, :, _as_slice(rows), _as_slice(cols)].max(axis=(2, 3))
    return y


def max_pool2d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    *,
    kernel_size: Pair,
    stride: Pair,
    padding: Padding,
    dilation: Pair,
    ceil_mode: bool,
) -> np.ndarray:
    """``dx[n, c, winner(i, j)] += dy[n, c, i, j]``, ``winner`` the first maximum in row-major order."""
    dy = np.asarray(dy, dtype=x.dtype)
    n, c, h, wd = x.shape
    oh, ow = dy.shape[2:]
    dx = np.zeros(x.shape, dtype=x.dtype)
    batch, chan = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
    for i in range(oh):
        for j in range(ow):
            rows, cols = _real_window(i, j, (h, wd), kernel_size, stride, padding, dilation)
            patch = x[:, :, _as_slice(rows), _as_slice(cols)]  # (N, C, r, c)
            first = patch.reshape(n, c, -1).argmax(axis=2)  # argmax returns the first maximum
            r, q = np.unravel_index(first, (len(rows), len(cols)))
            # one winner per (n, c): the fancy-indexed cells are distinct, so += does not lose updates
            dx[batch, chan, np.asarray(rows)[r], np.asarray(cols)[q]] += dy[:, :, i, j]
    return dx


def _avg_window_divisor(
    i: int, j: int, hw: Pair, kernel: Pair, stride: Pair, padding: Padding, count_include_pad: bool
) -> int:
    """``D(i, j)``: the product of the two axes' ``spec.shapes.avg_divisor``."""
    top, bottom, left, right = padding
    dh = avg_divisor(i, hw[0], kernel[0], stride[0], top, bottom, count_include_pad)
    dw = avg_divisor(j, hw[1], kernel[1], stride[1], left, right, count_include_pad)
    return dh * dw


def avg_pool2d_forward(
    x: np.ndarray,
    *,
    kernel_size: Pair,
    stride: Pair,
    padding: Padding,
    ceil_mode: bool,
    count_include_pad: bool,
) -> np.ndarray:
    """``y[n, c, i, j] = (sum of the real cells of window (i, j)) / D(i, j)``."""
    n, c, h, wd = x.shape
    oh, ow = pool_output_hw((h, wd), kernel_size, stride, padding, (1, 1), ceil_mode)
    y = np.empty((n, c, oh, ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            rows, cols = _real_window(i, j, (h, wd), kernel_size, stride, padding, (1, 1))
            div = _avg_window_divisor(i, j, (h, wd), kernel_size, stride, padding, count_include_pad)
            y[:, :, i, j] = x[:, :, _as_slice(rows), _as_slice(cols)].sum(axis=(2, 3)) / div
    return y


def avg_pool2d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    *,
    kernel_size: Pair,
    stride: Pair,
    padding: Padding,
    ceil_mode: bool,
    count_include_pad: bool,
) -> np.ndarray:
    """``dx[n, c, cell] += dy[n, c, i, j] / D(i, j)`` for every real cell of window ``(i, j)``."""
    dy = np.asarray(dy, dtype=x.dtype)
    _, _, h, wd = x.shape
    oh, ow = dy.shape[2:]
    dx = np.zeros(x.shape, dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            rows, cols = _real_window(i, j, (h, wd), kernel_size, stride, padding, (1, 1))
            div = _avg_window_divisor(i, j, (h, wd), kernel_size, stride, padding, count_include_pad)
            dx[:, :, _as_slice(rows), _as_slice(cols)] += (dy[:, :, i, j] / div)[:, :, None, None]
    return dx


__all__ = [
    "CONVCHECK_CAPABILITIES",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "conv2d_backward",
    "conv2d_forward",
    "max_pool2d_backward",
    "max_pool2d_forward",
]

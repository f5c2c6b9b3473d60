"""Correct building blocks shared by the deliberately buggy implementations.

Not an implementation itself (it is not listed in ``BUGGY`` and exposes none
of the contract functions). Each buggy module rewrites the function its
mistake lives in, in the style a student would, and borrows the parts it gets
right from here, so that every module holds exactly one mistake.

Conventions: arrays are NCHW, ``padding`` is ``(top, bottom, left, right)``,
``stride``, ``dilation`` and ``kernel_size`` are ``(h, w)`` pairs.

``borrow_correct`` fills a module that exposes every contract function with
the correct ones it does not rewrite.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from convcheck.impls import numpy_reference
from convcheck.spec import FUNCTION_NAMES


def borrow_correct(namespace: MutableMapping[str, Any]) -> None:
    """Bind every contract function that ``namespace`` (a module's ``globals()``) does not define
    to ``numpy_reference``'s, the correct one.

    Called last by a module exposing all the contract functions, after it has
    written the one(s) holding its mistake, so that whole-network checks run on it too.
    """
    for name in FUNCTION_NAMES:
        namespace.setdefault(name, getattr(numpy_reference, name))


def pad(x: np.ndarray, padding: tuple[int, int, int, int], value: float = 0.0) -> np.ndarray:
    """A new array: ``x`` padded with ``value`` on the spatial axes."""
    t, b, l, r = padding
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


def extent(k: int, d: int) -> int:
    """Length covered by a kernel of ``k`` taps dilated by ``d``."""
    return d * (k - 1) + 1


def conv_out(n: int, k: int, s: int, lo: int, hi: int, d: int) -> int:
    """Convolution output length (floor rule)."""
    return (n + lo + hi - extent(k, d)) // s + 1


def pool_out(n: int, k: int, s: int, lo: int, hi: int, d: int, ceil_mode: bool) -> int:
    """Pooling output length; with ``ceil_mode`` the last window must start before the end
    of the input and the leading padding."""
    span = n + lo + hi - extent(k, d)
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= n + lo:
        out -= 1
    return out


def windows(
    xp: np.ndarray,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    out_hw: tuple[int, int],
) -> np.ndarray:
    """A read-only view ``(N, C, OH, OW, KH, KW)`` of the cells each window reads in ``xp``.

    ``xp`` is already padded and long enough for ``out_hw`` windows.
    """
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    oh, ow = out_hw
    view = sliding_window_view(xp, (extent(kh, dh), extent(kw, dw)), axis=(2, 3))
    return view[:, :, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw, ::dh, ::dw]


def taps(a: np.ndarray, row: int, col: int, stride: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """The strided slice of the (padded) ``a`` that kernel tap ``(row, col)`` meets over all outputs."""
    (sh, sw), (oh, ow) = stride, out_hw
    return a[..., row : row + (oh - 1) * sh + 1 : sh, col : col + (ow - 1) * sw + 1 : sw]


def dilate(dy: np.ndarray, stride: tuple[int, int]) -> np.ndarray:
    """``dy`` with ``stride - 1`` zeros inserted between neighbouring cells."""
    n, c, oh, ow = dy.shape
    sh, sw = stride
    out = np.zeros((n, c, (oh - 1) * sh + 1, (ow - 1) * sw + 1), dtype=dy.dtype)
    out[:, :, ::sh, ::sw] = dy
    return out


def embed(a: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """``a`` placed at the top-left of a zero array of spatial size ``hw`` (>= ``a``'s)."""
    out = np.zeros((*a.shape[:2], *hw), dtype=a.dtype)
    out[:, :, : a.shape[2], : a.shape[3]] = a
    return out


# --- conv2d -----------------------------------------------------------------------------------


def conv_forward(x, w, b, *, stride, padding, dilation, groups):
    """Correct grouped cross-correlation."""
    n, _, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    g = groups
    oh = conv_out(h, kh, stride[0], padding[0], padding[1], dilation[0])
    ow = conv_out(wd, kw, stride[1], padding[2], padding[3], dilation[1])
    win = windows(pad(x, padding), (kh, kw), stride, dilation, (oh, ow))
    win = win.reshape(n, g, cg, oh, ow, kh, kw)
    wg = w.reshape(g, c_out // g, cg, kh, kw)
    y = np.einsum("ngcijab,gocab->ngoij", win, wg).reshape(n, c_out, oh, ow)
    if b is not None:
        y = y + b.reshape(1, c_out, 1, 1)
    return y.astype(x.dtype, copy=False)


def conv_dx(dy, x_shape, w, *, stride, padding, dilation, groups):
    """Correct ``dx``: every output's gradient scattered back through each kernel tap."""
    n, c_in, h, wd = x_shape
    c_out, cg, kh, kw = w.shape
    t, b, l, r = padding
    g = groups
    oh, ow = dy.shape[2:]
    dyg = dy.reshape(n, g, c_out // g, oh, ow)
    wg = w.reshape(g, c_out // g, cg, kh, kw)
    dxp = np.zeros((n, g, cg, h + t + b, wd + l + r), dtype=dy.dtype)
    for a in range(kh):
        for e in range(kw):
            tap = taps(dxp, a * dilation[0], e * dilation[1], stride, (oh, ow))
            tap += np.einsum("ngoij,goc->ngcij", dyg, wg[..., a, e])
    return dxp.reshape(n, c_in, h + t + b, wd + l + r)[:, :, t : t + h, l : l + wd].copy()


def conv_dw(dy, x, w_shape, *, stride, padding, dilation, groups):
    """Correct ``dw``: correlation of the padded input with ``dy``, summed over the batch."""
    n = x.shape[0]
    c_out, cg, kh, kw = w_shape
    g = groups
    oh, ow = dy.shape[2:]
    win = windows(pad(x, padding), (kh, kw), stride, dilation, (oh, ow)).reshape(n, g, cg, oh, ow, kh, kw)
    dyg = dy.reshape(n, g, c_out // g, oh, ow)
    return np.einsum("ngoij,ngcijab->gocab", dyg, win).reshape(w_shape).astype(x.dtype, copy=False)


def conv_db(dy, b):
    """Correct ``db`` (``None`` without a bias)."""
    return None if b is None else dy.sum(axis=(0, 2, 3))


def transpose_kernel(w: np.ndarray, groups: int) -> np.ndarray:
    """``w`` with input and output channels swapped inside each group: ``(C_in, C_out/G, KH, KW)``."""
    c_out, cg, kh, kw = w.shape
    g = groups
    return w.reshape(g, c_out // g, cg, kh, kw).swapaxes(1, 2).reshape(g * cg, c_out // g, kh, kw)


# --- pooling ----------------------------------------------------------------------------------


def pool_layout(x_shape, kernel_size, stride, padding, dilation, ceil_mode):
    """``(OH, OW)`` and the padding that holds every window, the ``ceil_mode`` overhang included."""
    t, b, l, r = padding
    h, wd = x_shape[2:]
    oh = pool_out(h, kernel_size[0], stride[0], t, b, dilation[0], ceil_mode)
    ow = pool_out(wd, kernel_size[1], stride[1], l, r, dilation[1], ceil_mode)
    need_h = (oh - 1) * stride[0] + extent(kernel_size[0], dilation[0])
    need_w = (ow - 1) * stride[1] + extent(kernel_size[1], dilation[1])
    full = (t, max(b, need_h - h - t), l, max(r, need_w - wd - l))
    return (oh, ow), full


def max_windows(x, *, kernel_size, stride, padding, dilation, ceil_mode, fill=-np.inf):
    """Max-pool windows as ``(N, C, OH, OW, KH*KW)`` and the padding used (padding cells hold ``fill``)."""
    (oh, ow), full = pool_layout(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    xp = pad(x, full, fill)
    win = windows(xp, kernel_size, stride, dilation, (oh, ow))
    return win.reshape(*win.shape[:4], -1), full


def window_cells(k, kernel_size, stride, dilation, out_hw):
    """Padded-input coordinates ``(rows, cols)`` of flat window tap ``k`` (an int array
    of shape ``(..., OH, OW)``)."""
    oh, ow = out_hw
    i = np.arange(oh).reshape(oh, 1)
    j = np.arange(ow).reshape(1, ow)
    rows = i * stride[0] + (k // kernel_size[1]) * dilation[0]
    cols = j * stride[1] + (k % kernel_size[1]) * dilation[1]
    return rows, cols


def route_to_taps(dy, x_shape, best, full, kernel_size, stride, dilation):
    """``dx``: each ``dy`` element added to the input cell of its window's tap ``best`` (a flat tap
    index per output cell), on the input padded by ``full``, then cropped to ``x_shape``."""
    rows, cols = window_cells(best, kernel_size, stride, dilation, dy.shape[2:])
    nn, cc = batch_channel_index(dy.shape)
    t, b, l, r = full
    dxp = np.zeros((*x_shape[:2], x_shape[2] + t + b, x_shape[3] + l + r), dtype=dy.dtype)
    np.add.at(dxp, (nn, cc, rows, cols), dy)
    return crop(dxp, full, x_shape)


def max_pool_over(windows):
    """``(max_pool2d_forward, max_pool2d_backward)`` over ``windows(x, kernel_size, stride, padding,
    dilation, ceil_mode) -> (win, full)``: the window maximum, and ``dy`` routed to each window's
    first largest cell (``route_to_taps``). A plant that differs only in how it forms its windows
    supplies that function alone."""

    def max_pool2d_forward(x, *, kernel_size, stride, padding, dilation, ceil_mode):
        win, _ = windows(x, kernel_size, stride, padding, dilation, ceil_mode)
        return win.max(axis=-1)

    def max_pool2d_backward(dy, x, *, kernel_size, stride, padding, dilation, ceil_mode):
        win, full = windows(x, kernel_size, stride, padding, dilation, ceil_mode)
        return route_to_taps(dy, x.shape, win.argmax(axis=-1), full, kernel_size, stride, dilation)

    return max_pool2d_forward, max_pool2d_backward


def batch_channel_index(shape):
    """Broadcastable ``(n, c)`` index arrays for an ``(N, C, OH, OW)`` array."""
    n, c = shape[:2]
    return np.arange(n).reshape(n, 1, 1, 1), np.arange(c).reshape(1, c, 1, 1)


def crop(xp: np.ndarray, padding, x_shape) -> np.ndarray:
    """A copy of the real-input part of the padded ``xp``."""
    t, _, l, _ = padding
    h, wd = x_shape[2:]
    return xp[:, :, t : t + h, l : l + wd].copy()


def avg_divisors(n, k, s, lo, hi, out, count_include_pad):
    """Per-window divisor on one axis (the window clipped to the padded extent first)."""
    d = np.empty(out, dtype=np.int64)
    for o in range(out):
        start = o * s - lo
        end = min(start + k, n + hi)
        d[o] = end - start if count_include_pad else min(end, n) - max(start, 0)
    return d


def avg_sum_windows(x, *, kernel_size, stride, padding, ceil_mode, dtype=np.float64):
    """Sum of each average-pool window's cells (padding zero), accumulated in ``dtype`` (float64: a
    window of float32 cells near their largest value does not overflow), and the padding used."""
    (oh, ow), full = pool_layout(x.shape, kernel_size, stride, padding, (1, 1), ceil_mode)
    win = windows(pad(x, full), kernel_size, stride, (1, 1), (oh, ow))
    return win.sum(axis=(4, 5), dtype=dtype), full


def avg_spread(dy, x_shape, divisor, *, kernel_size, stride, full):
    """``dx``: each window's ``dy / divisor`` added to every cell of the window, then cropped."""
    n, c, h, wd = x_shape
    t, b, l, r = full
    share = dy / divisor
    dxp = np.zeros((n, c, h + t + b, wd + l + r), dtype=dy.dtype)
    for a in range(kernel_size[0]):
        for e in range(kernel_size[1]):
            taps(dxp, a, e, stride, dy.shape[2:])[...] += share
    return crop(dxp, full, x_shape).astype(dy.dtype, copy=False)

"""Fast vectorised NumPy implementation of the convcheck contract (im2col + BLAS, per-tap pooling).

conv2d
    The zero-padded input is viewed (``as_strided``, no copy) as the im2col
    tensor ``cols[c, a, e, n, i, j] = xp[n, c, i*sh + a*dh, j*sw + e*dw]``, which
    is copied tile by tile (a few batch items, or a band of output rows of one
    item, about ``_TILE_ELEMENTS`` values) into a reused contiguous buffer. Per
    group ``g`` with ``K = Cg*KH*KW`` and ``P`` the tile's output positions::

        y_g (Cog, P)   = W_g (Cog, K) @ cols_g (K, P)
        dW_g (Cog, K) += dy_g (Cog, P) @ cols_g(K, P)^T
        dcols_g (K, P) = W_g^T (K, Cog) @ dy_g (Cog, P)

    and ``dx`` is col2im of ``dcols``: for each of the ``KH*KW`` taps one strided
    slice of the padded gradient accumulates ``dcols[:, a, e]``. ``db`` sums
    ``dy`` over batch and space. A 1x1, stride-1, unpadded convolution needs no
    im2col: it is one (batched) matmul on the input as it lies.

max_pool2d / avg_pool2d
    Work per kernel tap: tap ``(a, e)`` pairs the output block ``y[..., orow, ocol]``
    with the strided input slice ``x[..., irow, icol]`` it reads (only the real
    cells, so padding never needs materialising; see ``_windows.tap_slices``).
    Max: ``y = max over taps``; backward routes ``dy`` to the first tap (row-major)
    whose value equals ``y``. Avg: ``y = (sum over taps) / D``, backward adds
    ``dy / D`` to every tap's slice; ``D`` is ``spec.shapes.avg_divisor`` per axis.

Everything is computed in the input dtype (float32 stays float32); outputs are
fresh arrays; inputs may be non-contiguous and are never modified.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._windows import avg_divisors, conv_output_hw, pad_nchw, pool_output_hw, tap_slices

CONVCHECK_CAPABILITIES: dict = {}

Pair = tuple[int, int]
Padding = tuple[int, int, int, int]

_TILE_ELEMENTS = 1 << 21
"""Budget (in values) of one im2col tile: a few MiB, so a tile stays in cache for its matmul."""


# --------------------------------------------------------------------------- conv2d helpers


def _grouped_weight(w: np.ndarray, groups: int, dtype: np.dtype) -> np.ndarray:
    """``w`` (C_out, Cg, KH, KW) as the (G, Cog, Cg*KH*KW) matmul operand, in ``dtype``."""
    c_out = w.shape[0]
    return np.ascontiguousarray(w, dtype=dtype).reshape(groups, c_out // groups, -1)


def _is_pointwise(kernel: Pair, stride: Pair, padding: Padding) -> bool:
    """A 1x1, stride-1, unpadded convolution: a plain channel matmul at every pixel."""
    return kernel == (1, 1) and stride == (1, 1) and not any(padding)


def _tiles(n: int, oh: int, values_per_row: int) -> Iterator[tuple[int, int, int, int]]:
    """Tiles ``(n0, n1, i0, i1)`` of batch items x output rows whose im2col fits the budget.

    Whole items are grouped while they fit ``_TILE_ELEMENTS``; an item too large
    on its own is cut into bands of output rows.
    """
    per_item = values_per_row * oh
    if per_item <= _TILE_ELEMENTS:
        nb = min(n, _TILE_ELEMENTS // per_item)
        for n0 in range(0, n, nb):
            yield n0, min(n, n0 + nb), 0, oh
    else:
        rows = max(1, _TILE_ELEMENTS // values_per_row)
        for n0 in range(n):
            for i0 in range(0, oh, rows):
                yield n0, n0 + 1, i0, min(oh, i0 + rows)


def _im2col_view(
    xp: np.ndarray, tile: tuple[int, int, int, int], kernel: Pair, stride: Pair, dilation: Pair, ow: int
) -> np.ndarray:
    """Read-only view ``cols[c, a, e, n, i, j] = xp[n0 + n, c, (i0 + i)*sh + a*dh, j*sw + e*dw]``."""
    n0, n1, i0, i1 = tile
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    base = xp[n0:n1, :, i0 * sh :, :]
    s_n, s_c, s_h, s_w = base.strides
    shape = (xp.shape[1], kh, kw, n1 - n0, i1 - i0, ow)
    strides = (s_c, dh * s_h, dw * s_w, s_n, sh * s_h, sw * s_w)
    return as_strided(base, shape, strides, writeable=False)


def _col2im_add(
    dxp: np.ndarray,
    dcols: np.ndarray,
    tile: tuple[int, int, int, int],
    stride: Pair,
    dilation: Pair,
) -> None:
    """``dxp[n0 + n, c, (i0 + i)*sh + a*dh, j*sw + e*dw] += dcols[c, a, e, n, i, j]``, one tap at a time.

    Within one tap distinct outputs read distinct cells, so each tap is a plain
    strided-slice addition; overlapping windows accumulate across taps.
    """
    n0, n1, i0, _ = tile
    _, kh, kw, _, rows, ow = dcols.shape
    (sh, sw), (dh, dw) = stride, dilation
    for a in range(kh):
        r0 = i0 * sh + a * dh
        row_slice = slice(r0, r0 + (rows - 1) * sh + 1, sh)
        for e in range(kw):
            col_slice = slice(e * dw, e * dw + (ow - 1) * sw + 1, sw)
            dxp[n0:n1, :, row_slice, col_slice] += dcols[:, a, e].transpose(1, 0, 2, 3)


def _tile_matrix(arr: np.ndarray, tile: tuple[int, int, int, int], groups: int) -> np.ndarray:
    """The (G, Cog, P) block of ``arr`` (N, C_out, OH, OW) for a tile, positions ordered (n, i, j).

    A single item's rows are a strided view; several items are gathered into a copy.
    """
    n0, n1, i0, i1 = tile
    n, c_out, oh, ow = arr.shape
    if n1 - n0 == 1:
        return arr[n0].reshape(groups, c_out // groups, oh * ow)[:, :, i0 * ow : i1 * ow]
    block = arr[n0:n1].reshape(n1 - n0, groups, c_out // groups, oh * ow).transpose(1, 2, 0, 3)
    return np.ascontiguousarray(block).reshape(groups, c_out // groups, -1)


# --------------------------------------------------------------------------- conv2d


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
    """``y_g = W_g @ im2col(xp)_g + b`` per group, tile by tile."""
    dtype = x.dtype
    n, c_in, h, wd = x.shape
    c_out, _, kh, kw = w.shape
    cog = c_out // groups
    oh, ow = conv_output_hw((h, wd), (kh, kw), stride, padding, dilation)
    wg = _grouped_weight(w, groups, dtype)
    if _is_pointwise((kh, kw), stride, padding):
        xr = x.reshape(n, groups, c_in // groups, h * wd)
        y = np.matmul(wg, xr).reshape(n, c_out, oh, ow)
    else:
        xp = pad_nchw(x, padding, 0) if any(padding) else x
        y = np.empty((n, c_out, oh, ow), dtype=dtype)
        buf = np.empty(min(_TILE_ELEMENTS, n * c_in * kh * kw * oh * ow), dtype=dtype)
        for tile in _tiles(n, oh, c_in * kh * kw * ow):
            view = _im2col_view(xp, tile, (kh, kw), stride, dilation, ow)
            cols = buf[: view.size].reshape(view.shape)
            np.copyto(cols, view)
            cols_g = cols.reshape(groups, -1, view.size // (c_in * kh * kw))
            n0, n1, i0, i1 = tile
            if n1 - n0 == 1:
                np.matmul(wg, cols_g, out=_tile_matrix(y, tile, groups))
            else:
                block = np.matmul(wg, cols_g).reshape(groups, cog, n1 - n0, oh * ow)
                y[n0:n1].reshape(n1 - n0, groups, cog, oh * ow)[...] = block.transpose(2, 0, 1, 3)
    if b is not None:
        y += np.asarray(b, dtype=dtype)[:, None, None]
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
    """``dW_g = sum_tiles dy_g @ cols_g^T``, ``dx = col2im(W_g^T @ dy_g)``, ``db = sum dy``."""
    dtype = x.dtype
    dy = np.ascontiguousarray(dy, dtype=dtype)
    n, c_in, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    oh, ow = dy.shape[2:]
    wg = _grouped_weight(w, groups, dtype)
    wg_t = wg.transpose(0, 2, 1)
    db = None if b is None else dy.sum(axis=(0, 2, 3))
    if _is_pointwise((kh, kw), stride, padding):
        xr = x.reshape(n, groups, cg, h * wd)
        dyr = dy.reshape(n, groups, c_out // groups, oh * ow)
        dx = np.matmul(wg_t, dyr).reshape(x.shape)
        dw = np.matmul(dyr, xr.transpose(0, 1, 3, 2)).sum(axis=0).reshape(w.shape)
        return dx, dw, db
    top, _, left, _ = padding
    xp = pad_nchw(x, padding, 0) if any(padding) else x
    dxp = np.zeros(xp.shape, dtype=dtype)
    dw = np.zeros(wg.shape, dtype=dtype)
    size = min(_TILE_ELEMENTS, n * c_in * kh * kw * oh * ow)
    buf, dbuf = np.empty(size, dtype=dtype), np.empty(size, dtype=dtype)
    for tile in _tiles(n, oh, c_in * kh * kw * ow):
        view = _im2col_view(xp, tile, (kh, kw), stride, dilation, ow)
        cols = buf[: view.size].reshape(view.shape)
        np.copyto(cols, view)
        cols_g = cols.reshape(groups, cg * kh * kw, -1)
        dy_g = _tile_matrix(dy, tile, groups)
        dw += np.matmul(dy_g, cols_g.transpose(0, 2, 1))
        dcols = dbuf[: view.size].reshape(cols_g.shape)
        np.matmul(wg_t, dy_g, out=dcols)
        _col2im_add(dxp, dcols.reshape(view.shape), tile, stride, dilation)
    if any(padding):
        dx = np.ascontiguousarray(dxp[:, :, top : top + h, left : left + wd])
    else:
        dx = dxp
    return dx, dw.reshape(w.shape), db


# --------------------------------------------------------------------------- pooling helpers

Tap = tuple[tuple[slice, slice], tuple[slice, slice]]


def _taps(
    hw: Pair, out_hw: Pair, kernel: Pair, stride: Pair, padding: Padding, dilation: Pair
) -> list[Tap]:
    """Each kernel tap that reads real cells, in row-major order: ``((orow, ocol), (irow, icol))``.

    ``y[..., orow, ocol]`` and ``x[..., irow, icol]`` are aligned: output ``(i, j)``
    reads input ``(i*sh - top + a*dh, j*sw - left + e*dw)`` through tap ``(a, e)``.
    """
    taps = []
    for a in range(kernel[0]):
        for e in range(kernel[1]):
            sl = tap_slices(hw, out_hw, stride, padding, (a * dilation[0], e * dilation[1]))
            if sl is not None:
                orow, ocol, irow, icol = sl
                taps.append(((orow, ocol), (irow, icol)))
    return taps


def _max_pool(
    x: np.ndarray, kernel: Pair, stride: Pair, padding: Padding, dilation: Pair, ceil_mode: bool
) -> tuple[np.ndarray, list[Tap]]:
    """``y = max over taps`` (starting from ``-inf``) and the taps used."""
    n, c, h, wd = x.shape
    out_hw = pool_output_hw((h, wd), kernel, stride, padding, dilation, ceil_mode)
    taps = _taps((h, wd), out_hw, kernel, stride, padding, dilation)
    y = np.full((n, c, *out_hw), -np.inf, dtype=x.dtype)
    for (orow, ocol), (irow, icol) in taps:
        y_sub = y[:, :, orow, ocol]
        np.maximum(y_sub, x[:, :, irow, icol], out=y_sub)
    return y, taps


# --------------------------------------------------------------------------- max_pool2d


def max_pool2d_forward(
    x: np.ndarray,
    *,
    kernel_size: Pair,
    stride: Pair,
    padding: Padding,
    dilation: Pair,
    ceil_mode: bool,
) -> np.ndarray:
    """``y[n, c, i, j] = max_{a, e} x[n, c, i*sh - top + a*dh, j*sw - left + e*dw]`` over real cells."""
    y, _ = _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode)
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
    """``dx[winner] += dy``; the winner is the first tap (row-major) whose value equals the window max."""
    dy = np.asarray(dy, dtype=x.dtype)
    y, taps = _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode)
    dx = np.zeros(x.shape, dtype=x.dtype)
    open_ = np.ones(y.shape, dtype=bool)  # windows whose first maximum is not found yet
    hit_buf, tmp_buf = np.empty(y.shape, dtype=bool), np.empty(y.shape, dtype=x.dtype)
    for (orow, ocol), (irow, icol) in taps:
        x_sub, open_sub = x[:, :, irow, icol], open_[:, :, orow, ocol]
        rows, cols = x_sub.shape[2:]
        hit, tmp = hit_buf[:, :, :rows, :cols], tmp_buf[:, :, :rows, :cols]
        np.equal(x_sub, y[:, :, orow, ocol], out=hit)
        hit &= open_sub  # the first maximum only: windows already served stay closed
        open_sub ^= hit
        np.multiply(dy[:, :, orow, ocol], hit, out=tmp)
        dx[:, :, irow, icol] += tmp
    return dx


# --------------------------------------------------------------------------- avg_pool2d


def avg_pool2d_forward(
    x: np.ndarray,
    *,
    kernel_size: Pair,
    stride: Pair,
    padding: Padding,
    ceil_mode: bool,
    count_include_pad: bool,
) -> np.ndarray:
    """``y = (sum over taps of the real cells) / D``."""
    n, c, h, wd = x.shape
    out_hw = pool_output_hw((h, wd), kernel_size, stride, padding, (1, 1), ceil_mode)
    y = np.zeros((n, c, *out_hw), dtype=x.dtype)
    for (orow, ocol), (irow, icol) in _taps((h, wd), out_hw, kernel_size, stride, padding, (1, 1)):
        y[:, :, orow, ocol] += x[:, :, irow, icol]
    y /= avg_divisors((h, wd), out_hw, kernel_size, stride, padding, count_include_pad, x.dtype)
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
    """``dx[cell] += dy / D`` for every window reading ``cell``, one tap at a time."""
    _, _, h, wd = x.shape
    out_hw = dy.shape[2:]
    g = np.asarray(dy, dtype=x.dtype) / avg_divisors(
        (h, wd), out_hw, kernel_size, stride, padding, count_include_pad, x.dtype
    )
    dx = np.zeros(x.shape, dtype=x.dtype)
    for (orow, ocol), (irow, icol) in _taps((h, wd), out_hw, kernel_size, stride, padding, (1, 1)):
        dx[:, :, irow, icol] += g[:, :, orow, ocol]
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

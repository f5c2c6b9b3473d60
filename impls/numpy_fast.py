"""Fast vectorised NumPy implementation of the convcheck contract (im2col + BLAS, per-tap pooling).

conv2d
    The zero-padded input ``xp`` is viewed (``as_strided``, no copy) as the im2col
    tensor ``cols[c, a, e, n, i, j] = xp[n, c, i*sh + a*dh, j*sw + e*dw]`` and copied
    tile by tile (whole batch items, or a band of output rows of one item, about
    ``_TILE_ELEMENTS`` values) into a reused contiguous buffer. Per group ``g``, with
    ``K = Cg*KH*KW`` and ``P`` the tile's output positions::

        y_g (Cog, P)     = W_g (Cog, K) @ cols_g (K, P)
        dW_g^T (K, Cog) += cols_g (K, P) @ dy_g^T (P, Cog)
        db[co]           = sum_{n, i, j} dy[n, co, i, j]

    ``dx`` of a stride-1 convolution is itself a convolution: the full correlation
    of ``dy`` with the kernel rotated by 180 degrees (channel axes swapped per
    group), run through the same im2col + matmul path. A strided convolution (or
    one with far more output than input channels, where that im2col would be the
    larger) uses col2im: ``dcols_g = W_g^T @ dy_g`` per tile, accumulated back into the padded
    gradient with one strided slice addition per kernel tap (``KH*KW`` Python
    iterations per tile, never one per pixel). A 1x1, stride-1, unpadded
    convolution skips im2col: it is one batched matmul on the input as it lies.

max_pool2d / avg_pool2d
    With stride ``(sh, sw)`` the input is rearranged once into phase planes,
    ``planes[n, c, ph, pw, q, p] = x[n, c, q*sh + ph, p*sw + pw]``, so that a kernel
    tap reads consecutive plane cells for consecutive outputs. Each tap ``(a, e)``
    pairs the output block ``y[..., orow, ocol]`` with the plane block holding the
    real input cells it reads (padding is never materialised; see
    ``_windows.tap_slices``), and every operation is a whole-block NumPy call:
    ``KH*KW`` Python iterations in all. Max: ``y = max over taps``; backward routes
    each window's ``dy`` to the first tap (row-major) whose value equals ``y``.
    Avg: ``y = (sum over taps) / D``; backward adds ``dy / D`` to every tap's block.
    ``D`` is ``spec.shapes.avg_divisor`` on each axis.

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
"""Budget (in values) of one im2col tile: a few MiB, enough for efficient matmuls while bounding
the scratch memory (large items are cut into bands of output rows)."""


# --------------------------------------------------------------------------- conv2d helpers


def _grouped_weight(w: np.ndarray, groups: int, dtype: np.dtype) -> np.ndarray:
    """``w`` (C_out, Cg, KH, KW) as the (G, Cog, Cg*KH*KW) matmul operand, in ``dtype``."""
    c_out = w.shape[0]
    return np.ascontiguousarray(w, dtype=dtype).reshape(groups, c_out // groups, -1)


def _is_pointwise(kernel: Pair, stride: Pair, padding: Padding) -> bool:
    """A 1x1, stride-1, unpadded convolution: a plain channel matmul at every pixel."""
    return kernel == (1, 1) and stride == (1, 1) and not any(padding)


def _tiles(n: int, oh: int, values_per_row: int) -> tuple[list[tuple[int, int, int, int]], int]:
    """Tiles ``(n0, n1, i0, i1)`` of batch items x output rows, and the largest tile's im2col size.

    Whole items are grouped while they fit ``_TILE_ELEMENTS``; an item too large
    on its own is cut into bands of output rows (at least one row per band).
    """
    per_item = values_per_row * oh
    if per_item <= _TILE_ELEMENTS:
        nb = min(n, _TILE_ELEMENTS // per_item)
        return [(n0, min(n, n0 + nb), 0, oh) for n0 in range(0, n, nb)], nb * per_item
    rows = max(1, _TILE_ELEMENTS // values_per_row)
    tiles = [(n0, n0 + 1, i0, min(oh, i0 + rows)) for n0 in range(n) for i0 in range(0, oh, rows)]
    return tiles, min(rows, oh) * values_per_row


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


def _im2col_tiles(
    xp: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair
) -> Iterator[tuple[tuple[int, int, int, int], np.ndarray]]:
    """``(tile, cols)`` for each tile: ``cols`` is the tile's im2col ``(C, KH, KW, nb, rows, OW)``,
    copied into one reused contiguous buffer (valid until the next iteration)."""
    n, c = xp.shape[:2]
    (kh, kw), (oh, ow) = kernel, out_hw
    tiles, size = _tiles(n, oh, c * kh * kw * ow)
    buf = np.empty(size, dtype=xp.dtype)
    for tile in tiles:
        view = _im2col_view(xp, tile, kernel, stride, dilation, ow)
        cols = buf[: view.size].reshape(view.shape)
        np.copyto(cols, view)
        yield tile, cols


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
    _, c_out, oh, ow = arr.shape
    if n1 - n0 == 1:
        return arr[n0].reshape(groups, c_out // groups, oh * ow)[:, :, i0 * ow : i1 * ow]
    block = arr[n0:n1].reshape(n1 - n0, groups, c_out // groups, oh * ow).transpose(1, 2, 0, 3)
    return np.ascontiguousarray(block).reshape(groups, c_out // groups, -1)


def _convolve(
    x: np.ndarray, w: np.ndarray, stride: Pair, padding: Padding, dilation: Pair, groups: int
) -> np.ndarray:
    """Bias-free convolution ``y_g = W_g @ im2col(xp)_g``, in ``x.dtype`` (``padding`` >= 0)."""
    n, c_in, h, wd = x.shape
    c_out, _, kh, kw = w.shape
    cog = c_out // groups
    oh, ow = conv_output_hw((h, wd), (kh, kw), stride, padding, dilation)
    wg = _grouped_weight(w, groups, x.dtype)
    if _is_pointwise((kh, kw), stride, padding):
        return np.matmul(wg, x.reshape(n, groups, c_in // groups, h * wd)).reshape(n, c_out, oh, ow)
    xp = pad_nchw(x, padding, 0) if any(padding) else x
    y = np.empty((n, c_out, oh, ow), dtype=x.dtype)
    for tile, cols in _im2col_tiles(xp, (kh, kw), stride, dilation, (oh, ow)):
        n0, n1, _, _ = tile
        cols_g = cols.reshape(groups, wg.shape[2], -1)
        if n1 - n0 == 1:
            np.matmul(wg, cols_g, out=_tile_matrix(y, tile, groups))
        else:
            block = np.matmul(wg, cols_g).reshape(groups, cog, n1 - n0, oh * ow)
            y[n0:n1].reshape(n1 - n0, groups, cog, oh * ow)[...] = block.transpose(2, 0, 1, 3)
    return y


def _weight_grad(
    dy: np.ndarray, x: np.ndarray, kernel: Pair, stride: Pair, padding: Padding, dilation: Pair, groups: int
) -> np.ndarray:
    """``dW_g^T (K, Cog) = sum over tiles of cols_g (K, P) @ dy_g^T (P, Cog)``, as (G, Cog, K)."""
    c_in = x.shape[1]
    c_out, (kh, kw) = dy.shape[1], kernel
    k = c_in // groups * kh * kw
    xp = pad_nchw(x, padding, 0) if any(padding) else x
    dw_t = np.zeros((groups, k, c_out // groups), dtype=x.dtype)
    for tile, cols in _im2col_tiles(xp, kernel, stride, dilation, dy.shape[2:]):
        dw_t += np.matmul(cols.reshape(groups, k, -1), _tile_matrix(dy, tile, groups).transpose(0, 2, 1))
    return dw_t.transpose(0, 2, 1)


def _input_grad_stride1(
    dy: np.ndarray, w: np.ndarray, padding: Padding, dilation: Pair, groups: int
) -> np.ndarray:
    """``dx`` of a stride-1 convolution: the full correlation of ``dy`` with the rotated kernel.

    ``dx[n, g*Cg + c, h, w] = sum_{co in g, a, e} dyp[n, co, h + a*dh, w + e*dw] * w[co, c, KH-1-a, KW-1-e]``
    where ``dyp`` is ``dy`` padded by ``d*(k-1) - lo`` before and ``d*(k-1) - hi`` after
    on each axis (a negative amount crops ``dy`` instead): a forward convolution
    with the kernel flipped in both axes and its channel axes swapped per group.
    """
    c_out, cg, kh, kw = w.shape
    cog = c_out // groups
    w_rot = w.reshape(groups, cog, cg, kh, kw).transpose(0, 2, 1, 3, 4)[..., ::-1, ::-1]
    w_rot = w_rot.reshape(groups * cg, cog, kh, kw)
    reach = ((kh - 1) * dilation[0],) * 2 + ((kw - 1) * dilation[1],) * 2
    pads = [r - p for r, p in zip(reach, padding, strict=True)]
    oh, ow = dy.shape[2:]
    cropped = dy[:, :, max(0, -pads[0]) : oh - max(0, -pads[1]), max(0, -pads[2]) : ow - max(0, -pads[3])]
    return _convolve(cropped, w_rot, (1, 1), tuple(max(0, p) for p in pads), dilation, groups)


def _input_grad_col2im(
    dy: np.ndarray,
    w: np.ndarray,
    x_shape: tuple[int, ...],
    stride: Pair,
    padding: Padding,
    dilation: Pair,
    groups: int,
) -> np.ndarray:
    """``dx`` by col2im: ``dcols_g = W_g^T @ dy_g`` per tile, scattered back tap by tap, then cropped."""
    n, c_in, h, wd = x_shape
    _, _, kh, kw = w.shape
    top, bottom, left, right = padding
    oh, ow = dy.shape[2:]
    wg_t = _grouped_weight(w, groups, dy.dtype).transpose(0, 2, 1)
    dxp = np.zeros((n, c_in, top + h + bottom, left + wd + right), dtype=dy.dtype)
    tiles, size = _tiles(n, oh, c_in * kh * kw * ow)
    buf = np.empty(size, dtype=dy.dtype)
    for tile in tiles:
        n0, n1, i0, i1 = tile
        dcols = buf[: c_in * kh * kw * (n1 - n0) * (i1 - i0) * ow]
        np.matmul(wg_t, _tile_matrix(dy, tile, groups), out=dcols.reshape(groups, wg_t.shape[1], -1))
        _col2im_add(dxp, dcols.reshape(c_in, kh, kw, n1 - n0, i1 - i0, ow), tile, stride, dilation)
    if any(padding):
        return np.ascontiguousarray(dxp[:, :, top : top + h, left : left + wd])
    return dxp


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
    y = _convolve(x, w, stride, padding, dilation, groups)
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
    """``dW_g = dy_g @ im2col(xp)_g^T`` over tiles; ``dx`` by the rotated-kernel convolution (stride 1,
    unless C_out is much larger than C_in) or by col2im; ``db = sum_{n, i, j} dy``."""
    dtype = x.dtype
    dy = np.ascontiguousarray(dy, dtype=dtype)
    w = np.asarray(w, dtype=dtype)
    n, _, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    db = None if b is None else dy.sum(axis=(0, 2, 3))
    if _is_pointwise((kh, kw), stride, padding):
        wg = _grouped_weight(w, groups, dtype)
        xr = x.reshape(n, groups, cg, h * wd)
        dyr = dy.reshape(n, groups, c_out // groups, -1)
        dx = np.matmul(wg.transpose(0, 2, 1), dyr).reshape(x.shape)
        dw = np.matmul(dyr, xr.transpose(0, 1, 3, 2)).sum(axis=0).reshape(w.shape)
        return dx, dw, db
    dw = _weight_grad(dy, x, (kh, kw), stride, padding, dilation, groups).reshape(w.shape)
    # the rotated-kernel convolution copies an im2col of dy (C_out channels); col2im adds
    # into C_in channels at about 1.5x the cost per value: take whichever moves less
    if stride == (1, 1) and 2 * c_out <= 3 * x.shape[1]:
        dx = _input_grad_stride1(dy, w, padding, dilation, groups)
    else:
        dx = _input_grad_col2im(dy, w, x.shape, stride, padding, dilation, groups)
    return dx, dw, db


# --------------------------------------------------------------------------- pooling helpers
#
# Pooling works on *phase planes*: with stride (sh, sw) the input is rearranged once into
# ``planes[n, c, ph, pw, q, p] = x[n, c, q*sh + ph, p*sw + pw]``. For consecutive outputs a
# kernel tap reads consecutive cells of one plane, so every per-tap operation runs on
# unit-stride rows (NumPy's fast contiguous loops) instead of stride-s gathers, which
# NumPy runs several times slower.

Tap = tuple[tuple[slice, slice], tuple[int, int, slice, slice]]


def _phase_view(a: np.ndarray, stride: Pair) -> np.ndarray:
    """``a`` (N, C, qh*sh, qw*sw) viewed as its phase planes (N, C, sh, sw, qh, qw) (no copy)."""
    (sh, sw), (n, c, h, w) = stride, a.shape
    s_n, s_c, s_h, s_w = a.strides
    return as_strided(a, (n, c, sh, sw, h // sh, w // sw), (s_n, s_c, s_h, s_w, sh * s_h, sw * s_w))


def _phase_planes(x: np.ndarray, stride: Pair) -> np.ndarray:
    """``planes[n, c, ph, pw, q, p] = x[n, c, q*sh + ph, p*sw + pw]`` (a view of ``x`` for stride 1).

    When the stride does not divide the input, the planes are ``ceil(H/sh) x ceil(W/sw)``
    and their cells past the input edge are unspecified; no tap ever reads them.
    """
    if stride == (1, 1):
        return x[:, :, None, None]
    (sh, sw), (n, c, h, w) = stride, x.shape
    qh, qw = -(-h // sh), -(-w // sw)
    if (h, w) != (qh * sh, qw * sw):
        ext = np.empty((n, c, qh * sh, qw * sw), dtype=x.dtype)
        ext[:, :, :h, :w] = x
        x = ext
    planes = np.empty((n, c, sh, sw, qh, qw), dtype=x.dtype)
    np.copyto(planes, _phase_view(x, stride))
    return planes


def _merge_planes(planes: np.ndarray, hw: Pair, stride: Pair) -> np.ndarray:
    """Inverse of ``_phase_planes``: the fresh (N, C, H, W) array whose phase planes are ``planes``."""
    if stride == (1, 1):
        return planes[:, :, 0, 0]
    n, c, sh, sw, qh, qw = planes.shape
    out = np.empty((n, c, qh * sh, qw * sw), dtype=planes.dtype)
    np.copyto(_phase_view(out, stride), planes)
    if hw != (qh * sh, qw * sw):
        return np.ascontiguousarray(out[:, :, : hw[0], : hw[1]])
    return out


def _plane_slice(cells: slice, s: int) -> tuple[int, slice]:
    """Input cells ``start, start + s, ...`` as ``(phase, slice within that phase plane)``."""
    count = len(range(cells.start, cells.stop, s))
    q0 = cells.start // s
    return cells.start % s, slice(q0, q0 + count)


def _taps(hw: Pair, out_hw: Pair, kernel: Pair, stride: Pair, padding: Padding, dilation: Pair) -> list[Tap]:
    """Each kernel tap that reads real cells, in row-major order: ``((orow, ocol), (ph, pw, qrow, qcol))``.

    ``y[..., orow, ocol]`` and ``planes[..., ph, pw, qrow, qcol]`` are aligned: output
    ``(i, j)`` reads input ``(i*sh - top + a*dh, j*sw - left + e*dw)`` through tap ``(a, e)``.
    """
    taps = []
    for a in range(kernel[0]):
        for e in range(kernel[1]):
            sl = tap_slices(hw, out_hw, stride, padding, (a * dilation[0], e * dilation[1]))
            if sl is not None:
                orow, ocol, irow, icol = sl
                (ph, qrow), (pw, qcol) = _plane_slice(irow, stride[0]), _plane_slice(icol, stride[1])
                taps.append(((orow, ocol), (ph, pw, qrow, qcol)))
    return taps


def _max_pool(
    x: np.ndarray, kernel: Pair, stride: Pair, padding: Padding, dilation: Pair, ceil_mode: bool
) -> tuple[np.ndarray, np.ndarray, list[Tap]]:
    """``y = max over taps`` (starting from ``-inf``), the phase planes of ``x`` and the taps."""
    n, c, h, wd = x.shape
    out_hw = pool_output_hw((h, wd), kernel, stride, padding, dilation, ceil_mode)
    taps = _taps((h, wd), out_hw, kernel, stride, padding, dilation)
    planes = _phase_planes(x, stride)
    y = np.full((n, c, *out_hw), -np.inf, dtype=x.dtype)
    for (orow, ocol), (ph, pw, qrow, qcol) in taps:
        y_sub = y[:, :, orow, ocol]
        np.maximum(y_sub, planes[:, :, ph, pw, qrow, qcol], out=y_sub)
    return y, planes, taps


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
    y, _, _ = _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode)
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
    y, planes, taps = _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode)
    dplanes = np.zeros(planes.shape, dtype=x.dtype)
    open_ = np.ones(y.shape, dtype=bool)  # windows whose first maximum is not found yet
    hit_buf, tmp_buf = np.empty(y.shape, dtype=bool), np.empty(y.shape, dtype=x.dtype)
    for (orow, ocol), (ph, pw, qrow, qcol) in taps:
        x_sub, open_sub = planes[:, :, ph, pw, qrow, qcol], open_[:, :, orow, ocol]
        rows, cols = x_sub.shape[2:]
        hit, tmp = hit_buf[:, :, :rows, :cols], tmp_buf[:, :, :rows, :cols]
        np.equal(x_sub, y[:, :, orow, ocol], out=hit)
        hit &= open_sub  # the first maximum only: windows already served stay closed
        open_sub ^= hit
        np.multiply(dy[:, :, orow, ocol], hit, out=tmp)
        dplanes[:, :, ph, pw, qrow, qcol] += tmp
    return _merge_planes(dplanes, x.shape[2:], stride)


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
    planes = _phase_planes(x, stride)
    y = np.zeros((n, c, *out_hw), dtype=x.dtype)
    for (orow, ocol), (ph, pw, qrow, qcol) in _taps((h, wd), out_hw, kernel_size, stride, padding, (1, 1)):
        y[:, :, orow, ocol] += planes[:, :, ph, pw, qrow, qcol]
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
    sh, sw = stride
    dplanes = np.zeros((*x.shape[:2], sh, sw, -(-h // sh), -(-wd // sw)), dtype=x.dtype)
    for (orow, ocol), (ph, pw, qrow, qcol) in _taps((h, wd), out_hw, kernel_size, stride, padding, (1, 1)):
        dplanes[:, :, ph, pw, qrow, qcol] += g[:, :, orow, ocol]
    return _merge_planes(dplanes, (h, wd), stride)


__all__ = [
    "CONVCHECK_CAPABILITIES",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "conv2d_backward",
    "conv2d_forward",
    "max_pool2d_backward",
    "max_pool2d_forward",
]

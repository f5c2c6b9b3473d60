"""Fast vectorised NumPy implementation of the convcheck contract (im2col + BLAS, per-tap pooling), in N-d.

One N-d function per operation and direction serves the 1-D, 2-D and 3-D
contract functions (the rank of ``x`` tells them apart). Below, ``o`` and ``a``
are N-d output and kernel-tap indices, and "rows" are the positions along the
first spatial axis.

conv
    The zero-padded input ``xp`` is viewed (``as_strided``, no copy) as the im2col
    tensor ``cols[c, *a, n, *o] = xp[n, c, *(o*s + a*d)]`` and copied tile by tile
    (whole batch items, or a band of output rows of one item, about
    ``_TILE_ELEMENTS`` values) into a reused contiguous buffer. Per group ``g``,
    with ``K = Cg*prod(kernel)`` and ``P`` the tile's output positions::

        y_g (Cog, P)     = W_g (Cog, K) @ cols_g (K, P)
        dW_g^T (K, Cog) += cols_g (K, P) @ dy_g^T (P, Cog)
        db[co]           = sum_{n, o} dy[n, co, o]

    ``dx`` of a stride-1 convolution is itself a convolution: the full correlation
    of ``dy`` with the kernel reversed on every spatial axis (channel axes swapped
    per group), run through the same im2col + matmul path. A strided convolution
    (or one with far more output than input channels, where that im2col would be
    the larger) uses col2im: ``dcols_g = W_g^T @ dy_g`` per tile, accumulated back
    into the padded gradient with one strided slice addition per kernel tap
    (``prod(kernel)`` Python iterations per tile, never one per pixel). A
    pointwise convolution (kernel length 1 on every axis, stride 1, no padding)
    skips im2col: it is one batched matmul on the input as it lies.

max pool / avg pool
    With stride ``s`` the input is rearranged once into phase planes,
    ``planes[n, c, *p, *q] = x[n, c, *(q*s + p)]``, so that a kernel tap reads
    consecutive plane cells for consecutive outputs. Each tap pairs the output
    block ``y[..., *out_slices]`` with the plane block holding the real input
    cells it reads (padding is never materialised; see ``_windows.tap_slices``),
    and every operation is a whole-block NumPy call: ``prod(kernel)`` Python
    iterations in all. Max: ``y = max over taps``; backward routes each window's
    ``dy`` to the first tap (row-major) whose value equals ``y``. Avg: ``y = (sum
    over taps) / D``; backward adds ``dy / D`` to every tap's block. ``D`` is the
    product over the axes of ``spec.shapes.avg_divisor``.

The layers without windows (activations, ``linear``, ``flatten``, the losses)
are the vectorised formulas of ``numpy_layers``.

Everything is computed in the input dtype (float32 stays float32), except the half
dtypes: float16 and bfloat16 inputs are computed in float32 and each result rounded once
(``_half``, declared as ``accumulate = "float32"``); outputs are fresh arrays; inputs may be
non-contiguous and are never modified.
"""

from __future__ import annotations

from collections.abc import Iterator
from math import prod
from typing import Union

import numpy as np
from numpy.lib.stride_tricks import as_strided

from convcheck.spec.dtypes import DTYPES as _DTYPES
from convcheck.spec.ops import bind_contract as _bind_contract
from convcheck.spec.shapes import at as _at

from ._half import widen_contract as _widen_contract
from ._windows import avg_divisors, conv_output_shape, pad_pairs, pad_spatial, pool_output_shape, tap_slices
from .numpy_layers import *  # noqa: F403  (the contract's layers without windows, re-exported)

CONVCHECK_CAPABILITIES: dict = {"dtypes": list(_DTYPES), "accumulate": "float32"}

Sizes = tuple[int, ...]
Tile = tuple[int, int, int, int]
"""``(n0, n1, i0, i1)``: batch items ``[n0, n1)`` and output rows ``[i0, i1)`` (the first spatial axis)."""

_TILE_ELEMENTS = 1 << 21
"""Budget (in values) of one im2col tile: a few MiB, enough for efficient matmuls while bounding
the scratch memory (large items are cut into bands of output rows)."""


# --------------------------------------------------------------------------- conv helpers


def _grouped_weight(w: np.ndarray, groups: int, dtype: np.dtype) -> np.ndarray:
    """``w`` (C_out, Cg, *kernel) as the (G, Cog, Cg*prod(kernel)) matmul operand, in ``dtype``."""
    c_out = w.shape[0]
    return np.ascontiguousarray(w, dtype=dtype).reshape(groups, c_out // groups, -1)


def _is_pointwise(kernel: Sizes, stride: Sizes, padding: Sizes) -> bool:
    """A 1x1(x1), stride-1, unpadded convolution: a plain channel matmul at every position."""
    return all(k == 1 for k in kernel) and all(s == 1 for s in stride) and not any(padding)


def _tiles(n: int, rows: int, values_per_row: int) -> tuple[list[Tile], int]:
    """Tiles of batch items x output rows, and the largest tile's im2col size.

    Whole items are grouped while they fit ``_TILE_ELEMENTS``; an item too large
    on its own is cut into bands of output rows (at least one row per band).
    """
    per_item = values_per_row * rows
    if per_item <= _TILE_ELEMENTS:
        nb = min(n, _TILE_ELEMENTS // per_item)
        return [(n0, min(n, n0 + nb), 0, rows) for n0 in range(0, n, nb)], nb * per_item
    band = max(1, _TILE_ELEMENTS // values_per_row)
    tiles = [(n0, n0 + 1, i0, min(rows, i0 + band)) for n0 in range(n) for i0 in range(0, rows, band)]
    return tiles, min(band, rows) * values_per_row


def _im2col_view(
    xp: np.ndarray, tile: Tile, kernel: Sizes, stride: Sizes, dilation: Sizes, out_rest: Sizes
) -> np.ndarray:
    """Read-only view ``cols[c, *a, n, i, *o'] = xp[n0 + n, c, (i0 + i)*s_0 + a_0*d_0, *(o'*s' + a'*d')]``.

    ``i`` runs over the tile's output rows, ``o'`` over the other output axes (``out_rest``).
    """
    n0, n1, i0, i1 = tile
    base = xp[n0:n1, :, i0 * stride[0] :]
    s_n, s_c, *s_spatial = base.strides
    shape = (xp.shape[1], *kernel, n1 - n0, i1 - i0, *out_rest)
    strides = (
        s_c,
        *(d * t for d, t in zip(dilation, s_spatial)),
        s_n,
        *(s * t for s, t in zip(stride, s_spatial)),
    )
    return as_strided(base, shape, strides, writeable=False)


def _im2col_tiles(
    xp: np.ndarray, kernel: Sizes, stride: Sizes, dilation: Sizes, out: Sizes
) -> Iterator[tuple[Tile, np.ndarray]]:
    """``(tile, cols)`` for each tile: ``cols`` is the tile's im2col ``(C, *kernel, nb, rows, *out[1:])``,
    copied into one reused contiguous buffer (valid until the next iteration)."""
    n, c = xp.shape[:2]
    tiles, size = _tiles(n, out[0], c * prod(kernel) * prod(out[1:]))
    buf = np.empty(size, dtype=xp.dtype)
    for tile in tiles:
        view = _im2col_view(xp, tile, kernel, stride, dilation, out[1:])
        cols = buf[: view.size].reshape(view.shape)
        np.copyto(cols, view)
        yield tile, cols


def _col2im_add(dxp: np.ndarray, dcols: np.ndarray, tile: Tile, stride: Sizes, dilation: Sizes) -> None:
    """``dxp[n0 + n, c, (i0 + i)*s_0 + a_0*d_0, *(o'*s' + a'*d')] += dcols[c, *a, n, i, *o']``, one tap at a time.

    Within one tap distinct outputs read distinct cells, so each tap is a plain
    strided-slice addition; overlapping windows accumulate across taps.
    """
    n0, n1, i0, _ = tile
    nd = len(stride)
    kernel, out = dcols.shape[1 : 1 + nd], dcols.shape[2 + nd :]
    for taps in np.ndindex(*kernel):
        starts = [a * d for a, d in zip(taps, dilation)]
        starts[0] += i0 * stride[0]
        cells = tuple(slice(f, f + (m - 1) * s + 1, s) for f, m, s in zip(starts, out, stride))
        dxp[(slice(n0, n1), slice(None), *cells)] += dcols[(slice(None), *taps)].swapaxes(0, 1)


def _tile_matrix(arr: np.ndarray, tile: Tile, groups: int) -> np.ndarray:
    """The (G, Cog, P) block of ``arr`` (N, C_out, *out) for a tile, positions ordered (n, *o).

    A single item's rows are a strided view; several items are gathered into a copy.
    """
    n0, n1, i0, i1 = tile
    c_out, positions, per_row = arr.shape[1], prod(arr.shape[2:]), prod(arr.shape[3:])
    if n1 - n0 == 1:
        return arr[n0].reshape(groups, c_out // groups, positions)[:, :, i0 * per_row : i1 * per_row]
    block = arr[n0:n1].reshape(n1 - n0, groups, c_out // groups, positions).transpose(1, 2, 0, 3)
    return np.ascontiguousarray(block).reshape(groups, c_out // groups, -1)


def _convolve(
    x: np.ndarray, w: np.ndarray, stride: Sizes, padding: Sizes, dilation: Sizes, groups: int
) -> np.ndarray:
    """Bias-free convolution ``y_g = W_g @ im2col(xp)_g``, in ``x.dtype`` (``padding`` >= 0)."""
    n, c_in, *spatial = x.shape
    c_out, _, *kernel = w.shape
    cog = c_out // groups
    out = conv_output_shape(tuple(spatial), tuple(kernel), stride, padding, dilation)
    wg = _grouped_weight(w, groups, x.dtype)
    if _is_pointwise(tuple(kernel), stride, padding):
        return np.matmul(wg, x.reshape(n, groups, c_in // groups, prod(spatial))).reshape(n, c_out, *out)
    xp = pad_spatial(x, padding, 0) if any(padding) else x
    y = np.empty((n, c_out, *out), dtype=x.dtype)
    for tile, cols in _im2col_tiles(xp, tuple(kernel), stride, dilation, out):
        n0, n1, _, _ = tile
        cols_g = cols.reshape(groups, wg.shape[2], -1)
        if n1 - n0 == 1:
            np.matmul(wg, cols_g, out=_tile_matrix(y, tile, groups))
        else:
            block = np.matmul(wg, cols_g).reshape(groups, cog, n1 - n0, prod(out))
            y[n0:n1].reshape(n1 - n0, groups, cog, prod(out))[...] = block.transpose(2, 0, 1, 3)
    return y


def _weight_grad(
    dy: np.ndarray, x: np.ndarray, kernel: Sizes, stride: Sizes, padding: Sizes, dilation: Sizes, groups: int
) -> np.ndarray:
    """``dW_g^T (K, Cog) = sum over tiles of cols_g (K, P) @ dy_g^T (P, Cog)``, as (G, Cog, K)."""
    c_in, c_out = x.shape[1], dy.shape[1]
    k = c_in // groups * prod(kernel)
    xp = pad_spatial(x, padding, 0) if any(padding) else x
    dw_t = np.zeros((groups, k, c_out // groups), dtype=x.dtype)
    for tile, cols in _im2col_tiles(xp, kernel, stride, dilation, dy.shape[2:]):
        dw_t += np.matmul(cols.reshape(groups, k, -1), _tile_matrix(dy, tile, groups).transpose(0, 2, 1))
    return dw_t.transpose(0, 2, 1)


def _input_grad_stride1(
    dy: np.ndarray, w: np.ndarray, padding: Sizes, dilation: Sizes, groups: int
) -> np.ndarray:
    """``dx`` of a stride-1 convolution: the full correlation of ``dy`` with the reversed kernel.

    ``dx[n, g*Cg + c, p] = sum_{co in g, a} dyp[n, co, p + a*d] * w[co, c, k-1-a]`` (N-d ``p``, ``a``)
    where ``dyp`` is ``dy`` padded by ``d*(k-1) - lo`` before and ``d*(k-1) - hi`` after
    on each axis (a negative amount crops ``dy`` instead): a forward convolution
    with the kernel reversed on every spatial axis and its channel axes swapped per group.
    """
    c_out, cg, *kernel = w.shape
    cog = c_out // groups
    reverse = (slice(None, None, -1),) * len(kernel)
    w_rot = w.reshape(groups, cog, cg, *kernel).swapaxes(1, 2)[_at(..., *reverse)]
    w_rot = w_rot.reshape(groups * cg, cog, *kernel)
    pairs = [
        ((k - 1) * d - lo, (k - 1) * d - hi) for k, d, (lo, hi) in zip(kernel, dilation, pad_pairs(padding))
    ]
    crop = tuple(slice(max(0, -lo), m - max(0, -hi)) for m, (lo, hi) in zip(dy.shape[2:], pairs))
    pads = tuple(max(0, p) for pair in pairs for p in pair)
    return _convolve(dy[_at(..., *crop)], w_rot, (1,) * len(kernel), pads, dilation, groups)


def _input_grad_col2im(
    dy: np.ndarray,
    w: np.ndarray,
    x_shape: Sizes,
    stride: Sizes,
    padding: Sizes,
    dilation: Sizes,
    groups: int,
) -> np.ndarray:
    """``dx`` by col2im: ``dcols_g = W_g^T @ dy_g`` per tile, scattered back tap by tap, then cropped."""
    n, c_in, *spatial = x_shape
    kernel, out = w.shape[2:], dy.shape[2:]
    pairs = pad_pairs(padding)
    wg_t = _grouped_weight(w, groups, dy.dtype).transpose(0, 2, 1)
    padded = tuple(lo + m + hi for m, (lo, hi) in zip(spatial, pairs))
    dxp = np.zeros((n, c_in, *padded), dtype=dy.dtype)
    per_row = c_in * prod(kernel) * prod(out[1:])
    tiles, size = _tiles(n, out[0], per_row)
    buf = np.empty(size, dtype=dy.dtype)
    for tile in tiles:
        n0, n1, i0, i1 = tile
        dcols = buf[: per_row * (n1 - n0) * (i1 - i0)]
        np.matmul(wg_t, _tile_matrix(dy, tile, groups), out=dcols.reshape(groups, wg_t.shape[1], -1))
        _col2im_add(dxp, dcols.reshape(c_in, *kernel, n1 - n0, i1 - i0, *out[1:]), tile, stride, dilation)
    if any(padding):
        interior = tuple(slice(lo, lo + m) for m, (lo, _) in zip(spatial, pairs))
        return np.ascontiguousarray(dxp[_at(..., *interior)])
    return dxp


# --------------------------------------------------------------------------- conv


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
    """``y_g = W_g @ im2col(xp)_g + b`` per group, tile by tile."""
    y = _convolve(x, w, stride, padding, dilation, groups)
    if b is not None:
        y += np.asarray(b, dtype=x.dtype).reshape(-1, *(1,) * (x.ndim - 2))
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
    """``dW_g = dy_g @ im2col(xp)_g^T`` over tiles; ``dx`` by the reversed-kernel convolution (stride 1,
    unless C_out is much larger than C_in) or by col2im; ``db = sum_{n, o} dy``."""
    dtype = x.dtype
    dy = np.ascontiguousarray(dy, dtype=dtype)
    w = np.asarray(w, dtype=dtype)
    n, c_in, *spatial = x.shape
    c_out, cg, *kernel = w.shape
    db = None if b is None else dy.sum(axis=(0, *range(2, dy.ndim)))
    if _is_pointwise(tuple(kernel), stride, padding):
        wg = _grouped_weight(w, groups, dtype)
        xr = x.reshape(n, groups, cg, prod(spatial))
        dyr = dy.reshape(n, groups, c_out // groups, -1)
        dx = np.matmul(wg.transpose(0, 2, 1), dyr).reshape(x.shape)
        dw = np.matmul(dyr, xr.transpose(0, 1, 3, 2)).sum(axis=0).reshape(w.shape)
        return dx, dw, db
    dw = _weight_grad(dy, x, tuple(kernel), stride, padding, dilation, groups).reshape(w.shape)
    # the reversed-kernel convolution copies an im2col of dy (C_out channels); col2im adds
    # into C_in channels at about 1.5x the cost per value: take whichever moves less
    if all(s == 1 for s in stride) and 2 * c_out <= 3 * c_in:
        dx = _input_grad_stride1(dy, w, padding, dilation, groups)
    else:
        dx = _input_grad_col2im(dy, w, x.shape, stride, padding, dilation, groups)
    return dx, dw, db


# --------------------------------------------------------------------------- pooling helpers
#
# Pooling works on *phase planes*: with stride s the input is rearranged once into
# ``planes[n, c, *p, *q] = x[n, c, *(q*s + p)]``. For consecutive outputs a kernel tap
# reads consecutive cells of one plane, so every per-tap operation runs on unit-stride
# rows (NumPy's fast contiguous loops) instead of stride-s gathers, which NumPy runs
# several times slower.

Tap = tuple[tuple[slice, ...], tuple[Union[int, slice], ...]]
"""``(out_slices, plane_index)``: ``y[..., *out_slices]`` pairs with ``planes[..., *plane_index]``,
``plane_index`` being the tap's phase on each axis, then its slice of that phase plane on each axis."""


def _phase_view(a: np.ndarray, stride: Sizes) -> np.ndarray:
    """``a`` (N, C, *(q*s)) viewed as its phase planes (N, C, *s, *q) (no copy)."""
    n, c, *lengths = a.shape
    s_n, s_c, *steps = a.strides
    shape = (n, c, *stride, *(m // s for m, s in zip(lengths, stride)))
    strides = (s_n, s_c, *steps, *(s * t for s, t in zip(stride, steps)))
    return as_strided(a, shape, strides)


def _phase_planes(x: np.ndarray, stride: Sizes) -> np.ndarray:
    """``planes[n, c, *p, *q] = x[n, c, *(q*s + p)]`` (a view of ``x`` for stride 1).

    When the stride does not divide the input, the planes are ``ceil(L/s)`` long
    on each axis and their cells past the input edge are unspecified; no tap ever
    reads them.
    """
    nd = len(stride)
    if all(s == 1 for s in stride):
        return np.expand_dims(x, tuple(range(2, 2 + nd)))
    spatial = x.shape[2:]
    q = tuple(-(-m // s) for m, s in zip(spatial, stride))
    full = tuple(qa * s for qa, s in zip(q, stride))
    if spatial != full:
        ext = np.empty((*x.shape[:2], *full), dtype=x.dtype)
        ext[_at(..., *(slice(0, m) for m in spatial))] = x
        x = ext
    planes = np.empty((*x.shape[:2], *stride, *q), dtype=x.dtype)
    np.copyto(planes, _phase_view(x, stride))
    return planes


def _merge_planes(planes: np.ndarray, spatial: Sizes, stride: Sizes) -> np.ndarray:
    """Inverse of ``_phase_planes``: the fresh (N, C, *spatial) array whose phase planes are ``planes``."""
    nd = len(stride)
    if all(s == 1 for s in stride):
        return planes[_at(slice(None), slice(None), *(0,) * nd)]
    q = planes.shape[2 + nd :]
    full = tuple(qa * s for qa, s in zip(q, stride))
    out = np.empty((*planes.shape[:2], *full), dtype=planes.dtype)
    np.copyto(_phase_view(out, stride), planes)
    if tuple(spatial) != full:
        return np.ascontiguousarray(out[_at(..., *(slice(0, m) for m in spatial))])
    return out


def _plane_slice(cells: slice, s: int) -> tuple[int, slice]:
    """Input cells ``start, start + s, ...`` as ``(phase, slice within that phase plane)``."""
    count = len(range(cells.start, cells.stop, s))
    q0 = cells.start // s
    return cells.start % s, slice(q0, q0 + count)


def _taps(
    spatial: Sizes, out: Sizes, kernel: Sizes, stride: Sizes, padding: Sizes, dilation: Sizes
) -> list[Tap]:
    """Each kernel tap that reads real cells, in row-major order, as a ``Tap``.

    Output ``o`` reads input ``o*s - lo + a*d`` on each axis through tap ``a``.
    """
    taps: list[Tap] = []
    for tap in np.ndindex(*kernel):
        offsets = tuple(a * d for a, d in zip(tap, dilation))
        sl = tap_slices(spatial, out, stride, padding, offsets)
        if sl is not None:
            out_slices, in_slices = sl
            phases, plane_slices = zip(*(_plane_slice(cells, s) for cells, s in zip(in_slices, stride)))
            taps.append((out_slices, (*phases, *plane_slices)))
    return taps


def _max_pool(
    x: np.ndarray, kernel: Sizes, stride: Sizes, padding: Sizes, dilation: Sizes, ceil_mode: bool
) -> tuple[np.ndarray, np.ndarray, list[Tap]]:
    """``y = max over taps`` (starting from ``-inf``), the phase planes of ``x`` and the taps."""
    spatial = x.shape[2:]
    out = pool_output_shape(spatial, kernel, stride, padding, dilation, ceil_mode)
    taps = _taps(spatial, out, kernel, stride, padding, dilation)
    planes = _phase_planes(x, stride)
    y = np.full((*x.shape[:2], *out), -np.inf, dtype=x.dtype)
    for out_slices, plane_index in taps:
        y_sub = y[_at(..., *out_slices)]
        np.maximum(y_sub, planes[(..., *plane_index)], out=y_sub)
    return y, planes, taps


# --------------------------------------------------------------------------- max pool


def max_pool_forward(
    x: np.ndarray,
    *,
    kernel_size: Sizes,
    stride: Sizes,
    padding: Sizes,
    dilation: Sizes,
    ceil_mode: bool,
) -> np.ndarray:
    """``y[n, c, o] = max_a x[n, c, *(o*s - lo + a*d)]`` over the real cells."""
    y, _, _ = _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode)
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
    """``dx[winner] += dy``; the winner is the first tap (row-major) whose value equals the window max
    (the first NaN of a window holding NaN); the other cells get nothing, even from an infinite ``dy``."""
    dy = np.asarray(dy, dtype=x.dtype)
    y, planes, taps = _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode)
    dplanes = np.zeros(planes.shape, dtype=x.dtype)
    open_ = np.ones(y.shape, dtype=bool)  # windows whose first maximum is not found yet
    hit_buf, tmp_buf = np.empty(y.shape, dtype=bool), np.empty(y.shape, dtype=x.dtype)
    for out_slices, plane_index in taps:
        x_sub, open_sub = planes[_at(..., *plane_index)], open_[_at(..., *out_slices)]
        block = _at(..., *(slice(0, m) for m in x_sub.shape[2:]))
        hit, tmp = hit_buf[block], tmp_buf[block]
        y_sub = y[_at(..., *out_slices)]
        np.equal(x_sub, y_sub, out=hit)
        hit |= np.isnan(x_sub) & np.isnan(y_sub)  # a NaN maximum is won by the window's (first) NaN
        hit &= open_sub  # the first maximum only: windows already served stay closed
        open_sub ^= hit
        np.copyto(tmp, 0)
        np.copyto(tmp, dy[_at(..., *out_slices)], where=hit)  # not dy * hit: inf * 0 would leave NaN
        dplanes[(..., *plane_index)] += tmp
    return _merge_planes(dplanes, x.shape[2:], stride)


# --------------------------------------------------------------------------- avg pool


def avg_pool_forward(
    x: np.ndarray,
    *,
    kernel_size: Sizes,
    stride: Sizes,
    padding: Sizes,
    ceil_mode: bool,
    count_include_pad: bool,
) -> np.ndarray:
    """``y = sum over taps of (the real cells / D)``: divided first, so finite means never overflow."""
    spatial = x.shape[2:]
    ones = (1,) * len(spatial)
    out = pool_output_shape(spatial, kernel_size, stride, padding, ones, ceil_mode)
    planes = _phase_planes(x, stride)
    div = avg_divisors(spatial, out, kernel_size, stride, padding, count_include_pad, x.dtype)
    y = np.zeros((*x.shape[:2], *out), dtype=x.dtype)
    for out_slices, plane_index in _taps(spatial, out, kernel_size, stride, padding, ones):
        # each tap divided before it is added: no partial sum exceeds the largest |x| (no overflow)
        y[_at(..., *out_slices)] += planes[_at(..., *plane_index)] / div[tuple(out_slices)]
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
    """``dx[cell] += dy / D`` for every window reading ``cell``, one tap at a time."""
    spatial, out = x.shape[2:], dy.shape[2:]
    ones = (1,) * len(spatial)
    g = np.asarray(dy, dtype=x.dtype) / avg_divisors(
        spatial, out, kernel_size, stride, padding, count_include_pad, x.dtype
    )
    q = tuple(-(-m // s) for m, s in zip(spatial, stride))
    dplanes = np.zeros((*x.shape[:2], *stride, *q), dtype=x.dtype)
    for out_slices, plane_index in _taps(spatial, out, kernel_size, stride, padding, ones):
        dplanes[(..., *plane_index)] += g[(..., *out_slices)]
    return _merge_planes(dplanes, spatial, stride)


# --------------------------------------------------------------------------- the contract's names
# One N-d function per operation and direction; the rank of ``x`` selects the dimension.

__all__ = ["CONVCHECK_CAPABILITIES", *_bind_contract(globals())]
_widen_contract(globals())

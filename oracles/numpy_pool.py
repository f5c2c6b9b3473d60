"""Max and average pooling in plain NumPy, one explicit sliding window at a time.

The definitions are those of ``convcheck.spec.pool``; window positions, output
sizes and divisors come from ``convcheck.spec.shapes``. Loops run over output
positions only (every window is vectorised over batch and channels), so the
code reads like the definition and is meant for small arrays.

Each window ``(i, j)`` reads the input rows ``window_cells(i, KH, SH, top, DH)``
and columns ``window_cells(j, KW, SW, left, DW)``; only the coordinates inside
the input are *real* cells, the others are padding.

* Max pooling pads with ``-inf``. A ``-inf`` padding cell can never be a strict
  maximum and the spec guarantees every window has a real cell, so the padding is
  kept implicit: the maximum and its winning cell(s) are taken over the real
  cells in row-major window order. On a window whose real cells are all ``-inf``
  the winner is thus a real cell, as in PyTorch. NaN counts as larger than any
  number (it propagates); tied NaNs follow the tie rule like tied numbers.
* Average pooling divides the sum of the real cells by
  ``avg_divisor(i, ...) * avg_divisor(j, ...)`` (zero padding adds nothing).

Every function computes in float64, returns float64 and leaves its inputs alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from convcheck.spec import pool
from convcheck.spec.errors import InvalidConfiguration
from convcheck.spec.params import AvgPool2dParams, MaxPool2dParams
from convcheck.spec.shapes import avg_divisor, window_cells

Pair = tuple[int, int]
Padding = tuple[int, int, int, int]

__all__ = [
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "max_pool2d_backward",
    "max_pool2d_forward",
]


# --------------------------------------------------------------------------- helpers


def _as_f64(a: np.ndarray) -> np.ndarray:
    """A float64 view or copy of ``a`` (never written to)."""
    return np.asarray(a, dtype=np.float64)


def _checked(x: np.ndarray, p: MaxPool2dParams | AvgPool2dParams) -> np.ndarray:
    """``x`` as float64 after the spec's validity check (raises ``InvalidConfiguration``)."""
    x = _as_f64(x)
    pool.check(tuple(x.shape), p)
    return x


def _checked_dy(dy: np.ndarray, x: np.ndarray, p: MaxPool2dParams | AvgPool2dParams) -> np.ndarray:
    """``dy`` as float64, after checking it has the output's shape."""
    dy = _as_f64(dy)
    expected = pool.output_shape(tuple(x.shape), p)
    if tuple(dy.shape) != expected:
        raise InvalidConfiguration(f"dy.shape={tuple(dy.shape)}, but the output shape is {expected}")
    return dy


def _real(cells: list[int], n: int) -> np.ndarray:
    """The coordinates among ``cells`` that lie inside an axis of length ``n``, in order."""
    return np.array([c for c in cells if 0 <= c < n], dtype=np.intp)


def _windows(
    x_shape: tuple[int, ...], p: MaxPool2dParams | AvgPool2dParams
) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """Yield ``(i, j, rows, cols)``: each output position and the real rows/cols its window reads.

    ``x[:, :, rows[:, None], cols[None, :]]`` is the window's real part, shape
    ``(N, C, len(rows), len(cols))``, in row-major window order.
    """
    _, _, h, w = x_shape
    oh, ow = pool.output_hw(x_shape, p)
    (kh, kw), (sh, sw), (dh, dw) = p.kernel_size, p.stride, p.dilation
    top, _, left, _ = p.padding
    for i in range(oh):
        rows = _real(window_cells(i, kh, sh, top, dh), h)
        for j in range(ow):
            cols = _real(window_cells(j, kw, sw, left, dw), w)
            yield i, j, rows, cols


def _winners(v: np.ndarray) -> np.ndarray:
    """Boolean mask of the maxima along the last axis of ``v``.

    ``v[..., m]`` is a flattened window. Without NaN the winners are the cells
    equal to the maximum; with NaN they are the NaN cells.
    """
    nan = np.isnan(v)
    top = np.max(v, axis=-1, keepdims=True)
    return np.where(nan.any(axis=-1, keepdims=True), nan, v == top)


def _tie_weights(winners: np.ndarray, ties: str) -> np.ndarray:
    """Share of a window's gradient that each cell receives under the tie rule.

    ``"first"``/``"last"``: 1 for the first/last winner in window order, 0
    elsewhere; ``"split"``: ``1 / #winners`` for every winner.
    """
    if ties == "split":
        return winners / winners.sum(axis=-1, keepdims=True)
    m = winners.shape[-1]
    if ties == "first":
        index = np.argmax(winners, axis=-1)
    elif ties == "last":
        index = m - 1 - np.argmax(winners[..., ::-1], axis=-1)
    else:
        raise ValueError(f"ties={ties!r} must be one of {list(pool.TIE_RULES)}")
    return (np.arange(m) == index[..., None]).astype(np.float64)


def _max_params(
    kernel_size: Pair, stride: Pair, padding: Padding, dilation: Pair, ceil_mode: bool
) -> MaxPool2dParams:
    return MaxPool2dParams(
        kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode
    )


def _avg_params(
    kernel_size: Pair, stride: Pair, padding: Padding, ceil_mode: bool, count_include_pad: bool
) -> AvgPool2dParams:
    return AvgPool2dParams(
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        ceil_mode=ceil_mode,
        count_include_pad=count_include_pad,
    )


def _divisor(i: int, j: int, x_shape: tuple[int, ...], p: AvgPool2dParams) -> int:
    """``avg_divisor`` on H times ``avg_divisor`` on W for window ``(i, j)``."""
    _, _, h, w = x_shape
    (kh, kw), (sh, sw) = p.kernel_size, p.stride
    top, bottom, left, right = p.padding
    return avg_divisor(i, h, kh, sh, top, bottom, p.count_include_pad) * avg_divisor(
        j, w, kw, sw, left, right, p.count_include_pad
    )


# --------------------------------------------------------------------------- max pooling


def max_pool2d_forward(
    x: np.ndarray,
    *,
    kernel_size: Pair,
    stride: Pair,
    padding: Padding,
    dilation: Pair,
    ceil_mode: bool,
) -> np.ndarray:
    """``y[n, c, i, j] = max over the -inf padded window (i, j)`` of ``x[n, c]``."""
    p = _max_params(kernel_size, stride, padding, dilation, ceil_mode)
    x = _checked(x, p)
    y = np.empty(pool.output_shape(x.shape, p), dtype=np.float64)
    for i, j, rows, cols in _windows(x.shape, p):
        y[:, :, i, j] = x[:, :, rows[:, None], cols[None, :]].max(axis=(2, 3))
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
    ties: str = "first",
) -> np.ndarray:
    """``dx = sum over windows of dy[n, c, i, j] * share(cell)``, share by the tie rule.

    Each window's gradient goes to its winning cell: the first maximum in
    row-major window order (``ties="first"``, the contract), the last one
    (``"last"``), or ``1/k`` to each of ``k`` tied maxima (``"split"``).
    Overlapping windows accumulate.
    """
    if ties not in pool.TIE_RULES:
        raise ValueError(f"ties={ties!r} must be one of {list(pool.TIE_RULES)}")
    p = _max_params(kernel_size, stride, padding, dilation, ceil_mode)
    x = _checked(x, p)
    dy = _checked_dy(dy, x, p)
    n, c = x.shape[:2]
    dx = np.zeros(x.shape, dtype=np.float64)
    for i, j, rows, cols in _windows(x.shape, p):
        window = x[:, :, rows[:, None], cols[None, :]]
        share = _tie_weights(_winners(window.reshape(n, c, -1)), ties).reshape(window.shape)
        dx[:, :, rows[:, None], cols[None, :]] += share * dy[:, :, i, j, None, None]
    return dx


# --------------------------------------------------------------------------- average pooling


def avg_pool2d_forward(
    x: np.ndarray,
    *,
    kernel_size: Pair,
    stride: Pair,
    padding: Padding,
    ceil_mode: bool,
    count_include_pad: bool,
) -> np.ndarray:
    """``y[n, c, i, j] = (sum of the real cells of window (i, j)) / divisor(i, j)``.

    ``divisor(i, j) = avg_divisor(i) * avg_divisor(j)`` (``spec.shapes``).
    """
    p = _avg_params(kernel_size, stride, padding, ceil_mode, count_include_pad)
    x = _checked(x, p)
    y = np.empty(pool.output_shape(x.shape, p), dtype=np.float64)
    for i, j, rows, cols in _windows(x.shape, p):
        total = x[:, :, rows[:, None], cols[None, :]].sum(axis=(2, 3))
        y[:, :, i, j] = total / _divisor(i, j, x.shape, p)
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
    """``dx[n, c, r, s] = sum over windows (i, j) reading (r, s) of dy[n, c, i, j] / divisor(i, j)``."""
    p = _avg_params(kernel_size, stride, padding, ceil_mode, count_include_pad)
    x = _checked(x, p)
    dy = _checked_dy(dy, x, p)
    dx = np.zeros(x.shape, dtype=np.float64)
    for i, j, rows, cols in _windows(x.shape, p):
        share = dy[:, :, i, j] / _divisor(i, j, x.shape, p)
        dx[:, :, rows[:, None], cols[None, :]] += share[:, :, None, None]
    return dx

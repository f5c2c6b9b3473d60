"""Window geometry shared by the NumPy implementations (``numpy_reference``, ``numpy_fast``).

Everything here works one spatial axis at a time, in the notation of
``convcheck.spec.shapes``: input length ``n``, kernel length ``k``, stride ``s``,
padding ``lo`` before and ``hi`` after, dilation ``d``. Output position ``o``
reads the input cells ``o*s - lo + j*d`` for the kernel taps ``j < k``; cells
outside ``[0, n)`` are padding.

The helpers only compute sizes, slices and divisors; they never touch the
values of an array except in :func:`pad_nchw`, which returns a fresh array.
"""

from __future__ import annotations

import numpy as np

from convcheck.spec.shapes import avg_divisor, ceil_div, conv_out_size, pool_out_size

Pair = tuple[int, int]
Padding = tuple[int, int, int, int]


def conv_output_hw(hw: Pair, kernel: Pair, stride: Pair, padding: Padding, dilation: Pair) -> Pair:
    """``(OH, OW)`` of a convolution: ``floor((n + lo + hi - d*(k-1) - 1) / s) + 1`` per axis."""
    oh = conv_out_size(hw[0], kernel[0], stride[0], padding[0], padding[1], dilation[0])
    ow = conv_out_size(hw[1], kernel[1], stride[1], padding[2], padding[3], dilation[1])
    return oh, ow


def pool_output_hw(
    hw: Pair, kernel: Pair, stride: Pair, padding: Padding, dilation: Pair, ceil_mode: bool
) -> Pair:
    """``(OH, OW)`` of a pooling, by ``spec.shapes.pool_out_size`` (``ceil_mode`` drop rule included)."""
    oh = pool_out_size(hw[0], kernel[0], stride[0], padding[0], padding[1], dilation[0], ceil_mode)
    ow = pool_out_size(hw[1], kernel[1], stride[1], padding[2], padding[3], dilation[1], ceil_mode)
    return oh, ow


def pad_nchw(x: np.ndarray, padding: Padding, value: float) -> np.ndarray:
    """A fresh copy of ``x`` (N, C, H, W) padded by ``padding = (top, bottom, left, right)``.

    The border is filled with ``value``; the result keeps ``x.dtype``.
    """
    top, bottom, left, right = padding
    n, c, h, w = x.shape
    out = np.empty((n, c, top + h + bottom, left + w + right), dtype=x.dtype)
    out[:, :, :top] = value
    out[:, :, top + h :] = value
    out[:, :, top : top + h, :left] = value
    out[:, :, top : top + h, left + w :] = value
    out[:, :, top : top + h, left : left + w] = x
    return out


def tap_span(n: int, out: int, s: int, lo: int, offset: int) -> tuple[int, int, int]:
    """Outputs ``o`` in ``[o0, o1)`` whose tap at ``offset = j*d`` reads a real input cell.

    The cell is ``o*s - lo + offset``; it lies in ``[0, n)`` exactly for
    ``ceil((lo - offset) / s) <= o <= floor((n - 1 + lo - offset) / s)``. Returns
    ``(o0, o1, first)`` with ``first`` the input cell read by ``o0``; the span is
    empty (``o0 == o1``) when the tap only ever reads padding.
    """
    base = offset - lo
    o0 = max(0, ceil_div(-base, s))
    o1 = min(out, (n - 1 - base) // s + 1)
    o1 = max(o0, o1)
    return o0, o1, o0 * s + base


def tap_slices(
    hw: Pair, out_hw: Pair, stride: Pair, padding: Padding, offsets: Pair
) -> tuple[slice, slice, slice, slice] | None:
    """Slices pairing a kernel tap's real input cells with the outputs that read them.

    For the tap at spatial ``offsets = (a*dh, e*dw)`` returns
    ``(out_rows, out_cols, in_rows, in_cols)`` such that
    ``x[..., in_rows, in_cols]`` and ``y[..., out_rows, out_cols]`` are aligned
    element by element (``y[i, j]`` reads ``x[i*sh - top + a*dh, j*sw - left + e*dw]``),
    or ``None`` when the tap reads padding only.
    """
    spans = []
    for axis in (0, 1):
        o0, o1, first = tap_span(hw[axis], out_hw[axis], stride[axis], padding[2 * axis], offsets[axis])
        if o1 == o0:
            return None
        last = first + (o1 - o0 - 1) * stride[axis]
        spans.append((slice(o0, o1), slice(first, last + 1, stride[axis])))
    (orow, irow), (ocol, icol) = spans
    return orow, ocol, irow, icol


def real_taps(o: int, n: int, k: int, s: int, lo: int, d: int) -> range:
    """The input cells of window ``o`` that are real (inside ``[0, n)``), in window order.

    Window ``o`` reads ``o*s - lo + j*d`` for ``j < k``; the real ones form the
    contiguous tap range ``ceil((lo - o*s) / d) <= j <= floor((n - 1 + lo - o*s) / d)``,
    returned here as a ``range`` of input coordinates with step ``d``.
    """
    start = o * s - lo
    j0 = max(0, ceil_div(-start, d))
    j1 = min(k, (n - 1 - start) // d + 1)
    return range(start + j0 * d, start + max(j0, j1) * d, d)


def avg_divisors(
    hw: Pair,
    out_hw: Pair,
    kernel: Pair,
    stride: Pair,
    padding: Padding,
    count_include_pad: bool,
    dtype: np.dtype,
) -> np.ndarray:
    """The (OH, OW) array of average-pool divisors, ``div_h[i] * div_w[j]``, in ``dtype``.

    Each axis' divisor is ``spec.shapes.avg_divisor`` (PyTorch's rule: the window
    clipped to the padded extent, and further to the input unless
    ``count_include_pad``).
    """
    per_axis = []
    for axis in (0, 1):
        n, k, s = hw[axis], kernel[axis], stride[axis]
        lo, hi = padding[2 * axis], padding[2 * axis + 1]
        per_axis.append([avg_divisor(o, n, k, s, lo, hi, count_include_pad) for o in range(out_hw[axis])])
    return np.multiply.outer(np.asarray(per_axis[0], dtype=dtype), np.asarray(per_axis[1], dtype=dtype))


__all__ = [
    "avg_divisors",
    "conv_output_hw",
    "pad_nchw",
    "pool_output_hw",
    "real_taps",
    "tap_slices",
    "tap_span",
]

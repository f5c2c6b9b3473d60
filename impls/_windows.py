"""Window geometry shared by the NumPy implementations (``numpy_reference``, ``numpy_fast``), in N-d.

Everything here works one spatial axis at a time, in the notation of
``convcheck.spec.shapes``: input length ``n``, kernel length ``k``, stride ``s``,
padding ``lo`` before and ``hi`` after, dilation ``d``. Output position ``o``
reads the input cells ``o*s - lo + j*d`` for the kernel taps ``j < k``; cells
outside ``[0, n)`` are padding. The N-d helpers apply that rule to every
spatial axis; ``padding`` is the contract's flattened ``(lo, hi)`` pair per axis
(``(top, bottom, left, right)`` in 2-D).

The helpers only compute sizes, slices and divisors; they never touch the
values of an array except in :func:`pad_spatial`, which returns a fresh array.
"""

from __future__ import annotations

from functools import reduce

import numpy as np

from convcheck.spec.shapes import at, avg_divisor, ceil_div, conv_out_size, pool_out_size

Sizes = tuple[int, ...]


def pad_pairs(padding: Sizes) -> list[tuple[int, int]]:
    """``[(lo, hi), ...]``, one pair per spatial axis, from the flattened ``padding``."""
    return [(padding[2 * a], padding[2 * a + 1]) for a in range(len(padding) // 2)]


def conv_output_shape(spatial: Sizes, kernel: Sizes, stride: Sizes, padding: Sizes, dilation: Sizes) -> Sizes:
    """Output lengths of a convolution: ``floor((n + lo + hi - d*(k-1) - 1) / s) + 1`` per axis."""
    return tuple(
        conv_out_size(n, k, s, lo, hi, d)
        for n, k, s, (lo, hi), d in zip(spatial, kernel, stride, pad_pairs(padding), dilation)
    )


def pool_output_shape(
    spatial: Sizes, kernel: Sizes, stride: Sizes, padding: Sizes, dilation: Sizes, ceil_mode: bool
) -> Sizes:
    """Output lengths of a pooling, by ``spec.shapes.pool_out_size`` (``ceil_mode`` drop rule included)."""
    return tuple(
        pool_out_size(n, k, s, lo, hi, d, ceil_mode)
        for n, k, s, (lo, hi), d in zip(spatial, kernel, stride, pad_pairs(padding), dilation)
    )


def pad_spatial(x: np.ndarray, padding: Sizes, value: float) -> np.ndarray:
    """A fresh copy of ``x`` (N, C, *spatial) padded by the ``(lo, hi)`` pairs of ``padding``.

    The border is filled with ``value``; the result keeps ``x.dtype``.
    """
    pairs = pad_pairs(padding)
    shape = (*x.shape[:2], *(lo + n + hi for n, (lo, hi) in zip(x.shape[2:], pairs)))
    out = np.full(shape, value, dtype=x.dtype)
    out[at(..., *(slice(lo, lo + n) for n, (lo, _) in zip(x.shape[2:], pairs)))] = x
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
    spatial: Sizes, out: Sizes, stride: Sizes, padding: Sizes, offsets: Sizes
) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
    """Slices pairing a kernel tap's real input cells with the outputs that read them.

    For the tap at spatial ``offsets = (j_0*d_0, j_1*d_1, ...)`` returns
    ``(out_slices, in_slices)``, one slice per spatial axis, such that
    ``x[..., *in_slices]`` and ``y[..., *out_slices]`` are aligned element by
    element (output ``o`` reads input ``o*s - lo + offset`` on each axis), or
    ``None`` when the tap reads padding only.
    """
    out_slices, in_slices = [], []
    for n, o, s, (lo, _), offset in zip(spatial, out, stride, pad_pairs(padding), offsets):
        o0, o1, first = tap_span(n, o, s, lo, offset)
        if o1 == o0:
            return None
        last = first + (o1 - o0 - 1) * s
        out_slices.append(slice(o0, o1))
        in_slices.append(slice(first, last + 1, s))
    return tuple(out_slices), tuple(in_slices)


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
    spatial: Sizes,
    out: Sizes,
    kernel: Sizes,
    stride: Sizes,
    padding: Sizes,
    count_include_pad: bool,
    dtype: np.dtype,
) -> np.ndarray:
    """The array (shape ``out``) of average-pool divisors, the outer product of the axes' divisors, in ``dtype``.

    Each axis' divisor is ``spec.shapes.avg_divisor`` (PyTorch's rule: the window
    clipped to the padded extent, and further to the input unless
    ``count_include_pad``).
    """
    per_axis = [
        np.asarray([avg_divisor(o, n, k, s, lo, hi, count_include_pad) for o in range(m)], dtype=dtype)
        for n, m, k, s, (lo, hi) in zip(spatial, out, kernel, stride, pad_pairs(padding))
    ]
    return reduce(np.multiply.outer, per_axis)


__all__ = [
    "avg_divisors",
    "conv_output_shape",
    "pad_pairs",
    "pad_spatial",
    "pool_output_shape",
    "real_taps",
    "tap_slices",
    "tap_span",
]

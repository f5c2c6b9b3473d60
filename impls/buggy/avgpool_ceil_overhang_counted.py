"""avg_pool2d: with ``count_include_pad`` the divisor counts the ``ceil_mode`` overhang too.

The student's divisor for ``count_include_pad=True`` is the full window length
``KH * KW`` on the grounds that "padding counts". But with ``ceil_mode`` the last
window may hang past the bottom/right padding, and cells beyond the padded
input are not padding: PyTorch clips the window to the padded extent before
counting. Those windows are divided by too much. ``count_include_pad=False``
(real cells only) is right, and so is everything without an overhang.
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "avgpool_divisor_counts_ceil_overhang"
EXPECTED_FAILURES = ("avg_pool2d:forward", "avg_pool2d:backward", "avg_pool2d:avg_spreading")

conv2d_forward = ref.conv2d_forward
conv2d_backward = ref.conv2d_backward
max_pool2d_forward = ref.max_pool2d_forward
max_pool2d_backward = ref.max_pool2d_backward


def _axis_divisors(n, k, s, lo, out, count_include_pad):
    d = np.empty(out, dtype=np.int64)
    for o in range(out):
        start = o * s - lo
        end = start + k  # BUG: not clipped to the padded extent, min(start + k, n + hi)
        d[o] = k if count_include_pad else min(end, n) - max(start, 0)
    return d


def _divisor(x_shape, out_hw, kernel_size, stride, padding, count_include_pad):
    (h, w), (oh, ow) = x_shape[2:], out_hw
    dh = _axis_divisors(h, kernel_size[0], stride[0], padding[0], oh, count_include_pad)
    dw = _axis_divisors(w, kernel_size[1], stride[1], padding[2], ow, count_include_pad)
    return np.outer(dh, dw)


def avg_pool2d_forward(x, *, kernel_size, stride, padding, ceil_mode, count_include_pad):
    sums, _ = _kit.avg_sum_windows(
        x, kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode
    )
    divisor = _divisor(x.shape, sums.shape[2:], kernel_size, stride, padding, count_include_pad)
    return (sums / divisor).astype(x.dtype, copy=False)


def avg_pool2d_backward(dy, x, *, kernel_size, stride, padding, ceil_mode, count_include_pad):
    _, full = _kit.pool_layout(x.shape, kernel_size, stride, padding, (1, 1), ceil_mode)
    divisor = _divisor(x.shape, dy.shape[2:], kernel_size, stride, padding, count_include_pad)
    return _kit.avg_spread(dy, x.shape, divisor, kernel_size=kernel_size, stride=stride, full=full)

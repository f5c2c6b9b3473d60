"""max_pool2d backward: a tied window's gradient goes, in full, to every cell holding the maximum.

The student built the backward pass from a mask, ``window == window.max()``, and
multiplied ``dy`` by it. Without ties this is right; when two or more cells of
a window share the maximum each of them receives the whole ``dy``, so the
gradient is counted several times. The contract sends it to the first maximum
in row-major window order only.
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "maxpool_ties_to_every_max"
EXPECTED_FAILURES = ("max_pool2d:backward", "max_pool2d:max_routing")

conv2d_forward = ref.conv2d_forward
conv2d_backward = ref.conv2d_backward
max_pool2d_forward = ref.max_pool2d_forward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def max_pool2d_backward(dy, x, *, kernel_size, stride, padding, dilation, ceil_mode):
    win, full = _kit.max_windows(
        x, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode
    )
    is_max = win == win.max(axis=-1, keepdims=True)  # BUG: true for every tied cell
    t, b, l, r = full
    dxp = np.zeros((*x.shape[:2], x.shape[2] + t + b, x.shape[3] + l + r), dtype=dy.dtype)
    kh, kw = kernel_size
    for a in range(kh):
        for e in range(kw):
            tap = _kit.taps(dxp, a * dilation[0], e * dilation[1], stride, dy.shape[2:])
            tap += np.where(is_max[..., a * kw + e], dy, 0)  # routed, not multiplied: inf * 0 is NaN
    return _kit.crop(dxp, full, x.shape)

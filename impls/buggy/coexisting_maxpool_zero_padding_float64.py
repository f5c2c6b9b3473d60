"""max_pool2d: two mistakes at once, padding with zeros and returning float64 for float32 inputs.

The student padded with ``np.pad``'s default, zeros, instead of ``-inf`` (a window
whose real cells are all negative returns 0 and loses its gradient to the padding),
and, "for accuracy", converted the input to float64 first and never cast the result
back. Either mistake alone is a known one; together, a diagnosis that stops at the
first behaviour it sees (the dtype) hides the padding mistake. On a float32 case
where the padding wins, both must be named, the padding first: it is the one that
makes the values wrong.
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "maxpool_zero_padding"
ALSO_DIAGNOSED = ("float32_promoted_to_float64",)
EXPECTED_FAILURES = ("max_pool2d:forward", "max_pool2d:backward", "max_pool2d:shapes_dtypes")

conv2d_forward = ref.conv2d_forward
conv2d_backward = ref.conv2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def max_pool2d_forward(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    x = x.astype(np.float64)  # BUG: never cast back to the caller's dtype
    win, _ = _kit.max_windows(
        x,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil_mode=ceil_mode,
        fill=0.0,  # BUG: padding must never win: -inf
    )
    return win.max(axis=-1)


def max_pool2d_backward(dy, x, *, kernel_size, stride, padding, dilation, ceil_mode):
    dy, x = dy.astype(np.float64), x.astype(np.float64)  # BUG: as in the forward pass
    win, full = _kit.max_windows(
        x,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil_mode=ceil_mode,
        fill=0.0,  # BUG: as in the forward pass
    )
    best = win.argmax(axis=-1)
    rows, cols = _kit.window_cells(best, kernel_size, stride, dilation, dy.shape[2:])
    nn, cc = _kit.batch_channel_index(dy.shape)
    t, b, l, r = full
    dxp = np.zeros((*x.shape[:2], x.shape[2] + t + b, x.shape[3] + l + r), dtype=dy.dtype)
    np.add.at(dxp, (nn, cc, rows, cols), dy)
    return _kit.crop(dxp, full, x.shape)

"""max_pool2d: the dilated path pads with zeros instead of ``-inf``.

The student wrote the undilated pooling with ``-inf`` padding and, later, a separate path for
dilation >= 2 that pads with ``np.pad``'s default, zeros. Only a dilated, padded window (or a
``ceil_mode`` overhang) whose real cells are all negative shows it: the padding wins (0) in the
forward pass and takes the gradient in the backward pass. Undilated pooling is right.
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "maxpool_zero_padding"
EXPECTED_FAILURES = ("max_pool2d:sweep",)

conv2d_forward = ref.conv2d_forward
conv2d_backward = ref.conv2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def _fill(dilation):
    return 0.0 if max(dilation) > 1 else -np.inf  # BUG: the dilated path pads with zeros


def max_pool2d_forward(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    win, _ = _kit.max_windows(
        x,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil_mode=ceil_mode,
        fill=_fill(dilation),
    )
    return win.max(axis=-1)


def max_pool2d_backward(dy, x, *, kernel_size, stride, padding, dilation, ceil_mode):
    win, full = _kit.max_windows(
        x,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil_mode=ceil_mode,
        fill=_fill(dilation),
    )
    best = win.argmax(axis=-1)
    return _kit.route_to_taps(dy, x.shape, best, full, kernel_size, stride, dilation)

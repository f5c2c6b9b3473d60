"""max_pool2d backward: gradients of overlapping windows are assigned instead of accumulated.

The student scattered ``dy`` to the winning cells with fancy-index assignment,
``dx[n, c, rows, cols] = dy``. When windows overlap (stride smaller than the
window) and the same cell wins in several of them, NumPy keeps only one of the
writes: the cell should receive the *sum* of those windows' ``dy``
(``np.add.at``). Right when no cell wins twice.
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "maxpool_overlap_overwritten"
EXPECTED_FAILURES = (
    "max_pool2d:backward",
    "max_pool2d:max_routing",
    "max_pool2d:adjoint",
    "max_pool2d:finite_differences",
)

conv2d_forward = ref.conv2d_forward
conv2d_backward = ref.conv2d_backward
max_pool2d_forward = ref.max_pool2d_forward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def max_pool2d_backward(dy, x, *, kernel_size, stride, padding, dilation, ceil_mode):
    win, full = _kit.max_windows(
        x, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode
    )
    best = win.argmax(axis=-1)  # first maximum: right
    rows, cols = _kit.window_cells(best, kernel_size, stride, dilation, dy.shape[2:])
    nn, cc = _kit.batch_channel_index(dy.shape)
    t, b, l, r = full
    dxp = np.zeros((*x.shape[:2], x.shape[2] + t + b, x.shape[3] + l + r), dtype=dy.dtype)
    dxp[nn, cc, rows, cols] = dy  # BUG: a cell that wins twice keeps one dy, not the sum
    return _kit.crop(dxp, full, x.shape)

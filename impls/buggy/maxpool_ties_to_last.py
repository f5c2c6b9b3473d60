"""max_pool2d backward: a tied window's gradient goes to the *last* maximum, undeclared.

The student looked for the winner with ``>=`` while scanning the window
(equivalently, ``argmax`` of the reversed window), so among equal maxima the
last one in row-major order wins. The contract gives the gradient to the first
one; an implementation that prefers the last may say so with
``CONVCHECK_CAPABILITIES = {"max_pool2d": {"ties": "last"}}``, which this module
does not. Right whenever no window has a tie.
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "maxpool_ties_to_last"
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
    # Scan each window, remembering the best cell so far.
    best = np.zeros(win.shape[:-1], dtype=np.int64)
    best_value = win[..., 0]
    for k in range(1, win.shape[-1]):
        better = win[..., k] >= best_value  # BUG: '>=' lets a later equal cell take over; '>' keeps the first
        best = np.where(better, k, best)
        best_value = np.where(better, win[..., k], best_value)
    return _kit.route_to_taps(dy, x.shape, best, full, kernel_size, stride, dilation)

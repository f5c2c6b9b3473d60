"""max_pool2d: NaN never wins a window; the maximum is taken over the other cells.

The student wrote the window maximum with comparisons (``np.where(np.isnan(win), -inf, win)``, the
effect of ``v > best`` in a loop or of ``np.nanmax``), and comparisons with NaN are false: a window
holding NaN returns its largest other value (``-inf`` when every cell is NaN) and routes the gradient
there. Right on every finite input; only the ``nonfinite`` value family shows it.
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "maxpool_nan_not_propagated"
EXPECTED_FAILURES = ("max_pool2d:nonfinite",)

conv2d_forward = ref.conv2d_forward
conv2d_backward = ref.conv2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def _windows(x, kernel_size, stride, padding, dilation, ceil_mode):
    win, full = _kit.max_windows(
        x, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode
    )
    return np.where(np.isnan(win), -np.inf, win), full  # BUG: NaN must win its window


max_pool2d_forward, max_pool2d_backward = _kit.max_pool_over(_windows)

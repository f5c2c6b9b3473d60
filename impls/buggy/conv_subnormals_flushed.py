"""conv2d: the forward pass flushes subnormal numbers to zero.

The student's convolution treats every input below the smallest normal number as zero and sets
results below it to zero (what a CPU in flush-to-zero / denormals-are-zero mode, or a ``fast-math``
build, does). Right on every input of ordinary magnitude; only the ``subnormal`` value family, whose
results are subnormal or barely normal, shows it.
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

DIAGNOSIS = "subnormals_flushed_to_zero"
EXPECTED_FAILURES = ("conv2d:forward",)

conv2d_backward = ref.conv2d_backward
max_pool2d_forward = ref.max_pool2d_forward
max_pool2d_backward = ref.max_pool2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def _flushed(a):
    if a is None:
        return None
    tiny = np.finfo(a.dtype).tiny
    return np.where(np.abs(a) < tiny, a.dtype.type(0), a)  # BUG: subnormals are numbers too


def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
    y = ref.conv2d_forward(
        _flushed(x),
        _flushed(w),
        _flushed(b),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
    )
    return _flushed(y)

"""avg_pool2d backward: the global-pooling fast path reuses a gradient buffer it never clears.

When one window covers the whole unpadded input of two or more cells (a 1x1 output, no padding), the student's fast
path spreads ``dy / (H*W)`` into a buffer cached per shape, to save an allocation, and adds into
it without zeroing it first. The first call on a shape is right; every later call returns the
running sum of all the calls so far: the answer changes from call to call. Everything else is
right.
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

DIAGNOSIS = "uninitialised_accumulator"
EXPECTED_FAILURES = ("avg_pool2d:sweep",)

conv2d_forward = ref.conv2d_forward
conv2d_backward = ref.conv2d_backward
max_pool2d_forward = ref.max_pool2d_forward
max_pool2d_backward = ref.max_pool2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward

_BUFFERS: dict = {}


def avg_pool2d_backward(dy, x, *, kernel_size, stride, padding, ceil_mode, count_include_pad):
    global_pool = tuple(kernel_size) == x.shape[2:] and x.shape[2] * x.shape[3] > 1
    if global_pool and not any(padding) and dy.shape[2:] == (1, 1):
        key = (x.shape, x.dtype.str)
        buf = _BUFFERS.setdefault(key, np.zeros(x.shape, dtype=x.dtype))  # BUG: never cleared
        buf += dy / (x.shape[2] * x.shape[3])
        return buf.copy()
    return ref.avg_pool2d_backward(
        dy,
        x,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        ceil_mode=ceil_mode,
        count_include_pad=count_include_pad,
    )

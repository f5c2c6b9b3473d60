"""avg_pool2d: each window is added up in the input's dtype, then divided.

The student's average is ``window.sum() / divisor``. The sum of a window's cells can overflow where
their mean cannot: four float32 cells of ``3e38`` average ``3e38`` but add up to ``inf``. Right on
values of ordinary size; only the ``huge`` value family (magnitudes near the dtype's largest value)
shows it. The right way divides first (or accumulates in a wider type).
"""

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "avgpool_sum_overflows"
EXPECTED_FAILURES = ("avg_pool2d:forward",)

conv2d_forward = ref.conv2d_forward
conv2d_backward = ref.conv2d_backward
max_pool2d_forward = ref.max_pool2d_forward
max_pool2d_backward = ref.max_pool2d_backward
avg_pool2d_backward = ref.avg_pool2d_backward


def avg_pool2d_forward(x, *, kernel_size, stride, padding, ceil_mode, count_include_pad):
    sums, _ = _kit.avg_sum_windows(  # BUG: summed in x's dtype, the window overflows before the division
        x, kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode, dtype=x.dtype
    )
    oh, ow = sums.shape[2:]
    h, w = x.shape[2:]
    dh = _kit.avg_divisors(h, kernel_size[0], stride[0], padding[0], padding[1], oh, count_include_pad)
    dw = _kit.avg_divisors(w, kernel_size[1], stride[1], padding[2], padding[3], ow, count_include_pad)
    return (sums / (dh[:, None] * dw[None, :]).astype(x.dtype)).astype(x.dtype, copy=False)

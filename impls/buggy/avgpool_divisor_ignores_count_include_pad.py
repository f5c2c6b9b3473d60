"""avg_pool2d: every window is divided by ``KH * KW``, whatever ``count_include_pad`` says.

The student wrote the average as ``window.sum() / (KH * KW)`` in both passes.
That is right only for windows lying wholly inside the padded input with
``count_include_pad=True``. With ``count_include_pad=False`` a window touching
the padding must be divided by its number of real cells, and with ``ceil_mode``
a window hanging over the end of the padded input by the part that is inside.
"""

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "avgpool_divisor_always_kernel_area"
EXPECTED_FAILURES = ("avg_pool2d:forward", "avg_pool2d:backward", "avg_pool2d:avg_spreading")

conv2d_forward = ref.conv2d_forward
conv2d_backward = ref.conv2d_backward
max_pool2d_forward = ref.max_pool2d_forward
max_pool2d_backward = ref.max_pool2d_backward


def avg_pool2d_forward(x, *, kernel_size, stride, padding, ceil_mode, count_include_pad):
    sums, _ = _kit.avg_sum_windows(
        x, kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode
    )
    divisor = kernel_size[0] * kernel_size[1]  # BUG: ignores count_include_pad and the ceil_mode overhang
    return (sums / divisor).astype(x.dtype, copy=False)


def avg_pool2d_backward(dy, x, *, kernel_size, stride, padding, ceil_mode, count_include_pad):
    _, full = _kit.pool_layout(x.shape, kernel_size, stride, padding, (1, 1), ceil_mode)
    divisor = kernel_size[0] * kernel_size[1]  # BUG: as in the forward pass
    return _kit.avg_spread(dy, x.shape, divisor, kernel_size=kernel_size, stride=stride, full=full)

"""max_pool2d: the padding is filled with a large finite negative number instead of ``-inf``.

The student padded with ``-1e30``, "smaller than anything a network produces". On ordinary values
the result is right; but a window that touches the padding (or a ``ceil_mode`` overhang) and whose
real cells are all below ``-1e30`` returns ``-1e30``, and its gradient goes to a padding cell, where
it is lost. Only values far below any finite stand-in (the ``below_sentinel`` value family, down to
``-finfo.max``) show it.
"""

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "maxpool_finite_padding_sentinel"
EXPECTED_FAILURES = ("max_pool2d:forward", "max_pool2d:backward", "max_pool2d:nonfinite")

SENTINEL = -1e30

conv2d_forward = ref.conv2d_forward
conv2d_backward = ref.conv2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def _windows(x, kernel_size, stride, padding, dilation, ceil_mode):
    return _kit.max_windows(
        x,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil_mode=ceil_mode,
        fill=SENTINEL,  # BUG: a finite sentinel can win; the padding must be -inf
    )


max_pool2d_forward, max_pool2d_backward = _kit.max_pool_over(_windows)

"""max_pool2d forward with two defects: ``ceil_mode`` is ignored, and the padding is zeros.

Two separate mistakes in one function, so that one property (``forward``) fails in two distinct
ways and must report both:

* the output size is always rounded down, ``ceil_mode`` or not: under ``ceil_mode=True``, where
  the rounded-up size is larger, ``y`` has the wrong shape (a contract violation);
* the input is padded with ``np.pad``'s default, zeros, instead of ``-inf`` (as in
  ``buggy.maxpool_pads_with_zeros``): a window that overlaps the padding and whose real cells are
  all negative returns 0.

The backward pass is right.
"""

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "maxpool_zero_padding"
EXPECTED_FAILURES = ("max_pool2d:forward",)
DISTINCT_FAILURES = {"max_pool2d:forward": ("y: wrong shape", "y: values outside the tolerance")}
"""The checks that fail in two distinct ways, and how each way is named in the reports (a part of
its heading, ``convcheck.distinct.heading``): the shape under ``ceil_mode``, then the values
diagnosed as ``DIAGNOSIS``."""

conv2d_forward = ref.conv2d_forward
conv2d_backward = ref.conv2d_backward
max_pool2d_backward = ref.max_pool2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def max_pool2d_forward(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    win, _ = _kit.max_windows(
        x,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil_mode=False,  # BUG: the caller's ceil_mode
        fill=0.0,  # BUG: padding must never win: -inf
    )
    return win.max(axis=-1)

"""max_pool2d: two mistakes at once, padding with zeros and returning float64 for float32 inputs.

The student padded with ``np.pad``'s default, zeros, instead of ``-inf`` (a window
whose real cells are all negative returns 0 and loses its gradient to the padding),
and, "for accuracy", converted the input to float64 first and never cast the result
back. Either mistake alone is a known one; together, a diagnosis that stops at the
first behaviour it sees (the dtype) hides the padding mistake. On a float32 case
where the padding wins, both must be named, the padding first: it is the one that
makes the values wrong.
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

from . import maxpool_pads_with_zeros as zero_padded

DIAGNOSIS = "maxpool_zero_padding"
ALSO_DIAGNOSED = ("float32_promoted_to_float64",)
EXPECTED_FAILURES = ("max_pool2d:forward", "max_pool2d:backward", "max_pool2d:shapes_dtypes")

conv2d_forward = ref.conv2d_forward
conv2d_backward = ref.conv2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def max_pool2d_forward(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    x = x.astype(np.float64)  # BUG: never cast back to the caller's dtype
    # BUG: padded with zeros, as in buggy.maxpool_pads_with_zeros
    return zero_padded.max_pool2d_forward(
        x, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode
    )


def max_pool2d_backward(dy, x, *, kernel_size, stride, padding, dilation, ceil_mode):
    dy, x = dy.astype(np.float64), x.astype(np.float64)  # BUG: as in the forward pass
    return zero_padded.max_pool2d_backward(  # BUG: as in the forward pass
        dy, x, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode
    )

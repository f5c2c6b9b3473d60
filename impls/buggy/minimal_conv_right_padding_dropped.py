"""conv2d forward: the right padding is left out.

The student pads the width with ``(left, 0)`` instead of ``(left, right)``: every case with
right padding gets an output too narrow by ``right // stride`` columns, or more. The smallest
failing case is a 1x1 input and a 1x1 kernel with ``padding=(0, 0, 0, 1)`` (batch 1, one channel
in and out, stride 1, no dilation, one group): one column of output where two are due.
"""

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "asymmetric_padding_treated_as_symmetric"
EXPECTED_FAILURES = ("conv2d:forward", "conv2d:shapes_dtypes")

conv2d_backward = ref.conv2d_backward
max_pool2d_forward = ref.max_pool2d_forward
max_pool2d_backward = ref.max_pool2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
    t, bottom, left, _right = padding
    # BUG: the width is padded with (left, 0): the right padding is forgotten.
    return _kit.conv_forward(
        x, w, b, stride=stride, padding=(t, bottom, left, 0), dilation=dilation, groups=groups
    )

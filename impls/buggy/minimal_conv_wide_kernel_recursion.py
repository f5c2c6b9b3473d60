"""conv2d forward: a recursion over the kernel's columns that never reaches its base case.

The student splits a kernel wider than one column into its first column and the rest and
recurses on both, adding the shifted results. The recursive call on "the rest" passes the
whole kernel again (``w[..., 0:]`` where ``w[..., 1:]`` was meant), so any kernel of width 2 or
more recurses until Python gives up with ``RecursionError``. A kernel one column wide is the
base case and is right, so the smallest failing case is a 1x2 kernel on a 1x2 input: batch 1,
one channel in and out, stride 1, no padding, no dilation, one group.
"""

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = None  # it raises: there is no wrong value for the diagnosis to name
EXPECTED_FAILURES = ("conv2d:forward", "conv2d:shapes_dtypes")

conv2d_backward = ref.conv2d_backward
max_pool2d_forward = ref.max_pool2d_forward
max_pool2d_backward = ref.max_pool2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
    if w.shape[-1] == 1:
        return _kit.conv_forward(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    # BUG: the rest of the kernel is w[..., 1:]; w[..., 0:] is the whole kernel again.
    rest = conv2d_forward(x, w[..., 0:], b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return rest

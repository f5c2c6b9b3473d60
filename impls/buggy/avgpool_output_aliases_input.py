"""avg_pool2d: a 1x1 window "needs no averaging", so the input itself (a view of it) is returned.

The student added a fast path: with a 1x1 kernel the average of a window is
its single cell, so the forward pass returns ``x[:, :, ::sh, ::sw]``, a *view*
of the caller's array, and the backward pass with unit stride returns ``dy``
itself. The values are right, but the outputs alias the inputs: a caller that
later writes into ``y`` (or ``dx``) silently changes its own ``x`` (or ``dy``).
The contract requires fresh output arrays.
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

DIAGNOSIS = "output_aliases_input"
EXPECTED_FAILURES = ("avg_pool2d:hygiene",)

conv2d_forward = ref.conv2d_forward
conv2d_backward = ref.conv2d_backward
max_pool2d_forward = ref.max_pool2d_forward
max_pool2d_backward = ref.max_pool2d_backward


def avg_pool2d_forward(x, *, kernel_size, stride, padding, ceil_mode, count_include_pad):
    if tuple(kernel_size) == (1, 1):  # a 1x1 kernel cannot have padding: every window is one cell
        return x[:, :, :: stride[0], :: stride[1]]  # BUG: a view of x, not a new array
    return ref.avg_pool2d_forward(
        x,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        ceil_mode=ceil_mode,
        count_include_pad=count_include_pad,
    )


def avg_pool2d_backward(dy, x, *, kernel_size, stride, padding, ceil_mode, count_include_pad):
    if tuple(kernel_size) == (1, 1):
        if tuple(stride) == (1, 1):
            return dy  # BUG: the identity, but the very same array as the caller's dy
        dx = np.zeros(x.shape, dtype=dy.dtype)
        dx[:, :, :: stride[0], :: stride[1]] = dy
        return dx
    return ref.avg_pool2d_backward(
        dy,
        x,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        ceil_mode=ceil_mode,
        count_include_pad=count_include_pad,
    )

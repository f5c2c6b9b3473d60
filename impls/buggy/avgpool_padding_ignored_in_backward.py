"""avg_pool2d backward: the windows are placed as if there were no padding.

The forward pass is right. The student's backward pass loops over the output
windows and adds ``dy / divisor`` to ``dx[..., i*sh : i*sh + KH, j*sw : j*sw + KW]``,
forgetting that window ``(i, j)`` starts at ``(i*sh - top, j*sw - left)`` in
input coordinates. NumPy's slicing silently clips the windows at the bottom and
right edges, so nothing raises; with any top or left padding the gradient lands
on the wrong cells (and part of it is lost at the edges).
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "avgpool_backward_ignores_padding"
EXPECTED_FAILURES = (
    "avg_pool2d:backward",
    "avg_pool2d:adjoint",
    "avg_pool2d:avg_spreading",
    "avg_pool2d:finite_differences",
)

conv2d_forward = ref.conv2d_forward
conv2d_backward = ref.conv2d_backward
max_pool2d_forward = ref.max_pool2d_forward
max_pool2d_backward = ref.max_pool2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward


def avg_pool2d_backward(dy, x, *, kernel_size, stride, padding, ceil_mode, count_include_pad):
    (kh, kw), (sh, sw) = kernel_size, stride
    h, w = x.shape[2:]
    oh, ow = dy.shape[2:]
    div_h = _kit.avg_divisors(h, kh, sh, padding[0], padding[1], oh, count_include_pad)
    div_w = _kit.avg_divisors(w, kw, sw, padding[2], padding[3], ow, count_include_pad)
    share = dy / np.outer(div_h, div_w)
    dx = np.zeros(x.shape, dtype=dy.dtype)
    for i in range(oh):
        for j in range(ow):
            # BUG: window (i, j) covers rows i*sh - top ... in x, not i*sh ...
            dx[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] += share[:, :, i : i + 1, j : j + 1]
    return dx

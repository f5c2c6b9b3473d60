"""conv2d backward: ``dx`` correlates ``dy`` with the kernel as it is, not rotated by 180 degrees.

The student remembered that ``dx`` is a "full" correlation of the stride-dilated
``dy`` with the kernel (input and output channels swapped), padded by
``dilation*(k-1)`` on every side and then cropped by the forward padding, but
forgot that the kernel must be rotated by 180 degrees for it. The forward pass,
``dw`` and ``db`` are right; ``dx`` is wrong for every kernel that is not
centrally symmetric (any kernel larger than 1x1 with random values).
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "dx_kernel_not_flipped"
EXPECTED_FAILURES = ("conv2d:backward", "conv2d:adjoint", "conv2d:finite_differences")

conv2d_forward = ref.conv2d_forward
max_pool2d_forward = ref.max_pool2d_forward
max_pool2d_backward = ref.max_pool2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def conv2d_backward(dy, x, w, b, *, stride, padding, dilation, groups):
    h, wd = x.shape[2:]
    kh, kw = w.shape[2:]
    t, bottom, l, r = padding
    eh, ew = _kit.extent(kh, dilation[0]), _kit.extent(kw, dilation[1])

    # dx = full correlation of the stride-dilated dy with the channel-transposed kernel.
    w_t = _kit.transpose_kernel(w, groups)  # BUG: the taps must also be reversed, w_t[:, :, ::-1, ::-1]
    dy_full = _kit.pad(_kit.dilate(dy, stride), (eh - 1, eh - 1, ew - 1, ew - 1))
    grad_padded = _kit.conv_forward(
        dy_full, w_t, None, stride=(1, 1), padding=(0, 0, 0, 0), dilation=dilation, groups=groups
    )
    # Rows/columns past the last window get no gradient; then strip the forward padding.
    grad_padded = _kit.embed(grad_padded, (h + t + bottom, wd + l + r))
    dx = np.ascontiguousarray(grad_padded[:, :, t : t + h, l : l + wd])

    dw = _kit.conv_dw(dy, x, w.shape, stride=stride, padding=padding, dilation=dilation, groups=groups)
    db = _kit.conv_db(dy, b)
    return dx, dw, db

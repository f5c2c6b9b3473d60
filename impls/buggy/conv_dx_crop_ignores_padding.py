"""conv2d backward: ``dx`` is cut from the wrong corner of the padded-input gradient.

The student computes the gradient with respect to the *padded* input correctly
(full correlation of the stride-dilated ``dy`` with the rotated kernel) and then
takes its first ``H`` rows and ``W`` columns, ``grad[:, :, :H, :W]``, instead of
stripping the padding, ``grad[:, :, top:top + H, left:left + W]``. Right without
padding; with a top or left padding the gradient is shifted and the edge rows
of the input receive the gradient of the padding.
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "dx_crop_ignores_padding"
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

    w_rot = _kit.transpose_kernel(w, groups)[:, :, ::-1, ::-1]
    dy_full = _kit.pad(_kit.dilate(dy, stride), (eh - 1, eh - 1, ew - 1, ew - 1))
    grad_padded = _kit.conv_forward(
        dy_full, w_rot, None, stride=(1, 1), padding=(0, 0, 0, 0), dilation=dilation, groups=groups
    )
    grad_padded = _kit.embed(grad_padded, (h + t + bottom, wd + l + r))
    dx = np.ascontiguousarray(grad_padded[:, :, :h, :wd])  # BUG: should start at [t, l]

    dw = _kit.conv_dw(dy, x, w.shape, stride=stride, padding=padding, dilation=dilation, groups=groups)
    db = _kit.conv_db(dy, b)
    return dx, dw, db

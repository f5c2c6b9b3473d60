"""conv2d backward: the kernel is rotated by 180 degrees *in place*, in the caller's ``w``.

For ``dx`` the student needs the kernel rotated by 180 degrees and wrote
``w_rot = w`` followed by ``w_rot[...] = w_rot[:, :, ::-1, ::-1]``, believing
``w_rot`` to be a copy. It is the caller's array: after the call the caller's
weights are rotated (calling again rotates them back). The returned gradients
are right; the damage is to the inputs, which the contract forbids modifying.
Invisible for 1x1 and centrally symmetric kernels.
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "input_modified_in_place"
EXPECTED_FAILURES = ("conv2d:hygiene",)

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

    # dw first, while w is still as the caller gave it (dw does not read w anyway).
    dw = _kit.conv_dw(dy, x, w.shape, stride=stride, padding=padding, dilation=dilation, groups=groups)
    db = _kit.conv_db(dy, b)

    w_rot = w  # BUG: not a copy; the next line rotates the caller's kernel
    w_rot[...] = w_rot[:, :, ::-1, ::-1]
    dy_full = _kit.pad(_kit.dilate(dy, stride), (eh - 1, eh - 1, ew - 1, ew - 1))
    grad_padded = _kit.conv_forward(
        dy_full,
        _kit.transpose_kernel(w_rot, groups),
        None,
        stride=(1, 1),
        padding=(0, 0, 0, 0),
        dilation=dilation,
        groups=groups,
    )
    grad_padded = _kit.embed(grad_padded, (h + t + bottom, wd + l + r))
    dx = np.ascontiguousarray(grad_padded[:, :, t : t + h, l : l + wd])
    return dx, dw, db

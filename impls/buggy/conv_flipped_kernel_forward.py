"""conv2d: the textbook convolution (kernel rotated by 180 degrees), without declaring it.

The student implemented "convolution" as in a signal-processing course,
``y[i, j] = sum x[i + a, j + e] * w[KH-1-a, KW-1-e]``, in the forward pass and,
consistently, in the backward pass (``dw`` comes back rotated too). That is a
valid convention, but the module does not declare
``CONVCHECK_CAPABILITIES = {"conv2d": {"convention": "convolution"}}``, so it is
checked against PyTorch's cross-correlation and is wrong for every kernel that
is not centrally symmetric. Being self-consistent, it passes the checks that
compare the backward with its own forward (adjoint, finite differences).
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "convolution_convention_undeclared"
EXPECTED_FAILURES = ("conv2d:forward", "conv2d:backward")

max_pool2d_forward = ref.max_pool2d_forward
max_pool2d_backward = ref.max_pool2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
    w_flipped = w[:, :, ::-1, ::-1]  # BUG: a true convolution; the contract is cross-correlation
    return _kit.conv_forward(
        x, w_flipped, b, stride=stride, padding=padding, dilation=dilation, groups=groups
    )


def conv2d_backward(dy, x, w, b, *, stride, padding, dilation, groups):
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    w_flipped = w[:, :, ::-1, ::-1]
    dx = _kit.conv_dx(dy, x.shape, w_flipped, **kwargs)
    dw = np.ascontiguousarray(_kit.conv_dw(dy, x, w.shape, **kwargs)[:, :, ::-1, ::-1])
    return dx, dw, _kit.conv_db(dy, b)

"""conv2d: float32 inputs come back as float64 outputs.

"For accuracy" the student converts the inputs to float64 before computing,
``x = x.astype(np.float64)``, and returns the float64 result without casting it
back to the input dtype. The values are, if anything, more accurate than
required; but the contract says the outputs have the inputs' dtype, and a
float32 network would silently be switched to float64 by this layer. Right for
float64 inputs.
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "float32_promoted_to_float64"
EXPECTED_FAILURES = ("conv2d:shapes_dtypes",)

max_pool2d_forward = ref.max_pool2d_forward
max_pool2d_backward = ref.max_pool2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def _as_float64(*arrays):
    return [None if a is None else a.astype(np.float64) for a in arrays]


def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
    x, w, b = _as_float64(x, w, b)  # BUG: never cast back to the caller's dtype
    return _kit.conv_forward(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv2d_backward(dy, x, w, b, *, stride, padding, dilation, groups):
    dy, x, w, b = _as_float64(dy, x, w, b)  # BUG: as in the forward pass
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    dx = _kit.conv_dx(dy, x.shape, w, **kwargs)
    dw = _kit.conv_dw(dy, x, w.shape, **kwargs)
    return dx, dw, _kit.conv_db(dy, b)

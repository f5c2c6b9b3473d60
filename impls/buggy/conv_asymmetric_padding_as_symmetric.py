"""conv2d: the padding is assumed symmetric, one value per axis (the larger of the two sides).

The student read ``padding`` as if it could only be symmetric and collapsed it
to one value per axis, ``ph = max(top, bottom)`` and ``pw = max(left, right)``
("the larger one, so that the kernel always fits"), padding both ends by it in
the forward and in the backward pass. With ``top != bottom`` or
``left != right`` the forward output gets extra rows or columns (or, with a
large stride, the right number of them read at the wrong offset), and when the
bottom or right side is the larger one the backward pass reads and writes the
input at the wrong offset. Symmetric padding is right.
"""

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "asymmetric_padding_treated_as_symmetric"
EXPECTED_FAILURES = ("conv2d:forward", "conv2d:shapes_dtypes")

max_pool2d_forward = ref.max_pool2d_forward
max_pool2d_backward = ref.max_pool2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def _symmetric(padding):
    ph, pw = max(padding[0], padding[1]), max(padding[2], padding[3])  # BUG: top/bottom, left/right differ
    return (ph, ph, pw, pw)


def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
    padding = _symmetric(padding)
    return _kit.conv_forward(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv2d_backward(dy, x, w, b, *, stride, padding, dilation, groups):
    kwargs = dict(stride=stride, padding=_symmetric(padding), dilation=dilation, groups=groups)
    dx = _kit.conv_dx(dy, x.shape, w, **kwargs)
    dw = _kit.conv_dw(dy, x, w.shape, **kwargs)
    return dx, dw, _kit.conv_db(dy, b)

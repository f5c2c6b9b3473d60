"""A conv2d that is wrong on purpose (its output scaled by 1.5), shared by the hostile modules."""

from convcheck.impls import numpy_reference as ref


def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
    return ref.conv2d_forward(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups) * 1.5


def conv2d_backward(dy, x, w, b, *, stride, padding, dilation, groups):
    dx, dw, db = ref.conv2d_backward(
        dy, x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    return dx * 1.5, dw * 1.5, None if db is None else db * 1.5

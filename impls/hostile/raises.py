"""conv2d_backward indexes past the end of its padded buffer on strided cases."""

from convcheck.impls.numpy_reference import conv2d_backward as _backward
from convcheck.impls.numpy_reference import conv2d_forward


def _scatter(buffer, index):
    return buffer[index]


def conv2d_backward(dy, x, w, b, *, stride, **kw):
    if stride != (1, 1):
        _scatter(list(range(3)), 7)
    return _backward(dy, x, w, b, stride=stride, **kw)


__all__ = ["conv2d_backward", "conv2d_forward"]

"""conv2d_forward loops forever on strided cases (a while loop whose index never advances)."""

from convcheck.impls.numpy_reference import conv2d_backward
from convcheck.impls.numpy_reference import conv2d_forward as _forward


def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
    i = 0
    while stride != (1, 1) and i < 10:
        pass  # BUG: forgot i += 1
    return _forward(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


__all__ = ["conv2d_backward", "conv2d_forward"]

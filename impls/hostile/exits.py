"""conv2d_backward calls os._exit when it meets a bias-free case (a debugging leftover)."""

import os

from convcheck.impls.numpy_reference import conv2d_backward as _backward
from convcheck.impls.numpy_reference import conv2d_forward


def conv2d_backward(dy, x, w, b, **kw):
    if b is None:
        os._exit(3)
    return _backward(dy, x, w, b, **kw)


__all__ = ["conv2d_backward", "conv2d_forward"]

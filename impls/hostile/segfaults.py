"""conv2d_forward dereferences a null pointer through ctypes when the batch is larger than one."""

import ctypes

from convcheck.impls.numpy_reference import conv2d_backward
from convcheck.impls.numpy_reference import conv2d_forward as _forward


def conv2d_forward(x, w, b, **kw):
    if x.shape[0] > 1:
        ctypes.string_at(0)
    return _forward(x, w, b, **kw)


__all__ = ["conv2d_backward", "conv2d_forward"]

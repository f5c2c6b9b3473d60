"""conv2d_forward normalises by a window count that is zero at the borders: NaN appears."""

import numpy as np

from convcheck.impls.numpy_reference import conv2d_backward
from convcheck.impls.numpy_reference import conv2d_forward as _forward


def conv2d_forward(x, w, b, **kw):
    y = _forward(x, w, b, **kw)
    with np.errstate(invalid="ignore", divide="ignore"):
        y[..., 0] = y[..., 0] * 0 / np.zeros_like(y[..., 0])
    return y


__all__ = ["conv2d_backward", "conv2d_forward"]

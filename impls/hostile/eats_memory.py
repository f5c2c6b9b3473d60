"""conv2d_forward allocates 50 GB for an im2col buffer sized by the wrong formula."""

import numpy as np

from convcheck.impls.numpy_reference import conv2d_backward
from convcheck.impls.numpy_reference import conv2d_forward as _forward


def conv2d_forward(x, w, b, **kw):
    cols = np.ones((50, 1024, 1024, 1024 // 8), dtype=np.float64)  # 50 GB, touched page by page
    del cols
    return _forward(x, w, b, **kw)


__all__ = ["conv2d_backward", "conv2d_forward"]

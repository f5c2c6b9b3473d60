"""max_pool2d_backward hands torch the configuration that aborts torch 2.13 on CPU.

A dilated max-pool window lying wholly in padding (x of shape (2, 3, 1, 4), kernel
(2, 4), stride (1, 2), padding 1, dilation 2, ceil_mode=True): torch's forward
returns -inf there and its backward corrupts the heap and aborts the process.
"""

import torch
import torch.nn.functional as F

from convcheck.impls.numpy_reference import max_pool2d_backward as _backward
from convcheck.impls.numpy_reference import max_pool2d_forward


def max_pool2d_backward(dy, x, **kw):
    t = torch.randn(2, 3, 1, 4, dtype=torch.float64, requires_grad=True)
    y = F.max_pool2d(t, (2, 4), (1, 2), 1, 2, ceil_mode=True)
    y.backward(torch.ones_like(y))
    return _backward(dy, x, **kw)


__all__ = ["max_pool2d_backward", "max_pool2d_forward"]

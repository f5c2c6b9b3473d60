"""conv2d forward: the output size is rounded up instead of down.

The student computed ``OH = ceil((H + top + bottom - dilation*(KH-1) - 1) / stride) + 1``
(pooling's ``ceil_mode`` rule) and, to make the last window fit, padded the
bottom and right with extra zeros. When the stride does not divide the span,
the output has one row or column too many, a window hanging over the padded
input. The values of the other outputs are right; the backward pass is right.
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "output_size_ceil_not_floor"
EXPECTED_FAILURES = ("conv2d:forward", "conv2d:shapes_dtypes")

conv2d_backward = ref.conv2d_backward
max_pool2d_forward = ref.max_pool2d_forward
max_pool2d_backward = ref.max_pool2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def _out_size(n, k, s, lo, hi, d):
    return -(-(n + lo + hi - d * (k - 1) - 1) // s) + 1  # BUG: ceil; the contract floors


def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
    n, _, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    t, bottom, l, r = padding
    g = groups
    oh = _out_size(h, kh, stride[0], t, bottom, dilation[0])
    ow = _out_size(wd, kw, stride[1], l, r, dilation[1])
    # Pad the bottom/right a little more so that the last window fits.
    need_h = (oh - 1) * stride[0] + _kit.extent(kh, dilation[0])
    need_w = (ow - 1) * stride[1] + _kit.extent(kw, dilation[1])
    xp = _kit.pad(x, (t, need_h - h - t, l, need_w - wd - l))

    win = _kit.windows(xp, (kh, kw), stride, dilation, (oh, ow)).reshape(n, g, cg, oh, ow, kh, kw)
    y = np.einsum("ngcijab,gocab->ngoij", win, w.reshape(g, c_out // g, cg, kh, kw))
    y = y.reshape(n, c_out, oh, ow)
    if b is not None:
        y = y + b.reshape(1, c_out, 1, 1)
    return y.astype(x.dtype, copy=False)

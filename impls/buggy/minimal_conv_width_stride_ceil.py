"""conv2d forward: the output width is rounded up when the stride does not divide the span.

The student wrote the height's output size right, ``floor((H + top + bottom - dilation*(KH-1) - 1)
/ stride) + 1``, but rounded the width's up (pooling's ``ceil_mode`` rule) and padded the right
with extra zeros so that the last window fits. The output then has one column too many exactly
when the width's stride is at least 2 and does not divide the span: the smallest failing case is
a 1x2 input and a 1x1 kernel at stride ``(1, 2)`` (batch 1, one channel in and out, no padding,
no dilation, one group).
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


def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
    h, wd = x.shape[2:]
    c_out, cg, kh, kw = w.shape
    t, bottom, left, right = padding
    oh = _kit.conv_out(h, kh, stride[0], t, bottom, dilation[0])
    ow = -(-(wd + left + right - _kit.extent(kw, dilation[1])) // stride[1]) + 1  # BUG: ceil, not floor
    need_w = (ow - 1) * stride[1] + _kit.extent(kw, dilation[1])
    xp = _kit.pad(x, (t, bottom, left, need_w - wd - left))
    win = _kit.windows(xp, (kh, kw), stride, dilation, (oh, ow))
    win = win.reshape(x.shape[0], groups, cg, oh, ow, kh, kw)
    y = np.einsum("ngcijab,gocab->ngoij", win, w.reshape(groups, c_out // groups, cg, kh, kw))
    y = y.reshape(x.shape[0], c_out, oh, ow)
    if b is not None:
        y = y + b.reshape(1, c_out, 1, 1)
    return y.astype(x.dtype, copy=False)

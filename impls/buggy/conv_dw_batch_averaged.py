"""conv2d backward: ``dw`` is averaged over the batch instead of summed.

The student thought of the loss as a mean over the batch and divided the
weight gradient by ``N``. The contract's loss is ``L = sum(y * dy)``: the
batch is summed, so ``dw`` is ``N`` times too small whenever ``N > 1``
(``dx`` and ``db`` are right, which makes the mistake easy to miss).
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "dw_batch_averaged"
EXPECTED_FAILURES = (
    "conv2d:backward",
    "conv2d:adjoint",
    "conv2d:finite_differences",
    "conv2d:batch_independence",
)

conv2d_forward = ref.conv2d_forward
max_pool2d_forward = ref.max_pool2d_forward
max_pool2d_backward = ref.max_pool2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def conv2d_backward(dy, x, w, b, *, stride, padding, dilation, groups):
    n = x.shape[0]
    c_out, cg, kh, kw = w.shape
    g = groups
    oh, ow = dy.shape[2:]
    dx = _kit.conv_dx(dy, x.shape, w, stride=stride, padding=padding, dilation=dilation, groups=groups)

    win = _kit.windows(_kit.pad(x, padding), (kh, kw), stride, dilation, (oh, ow))
    win = win.reshape(n, g, cg, oh, ow, kh, kw)
    dyg = dy.reshape(n, g, c_out // g, oh, ow)
    dw = np.einsum("ngoij,ngcijab->gocab", dyg, win).reshape(w.shape)
    dw = (dw / n).astype(x.dtype)  # BUG: "average over the batch"; the loss sums it

    return dx, dw, _kit.conv_db(dy, b)

"""conv2d backward: ``dw`` is computed as if ``groups`` were 1, then sliced to the weight's shape.

The student correlated every input channel with every output channel's ``dy``,
getting a ``(C_out, C_in, KH, KW)`` gradient, and kept its first ``C_in/G``
input channels to match ``w.shape``. Output channels of group 0 are right; those
of the other groups get the gradient with respect to group 0's input channels
instead of their own. ``dx``, ``db`` and the forward pass are right.
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "dw_groups_ignored"
EXPECTED_FAILURES = ("conv2d:backward", "conv2d:adjoint", "conv2d:finite_differences")

conv2d_forward = ref.conv2d_forward
max_pool2d_forward = ref.max_pool2d_forward
max_pool2d_backward = ref.max_pool2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def conv2d_backward(dy, x, w, b, *, stride, padding, dilation, groups):
    cg, kh, kw = w.shape[1:]
    oh, ow = dy.shape[2:]
    dx = _kit.conv_dx(dy, x.shape, w, stride=stride, padding=padding, dilation=dilation, groups=groups)

    win = _kit.windows(_kit.pad(x, padding), (kh, kw), stride, dilation, (oh, ow))
    dw_all = np.einsum("noij,ncijab->ocab", dy, win)  # BUG: every output channel sees every input channel
    dw = np.ascontiguousarray(dw_all[:, :cg])  # "keep C_in // groups channels to match w"

    return dx, dw, _kit.conv_db(dy, b)

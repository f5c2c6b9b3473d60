"""conv2d backward: each window's share of ``dx`` is assigned instead of added.

The student looped over output positions and wrote the window's gradient into
the padded ``dx`` with ``=``: ``dx_pad[:, :, rows, cols] = dy[:, :, i, j] . w``.
Where windows overlap (a stride smaller than the dilated kernel), a cell is
covered by several windows and must receive the *sum* of their shares; it keeps
only the last one written. The forward pass, ``dw`` and ``db`` are right, and
``dx`` is right whenever windows do not overlap.
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "dx_overlap_overwritten"
EXPECTED_FAILURES = ("conv2d:backward", "conv2d:adjoint", "conv2d:finite_differences")

conv2d_forward = ref.conv2d_forward
max_pool2d_forward = ref.max_pool2d_forward
max_pool2d_backward = ref.max_pool2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def conv2d_backward(dy, x, w, b, *, stride, padding, dilation, groups):
    n, c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    t, bottom, l, r = padding
    fg = f // groups
    dxp = np.zeros((n, c, h + t + bottom, wd + l + r), dtype=dy.dtype)
    for i in range(dy.shape[2]):
        rows = i * stride[0] + dilation[0] * np.arange(kh)
        for j in range(dy.shape[3]):
            cols = j * stride[1] + dilation[1] * np.arange(kw)
            for g in range(groups):
                share = np.tensordot(
                    dy[:, g * fg : (g + 1) * fg, i, j], w[g * fg : (g + 1) * fg], axes=([1], [0])
                )
                dxp[:, g * cg : (g + 1) * cg, rows[:, None], cols[None, :]] = share  # BUG: must be +=
    dx = np.ascontiguousarray(dxp[:, :, t : t + h, l : l + wd])
    dw = _kit.conv_dw(dy, x, w.shape, stride=stride, padding=padding, dilation=dilation, groups=groups)
    db = _kit.conv_db(dy, b)
    return dx, dw, db

"""conv2d backward: ``dw``'s kernel-height and kernel-width axes get mixed up.

The student builds ``dw`` one kernel tap at a time and collects the taps in a
list, walking the kernel column by column (``for e in range(KW): for a in
range(KH)``), then reshapes the stacked taps to ``(C_out, C_in/G, KH, KW)``,
which reads them back row by row. For a square kernel ``dw`` comes out
transposed; for a non-square one its entries are scrambled. Only kernels with
a single row or a single column are right. ``dx`` and ``db`` are right.
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "dw_kernel_axes_swapped"
EXPECTED_FAILURES = ("conv2d:backward", "conv2d:adjoint", "conv2d:finite_differences")

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

    xp = _kit.pad(x, padding)
    xp = xp.reshape(n, g, cg, *xp.shape[2:])
    dyg = dy.reshape(n, g, c_out // g, oh, ow)
    per_tap = []
    for e in range(kw):  # BUG: column-major walk over the kernel ...
        for a in range(kh):
            xs = _kit.taps(xp, a * dilation[0], e * dilation[1], stride, (oh, ow))
            per_tap.append(np.einsum("ngoij,ngcij->goc", dyg, xs))
    dw = np.stack(per_tap, axis=-1).reshape(c_out, cg, kh, kw)  # ... read back row-major

    return dx, dw, _kit.conv_db(dy, b)

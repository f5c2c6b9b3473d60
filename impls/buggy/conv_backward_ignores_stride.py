"""conv2d backward: the tap loop forgets the stride (dy is treated as if the stride were 1).

The backward pass loops over kernel taps ``(a, e)`` and, for each, pairs ``dy``
with the slice of the padded input that the tap met in the forward pass. The
student wrote that slice as ``xp[..., a*dh : a*dh + OH, e*dw : e*dw + OW]``,
i.e. consecutive cells, instead of every ``stride``-th cell
``xp[..., a*dh : a*dh + (OH-1)*sh + 1 : sh, ...]``. Both ``dw`` and ``dx`` are
wrong whenever the stride is above 1 and there is more than one output on that
axis; the forward pass and ``db`` are right.
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "backward_ignores_stride"
EXPECTED_FAILURES = ("conv2d:backward", "conv2d:adjoint", "conv2d:finite_differences")

conv2d_forward = ref.conv2d_forward
max_pool2d_forward = ref.max_pool2d_forward
max_pool2d_backward = ref.max_pool2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def conv2d_backward(dy, x, w, b, *, stride, padding, dilation, groups):
    dxp, dw = padded_grads(dy, x, w, padding=padding, dilation=dilation, groups=groups)
    return _kit.crop(dxp, padding, x.shape), dw, _kit.conv_db(dy, b)


def padded_grads(dy, x, w, *, padding, dilation, groups):
    """The padded input's gradient and ``dw``, from the tap loop that forgets the stride."""
    n, c_in, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    t, bottom, l, r = padding
    dh, dw_ = dilation
    g = groups
    oh, ow = dy.shape[2:]

    xp = _kit.pad(x, padding).reshape(n, g, cg, h + t + bottom, wd + l + r)
    dyg = dy.reshape(n, g, c_out // g, oh, ow)
    wg = w.reshape(g, c_out // g, cg, kh, kw)
    dxp = np.zeros_like(xp)
    dwg = np.zeros_like(wg)
    for a in range(kh):
        for e in range(kw):
            # BUG: the cells this tap met are a*dh, a*dh + sh, a*dh + 2*sh, ... not consecutive ones.
            rows = slice(a * dh, a * dh + oh)
            cols = slice(e * dw_, e * dw_ + ow)
            dwg[..., a, e] = np.einsum("ngoij,ngcij->goc", dyg, xp[..., rows, cols])
            dxp[..., rows, cols] += np.einsum("ngoij,goc->ngcij", dyg, wg[..., a, e])
    return dxp.reshape(n, c_in, h + t + bottom, wd + l + r), dwg.reshape(w.shape)

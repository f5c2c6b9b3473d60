"""conv2d backward: the tap loop forgets the dilation (taps taken as adjacent cells).

The forward pass handles dilation, but in the backward pass the student's loop
over kernel taps ``(a, e)`` pairs ``dy`` with the input slice starting at
``(a, e)`` rather than at ``(a*dilation_h, e*dilation_w)``. Both ``dw`` and
``dx`` are wrong whenever a dilation is above 1 (with a kernel longer than 1
on that axis); ``db`` is right.
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "backward_ignores_dilation"
EXPECTED_FAILURES = ("conv2d:backward", "conv2d:adjoint", "conv2d:finite_differences")

conv2d_forward = ref.conv2d_forward
max_pool2d_forward = ref.max_pool2d_forward
max_pool2d_backward = ref.max_pool2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def conv2d_backward(dy, x, w, b, *, stride, padding, dilation, groups):
    n, c_in, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    t, bottom, l, r = padding
    g = groups
    oh, ow = dy.shape[2:]

    xp = _kit.pad(x, padding).reshape(n, g, cg, h + t + bottom, wd + l + r)
    dyg = dy.reshape(n, g, c_out // g, oh, ow)
    wg = w.reshape(g, c_out // g, cg, kh, kw)
    dxp = np.zeros_like(xp)
    dwg = np.zeros_like(wg)
    for a in range(kh):
        for e in range(kw):
            # BUG: tap (a, e) sits at (a * dilation[0], e * dilation[1]) in the window.
            xs = _kit.taps(xp, a, e, stride, (oh, ow))
            dwg[..., a, e] = np.einsum("ngoij,ngcij->goc", dyg, xs)
            _kit.taps(dxp, a, e, stride, (oh, ow))[...] += np.einsum("ngoij,goc->ngcij", dyg, wg[..., a, e])
    dx = _kit.crop(dxp.reshape(n, c_in, h + t + bottom, wd + l + r), padding, x.shape)
    return dx, dwg.reshape(w.shape), _kit.conv_db(dy, b)

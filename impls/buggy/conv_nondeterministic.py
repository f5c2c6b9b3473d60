"""conv2d forward: the output accumulator comes from ``np.empty``, not ``np.zeros``.

The student allocates ``y = np.empty(...)`` and then adds each kernel tap's
contribution to it with ``y += ...``, believing ``np.empty`` gives zeros. It
gives whatever the memory last held, so the result carries leftover values
from earlier computations: usually wildly wrong, sometimes (on freshly mapped
memory) exactly right, and different from one call to the next. The backward
pass is right. (The ``invalid value encountered`` warnings that the leftover
bits sometimes caused were silenced with ``np.errstate``.)
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "uninitialised_accumulator"
EXPECTED_FAILURES = ("conv2d:hygiene",)

conv2d_backward = ref.conv2d_backward
max_pool2d_forward = ref.max_pool2d_forward
max_pool2d_backward = ref.max_pool2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
    n, _, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    t, bottom, l, r = padding
    g = groups
    oh = _kit.conv_out(h, kh, stride[0], t, bottom, dilation[0])
    ow = _kit.conv_out(wd, kw, stride[1], l, r, dilation[1])
    xp = _kit.pad(x, padding).reshape(n, g, cg, h + t + bottom, wd + l + r)
    wg = w.reshape(g, c_out // g, cg, kh, kw)

    y = np.empty((n, g, c_out // g, oh, ow), dtype=x.dtype)  # BUG: np.zeros
    with np.errstate(all="ignore"):
        for a in range(kh):
            for e in range(kw):
                xs = _kit.taps(xp, a * dilation[0], e * dilation[1], stride, (oh, ow))
                y += np.einsum("ngcij,goc->ngoij", xs, wg[..., a, e])
        y = y.reshape(n, c_out, oh, ow)
        if b is not None:
            y += b.reshape(1, c_out, 1, 1)
    return y

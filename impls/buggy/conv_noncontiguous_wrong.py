"""conv2d: the im2col view assumes a C-contiguous input, so other memory layouts give wrong answers.

For speed the student builds the ``(N, C, OH, OW, KH, KW)`` window view with
``np.lib.stride_tricks.as_strided`` over the input's flat buffer
(``x.ravel(order="K")``, "no copy"), computing the byte strides from the
*shape* as if the array were C-contiguous. ``np.pad`` always returns a fresh
C-contiguous array, so with padding everything is right; but without padding
the input is used directly, and a Fortran-ordered or channels-last input is
read in its memory order: the windows hold the wrong cells. Every C-ordered
input is right, which is why the tests on freshly made arrays pass.
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "noncontiguous_input_misread"
EXPECTED_FAILURES = ("conv2d:hygiene",)

max_pool2d_forward = ref.max_pool2d_forward
max_pool2d_backward = ref.max_pool2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def _im2col(x, kernel_size, stride, padding, dilation):
    xp = _kit.pad(x, padding) if any(padding) else x  # skip the copy when there is nothing to pad
    n, c, hp, wp = xp.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    oh = (hp - _kit.extent(kh, dh)) // sh + 1
    ow = (wp - _kit.extent(kw, dw)) // sw + 1
    item = xp.itemsize
    flat = xp.ravel(order="K")  # the underlying buffer, without copying
    # BUG: byte strides of a C-contiguous (N, C, H, W) array; right only if xp is one.
    s_n, s_c, s_h, s_w = c * hp * wp * item, hp * wp * item, wp * item, item
    return np.lib.stride_tricks.as_strided(
        flat,
        shape=(n, c, oh, ow, kh, kw),
        strides=(s_n, s_c, sh * s_h, sw * s_w, dh * s_h, dw * s_w),
        writeable=False,
    )


def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
    n = x.shape[0]
    c_out, cg, kh, kw = w.shape
    g = groups
    cols = _im2col(x, (kh, kw), stride, padding, dilation)
    oh, ow = cols.shape[2:4]
    cols = cols.reshape(n, g, cg, oh, ow, kh, kw)
    y = np.einsum("ngcijab,gocab->ngoij", cols, w.reshape(g, c_out // g, cg, kh, kw)).reshape(
        n, c_out, oh, ow
    )
    if b is not None:
        y = y + b.reshape(1, c_out, 1, 1)
    return y.astype(x.dtype, copy=False)


def conv2d_backward(dy, x, w, b, *, stride, padding, dilation, groups):
    n = x.shape[0]
    c_out, cg, kh, kw = w.shape
    g = groups
    oh, ow = dy.shape[2:]
    dx = _kit.conv_dx(dy, x.shape, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    cols = _im2col(x, (kh, kw), stride, padding, dilation).reshape(n, g, cg, oh, ow, kh, kw)
    dw = np.einsum("ngoij,ngcijab->gocab", dy.reshape(n, g, c_out // g, oh, ow), cols).reshape(w.shape)
    return dx, dw.astype(x.dtype, copy=False), _kit.conv_db(dy, b)

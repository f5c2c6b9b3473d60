"""Alice's conv2d: windows from sliding_window_view, products summed by einsum.

A whole-contract conv2d (stride, asymmetric padding, dilation, groups), forward and backward.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _windows(xp, kh, kw, stride, dilation):
    """(N, C, OH, OW, KH, KW) view of the padded input's receptive fields."""
    (sh, sw), (dh, dw) = stride, dilation
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    v = sliding_window_view(xp, (span_h, span_w), axis=(2, 3))
    return v[:, :, ::sh, ::sw, ::dh, ::dw]


def _grouped(a, groups):
    """Split axis 1 into (groups, channels per group)."""
    return a.reshape(a.shape[0], groups, a.shape[1] // groups, *a.shape[2:])


def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
    top, bottom, left, right = padding
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    win = _grouped(_windows(xp, w.shape[2], w.shape[3], stride, dilation), groups)
    wg = w.reshape(groups, w.shape[0] // groups, *w.shape[1:])
    y = np.einsum("ngcijpq,gocpq->ngoij", win, wg).reshape(x.shape[0], w.shape[0], *win.shape[3:5])
    if b is not None:
        y = y + b[None, :, None, None]
    return y.astype(x.dtype)


def conv2d_backward(dy, x, w, b, *, stride, padding, dilation, groups):
    top, bottom, left, right = padding
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    kh, kw = w.shape[2:]
    win = _grouped(_windows(xp, kh, kw, stride, dilation), groups)
    wg = w.reshape(groups, w.shape[0] // groups, *w.shape[1:])
    dyg = _grouped(dy, groups)
    dw = np.einsum("ngoij,ngcijpq->gocpq", dyg, win).reshape(w.shape)
    # Each window's gradient lands back on the input positions the window read.
    dwin = np.einsum("ngoij,gocpq->ngcijpq", dyg, wg)
    dxp = np.zeros(xp.shape, dtype=np.float64)
    (sh, sw), (dh, dwl) = stride, dilation
    oh, ow = dy.shape[2:]
    for p in range(kh):
        for q in range(kw):
            rows = slice(p * dh, p * dh + sh * (oh - 1) + 1, sh)
            cols = slice(q * dwl, q * dwl + sw * (ow - 1) + 1, sw)
            dxp[:, :, rows, cols] += dwin[..., p, q].reshape(dy.shape[0], x.shape[1], oh, ow)
    dx = dxp[:, :, top : xp.shape[2] - bottom, left : xp.shape[3] - right]
    db = None if b is None else dy.sum(axis=(0, 2, 3)).astype(dy.dtype)
    return dx.astype(x.dtype), dw.astype(x.dtype), db

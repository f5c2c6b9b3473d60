"""A student's conv2d, max-pool and avg-pool in the contract's form, written with plain loops.

`convcheck run --impl examples/my_layers.py` checks it. It implements the whole
convolution (stride, asymmetric padding, dilation, groups) and the two pools
without ceil_mode or pooling dilation, which it declares, so those cases are
reported as unsupported rather than failed.
"""

import numpy as np

CONVCHECK_CAPABILITIES = {
    "max_pool2d": {"ceil_mode": False, "dilation": False},
    "avg_pool2d": {"ceil_mode": False},
}


def _pad(x, padding, value=0.0):
    top, bottom, left, right = padding
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def _out_size(size, k, stride, dilation=1):
    return (size - dilation * (k - 1) - 1) // stride + 1


def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
    """y[n, o, i, j] = b[o] + sum over c, p, q of xp[n, c, i*sh + p*dh, j*sw + q*dw] * w[o, c, p, q]."""
    xp = _pad(x, padding)
    n, _, h, wd = xp.shape
    c_out, c_per_group, kh, kw = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    ho, wo = _out_size(h, kh, sh, dh), _out_size(wd, kw, sw, dw)
    outs_per_group = c_out // groups
    y = np.zeros((n, c_out, ho, wo), dtype=x.dtype)
    for o in range(c_out):
        g = o // outs_per_group
        xs = xp[:, g * c_per_group : (g + 1) * c_per_group]
        for i in range(ho):
            for j in range(wo):
                patch = xs[
                    :, :, i * sh : i * sh + dh * (kh - 1) + 1 : dh, j * sw : j * sw + dw * (kw - 1) + 1 : dw
                ]
                y[:, o, i, j] = np.sum(patch * w[o], axis=(1, 2, 3))
        if b is not None:
            y[:, o] += b[o]
    return y


def conv2d_backward(dy, x, w, b, *, stride, padding, dilation, groups):
    """Each output element spreads dy * w back onto its patch (dx) and collects dy * patch (dw)."""
    xp = _pad(x, padding)
    dxp = np.zeros_like(xp)
    dw_ = np.zeros_like(w)
    c_out, c_per_group, kh, kw = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    _, _, ho, wo = dy.shape
    outs_per_group = c_out // groups
    for o in range(c_out):
        g = o // outs_per_group
        channels = slice(g * c_per_group, (g + 1) * c_per_group)
        for i in range(ho):
            for j in range(wo):
                rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
                cols = slice(j * sw, j * sw + dw * (kw - 1) + 1, dw)
                d = dy[:, o, i, j][:, None, None, None]
                dxp[:, channels, rows, cols] += d * w[o]
                dw_[o] += np.sum(d * xp[:, channels, rows, cols], axis=0)
    top, bottom, left, right = padding
    dx = dxp[:, :, top : xp.shape[2] - bottom, left : xp.shape[3] - right]
    db = None if b is None else dy.sum(axis=(0, 2, 3))
    return dx, dw_, db


def _windows(x, kernel_size, stride, padding, value):
    """(padded input, output height, output width) of a pooling without ceil_mode."""
    xp = _pad(x, padding, value)
    (kh, kw), (sh, sw) = kernel_size, stride
    return xp, _out_size(xp.shape[2], kh, sh), _out_size(xp.shape[3], kw, sw)


def max_pool2d_forward(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    xp, ho, wo = _windows(x, kernel_size, stride, padding, -np.inf)
    (kh, kw), (sh, sw) = kernel_size, stride
    y = np.empty((*x.shape[:2], ho, wo), dtype=x.dtype)
    for i in range(ho):
        for j in range(wo):
            y[:, :, i, j] = xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw].max(axis=(2, 3))
    return y


def max_pool2d_backward(dy, x, *, kernel_size, stride, padding, dilation, ceil_mode):
    """The whole gradient of a window goes to its first maximum in row-major order."""
    xp, ho, wo = _windows(x, kernel_size, stride, padding, -np.inf)
    (kh, kw), (sh, sw) = kernel_size, stride
    dxp = np.zeros_like(xp)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(ho):
                for j in range(wo):
                    window = xp[n, c, i * sh : i * sh + kh, j * sw : j * sw + kw]
                    p, q = np.unravel_index(np.argmax(window), window.shape)
                    dxp[n, c, i * sh + p, j * sw + q] += dy[n, c, i, j]
    top, bottom, left, right = padding
    return dxp[:, :, top : xp.shape[2] - bottom, left : xp.shape[3] - right]


def _divisors(x, kernel_size, stride, padding, count_include_pad):
    """How many elements each window averages: the whole window, or only the real ones."""
    if count_include_pad:
        return kernel_size[0] * kernel_size[1]
    ones, ho, wo = _windows(np.ones((1, 1, *x.shape[2:])), kernel_size, stride, padding, 0.0)
    (kh, kw), (sh, sw) = kernel_size, stride
    counts = np.empty((ho, wo))
    for i in range(ho):
        for j in range(wo):
            counts[i, j] = ones[0, 0, i * sh : i * sh + kh, j * sw : j * sw + kw].sum()
    return counts


def avg_pool2d_forward(x, *, kernel_size, stride, padding, ceil_mode, count_include_pad):
    xp, ho, wo = _windows(x, kernel_size, stride, padding, 0.0)
    (kh, kw), (sh, sw) = kernel_size, stride
    sums = np.empty((*x.shape[:2], ho, wo), dtype=np.float64)
    for i in range(ho):
        for j in range(wo):
            sums[:, :, i, j] = xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw].sum(axis=(2, 3))
    return (sums / _divisors(x, kernel_size, stride, padding, count_include_pad)).astype(x.dtype)


def avg_pool2d_backward(dy, x, *, kernel_size, stride, padding, ceil_mode, count_include_pad):
    """Each window's gradient is spread evenly over the elements it averaged."""
    xp, ho, wo = _windows(x, kernel_size, stride, padding, 0.0)
    (kh, kw), (sh, sw) = kernel_size, stride
    share = dy / _divisors(x, kernel_size, stride, padding, count_include_pad)
    dxp = np.zeros(xp.shape, dtype=np.float64)
    for i in range(ho):
        for j in range(wo):
            dxp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] += share[:, :, i, j][:, :, None, None]
    top, bottom, left, right = padding
    return dxp[:, :, top : xp.shape[2] - bottom, left : xp.shape[3] - right].astype(x.dtype)

"""A student's max-pool layer whose backward pops the stride out of the cached pool_param."""

import numpy as np


def max_pool_forward_naive(x, pool_param):
    N, C, H, W = x.shape
    HH, WW, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    out = np.zeros((N, C, 1 + (H - HH) // stride, 1 + (W - WW) // stride), dtype=x.dtype)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = np.max(
                x[:, :, i * stride : i * stride + HH, j * stride : j * stride + WW], axis=(2, 3)
            )
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    stride = pool_param.pop("stride")  # writes into the cached pool_param
    HH, WW = pool_param["pool_height"], pool_param["pool_width"]
    dx = np.zeros_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    window = x[n, c, i * stride : i * stride + HH, j * stride : j * stride + WW]
                    a, e = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, i * stride + a, j * stride + e] += dout[n, c, i, j]
    return dx

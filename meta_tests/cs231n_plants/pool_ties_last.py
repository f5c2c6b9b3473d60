"""A student's max-pool layer. Each window's gradient goes to its last maximum (row-major)."""

import numpy as np


def max_pool_forward_naive(x, pool_param):
    N, C, H, W = x.shape
    HH, WW, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    H_out = 1 + (H - HH) // stride
    W_out = 1 + (W - WW) // stride
    out = np.zeros((N, C, H_out, W_out), dtype=x.dtype)
    for i in range(H_out):
        for j in range(W_out):
            window = x[:, :, i * stride : i * stride + HH, j * stride : j * stride + WW]
            out[:, :, i, j] = np.max(window, axis=(2, 3))
    cache = (x, pool_param)
    return out, cache


def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    HH, WW, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    window = x[n, c, i * stride : i * stride + HH, j * stride : j * stride + WW]
                    mask = np.zeros(window.shape)
                    flat = window.size - 1 - np.argmax(window.ravel()[::-1])  # the last maximum
                    mask[np.unravel_index(flat, window.shape)] = 1
                    dx[n, c, i * stride : i * stride + HH, j * stride : j * stride + WW] += (
                        mask * dout[n, c, i, j]
                    )
    return dx

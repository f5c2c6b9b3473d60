"""Bob's conv2d, the textbook way: y is the valid cross-correlation of x with w, db sums dy,
dw correlates x with dy, and dx is the full convolution of dy with w."""

import numpy as np
from helpers import correlate_channels, full_channels

CONVCHECK_CAPABILITIES = {
    "conv2d": {"stride": "unit", "padding": "none", "dilation": False, "groups": False},
}


def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
    y = correlate_channels(x, w)
    return y if b is None else y + b[None, :, None, None].astype(y.dtype)


def conv2d_backward(dy, x, w, b, *, stride, padding, dilation, groups):
    dw = np.stack(
        [
            correlate_channels(x[:, c : c + 1].transpose(1, 0, 2, 3), dy.transpose(1, 0, 2, 3))[0]
            for c in range(x.shape[1])
        ],
        axis=1,
    )
    dx = full_channels(dy, w)
    db = None if b is None else dy.sum(axis=(0, 2, 3))
    return dx, dw.astype(x.dtype), db

"""Channel loops around SciPy's 2-D correlation."""

import numpy as np
from scipy.signal import correlate2d


def correlate_channels(x, w):
    """y[n, o] = sum over c of the valid cross-correlation of x[n, c] with w[o, c]."""
    n, c_out = x.shape[0], w.shape[0]
    out = [
        [sum(correlate2d(x[i, c], w[o, c], mode="valid") for c in range(w.shape[1])) for o in range(c_out)]
        for i in range(n)
    ]
    return np.asarray(out, dtype=x.dtype)


def full_channels(dy, w):
    """dx[n, c] = sum over o of the full correlation of dy[n, o] with w[o, c]."""
    n, c_in = dy.shape[0], w.shape[1]
    out = [
        [sum(correlate2d(dy[i, o], w[o, c], mode="full") for o in range(w.shape[0])) for c in range(c_in)]
        for i in range(n)
    ]
    return np.asarray(out, dtype=dy.dtype)

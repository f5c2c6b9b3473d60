"""flatten: channels-last order, ``x`` transposed to ``(N, H, W, C)`` before reshaping.

The student learnt image code in NumPy/TensorFlow, where images are
channels-last, and flattened each sample with the channel fastest:
``x.transpose(0, 2, 3, 1).reshape(N, -1)`` (here for any number of spatial
axes), and wrote the matching inverse for the backward pass. The pair is
consistent (the backward is the transpose of this forward, so the adjoint and
finite-difference checks pass) but both differ from the contract's C order,
``y[n] = x[n].ravel()`` (PyTorch's ``torch.flatten(x, 1)``, what the dense
layer's weights are trained against). Right when there is one channel or no
spatial axis.
"""

import numpy as np

from . import _kit

DIAGNOSIS = "flatten_channels_last"
EXPECTED_FAILURES = ("flatten:forward", "flatten:backward", "flatten:flatten_order")


def flatten_forward(x):
    n = x.shape[0]
    # BUG: channels last (N, H, W, C) before reshaping; the contract flattens x[n] in C order
    return np.moveaxis(x, 1, -1).reshape(n, -1).copy()  # copy: never hand back a view of x


def flatten_backward(dy, x):
    n, c, *spatial = x.shape
    # BUG: the inverse of the channels-last flatten; the contract's is dy.reshape(x.shape)
    return np.moveaxis(dy.reshape(n, *spatial, c), -1, 1).copy()


_kit.borrow_correct(globals())

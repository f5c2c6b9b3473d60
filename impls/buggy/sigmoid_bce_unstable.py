"""sigmoid binary cross-entropy: ``log(sigmoid(z))`` and ``log(1 - sigmoid(z))`` evaluated as written.

The student computed ``s = 1 / (1 + exp(-z))`` and then the textbook loss
``-y log(s) - (1 - y) log(1 - s)``. Once ``|z|`` is large, ``s`` rounds to
exactly 0 or 1 (already near ``z = 17`` in float32), a log sees 0 and the loss
is ``inf``, or NaN where ``0 * inf`` meets a target of 0 or 1. The gradient
``(s - y) / z.size`` is fine: ``s`` itself never overflows. The contract's
stable form is ``max(z, 0) - z y + log1p(exp(-|z|))``.
"""

import numpy as np

from . import _kit

DIAGNOSIS = "bce_log_of_sigmoid"
EXPECTED_FAILURES = ("sigmoid_binary_cross_entropy:loss_stability",)


def sigmoid_binary_cross_entropy(z, y):
    y = np.asarray(y, dtype=z.dtype)
    s = 1 / (1 + np.exp(-z))
    loss = np.mean(-y * np.log(s) - (1 - y) * np.log(1 - s))  # BUG: log of a sigmoid that rounded to 0 or 1
    dz = (s - y) / z.size
    return np.asarray(loss, dtype=z.dtype), dz


_kit.borrow_correct(globals())

"""softmax cross-entropy: ``log(sum(exp(z)))`` and ``exp(z) / sum(exp(z))`` without the row maximum.

The student wrote the formulas as they stand in the lecture notes. Without
subtracting each row's maximum first, ``exp`` overflows to ``inf`` once a
logit passes about 88.7 in float32 (709.8 in float64), and underflows to 0
when a whole row is very negative: the loss becomes ``inf`` or NaN and ``dz``
NaN (``inf / inf``, ``0 / 0``). Right, to rounding, for the small logits of
everyday data; the contract demands finite, accurate results up to
``|z| = spec.loss.LARGE_LOGIT``.
"""

import numpy as np

from . import _kit

DIAGNOSIS = "logsumexp_not_max_shifted"
EXPECTED_FAILURES = ("softmax_cross_entropy:loss_stability",)


def softmax_cross_entropy(z, labels):
    n = z.shape[0]
    rows, labels = np.arange(n), np.asarray(labels).astype(np.intp)
    e = np.exp(z)  # BUG: no max subtracted: exp overflows for large logits (and underflows for small)
    total = e.sum(axis=1, keepdims=True)
    loss = np.mean(np.log(total[:, 0]) - z[rows, labels])
    dz = e / total
    dz[rows, labels] -= 1
    dz /= n
    return np.asarray(loss, dtype=z.dtype), dz


_kit.borrow_correct(globals())

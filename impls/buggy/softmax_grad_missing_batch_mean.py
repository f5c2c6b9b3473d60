"""softmax cross-entropy: the loss is the batch mean, but ``dz`` lacks the ``1/N``.

The student wrote the loss as ``np.mean`` of the per-sample losses (right) and
then the textbook gradient ``softmax(z) - onehot(labels)``, which is the
gradient of one sample's loss: the ``1/N`` of the mean is missing from ``dz``.
Its rows are ``N`` times too large, so ``dz`` is not the gradient of the
returned loss; right only for a batch of one.
"""

import numpy as np

from . import _kit

DIAGNOSIS = "dz_missing_batch_mean"
EXPECTED_FAILURES = (
    "softmax_cross_entropy:loss_gradient",
    "softmax_cross_entropy:loss_batch_mean",
    "softmax_cross_entropy:loss_finite_differences",
)


def softmax_cross_entropy(z, labels):
    n = z.shape[0]
    rows, labels = np.arange(n), np.asarray(labels).astype(np.intp)
    shifted = z - z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    total = e.sum(axis=1, keepdims=True)
    loss = np.mean(np.log(total[:, 0]) - shifted[rows, labels])
    dz = e / total
    dz[rows, labels] -= 1  # BUG: softmax - onehot is one sample's gradient; the mean's 1/N is missing
    return np.asarray(loss, dtype=z.dtype), dz


_kit.borrow_correct(globals())

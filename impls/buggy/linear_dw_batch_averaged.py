"""linear backward: the batch averaged twice, ``dw`` and ``db`` divided by ``N``.

The course's training loop takes the mean loss over the batch, so the loss
gradient ``dz = (softmax - onehot) / N`` already carries the ``1/N``. The
student, thinking "the gradient is an average over the batch", divides the
dense layer's weight and bias gradients by ``N`` once more. The contract's
``dw = dy^T x`` and ``db = sum_n dy[n]`` are *sums* over the batch (the
averaging belongs to the loss, once), so both come out ``N`` times too small
whenever ``N > 1``; ``dx`` is right, and so is every single-sample batch,
which makes the mistake easy to miss (training just runs ``N`` times slower).
"""

from . import _kit

DIAGNOSIS = "linear_batch_averaged_twice"
EXPECTED_FAILURES = (
    "linear:backward",
    "linear:adjoint",
    "linear:finite_differences",
    "linear:batch_independence",
    "linear:bias_gradient",
)


def linear_backward(dy, x, w, b):
    n = x.shape[0]
    dx = dy @ w
    dw = dy.T @ x / n  # BUG: "average over the batch"; dy already carries the loss's 1/N
    db = None if b is None else dy.sum(axis=0) / n  # BUG: the same for the bias
    return dx, dw, db


_kit.borrow_correct(globals())

"""relu backward: the gradient passes where ``x >= 0``, so the derivative at the kink is 1.

``max(x, 0)`` has no derivative at 0 and the contract (like PyTorch's
``threshold_backward``) takes it to be 0: ``dx = dy`` only where ``x > 0``. The
student wrote the mask as ``x >= 0``, so wherever ``x`` is exactly ``0`` (or
``-0.0``), ``dx`` is ``dy`` instead of 0. Random normal data almost never holds
an exact zero; the zeros left by a previous ReLU or by max-pool padding do.
"""

from . import _kit

DIAGNOSIS = "relu_derivative_one_at_zero"
EXPECTED_FAILURES = ("relu:backward", "relu:relu_kink")


def relu_backward(dy, x):
    return dy * (x >= 0)  # BUG: '>=' lets the gradient through at x == 0; the contract's mask is x > 0


_kit.borrow_correct(globals())

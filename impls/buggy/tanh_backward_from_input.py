"""tanh backward: ``1 - x**2`` where the derivative is ``1 - tanh(x)**2``.

The lecture writes the derivative in terms of the layer's output,
``tanh'(x) = 1 - y**2`` with ``y = tanh(x)``. The contract's backward receives
the *input* ``x``, not ``y``, and the student plugged it straight into the
formula: ``dx = dy * (1 - x**2)``. Close to right only for ``|x|`` near 0; for
``|x| > 1`` even the sign is wrong.
"""

from . import _kit

DIAGNOSIS = "derivative_of_output_applied_to_input"
EXPECTED_FAILURES = ("tanh:backward", "tanh:finite_differences")


def tanh_backward(dy, x):
    return dy * (1 - x**2)  # BUG: 1 - y**2 is the derivative in terms of y = tanh(x), not of x


_kit.borrow_correct(globals())

"""Property: ReLU at its kink. The contract's derivative at exactly ``x = 0`` is 0 (PyTorch's choice,
``spec.activation``), and away from it ``dx`` is ``dy`` or 0, bit for bit.

Every example plants exact zeros (``+0.0`` and ``-0.0``) in ``x``, so an
implementation that tests ``x >= 0`` instead of ``x > 0`` fails on the first
example rather than on the rare random zero.
"""

import numpy as np
import pytest
from hypothesis import given

from convcheck.spec import OPERATIONS

from . import checks
from .strategies import cases, kink_zeros


@pytest.mark.conformance("relu_kink")
def test_relu_kink(impl, caps, op_name, record):
    op = OPERATIONS[op_name]
    checks.require(impl, op.forward, op.backward)

    @given(case=cases(op_name, caps, families_=("normal", "exact")).flatmap(kink_zeros))
    def check(case):
        record.case(case)
        x, dy = case.x, case.dy
        y = checks.call_forward(impl, case)
        dx = checks.call_backward(impl, case)["dx"]
        expected_y = np.where(x > 0, x, 0.0)
        expected_dx = np.where(x > 0, dy, 0.0)
        for name, got, expected in (("y", y, expected_y), ("dx", dx, expected_dx)):
            wrong = got != expected
            if not wrong.any():
                continue
            idx = tuple(int(i) for i in np.argwhere(wrong)[0])
            at_zero = wrong & (x == 0)
            hint = (
                f"{int(at_zero.sum())} of them at x == 0: the derivative at the kink is 0 in the contract "
                "(PyTorch's choice): pass the gradient only where x > 0, not x >= 0"
                if name == "dx" and at_zero.any()
                else "relu must be exact: y = x where x > 0, else 0; dx = dy where x > 0, else 0"
            )
            checks.ensure(
                False,
                f"{op.forward if name == 'y' else op.backward} {name} is wrong at {int(wrong.sum())} of "
                f"{wrong.size} elements; first at {idx}: x={float(x[idx])!r}, dy={float(dy[idx])!r}, "
                f"got {float(got[idx])!r}, expected {float(expected[idx])!r}; {hint} [{case.describe()}]\n"
                + checks.reproduction(case, impl),
                case=case,
                impl=impl,
                output=name,
            )

    check()

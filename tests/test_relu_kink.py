"""Property: ReLU at its kink. The contract's derivative at exactly ``x = 0`` is 0 (PyTorch's choice,
``spec.activation``) unless declared otherwise (``derivative_at_zero``), and away from it ``dx`` is
``dy`` or 0, bit for bit. Another slope at 0 is classified (``spec.contracts``): a convention when it
lies in [0, 1] (a failure under the library contract, a note under the course one), else a kink defect.

Every example plants exact zeros (``+0.0`` and ``-0.0``) in ``x``, so an
implementation that tests ``x >= 0`` instead of ``x > 0`` fails on the first
example rather than on the rare random zero.
"""

import json

import numpy as np
import pytest
from hypothesis import given

from convcheck.spec import OPERATIONS, contracts, tolerance

from . import checks
from .strategies import cases, kink_zeros


@pytest.mark.conformance("relu_kink")
def test_relu_kink(impl, caps, contract, op_name, record):
    op = OPERATIONS[op_name]
    checks.require(impl, op.forward, op.backward)
    declared = caps.value(op, "derivative_at_zero")
    slack = {d: 4 * tolerance.unit_roundoff(d) for d in caps.dtypes}

    @given(case=cases(op_name, caps, families_=("normal", "exact")).flatmap(kink_zeros))
    @checks.shrinks_further
    def check(case):
        record.case(case)
        x, dy = case.x, case.dy
        y = checks.call_forward(impl, case)
        dx = checks.call_backward(impl, case)["dx"]
        expected_y = np.where(x > 0, x, 0.0)
        expected_dx = np.where(x > 0, dy, 0.0)  # the library contract's; relu_verdict judges x == 0
        for name, got, expected in (("y", y, expected_y), ("dx", dx, expected_dx)):
            wrong = got != expected
            if not wrong.any():
                continue
            only_at_zero = name == "dx" and not np.any(wrong & (x != 0))
            verdict = (
                contracts.relu_verdict(x, dy, got, declared, slack[case.dtype]) if only_at_zero else None
            )
            if only_at_zero and verdict is None:
                continue  # every slope at 0 is one the declaration accepts
            idx = tuple(int(i) for i in np.argwhere(wrong)[0])
            hint = (
                f"{int(wrong.sum())} of them, all at x == 0: the contract's derivative there is "
                f"{json.dumps(declared)} (0 is PyTorch's choice: pass the gradient only where x > 0)"
                if only_at_zero
                else "relu must be exact: y = x where x > 0, else 0; dx = dy where x > 0, else 0"
            )
            message = (
                f"{op.forward if name == 'y' else op.backward} {name} is wrong at {int(wrong.sum())} of "
                f"{wrong.size} elements; first at {idx}: x={float(x[idx])!r}, dy={float(dy[idx])!r}, "
                f"got {float(got[idx])!r}, expected {float(expected[idx])!r}; {hint} [{case.describe()}]\n"
                + checks.reproduction(case, impl)
            )
            if verdict is not None:
                checks.at_kink(case, impl, verdict, contract, message, output=name)
                continue
            checks.ensure(False, message, case=case, impl=impl, output=name)

    check()

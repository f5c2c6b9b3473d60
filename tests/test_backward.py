"""Property 2: each backward output (dx, dw, db) matches every oracle."""

import pytest
from hypothesis import given

from convcheck.spec import OPERATIONS

from . import checks
from .strategies import cases


@pytest.mark.conformance("backward")
def test_backward(impl, caps, op_name, grad, oracle_name, record):
    op = OPERATIONS[op_name]
    checks.require(impl, op.backward)
    checks.require_oracle(oracle_name, op_name, caps)

    @given(case=cases(op_name, caps, bias=True if grad == "db" else None))
    def check(case):
        record.case(case)
        got = checks.call_backward(impl, case)[grad]
        expected = checks.oracle_backward(oracle_name, case, caps)[grad]
        bound = checks.oracle_backward(oracle_name, case, caps, absolute=True)[grad]
        comp = checks.compare(case, grad, got, expected, bound, caps)
        record.comparison(comp)
        what = f"{op.backward} {grad} vs the {oracle_name} oracle"
        checks.assert_matches(case, what, comp, got, expected, impl)

    check()

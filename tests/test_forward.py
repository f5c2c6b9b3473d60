"""Property 1: the forward pass matches every oracle, under the tolerance policy."""

import pytest
from hypothesis import given

from convcheck.spec import OPERATIONS

from . import checks
from .strategies import cases
from .values import EDGE_FAMILIES, FAMILIES


@pytest.mark.conformance("forward")
def test_forward(impl, caps, op_name, oracle_name, record):
    op = OPERATIONS[op_name]
    checks.require(impl, op.forward)
    checks.require_oracle(oracle_name, op_name, caps)

    @given(case=cases(op_name, caps, families_=(*FAMILIES, *EDGE_FAMILIES), layouts_=("contiguous",)))
    @checks.shrinks_further
    def check(case):
        record.case(case)
        got = checks.call_forward(impl, case)
        expected = checks.oracle_forward(oracle_name, case, caps)
        bound = checks.oracle_forward(oracle_name, case, caps, absolute=True)
        comp = checks.compare(case, "y", got, expected, bound, caps)
        record.comparison(comp)
        checks.assert_matches(case, f"{op.forward} y vs the {oracle_name} oracle", comp, got, expected, impl)

    check()

"""Property 2: each backward output (dx, dw, db) matches every oracle. At the kinks of ReLU and
max-pool (x == 0, tied maxima) a mismatch is classified (``spec.contracts``): a declared convention
passes; a convention or a kink defect fails under the library contract and is noted under the course one."""

import pytest
from hypothesis import given

from convcheck.spec import OPERATIONS, contracts

from . import checks
from .strategies import cases
from .values import EDGE_FAMILIES, FAMILIES


@pytest.mark.conformance("backward")
def test_backward(impl, caps, contract, op_name, grad, oracle_name, record):
    op = OPERATIONS[op_name]
    checks.require(impl, op.backward)
    checks.require_oracle(oracle_name, op_name, caps)

    @given(
        case=cases(op_name, caps, families_=(*FAMILIES, *EDGE_FAMILIES), bias=True if grad == "db" else None)
    )
    @checks.shrinks_further
    def check(case):
        record.case(case)
        got = checks.call_backward(impl, case)[grad]
        expected = checks.oracle_backward(oracle_name, case, caps)[grad]
        bound = checks.oracle_backward(oracle_name, case, caps, absolute=True)[grad]
        comp = checks.compare(case, grad, got, expected, bound, caps)
        what = f"{op.backward} {grad} vs the {oracle_name} oracle"
        verdict = None
        if not comp.passed and op.kinked:  # at a kink: a declared or classified subgradient (spec.contracts)
            verdict = checks.kink_verdict(case, caps, grad, got, expected)
            if verdict is None or (verdict.kind != contracts.DEFECT and contract == contracts.COURSE):
                if verdict is not None:  # a note or a warning; no error to measure: a choice at kinks
                    report = checks.mismatch_report(case, what, comp, got, expected, impl)
                    checks.at_kink(case, impl, verdict, contract, report, output=grad)
                return
        record.comparison(comp)
        if verdict is not None and verdict.kind != contracts.DEFECT:  # fails, saying how to declare it
            report = checks.mismatch_report(case, what, comp, got, expected, impl)
            checks.at_kink(case, impl, verdict, contract, report, output=grad)
        checks.assert_matches(case, what, comp, got, expected, impl)

    check()

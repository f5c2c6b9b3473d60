"""Property 8: ``db`` equals the sum of ``dy`` over every axis but the channel (output feature) axis:
the batch and, for a convolution, every spatial position."""

import numpy as np
import pytest
from hypothesis import given

from convcheck.spec import OPERATIONS

from . import checks
from .strategies import cases


@pytest.mark.conformance("bias_gradient")
def test_bias_gradient(impl, caps, op_name, record):
    op = OPERATIONS[op_name]
    checks.require(impl, op.backward)

    @given(case=cases(op_name, caps, bias=True))
    @checks.shrinks_further
    def check(case):
        record.case(case)
        db = checks.call_backward(impl, case)["db"]
        dy = case.dy.astype(np.float64)
        axes = tuple(a for a in range(dy.ndim) if a != 1)
        expected = dy.sum(axis=axes)
        comp = checks.within(case, "db", db, expected, np.abs(dy).sum(axis=axes), caps)
        record.comparison(comp)
        summed = "N" if dy.ndim == 2 else "N and every spatial axis"
        checks.assert_matches(case, f"{op.backward} db vs dy summed over {summed}:", comp, db, expected, impl)

    check()

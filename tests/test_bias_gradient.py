"""Property 8: conv2d's ``db`` equals the sum of ``dy`` over batch and space."""

import numpy as np
import pytest
from hypothesis import given

from . import checks
from .strategies import cases


@pytest.mark.conformance("bias_gradient", ops=("conv2d",))
def test_bias_gradient(impl, caps, record):
    checks.require(impl, "conv2d_backward")

    @given(case=cases("conv2d", caps, bias=True))
    def check(case):
        record.case(case)
        db = checks.call_backward(impl, case)["db"]
        dy = case.dy.astype(np.float64)
        expected = dy.sum(axis=(0, 2, 3))
        comp = checks.within(case, "db", db, expected, np.abs(dy).sum(axis=(0, 2, 3)), caps)
        record.comparison(comp)
        checks.assert_matches(
            case, "conv2d_backward db vs dy summed over (N, H, W):", comp, db, expected, impl
        )

    check()

"""Property 6: the backward pass is linear in ``dy``: ``g(a dy1 + b dy2) = a g(dy1) + b g(dy2)``."""

import numpy as np
import pytest
from hypothesis import given

from convcheck.spec import OPERATIONS
from convcheck.spec.case import with_inputs

from . import checks
from .strategies import cases, seeds
from .values import fill

A, B = 2.0, -3.0  # exact in every dtype, so a*dy1 + b*dy2 of integers stays exact
LABELS = ("g(a dy1 + b dy2)", "a g(dy1) + b g(dy2)")
"""Both sides are the implementation's answers: named for what they are, never got/expected."""


@pytest.mark.conformance("linearity")
def test_linearity(impl, caps, op_name, record):
    op = OPERATIONS[op_name]
    checks.require(impl, op.backward)

    @given(case=cases(op_name, caps), seed=seeds)
    @checks.shrinks_further
    def check(case, seed):
        record.case(case)
        dy1 = case.dy
        dy2 = fill(case.family, "dy", dy1.shape, np.random.default_rng(seed)).astype(case.dtype)
        combined = (A * dy1.astype(np.float64) + B * dy2).astype(case.dtype)
        g1 = checks.call_backward(impl, case)
        g2 = checks.call_backward(impl, with_inputs(case, dy=dy2))
        g12 = checks.call_backward(impl, with_inputs(case, dy=combined))
        spread = with_inputs(
            case, dy=(abs(A) * np.abs(dy1.astype(np.float64)) + abs(B) * np.abs(dy2)).astype(case.dtype)
        )
        s = checks.self_bounds(impl, spread)
        for name in op.grads:
            if g12[name] is None:
                continue
            combined_grads = A * g1[name].astype(np.float64) + B * g2[name]
            exact = checks.exact_combination(case, caps)  # a*dy1 + b*dy2 rounds unless integer
            comp = checks.within(
                case, name, g12[name], combined_grads, s[name], caps, factor=3.0, exact=exact
            )
            record.comparison(comp)
            if not comp.passed:
                checks.forward_at_fault(case, impl, caps, f"linearity of {name} in dy")
            checks.assert_matches(
                case,
                f"{op.backward} {name} is not linear in dy (a={A}, b={B}, seed={seed}):",
                comp,
                g12[name],
                combined_grads,
                impl,
                LABELS,
            )

    check()

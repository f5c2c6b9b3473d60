"""Property 4: adjoint (dot-product) identities, which need no oracle.

For an operation linear in its input (conv and linear without bias, avg-pool,
flatten) or piecewise linear and positively homogeneous (max-pool, relu), the
vector-Jacobian product satisfies ``<f(x), dy> = <x, dx>`` (Euler's theorem for
homogeneous functions); for conv and linear also ``<f(x), dy> = <w, dw>``.
"""

import numpy as np
import pytest
from hypothesis import given

from convcheck.spec import OPERATIONS, tolerance

from . import checks
from .strategies import cases


def _dot(a, b):
    return float(np.sum(np.asarray(a, np.float64) * np.asarray(b, np.float64)))


@pytest.mark.conformance("adjoint")
def test_adjoint(impl, caps, contract, op_name, record):
    op = OPERATIONS[op_name]
    checks.require(impl, op.forward, op.backward)

    @given(case=cases(op_name, caps, bias=False))
    @checks.shrinks_further
    def check(case):
        record.case(case)
        y = checks.call_forward(impl, case)
        grads = checks.call_backward(impl, case)
        s = checks.self_bounds(impl, case)
        k = op.reduction_lengths(case.shapes(), case.params)
        lhs = _dot(y, case.dy)
        for name, grad in grads.items():
            if grad is None:
                continue
            primal = case.inputs[name[1:]]
            rhs = _dot(primal, grad)
            bound = tolerance.inner_product_bound(
                max(k["y"], k[name]),
                case.dtype,
                _dot(s["y"], np.abs(case.dy)) + _dot(np.abs(primal), s[name]),
                _dot(np.abs(y), np.abs(case.dy)) + _dot(np.abs(primal), np.abs(grad)),
                y.size + primal.size,
            )
            bound *= checks.override_factor(case)
            if checks.exact_combination(case, caps):
                bound = 0.0
            message = (
                f"adjoint identity <{op.forward}(x), dy> = <{name[1:]}, {name}> fails: "
                f"{lhs!r} vs {rhs!r}, difference {abs(lhs - rhs):.3g} > bound {bound:.3g}; "
                f"{name} is not the transpose of the forward map [{case.describe()}]\n"
                + checks.reproduction(case, impl)
            )
            if abs(lhs - rhs) > bound:
                checks.forward_at_fault(case, impl, caps, f"the adjoint identity for {name}")
                if checks.excused_at_kink(case, impl, caps, contract, message, grad):
                    continue  # a tie or ReLU'(0) choice (spec/contracts.py), reported as such
            checks.ensure(
                abs(lhs - rhs) <= bound,
                message,
                case=case,
                impl=impl,
            )

    check()

"""Property 5: central finite differences of the implementation's own forward match its backward.

Along a random direction ``v`` for each input ``a`` (JAX's ``check_grads``
idea, one forward pair per input instead of one per element)::

    (L(a + eps v) - L(a - eps v)) / (2 eps)  ~  <da, v>,   L(a) = <f(a), dy>

in float64 only. Piecewise-linear operations with kinks (max-pool, relu) use
the ``offset`` family (half-integers at least 1 apart, none zero) and
``eps * |v| < 1/2``, so no perturbation moves a window's winner or crosses
zero: the check stays away from the kinks. Smooth non-linear operations
(sigmoid, tanh) add the central difference's truncation error,
``eps**2 / 6 * max|f^(3)| * sum |dy| |v|**3``, with ``max|f^(3)|`` from the spec.
"""

import numpy as np
import pytest
from hypothesis import given

from convcheck.spec import OPERATIONS, tolerance
from convcheck.spec.case import with_inputs

from . import checks
from .strategies import cases, seeds

EPS = 1e-3


def _families(op):
    """Kinked operations are probed off their kinks; the rest on everyday and exact data."""
    return ("offset",) if op.kinked else ("normal", "exact", "distinct")


@pytest.mark.conformance("finite_differences")
def test_finite_differences(impl, caps, op_name, record):
    op = OPERATIONS[op_name]
    checks.require(impl, op.forward, op.backward)
    checks.require_dtype(caps, "float64", "finite differences")

    @given(case=cases(op_name, caps, dtypes_=("float64",), families_=_families(op)), seed=seeds)
    @checks.shrinks_further
    def check(case, seed):
        record.case(case)
        grads = checks.call_backward(impl, case)
        s = checks.self_bounds(impl, case)
        k = op.reduction_lengths(case.shapes(), case.params)
        rng = np.random.default_rng(seed)
        scale_dy = float(np.sum(s["y"] * np.abs(case.dy)))
        for name, grad in grads.items():
            if grad is None:
                continue
            primal = case.inputs[name[1:]]
            v = rng.uniform(-1.0, 1.0, size=primal.shape)

            def loss(a, name=name):
                moved = with_inputs(case, **{name[1:]: a})
                return float(np.sum(checks.call_forward(impl, moved) * case.dy))

            fd = (loss(primal + EPS * v) - loss(primal - EPS * v)) / (2 * EPS)
            analytic = float(np.sum(grad * v))
            # Rounding in each loss (gamma_K of its scale, doubled for the moved inputs) over 2*eps,
            # plus the analytic side's own rounding.
            bound = tolerance.SAFETY * 4 * tolerance.gamma(k["y"] + case.dy.size, 2.0**-53) * scale_dy / EPS
            bound += (
                tolerance.SAFETY
                * tolerance.gamma(k[name] + v.size, 2.0**-53)
                * float(np.sum(s[name] * np.abs(v)))
            )
            if op.third_derivative:
                bound += EPS**2 / 6 * op.third_derivative * float(np.sum(np.abs(case.dy) * np.abs(v) ** 3))
            bound *= checks.override_factor(case)
            if abs(fd - analytic) > bound:
                checks.forward_at_fault(case, impl, caps, f"finite differences for {name}")
            checks.ensure(
                abs(fd - analytic) <= bound,
                f"finite differences disagree with {op.backward} {name}: along a random direction v, "
                f"(L({name[1:]}+eps v) - L({name[1:]}-eps v)) / 2eps = {fd!r} but <{name}, v> = {analytic!r} "
                f"(difference {abs(fd - analytic):.3g}, bound {bound:.3g}, eps={EPS}, seed={seed}) "
                f"[{case.describe()}]\n" + checks.reproduction(case, impl),
                case=case,
                impl=impl,
                output=name,
            )

    check()

"""Property 7: batch independence. A batch equals its samples run one by one;
``dx`` splits by sample, and ``dw``, ``db`` are the sums of the per-sample ones."""

import numpy as np
import pytest
from hypothesis import assume, given

from convcheck import pairs
from convcheck.spec import OPERATIONS
from convcheck.spec.case import with_inputs

from . import checks
from .strategies import cases

LABELS = {
    "y": ("batch", "sample by sample"),
    "dx": ("batch", "samples concatenated"),
    "sum": ("batch", "per-sample sum"),
}
"""Both sides are the implementation's answers: named for what they are, never got/expected."""


def _sample(case, n):
    return with_inputs(case, x=case.x[n : n + 1], dy=case.dy[n : n + 1])


@pytest.mark.conformance("batch_independence")
def test_batch_independence(impl, caps, op_name, record):
    op = OPERATIONS[op_name]
    checks.require(impl, op.forward, op.backward)

    @given(case=cases(op_name, caps))
    @checks.shrinks_further
    def check(case):
        n_batch = case.x.shape[0]
        assume(n_batch >= 2)
        record.limit_pairs("N", pairs.MANY)
        record.case(case)
        s = checks.self_bounds(impl, case)
        y = checks.call_forward(impl, case).astype(np.float64)
        grads = checks.call_backward(impl, case)
        singles = [_sample(case, n) for n in range(n_batch)]
        y_each = np.concatenate([checks.call_forward(impl, c) for c in singles]).astype(np.float64)
        g_each = [checks.call_backward(impl, c) for c in singles]
        comp = checks.within(case, "y", y, y_each, s["y"], caps, factor=2.0)
        record.comparison(comp)
        if not comp.passed:
            checks.forward_at_fault(case, impl, caps, "batch independence of y")
        checks.assert_matches(
            case, f"{op.forward} on the batch vs sample by sample:", comp, y, y_each, impl, LABELS["y"]
        )
        for name, grad in grads.items():
            if grad is None:
                continue
            parts = [g[name].astype(np.float64) for g in g_each]
            joined = np.concatenate(parts) if name == "dx" else np.sum(parts, axis=0)
            comp = checks.within(case, name, grad, joined, s[name], caps, factor=2.0)
            record.comparison(comp)
            if not comp.passed:
                checks.forward_at_fault(case, impl, caps, f"batch independence of {name}")
            how = "concatenated" if name == "dx" else "summed"
            checks.assert_matches(
                case,
                f"{op.backward} {name} of the batch vs per-sample {name} {how}:",
                comp,
                grad,
                joined,
                impl,
                LABELS["dx" if name == "dx" else "sum"],
            )

    check()

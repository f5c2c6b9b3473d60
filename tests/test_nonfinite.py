"""Property: NaN and infinities in the inputs or in ``dy`` come out where the non-finite contract
(``spec.nonfinite``, PyTorch's behaviour) says, position by position: each element of ``y`` and of
every gradient must be NaN, ``+inf``, ``-inf`` or finite exactly as the contract computes. The
finite values are the tolerance's business (the forward and backward properties); here only the
class of each element is checked, NaN matching NaN. A declared convention (a true convolution, a
finite max-pool padding) is followed. Under the course contract a break is a warning, not a
failure: no assignment says what a layer does with NaN or an infinite gradient (``spec.contracts``)."""

import numpy as np
import pytest
from hypothesis import given

from convcheck.spec import OPERATIONS, contracts, nonfinite

from . import checks
from .strategies import cases
from .values import NONFINITE_FAMILIES


def _assert_classes(case, impl, contract: str, what: str, name: str, got: np.ndarray, allowed: tuple) -> None:
    """Fail unless every element of ``got`` is of a class the contract allows it (under the course
    contract, note a warning instead)."""
    __tracebackhide__ = True
    wrong = nonfinite.mismatches(np.asarray(got), allowed)
    if not wrong:
        return
    total = int(np.count_nonzero(nonfinite.breaks(np.asarray(got), allowed)))
    if contract == contracts.COURSE:
        verdict = contracts.Verdict(
            contracts.NONFINITE,
            case.op_name,
            f"{what} {name}",
            f"NaN or infinities come out otherwise than PyTorch's (spec/nonfinite.py), e.g. {wrong[0]}",
        )
        checks.at_kink(case, impl, verdict, contract, "", output=name)
        return
    checks.fail(
        case,
        impl,
        f"{what} {name} breaks the non-finite contract (spec/nonfinite.py) at {total} of {np.asarray(got).size} "
        f"elements [{case.describe()}]:\n  "
        + "\n  ".join(wrong)
        + "\n  (NaN in a max-pool window wins it; +inf wins over finite values; IEEE arithmetic "
        "elsewhere: inf * 0 and inf - inf are NaN)\n" + checks.reproduction(case, impl, fname=what),
        output=name,
        wrong=True,
        kind="non-finite",
    )


@pytest.mark.conformance("nonfinite")
def test_nonfinite(impl, caps, contract, op_name, record):
    op = OPERATIONS[op_name]
    present = [f for f in (op.forward, op.backward) if f is not None and impl.provides(f)]
    if not present:
        checks.require(impl, op.forward)

    @given(case=cases(op_name, caps, families_=NONFINITE_FAMILIES))
    @checks.shrinks_further
    def check(case):
        record.case(case)
        if op.forward in present:
            expected = nonfinite.allowed_classes(case, True, caps.semantics(op))
            got = checks.call_forward(impl, case)
            _assert_classes(case, impl, contract, op.forward, "y", got, expected["y"])
        if op.backward in present:
            expected = nonfinite.allowed_classes(case, False, caps.semantics(op))
            grads = checks.call_backward(impl, case)
            for name, classes in expected.items():
                if grads.get(name) is not None:
                    _assert_classes(case, impl, contract, op.backward, name, grads[name], classes)

    check()

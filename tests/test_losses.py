"""Properties of the losses: the value, the gradient, stability on large logits and the batch mean.

A loss is one function returning ``(loss, dz)`` (``spec.loss``):

- ``loss_value`` and ``loss_gradient``: ``loss`` and ``dz`` match every oracle
  under the tolerance policy, with ``S`` from the spec's magnitudes;
- ``loss_finite_differences``: the implementation's own ``dz`` is the
  derivative of its own ``loss`` along a random direction (float64);
- ``loss_stability``: logits up to ``|z| = spec.loss.LARGE_LOGIT`` give finite
  values that still match the oracles (a log-sum-exp without the max
  subtracted overflows at ``z = 89`` in float32);
- ``loss_batch_mean``: the loss is the mean of the per-sample losses and
  ``dz`` carries the ``1/N`` once: the batch repeated twice has the same loss
  and half the gradient per row.
"""

import numpy as np
import pytest
from hypothesis import given

from convcheck.spec import OPERATIONS, tolerance
from convcheck.spec.case import with_inputs
from convcheck.spec.loss import LARGE_LOGIT

from . import checks
from .strategies import cases, large_logits, seeds


def _compare(case, name, got, expected, caps, record, impl, what, factor=1.0):
    __tracebackhide__ = True
    s = case.magnitude(name)
    comp = checks.within(case, name, got, expected, s, caps, factor=factor)
    record.comparison(comp)
    checks.assert_matches(case, what, comp, got, expected, impl)


def _against_oracle(impl, caps, op_name, oracle_name, record, output):
    """One loss output (``loss`` or ``dz``) against one oracle, under the tolerance policy."""
    op = OPERATIONS[op_name]
    checks.require(impl, op.forward)
    checks.require_oracle(oracle_name, op_name, caps)

    @given(case=cases(op_name, caps))
    @checks.shrinks_further
    def check(case):
        record.case(case)
        got = checks.call_loss(impl, case)[output]
        expected = checks.oracle_loss(oracle_name, case)[output]
        what = f"{op.forward} {output} vs the {oracle_name} oracle"
        _compare(case, output, got, expected, caps, record, impl, what)

    check()


@pytest.mark.conformance("loss_value")
def test_loss_value(impl, caps, op_name, oracle_name, record):
    _against_oracle(impl, caps, op_name, oracle_name, record, "loss")


@pytest.mark.conformance("loss_gradient")
def test_loss_gradient(impl, caps, op_name, oracle_name, record):
    _against_oracle(impl, caps, op_name, oracle_name, record, "dz")


EPS = 1e-4


@pytest.mark.conformance("loss_finite_differences")
def test_loss_finite_differences(impl, caps, op_name, record):
    """``(L(z + eps v) - L(z - eps v)) / 2 eps = <dz, v>`` up to rounding and truncation.

    Both losses have second derivatives bounded by 1/4 per logit and third derivatives bounded
    by 1 per logit (softmax: the cumulants of a categorical distribution), so the truncation
    error is at most ``eps**2 / 6 * sum |v|**3 / N``."""
    op = OPERATIONS[op_name]
    checks.require(impl, op.forward)
    checks.require_dtype(caps, "float64", "finite differences")

    @given(case=cases(op_name, caps, dtypes_=("float64",), families_=("normal", "exact")), seed=seeds)
    @checks.shrinks_further
    def check(case, seed):
        record.case(case)
        out = checks.call_loss(impl, case)
        v = np.random.default_rng(seed).uniform(-1.0, 1.0, size=case.x.shape)

        def loss(z):
            return float(checks.call_loss(impl, with_inputs(case, z=z))["loss"])

        fd = (loss(case.x + EPS * v) - loss(case.x - EPS * v)) / (2 * EPS)
        analytic = float(np.sum(out["dz"] * v))
        k = op.reduction_lengths(case.shapes(), case.params)
        s = checks.loss_magnitudes(case)
        u = 2.0**-53
        n = case.x.shape[0] if op.name == "softmax_cross_entropy" else case.x.size
        bound = (
            tolerance.SAFETY * 4 * tolerance.weighted(tolerance.gamma(k["loss"], u), float(s["loss"])) / EPS
        )
        bound += tolerance.SAFETY * tolerance.weighted(
            tolerance.gamma(k["dz"] + v.size, u), float(np.sum(s["dz"] * np.abs(v)))
        )
        bound += EPS**2 / 6 * float(np.sum(np.abs(v) ** 3)) / n
        bound *= checks.override_factor(case)
        if abs(fd - analytic) > bound:
            checks.forward_at_fault(case, impl, caps, "finite differences for dz")
        checks.ensure(
            abs(fd - analytic) <= bound,
            f"finite differences disagree with {op.forward}'s dz: along a random direction v, "
            f"(L(z+eps v) - L(z-eps v)) / 2eps = {fd!r} but <dz, v> = {analytic!r} "
            f"(difference {abs(fd - analytic):.3g}, bound {bound:.3g}, eps={EPS}, seed={seed}); "
            f"dz is not the gradient of the returned loss [{case.describe()}]\n"
            + checks.reproduction(case, impl),
            case=case,
            impl=impl,
            output="dz",
        )

    check()


@pytest.mark.conformance("loss_stability")
def test_loss_stability(impl, caps, op_name, oracle_name, record):
    op = OPERATIONS[op_name]
    checks.require(impl, op.forward)
    checks.require_oracle(oracle_name, op_name, caps)

    @given(case=cases(op_name, caps, families_=("normal",)).flatmap(large_logits))
    @checks.shrinks_further
    def check(case):
        record.case(case)
        got = checks.call_loss(impl, case)  # NaN or inf fails here, with the index
        expected = checks.oracle_loss(oracle_name, case)
        for name in op.outputs:
            what = f"{op.forward} {name} on logits up to |z| = {LARGE_LOGIT:g} vs the {oracle_name} oracle"
            _compare(case, name, got[name], expected[name], caps, record, impl, what)

    check()


@pytest.mark.conformance("loss_batch_mean")
def test_loss_batch_mean(impl, caps, op_name, record):
    op = OPERATIONS[op_name]
    checks.require(impl, op.forward)

    @given(case=cases(op_name, caps))
    @checks.shrinks_further
    def check(case):
        record.case(case)
        out = checks.call_loss(impl, case)
        twice = with_inputs(
            case, **{k: np.concatenate([v, v]) for k, v in case.inputs.items() if v is not None}
        )
        doubled = checks.call_loss(impl, twice)
        halves = doubled["dz"].astype(np.float64) * 2.0
        s = checks.loss_magnitudes(case)
        for half, rows in (("first", halves[: len(case.x)]), ("second", halves[len(case.x) :])):
            comp = checks.within(case, "dz", rows, out["dz"], s["dz"], caps, factor=3.0)
            record.comparison(comp)
            if not comp.passed:
                checks.forward_at_fault(case, impl, caps, "the batch mean of dz")
            checks.assert_matches(
                case,
                f"{op.forward} dz on the batch repeated twice ({half} copy, times 2) vs dz on the batch: "
                "the gradient of a batch mean carries 1/N exactly once;",
                comp,
                rows,
                out["dz"],
                impl,
                (f"repeated ({half} copy) x 2", "batch"),
            )
        comp = checks.within(case, "loss", doubled["loss"], out["loss"], s["loss"], caps, factor=3.0)
        record.comparison(comp)
        if not comp.passed:
            checks.forward_at_fault(case, impl, caps, "the batch mean of the loss")
        checks.assert_matches(
            case,
            f"{op.forward} loss on the batch repeated twice vs on the batch (a mean must not change):",
            comp,
            doubled["loss"],
            out["loss"],
            impl,
            ("repeated", "batch"),
        )

    check()

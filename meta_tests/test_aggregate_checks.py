"""The aggregate bias and variance checks: no false alarm on correct code, systematic errors caught.

``spec/tolerance.py`` derives both limits from a false-alarm probability of
``FALSE_ALARM`` per check. These tests hold the limits to that: the case that
once failed correct code (a one-element ``linear`` gradient) and every output
too small to judge pass whenever each element is inside its bound; correct
implementations pass on large outputs; one ULP too high on every element, or a
relative bias far below the element-wise bound, fails.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convcheck import oracles
from convcheck.impls.registry import load
from convcheck.spec import FULL, conv, tolerance
from convcheck.spec.params import AvgPool2dParams, Conv2dParams, NoParams
from convcheck.tests import checks
from convcheck.tests.values import make_case

CORRECT = ("numpy_reference", "numpy_fast", "torch")


def test_the_one_element_linear_gradient_that_failed_correct_code_passes():
    """torch's linear dx on x (1, 1), w (5, 1), seed 507: every element passed, yet the variance
    test called it systematic. It is now too small to judge."""
    case = make_case("linear", NoParams(), {"x": (1, 1), "w": (5, 1), "b": (5,)}, "float64", "normal", 507)
    got = checks.call_backward(load("torch"), case)["dx"]
    expected = checks.oracle_backward("scipy", case, FULL)["dx"]
    s = checks.oracle_backward("scipy", case, FULL, absolute=True)["dx"]
    comp = checks.compare(case, "dx", got, expected, s, FULL)
    assert comp.max_abs > 0  # the case still has the rounding error that tripped the old limit
    assert comp.error_ratio <= 1 and comp.passed and not comp.aggregate_judged
    assert any("too few elements to judge" in note for note in comp.notes)


@settings(max_examples=300, deadline=None)
@given(
    t=st.integers(1, tolerance.AGGREGATE_MIN_ELEMENTS - 1),
    k=st.integers(1, 500),
    dtype=st.sampled_from(["float32", "float64"]),
    data=st.data(),
)
def test_outputs_too_small_to_judge_never_fail_when_every_element_passes(t, k, dtype, data):
    """Any errors, even all at their element-wise bound with one sign, pass below the minimum size."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    expected = rng.standard_normal(t)
    s = np.abs(expected) + rng.random(t) * k
    bound = tolerance.elementwise_bound(s, expected, k, dtype)
    fractions = data.draw(
        st.lists(st.sampled_from([-1.0, -0.5, 0.0, 0.5, 0.999, 1.0]), min_size=t, max_size=t)
    )
    got = expected + np.asarray(fractions) * bound * 0.999
    comp = tolerance.compare("y", got, expected, s, k, dtype)
    assume(comp.error_ratio <= 1)  # float64 rounding of ``got`` may carry an element past its bound
    assert comp.passed and not comp.aggregate_judged


def _conv_case(rng, x_shape, w_shape, dtype="float32"):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    p = Conv2dParams()
    expected = oracles.call("torch", "conv2d_forward", x, w, None, **p.kwargs())
    s = oracles.call("torch", "conv2d_forward", np.abs(x), np.abs(w), None, **p.kwargs())
    return x, w, p, expected, s, conv.reduction_lengths(x.shape, w.shape, p)["y"]


LARGE = [((8, 1, 64, 64), (4, 1, 3, 3)), ((4, 4, 32, 32), (4, 4, 3, 3)), ((2, 8, 32, 32), (8, 8, 3, 3))]


@pytest.mark.parametrize(("x_shape", "w_shape"), LARGE)
def test_one_ulp_high_on_every_element_of_a_large_output_is_caught(x_shape, w_shape):
    """A planted conv2d that returns the correct float32 result moved one ULP up: inside every
    element's bound, caught by the bias check. The correct implementations pass the same case,
    with their aggregate statistics far from the limits."""
    x, w, p, expected, s, k = _conv_case(np.random.default_rng(0), x_shape, w_shape)
    for name in CORRECT:
        got = load(name).functions["conv2d_forward"](x, w, None, **p.kwargs())
        comp = tolerance.compare("y", got, expected, s, k, "float32")
        assert comp.passed and comp.aggregate_judged, name
        assert comp.bias < 0.25 * comp.bias_limit and comp.variance < 0.25 * comp.variance_limit, name
        planted = np.nextafter(got, np.float32(np.inf))
        biased = tolerance.compare("y", planted, expected, s, k, "float32")
        assert biased.error_ratio <= 1, name  # every element still inside its bound
        assert biased.bias > biased.bias_limit and not biased.passed, name


def test_a_divisor_applied_as_a_rounded_reciprocal_is_not_a_systematic_error():
    """avg-pool as ``sum * float32(1/9)`` on positive data: the reciprocal's rounding is the same
    relative error on every element, one rounding of the result, which the policy allows."""
    rng = np.random.default_rng(1)
    x = (rng.random((8, 4, 48, 48)) + 0.5).astype(np.float32)  # positive: every error has one sign
    p = AvgPool2dParams(kernel_size=(3, 3), stride=(3, 3))
    expected = oracles.call("torch", "avg_pool2d_forward", x, **p.kwargs())
    s = oracles.call("torch", "avg_pool2d_forward", np.abs(x), **p.kwargs())
    windows = x.reshape(8, 4, 16, 3, 16, 3).sum(axis=(3, 5), dtype=np.float32)
    got = windows * np.float32(1.0 / 9.0)
    assert float(np.float32(1.0 / 9.0)) != 1.0 / 9.0  # the reciprocal really is rounded
    comp = tolerance.compare("y", got, expected, s, 9, "float32")
    assert comp.aggregate_judged and comp.passed


def test_a_relative_bias_far_below_the_elementwise_bound_is_caught():
    """A scale of ``1 + 8u`` on every element: each element is far inside its bound."""
    *_, expected, s, k = _conv_case(np.random.default_rng(2), (4, 4, 32, 32), (4, 4, 3, 3))
    got = (expected * (1 + 8 * 2.0**-24)).astype(np.float32)
    comp = tolerance.compare("y", got, expected, s, k, "float32")
    assert comp.error_ratio < 0.5 and not comp.aggregate_ok


def test_results_that_underflow_the_storage_dtype_are_not_a_bias():
    """``tanh'`` of large inputs in bfloat16: ``dy (1 - tanh(x)**2)`` is about 1e-170, and correct
    rounding sends every such result to 0, a one-signed error relative to the result on every
    element. The aggregate checks leave out nonzero results below the smallest normal, as they
    leave out elements whose scale underflows; the relative bias above is still caught."""
    impl = load("numpy_fast")
    case = make_case("tanh", NoParams(), {"x": (2, 2, 2, 4)}, "bfloat16", "large", seed=29)
    got = impl.functions["tanh_backward"](*case.backward_args(), **case.kwargs())
    expected = oracles.call("scipy", "tanh_backward", *case.backward_args())
    tiny = float(np.finfo(np.float32).tiny)  # bfloat16's smallest normal is float32's
    assert np.all(got[np.abs(expected) < tiny] == 0) and np.count_nonzero(np.abs(expected) < tiny) >= 31
    s = case.magnitude("dx")
    k = case.op.reduction_lengths(case.shapes(), case.params)["dx"]
    comp = tolerance.compare("dx", got, expected, s, k, "bfloat16", accumulate="float32")
    assert comp.passed, comp


def test_bias_limit_formula():
    """``|sum e| <= sum a + z (sqrt(sum e^2) + sqrt(sum a^2))`` with ``2 exp(-z^2/2) = FALSE_ALARM / 2``."""
    assert math.isclose(2 * math.exp(-(tolerance.BIAS_Z**2) / 2), tolerance.FALSE_ALARM / 2)
    e = np.array([3.0, -4.0])
    a = np.array([0.0, 0.0])
    assert math.isclose(tolerance.bias_limit(e, a), tolerance.BIAS_Z * 5.0)
    a = np.array([1.0, 1.0])
    assert math.isclose(tolerance.bias_limit(e, a), 2.0 + tolerance.BIAS_Z * (5.0 + math.sqrt(2.0)))


def test_sign_test_false_alarm_rate_by_simulation():
    """Symmetric noise of any magnitude profile: the measured rate of ``|sum e| > z sqrt(sum e^2)``
    at a looser ``z`` (rate 1e-2 by design) stays at or below the design rate."""
    rng = np.random.default_rng(3)
    z = math.sqrt(2 * math.log(2 / 1e-2))
    trials, t = 20000, 64
    magnitudes = rng.lognormal(0.0, 2.0, (trials, t))  # very uneven magnitudes
    e = magnitudes * rng.choice([-1.0, 1.0], (trials, t))
    rate = np.mean(np.abs(e.sum(axis=1)) > z * np.sqrt((e * e).sum(axis=1)))
    assert rate <= 1e-2


def test_an_all_zero_output_is_judged_without_dividing_by_zero():
    """Expected all zeros (a sigmoid gradient with ``dy = 0``): exact zeros pass, one sign fails."""
    zeros, s = np.zeros(400), np.ones(400)
    assert tolerance.compare("dx", zeros, zeros, s, 3, "float32").passed
    shifted = zeros + 4 * 2.0**-24  # inside each element's bound, the same sign everywhere
    comp = tolerance.compare("dx", shifted, zeros, s, 3, "float32")
    assert comp.error_ratio <= 1 and not comp.aggregate_ok


@pytest.mark.slow
def test_calibration_finds_no_false_alarm_on_fixed_seeds(tmp_path):
    """The cheap version of ``convcheck calibrate``: correct implementations under fixed seeds
    (507 among them), not derandomised, on the operations with aggregate verdicts. No failure,
    and the summary counts what was compared."""
    out = tmp_path / "calibration.json"
    cmd = [sys.executable, "-m", "convcheck", "calibrate", "--impl", "numpy_fast,torch", "--seeds", "1,507"]
    cmd += ["--max-examples", "8", "--ops", "conv2d,linear,avg_pool2d", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr
    assert "0 failure(s) of correct implementations over 2 seed(s)" in done.stdout
    summary = json.loads(out.read_text())
    for impl in ("numpy_fast", "torch"):
        assert summary[impl]["runs"] == 2 and summary[impl]["failed_checks"] == []
        for dtype in ("float32", "float64"):
            totals = summary[impl]["by_dtype"][dtype]
            assert totals["elements"] > 1000 and totals["aggregate_judged"] > 0

"""The tolerance policy (spec/tolerance.py) against fixed tolerances, and its overrides.

The policy bounds each output element by ``gamma_K`` times the same sum over
absolute values (``S``, the oracle run on ``|x|, |w|``). The demonstrations
here are the point of it: correct float32 implementations of *long*
reductions fail a fixed ``rtol=1e-5`` (cancellation makes some outputs tiny
while their rounding error is set by ``S``) yet pass the policy, while an
injected relative error of ``1e-4`` on a *short* reduction passes a fixed
``rtol=1e-3`` yet fails the policy. ``np.testing.assert_allclose`` semantics
(``atol=0``) stand for "a fixed rtol".
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.signal import fftconvolve

from convcheck import oracles
from convcheck.impls.registry import load
from convcheck.spec import UsageError, conv, tolerance
from convcheck.spec.params import Conv2dParams

CORRECT_FLOAT32 = ("numpy_reference", "numpy_fast", "torch")


def fixed_rtol_passes(got: np.ndarray, expected: np.ndarray, rtol: float) -> bool:
    """``assert_allclose(got, expected, rtol=rtol)`` (``atol=0``) would pass."""
    return bool(np.all(np.abs(np.asarray(got, np.float64) - expected) <= rtol * np.abs(expected)))


def conv_forward(impl_name: str, x: np.ndarray, w: np.ndarray, p: Conv2dParams):
    """``(got, expected, S, K)`` for ``y`` of a float32 conv2d without bias."""
    impl = load(impl_name)
    got = impl.functions["conv2d_forward"](x, w, None, **p.kwargs())
    expected = oracles.call("torch", "conv2d_forward", x, w, None, **p.kwargs())
    s = oracles.call("torch", "conv2d_forward", np.abs(x), np.abs(w), None, **p.kwargs())
    return got, expected, s, conv.reduction_lengths(x.shape, w.shape, p)["y"]


def conv_dw(impl_name: str, x: np.ndarray, w: np.ndarray, dy: np.ndarray, p: Conv2dParams):
    """``(got, expected, S, K)`` for ``dw`` of a float32 conv2d without bias."""
    impl = load(impl_name)
    got = impl.functions["conv2d_backward"](dy, x, w, None, **p.kwargs())[1]
    expected = oracles.call("torch", "conv2d_backward", dy, x, w, None, **p.kwargs())[1]
    s = oracles.call("torch", "conv2d_backward", np.abs(dy), np.abs(x), np.abs(w), None, **p.kwargs())[1]
    return got, expected, s, conv.reduction_lengths(x.shape, w.shape, p)["dw"]


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(2024)


@pytest.mark.parametrize("impl_name", CORRECT_FLOAT32)
def test_long_channel_reduction_passes_policy_but_not_fixed_rtol(impl_name, rng):
    """y with C_in*KH*KW = 256*3*3 (K = 2305): correct float32 fails rtol=1e-5, passes the policy."""
    x = rng.standard_normal((2, 256, 10, 10)).astype(np.float32)
    w = rng.standard_normal((8, 256, 3, 3)).astype(np.float32)
    got, expected, s, k = conv_forward(impl_name, x, w, Conv2dParams(padding=(1, 1, 1, 1)))
    assert k == 2305
    comp = tolerance.compare("y", got, expected, s, k, "float32")
    print(f"{impl_name} y K={k}: error ratio {comp.error_ratio:.3g}, max rel {comp.max_rel:.3g}")
    assert comp.passed and comp.error_ratio < 1
    assert not fixed_rtol_passes(got, expected, 1e-5)


@pytest.mark.parametrize("impl_name", CORRECT_FLOAT32)
def test_long_batch_reduction_of_dw_passes_policy_but_not_fixed_rtol(impl_name, rng):
    """dw with N*OH*OW = 16*32*32 (K = 16384): correct float32 fails rtol=1e-5, passes the policy."""
    x = rng.standard_normal((16, 4, 34, 34)).astype(np.float32)
    w = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((16, 4, 32, 32)).astype(np.float32)
    got, expected, s, k = conv_dw(impl_name, x, w, dy, Conv2dParams())
    assert k == 16 * 32 * 32
    comp = tolerance.compare("dw", got, expected, s, k, "float32")
    print(f"{impl_name} dw K={k}: error ratio {comp.error_ratio:.3g}, max rel {comp.max_rel:.3g}")
    assert comp.passed and comp.error_ratio < 1
    assert not fixed_rtol_passes(got, expected, 1e-5)


@pytest.mark.parametrize(("kernel", "c_in"), [((1, 1), 1), ((3, 3), 1)])
def test_injected_1e4_error_on_short_reduction_fails_policy_but_passes_fixed_rtol(kernel, c_in, rng):
    """A correct float32 y scaled by 1 + 1e-4 (K = 2 or 10): rtol=1e-3 passes it, the policy does not."""
    x = rng.standard_normal((2, c_in, 8, 8)).astype(np.float32)
    w = rng.standard_normal((3, c_in, *kernel)).astype(np.float32)
    got, expected, s, k = conv_forward("numpy_reference", x, w, Conv2dParams())
    wrong = (got.astype(np.float64) * (1 + 1e-4)).astype(np.float32)
    assert tolerance.compare("y", got, expected, s, k, "float32").passed  # the uninjected one passes
    comp = tolerance.compare("y", wrong, expected, s, k, "float32")
    print(f"K={k}: injected 1e-4 gives error ratio {comp.error_ratio:.3g}")
    assert not comp.passed and comp.error_ratio > 10
    assert fixed_rtol_passes(wrong, expected, 1e-3)


def test_fft_algorithm_is_judged_normwise(rng):
    """An FFT convolution spreads its rounding over the output: element-wise it fails where the
    values are tiny, norm-wise it passes; a declared ``fft`` algorithm gets the norm-wise bound."""
    x = rng.standard_normal((1, 1, 64, 64))
    x[..., :32] *= 1e-6  # tiny outputs on the left, large on the right
    x32, w32 = x.astype(np.float32), rng.standard_normal((1, 1, 5, 5)).astype(np.float32)
    p = Conv2dParams()
    got = fftconvolve(x32[0, 0], w32[0, 0, ::-1, ::-1], mode="valid")[None, None].astype(np.float32)
    expected = oracles.call("scipy", "conv2d_forward", x32, w32, None, **p.kwargs())
    s = oracles.call("scipy", "conv2d_forward", np.abs(x32), np.abs(w32), None, **p.kwargs())
    direct = tolerance.compare("y", got, expected, s, 26, "float32", algorithm="direct")
    fft = tolerance.compare("y", got, expected, s, 26, "float32", algorithm="fft")
    assert direct.mode == "elementwise" and not direct.passed
    assert fft.mode == "normwise" and fft.passed


def test_aggregate_checks_catch_a_systematic_error_below_the_elementwise_bound(rng):
    """A bias of 2e-6 * S on every element stays under each element's bound but fails TOSA's bias test."""
    x = rng.standard_normal((4, 8, 12, 12)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    got, expected, s, k = conv_forward("numpy_reference", x, w, Conv2dParams())
    assert tolerance.compare("y", got, expected, s, k, "float32").passed
    biased = (expected + 2e-6 * s).astype(np.float32)
    comp = tolerance.compare("y", biased, expected, s, k, "float32")
    assert comp.error_ratio < 1 and not comp.aggregate_ok and not comp.passed


def test_exact_mode_demands_bitwise_equality():
    e = np.array([1.0, 2.0, 3.0])
    assert tolerance.compare("y", e.astype(np.float32), e, e, 9, "float32", exact=True).passed
    off = np.nextafter(e.astype(np.float32), np.float32(10))
    comp = tolerance.compare("y", off, e, e, 9, "float32", exact=True)
    assert comp.error_ratio == np.inf and comp.max_ulp == 1 and not comp.passed


def test_mostly_zero_expected_output_is_mistrusted():
    e = np.zeros(100)
    e[:5] = 1.0
    comp = tolerance.compare("dx", e, e, np.abs(e), 4, "float64")
    assert comp.passed and comp.mistrusted
    assert not tolerance.compare("dx", np.ones(10), np.ones(10), np.ones(10), 4, "float64").mistrusted


def test_ulp_distance_counts_representable_floats():
    a = np.float32([1.0, -0.0, 0.0])
    b = np.float32([np.nextafter(np.nextafter(np.float32(1), np.float32(2)), np.float32(2)), 0.0, 0.0])
    assert list(tolerance.ulp_distance(a, b, "float32")) == [2, 0, 0]


# --------------------------------------------------------------------------- overrides


def test_factor_override_scales_the_bound_and_says_so():
    e = np.array([1.0, 2.0, 4.0])
    got = (e * (1 + 1e-6)).astype(np.float32)
    plain = tolerance.compare("y", got, e, e, 3, "float32")
    o = tolerance.parse_cli_override("conv2d:float32=4")
    loose = tolerance.compare("y", got, e, e, 3, "float32", override=o)
    assert loose.error_ratio == pytest.approx(plain.error_ratio / 4)
    assert loose.override == "conv2d:float32 x4 (cli)" and loose.mode == "elementwise"


def test_rtol_override_replaces_the_bound_exact_mode_included():
    e = np.array([1.0, 2.0, 4.0])
    got = (e * (1 + 1e-4)).astype(np.float32)
    o = tolerance.parse_cli_override("conv2d=rtol=1e-3,atol=0")
    comp = tolerance.compare("y", got, e, e, 3, "float32", exact=True, override=o)
    assert comp.mode == "override" and comp.passed and comp.error_ratio == pytest.approx(0.1, rel=1e-3)


def test_most_specific_override_wins():
    o = tolerance.ToleranceOverrides.from_cli(["*=2", "*:float32=3", "conv2d=4", "conv2d:float32=5"])
    assert o.lookup("conv2d", "float32").factor == 5
    assert o.lookup("conv2d", "float64").factor == 4
    assert o.lookup("avg_pool2d", "float32").factor == 3
    assert o.lookup("avg_pool2d", "float64").factor == 2
    assert tolerance.ToleranceOverrides().lookup("conv2d", "float32") is None


@pytest.mark.parametrize(
    ("item", "words"),
    [
        ("conv4d:float32=2", "unknown operation 'conv4d'"),
        ("conv2d:float8=2", "unknown dtype 'float8'"),
        ("conv2d:float32", "expected OP[:DTYPE]=FACTOR"),
        ("conv2d=fast", "'fast' is not a number"),
        ("conv2d=rtol=1e-3,ulp=2", "unknown setting 'ulp'"),
        ("conv2d=0", "must be positive"),
        ("conv2d=-1", "must be a finite number >= 0"),
    ],
)
def test_bad_cli_overrides_are_explained(item, words):
    with pytest.raises(UsageError) as err:
        tolerance.parse_cli_override(item)
    assert words in str(err.value)


def test_override_files_toml_and_json(tmp_path):
    toml = tmp_path / "tol.toml"
    toml.write_text('[conv2d.float32]\nfactor = 4\n\n["*".float64]\nrtol = 1e-9\natol = 1e-12\n')
    got = tolerance.ToleranceOverrides.from_file(toml)
    assert got.lookup("conv2d", "float32").describe() == "conv2d:float32 x4 (tol.toml)"
    assert got.lookup("max_pool2d", "float64").rtol == 1e-9
    js = tmp_path / "tol.json"
    js.write_text(json.dumps({"tolerance": {"avg_pool2d": {"*": {"factor": 2}}}}))
    assert tolerance.ToleranceOverrides.from_file(js).lookup("avg_pool2d", "float32").factor == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("[conv2d.float32]\nfactr = 4\n")
    with pytest.raises(UsageError, match="unknown key"):
        tolerance.ToleranceOverrides.from_file(bad)
    with pytest.raises(UsageError, match="does not exist"):
        tolerance.ToleranceOverrides.from_file(tmp_path / "missing.toml")


# --------------------------------------------------------------------------- element-wise functions and losses

ELEMENTWISE = [
    ("sigmoid", "y"),
    ("sigmoid", "dx"),
    ("tanh", "y"),
    ("tanh", "dx"),
    ("softmax_cross_entropy", "dz"),
    ("sigmoid_binary_cross_entropy", "dz"),
]


def _float32_result(case, output: str) -> np.ndarray:
    """A correct float32 implementation's ``output``: torch's own float32 kernels."""
    impl = load("torch")
    op = case.op
    if op.is_loss:
        return np.asarray(impl.functions[op.forward](*case.forward_args())[1])
    if output == "y":
        return np.asarray(impl.functions[op.forward](*case.forward_args()))
    return np.asarray(impl.functions[op.backward](*case.backward_args()))


@pytest.mark.parametrize(("operation", "output"), ELEMENTWISE)
def test_magnitude_bounds_pass_correct_float32_and_fail_a_small_relative_error(operation, output):
    """The spec's magnitudes (``S`` of element-wise functions and losses) are neither vacuous nor too
    tight: torch's float32 kernels pass on normal and saturating inputs, and a relative error of
    ``64 u`` on every element (a float32 implementation that loses six bits) fails."""
    from convcheck.spec.case import with_inputs
    from convcheck.spec.params import NoParams
    from convcheck.tests.values import make_case

    shapes = {
        "sigmoid_binary_cross_entropy": {"z": (6, 5), "y": (6, 5)},
        "softmax_cross_entropy": {"z": (6, 5), "labels": (6,)},
    }
    case = make_case(operation, NoParams(), shapes.get(operation, {"x": (6, 5)}), "float32", "normal", seed=3)
    first = case.op.inputs[0]
    wide = case.x.astype(np.float64) * np.linspace(0.5, 12.0, case.x.size).reshape(case.x.shape)
    case = with_inputs(case, **{first: wide.astype(np.float32)})  # into saturation, where 1 - s cancels
    expected = (
        oracles.call("scipy", case.op.forward, *case.forward_args())[1]
        if case.op.is_loss
        else oracles.call("scipy", case.op.forward if output == "y" else case.op.backward,
                          *(case.forward_args() if output == "y" else case.backward_args()))
    )  # fmt: skip
    s = case.magnitude(output)
    k = case.op.reduction_lengths(case.shapes(), case.params)[output]
    got = _float32_result(case, output)
    assert tolerance.compare(output, got, expected, s, k, "float32").passed
    off = (np.asarray(expected) * (1 + 64 * tolerance.unit_roundoff("float32"))).astype(np.float32)
    assert not tolerance.compare(output, off, expected, s, k, "float32").passed


def test_a_sum_too_long_for_its_dtype_still_bounds_nothing_summed():
    """``gamma_K`` is infinite once ``K u >= 1``: in bfloat16 (``u = 2**-8``) from ``K = 256``, which a
    max-pool's ``dx`` reaches with a dilated 3x3x3 window (``K = 7**3``). Where nothing is summed
    (``S = 0``: the ``zeros`` family) the bound must stay finite, not ``inf * 0 = NaN``: a NaN bound
    failed a correct ``max_pool3d`` adjoint identity on a difference of 0 (``0 <= nan`` is false)."""
    from convcheck.spec.params import MaxPool3dParams
    from convcheck.tests.values import make_case

    p = MaxPool3dParams(kernel_size=(3, 3, 3), stride=(1, 1, 1), dilation=(3, 3, 3))
    case = make_case("max_pool3d", p, {"x": (1, 1, 7, 7, 7)}, "bfloat16", "zeros")
    k = case.op.reduction_lengths(case.shapes(), case.params)["dx"]
    assert tolerance.gamma(k, tolerance.unit_roundoff("bfloat16")) == float("inf")
    nothing = tolerance.inner_product_bound(k, "bfloat16", 0.0, 0.0, 2 * case.x.size)
    assert nothing == tolerance.TINY["bfloat16"]
    assert tolerance.inner_product_bound(k, "bfloat16", 1.0, 1.0, 2 * case.x.size) == float("inf")
    s = np.array([0.0, 1.0])
    bound = tolerance.elementwise_bound(s, s, k, "bfloat16", accumulate="bfloat16")
    assert np.isfinite(bound[0]) and np.isinf(bound[1])
    comp = tolerance.compare("y", np.zeros(2), np.zeros(2), np.zeros(2), k, "bfloat16", accumulate="bfloat16")
    assert comp.passed and comp.error_ratio == 0

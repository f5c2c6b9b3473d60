"""The extreme and non-finite value families, the non-finite contract and the plants only they catch.

Fast, in-process: each plant is compared with the oracle on ordinary families (where it is right)
and diagnosed on one case of the family made to catch it; the contract is checked against PyTorch;
the tolerance policy's underflow floor and overflow rule are checked on hand-made arrays.
"""

import importlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from convcheck.diagnosis import diagnose, observe, reference
from convcheck.impls.registry import load
from convcheck.oracles import call
from convcheck.spec import OPERATIONS, dtypes, nonfinite, tolerance
from convcheck.spec.case import with_inputs
from convcheck.spec.params import AvgPool2dParams, Conv2dParams, MaxPool2dParams
from convcheck.tests.strategies import cases
from convcheck.tests.values import EDGE_FAMILIES, FAMILIES, NONFINITE_FAMILIES, make_case

FAST = settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))

PLANTS = {
    # plant: (operation, a case of the family that catches it, the output it gets wrong)
    "maxpool_finite_sentinel": (
        "max_pool2d",
        MaxPool2dParams(kernel_size=(2, 2), stride=(2, 2), padding=(1, 1, 1, 1)),
        {"x": (1, 2, 3, 3)},
        "below_sentinel",
        "y",
    ),
    "maxpool_nan_dropped": (
        "max_pool2d",
        MaxPool2dParams(kernel_size=(2, 2), stride=(1, 1)),
        {"x": (1, 1, 3, 3)},
        "nonfinite",
        "y",
    ),
    "conv_subnormals_flushed": (
        "conv2d",
        Conv2dParams(padding=(1, 1, 1, 1)),
        {"x": (1, 2, 4, 4), "w": (2, 2, 3, 3), "b": (2,)},
        "subnormal",
        "y",
    ),
    "avgpool_sum_overflows": (
        "avg_pool2d",
        AvgPool2dParams(kernel_size=(2, 2), stride=(1, 1)),
        {"x": (1, 1, 4, 4)},
        "huge",
        "y",
    ),
}


def _outputs(impl, case) -> dict[str, np.ndarray]:
    with np.errstate(all="ignore"):
        return {k: v for k, v in observe(impl, case).outputs.items() if v is not None}


@pytest.mark.parametrize("bug", list(PLANTS))
def test_plant_is_right_on_the_ordinary_families(bug):
    """Before the new families, nothing could catch the plant: on every ordinary family it agrees
    with the oracle under the tolerance policy, forward and backward."""
    op_name = PLANTS[bug][0]
    impl = load(f"buggy.{bug}")

    @FAST
    @given(case=cases(op_name, impl.capabilities, families_=FAMILIES))
    def check(case):
        ref = reference(case, {})
        for name, got in _outputs(impl, case).items():
            assert ref.agree(name, got, ref.expected[name], ref.abs_sum[name]), (bug, name, case)

    check()


PLANT_DTYPES = {"avgpool_sum_overflows": ("float16",)}
"""Where a plant is wrong: the overflowing average only where its float16 sum breaks the declared
float32 accumulation (in float32, adding before dividing is what PyTorch does, and correct)."""


@pytest.mark.parametrize(
    ("bug", "dtype"), [(b, d) for b in PLANTS for d in PLANT_DTYPES.get(b, ("float32", "float64"))]
)
def test_plant_is_caught_and_named_on_its_family(bug, dtype):
    op_name, params, shapes, family, output = PLANTS[bug]
    impl = load(f"buggy.{bug}")
    case = make_case(op_name, params, shapes, dtype, family, seed=1)
    ref = reference(case, {}, dtypes.accumulation_dtype(dtype, impl.capabilities.accumulate))
    got = _outputs(impl, case)[output]
    assert not ref.agree(output, got, ref.expected[output], ref.abs_sum[output]), f"{bug} right on {case}"
    expected = importlib.import_module(f"convcheck.impls.buggy.{bug}").DIAGNOSIS
    d = diagnose(impl, case, impl.capabilities, output)
    assert d.slug == expected, d.line()
    assert d.line().startswith(f"likely cause: {expected}: ")


def test_the_diagnosis_says_what_the_sentinel_and_nan_mistakes_are():
    from convcheck.oracles.mistakes import CATALOGUE

    by_slug = {m.slug: m.explanation for m in CATALOGUE}
    assert by_slug["maxpool_finite_padding_sentinel"].startswith("padding sentinel is finite")
    assert by_slug["maxpool_nan_not_propagated"].startswith("NaN not propagated")


# --------------------------------------------------------------------------- the contract


@pytest.mark.parametrize("operation", ["conv2d", "conv1d", "max_pool2d", "max_pool3d", "avg_pool2d"])
def test_the_contract_is_what_pytorch_does(operation):
    """Position by position, PyTorch (float64, the torch oracle) gives the classes the contract allows."""
    from convcheck.spec import FULL

    op = OPERATIONS[operation]

    @FAST
    @given(case=cases(operation, FULL, families_=NONFINITE_FAMILIES))
    def check(case):
        with np.errstate(all="ignore"):
            y = call("torch", op.forward, *case.forward_args(), **case.kwargs())
            grads = call("torch", op.backward, *case.backward_args(), **case.kwargs())
        got = {"y": y, **dict(zip(op.grads, grads if isinstance(grads, tuple) else (grads,), strict=True))}
        allowed = {**nonfinite.allowed_classes(case, True), **nonfinite.allowed_classes(case, False)}
        for name, classes in allowed.items():
            if got[name] is not None:
                assert not nonfinite.mismatches(got[name], classes), (name, case)

    check()


def test_max_pool_contract_cases_by_hand():
    """NaN wins over +inf; +inf over finite; -inf only when every real cell is -inf (padding never wins)."""
    nan, inf = np.nan, np.inf
    x = np.array([[[[nan, inf, 1.0, -inf, -inf, 2.0]]]])
    case = make_case(
        "max_pool2d",
        MaxPool2dParams(kernel_size=(1, 2), stride=(1, 2), padding=(0, 0, 1, 1)),
        {"x": x.shape},
        "float64",
    )
    case = type(case)(case.op_name, case.params, {"x": x}, case.dy, "float64")
    # windows (padding, nan) (inf, 1) (-inf, -inf) (2, padding)
    (classes,) = nonfinite.allowed_classes(case, True)["y"]
    assert [nonfinite.CLASS_NAMES[int(c)] for c in classes.ravel()] == ["nan", "+inf", "-inf", "finite"]


def test_families_are_defined_by_the_dtype():
    for dtype in ("float32", "float64"):
        fi = np.finfo(dtype)
        shapes = {"x": (2, 3, 6, 6)}
        p = MaxPool2dParams(kernel_size=(2, 2))
        x = make_case("max_pool2d", p, shapes, dtype, "below_sentinel", seed=2).x
        assert x.min() == -fi.max and x.max() <= -fi.max / 2
        x = make_case("max_pool2d", p, shapes, dtype, "subnormal", seed=2).x
        assert np.all((np.abs(x) < fi.tiny) & (x != 0))
        x = make_case("max_pool2d", p, shapes, dtype, "huge", seed=2).x
        assert np.all(np.isfinite(x)) and np.abs(x).max() > min(float(fi.max), 1e300) / 4
        x = make_case("max_pool2d", p, shapes, dtype, "signed_zeros", seed=2).x
        assert np.any((x == 0) & np.signbit(x)) and np.any((x == 0) & ~np.signbit(x))
        case = make_case("max_pool2d", p, shapes, dtype, "nonfinite", seed=2)
        assert np.isnan(case.x).any() and np.isposinf(case.x).any() and np.isneginf(case.x).any()
        assert np.isfinite(case.dy).all()
        case = make_case("max_pool2d", p, shapes, dtype, "nonfinite_dy", seed=2)
        assert np.isfinite(case.x).all() and not np.isfinite(case.dy).all()
    assert not set(EDGE_FAMILIES) & set(FAMILIES)


# --------------------------------------------------------------------------- shipped implementations


@pytest.mark.parametrize("name", ["numpy_reference", "numpy_fast", "torch"])
def test_shipped_average_pools_do_not_overflow_a_finite_mean(name):
    impl = load(name)
    case = make_case(
        "avg_pool2d", PLANTS["avgpool_sum_overflows"][1], {"x": (1, 1, 4, 4)}, "float32", "huge", seed=1
    )
    ref = reference(case, {})
    got = _outputs(impl, case)["y"]
    assert np.isfinite(got).all() and ref.agree("y", got, ref.expected["y"], ref.abs_sum["y"])


def _forward_property(impl, case):
    """The forward property's own steps on one case: the contract check, then the comparison."""
    from convcheck.tests import checks

    caps = impl.capabilities
    with np.errstate(all="ignore"):
        got = checks.call_forward(impl, case)
    expected = checks.oracle_forward("scipy", case, caps)
    comp = checks.compare(
        case, "y", got, expected, checks.oracle_forward("scipy", case, caps, absolute=True), caps
    )
    checks.assert_matches(case, "y", comp, got, expected, impl)
    return got, expected


def test_a_float32_average_that_overflows_as_declared_passes():
    """An average pool that adds a window before dividing, in float32 as it declares, overflows where
    a window's positive (or negative) cells pass float32's range: +inf, -inf or NaN by the order of
    its sum, even where the mean is 0. That is correct code, and it passes the forward property
    (the README's example failed here once); the same sum in float16 under a float32 declaration
    still fails."""
    impl = load("buggy.avgpool_sum_overflows")  # right in float32: it sums in the storage dtype
    a = float(np.finfo(np.float32).max) * 0.75
    x = np.array([[[[a, a, -a, -a, a]]]], dtype=np.float32)
    p = AvgPool2dParams(kernel_size=(1, 4), stride=(1, 1))
    case = with_inputs(make_case("avg_pool2d", p, {"x": x.shape}, "float32", "huge"), x=x)
    got, expected = _forward_property(impl, case)
    assert np.isposinf(got[0, 0, 0, 0]) and expected[0, 0, 0, 0] == 0  # a + a overflows first
    overflowed = 0
    for seed in range(40):
        case = make_case(
            "avg_pool2d",
            PLANTS["avgpool_sum_overflows"][1],
            {"x": (2, 3, 4, 5)},
            "float32",
            "huge",
            seed=seed,
        )
        got, _ = _forward_property(impl, case)
        overflowed += int((~np.isfinite(got)).sum())
    assert overflowed > 0
    half = make_case(
        "avg_pool2d", PLANTS["avgpool_sum_overflows"][1], {"x": (1, 1, 4, 4)}, "float16", "huge", seed=1
    )
    with pytest.raises(AssertionError, match="NaN or inf"):
        _forward_property(impl, half)


def test_overflow_accepts_only_the_infinities_an_order_of_the_sum_can_give():
    """Positive cells past the range give +inf in some order, negative ones -inf, both NaN."""
    top = float(np.finfo(np.float32).max)
    # K = 4 cells: positive ones add up to 4 (S + e)/2, negative ones to 4 (S - e)/2
    assert _sum_compare([np.nan], [0.0], [top / 2]).passed  # 2 top either way: NaN possible
    assert _sum_compare([-np.inf], [0.0], [top / 2]).passed
    assert not _sum_compare([np.nan], [top / 4], [top / 2]).passed  # negatives add up to top / 2 only
    assert not _sum_compare([-np.inf], [top / 4], [top / 2]).passed
    assert _sum_compare([np.inf], [top / 4], [top / 2]).passed  # positives to 1.5 top


@pytest.mark.parametrize("name", ["numpy_reference", "numpy_fast", "torch"])
def test_shipped_max_pools_route_an_infinite_dy_to_the_winner_only(name):
    impl = load(name)
    p = MaxPool2dParams(kernel_size=(1, 3), stride=(1, 1))
    case = make_case("max_pool2d", p, {"x": (1, 1, 1, 3)}, "float32", "nonfinite_dy", seed=0)
    case.dy[...] = np.inf
    case.inputs["x"][...] = np.array([[[[3.0, 2.0, 1.0]]]], dtype=np.float32)
    dx = _outputs(impl, case)["dx"]
    assert dx.ravel().tolist() == [np.inf, 0.0, 0.0]


# --------------------------------------------------------------------------- the tolerance policy


def _sum_compare(got, expected, abs_sum, k=4, dtype="float32"):
    return tolerance.compare(
        "y", np.asarray(got), np.asarray(expected), np.asarray(abs_sum), k, dtype, gradual_underflow=True
    )


def test_gradual_underflow_floor_tells_flushing_from_rounding():
    least = float(np.finfo(np.float32).smallest_subnormal)
    expected = np.array([37 * least, -5 * least])
    s = np.abs(expected)
    assert _sum_compare(
        expected + np.array([2 * least, -least]), expected, s
    ).passed  # K + 1 roundings of eta
    assert not _sum_compare(np.zeros(2), expected, s).passed  # flushed to zero
    # the floor of the transcendental functions stays the smallest normal number
    loose = tolerance.compare("y", np.zeros(2), expected, s, 4, "float32")
    assert loose.passed


def test_overflow_is_an_error_only_where_a_direct_evaluation_cannot_overflow():
    """Partial sums of ``K`` terms reach at most ``K S``: past the accumulation dtype's range an
    infinity of the right sign is accepted, below it (and a result within the storage range) not."""
    top = float(np.finfo(np.float32).max)
    assert not _sum_compare([np.inf], [top / 8], [top / 8]).passed  # K S = top / 2: inf is wrong
    assert _sum_compare([np.inf], [top / 2], [top / 2]).passed  # K S = 2 top: adding first overflows
    assert not _sum_compare([-np.inf], [top / 2], [top / 2]).passed  # but not with the wrong sign
    half_top = float(np.finfo(np.float16).max)
    mean = np.asarray([30000.0])
    in_half = tolerance.compare("y", np.asarray([np.inf]), mean, mean, 4, "float16", gradual_underflow=True)
    assert in_half.passed  # summed in float16 (declared): 4 * 30000 passes 65504
    declared_float32 = tolerance.compare(
        "y", np.asarray([np.inf]), mean, mean, 4, "float16", accumulate="float32", gradual_underflow=True
    )
    assert not declared_float32.passed  # a float32 sum holds 120000: inf breaks the declaration
    assert tolerance.compare(
        "y",
        np.asarray([np.inf]),
        np.asarray([2 * half_top]),
        np.asarray([2 * half_top]),
        1,
        "float16",
        accumulate="float32",
    ).passed  # the result itself is past float16's range


def test_matching_nan_and_infinities_are_equal():
    got = [np.nan, np.inf, -np.inf, 1.0]
    comp = _sum_compare(got, got, [1.0, 1.0, 1.0, 1.0])
    assert comp.passed and comp.error_ratio == 0
    assert not _sum_compare([np.inf], [-np.inf], [1.0]).passed


# --------------------------------------------------------------------------- shrinking keeps the dtype


def test_a_failure_seen_only_in_float32_is_shrunk_in_float32():
    """The convcheck pass after hypothesis's shrink walks the neighbours of a float32 case in float32:
    the overflowing average fails in float32 only, and its smallest case is still a float32 one."""
    from convcheck.spec import FULL
    from convcheck.tests import shrink

    plant = load("buggy.avgpool_sum_overflows").functions["avg_pool2d_forward"]
    params = AvgPool2dParams(kernel_size=(2, 3), stride=(2, 1), padding=(1, 1, 0, 1))

    def body(case):
        with np.errstate(over="ignore"):
            y = plant(*case.forward_args(), **case.kwargs())
        if not np.isfinite(y).all():
            raise AssertionError("avg_pool2d_forward overflowed")

    for dtype in ("float32", "float64"):
        case = make_case("avg_pool2d", params, {"x": (2, 3, 5, 6)}, dtype, "huge", seed=1)
        key = shrink.trial(body, case, {}).key
        if dtype == "float64":
            assert key is None  # right in float64: nothing to shrink
            continue
        assert key is not None
        smallest, tried = shrink.smallest_failing(body, case, {}, FULL, key)
        assert 0 < tried <= shrink.TRIALS
        assert smallest.dtype == "float32" and smallest.x.dtype == np.float32
        assert smallest.x.size < case.x.size and smallest.params.kernel_size != params.kernel_size
        assert shrink.trial(body, smallest, {}).key == key


def test_declared_semantics_are_followed_by_the_contract():
    """A finite declared max-pool padding competes (and a padded winner's gradient is dropped); a
    declared true convolution flips the kernel."""
    x = np.array([[[[-np.inf, -np.inf]]]])
    p = MaxPool2dParams(kernel_size=(1, 2), stride=(1, 2), padding=(0, 0, 1, 1))
    case = make_case("max_pool2d", p, {"x": x.shape}, "float64")
    case = type(case)(case.op_name, case.params, {"x": x}, np.ones((1, 1, 1, 2)), "float64")
    names = nonfinite.CLASS_NAMES
    ((minus_inf,),) = [nonfinite.allowed_classes(case, True)["y"]]
    assert [names[int(c)] for c in minus_inf.ravel()] == ["-inf", "-inf"]
    ((zero,),) = [nonfinite.allowed_classes(case, True, {"pad_value": 0.0})["y"]]
    assert [names[int(c)] for c in zero.ravel()] == ["finite", "finite"]
    w = np.array([[[[np.inf, 1.0]]]])
    conv = make_case("conv2d", Conv2dParams(), {"x": (1, 1, 1, 3), "w": (1, 1, 1, 2), "b": None}, "float64")
    conv = type(conv)(
        conv.op_name,
        conv.params,
        {"x": np.array([[[[0.0, 1.0, 1.0]]]]), "w": w, "b": None},
        conv.dy,
        "float64",
    )
    (cross, _), (flipped, _) = (
        nonfinite.allowed_classes(conv, True, {"convention": c})["y"]
        for c in ("cross-correlation", "convolution")
    )
    assert [names[int(c)] for c in cross.ravel()] == ["nan", "+inf"]  # inf * 0 at the first tap
    assert [names[int(c)] for c in flipped.ravel()] == ["+inf", "+inf"]

"""Diagnosis of coexisting mistakes: every consistent cause named and ranked, probes that separate.

Each test calls ``convcheck.diagnosis.diagnose`` directly on a case built here:

- a max-pool padding with zeros *and* returning float64 (``buggy.coexisting_maxpool_zero_padding_float64``)
  gets both named, the padding first (it explains the wrong values; the dtype is a behaviour);
- a max-pool backward padding with zeros (``buggy.coexisting_maxpool_backward_zero_padding``),
  probed with the routing check's one-hot ``dy`` on all-zero ``x``, reproduces
  ``maxpool_overlap_overwritten`` just as well on the case itself: the separating probes
  must drop that one, and keep it for the plant that does overwrite;
- two output-size mistakes that predict the same on every probe are reported as undecided;
- zero padding on top of an asymmetric padding read as symmetric, which neither explains
  alone, is named as the combination.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from convcheck import grouping
from convcheck.diagnosis import Observation, diagnose, fit, line_of, observe, reference
from convcheck.impls.registry import from_namespace, load
from convcheck.oracles import mistakes, numpy_pool, scipy_oracle
from convcheck.spec.case import with_inputs
from convcheck.spec.params import MaxPool2dParams
from convcheck.tests.values import make_case

PADDED = MaxPool2dParams((3, 3), (2, 2), (1, 1, 1, 1))


def _negative(case):
    """``case`` with every ``x`` value negative: a zero padding wins every window it reaches."""
    return with_inputs(case, x=(-np.abs(case.x) - 0.25).astype(case.x.dtype))


def _slugs(d):
    return [c.slug for c in d.causes]


def _wrong(impl, case, output):
    """Whether ``impl``'s ``output`` on ``case`` is outside the bound (the precondition of a diagnosis)."""
    ref = reference(case, {})
    got = observe(impl, case).outputs[output]
    return not ref.agree(output, np.asarray(got, dtype=np.float64), ref.expected[output], ref.abs_sum[output])


# --------------------------------------------------------------------------- a behaviour and a value mistake


@pytest.mark.parametrize("output", ["y", "dx", None])
def test_zero_padding_and_float64_are_both_named_padding_first(output):
    impl = load("buggy.coexisting_maxpool_zero_padding_float64")
    case = _negative(make_case("max_pool2d", PADDED, {"x": (2, 2, 6, 6)}, "float32", "normal", seed=4))
    assert _wrong(impl, case, "y") and _wrong(impl, case, "dx")
    d = diagnose(impl, case, impl.capabilities, output)
    assert d.slug == "maxpool_zero_padding", d.line()
    assert _slugs(d) == ["maxpool_zero_padding", "float32_promoted_to_float64"], d.line()
    padding, promotion = d.causes
    assert dict(padding.explains) == {"y": 1.0, "dx": 1.0}
    assert promotion.kind == "behaviour" and promotion.share() == 0.0
    assert d.alternatives == ("float32_promoted_to_float64",)
    line = d.line()
    assert line.startswith("likely cause: maxpool_zero_padding: ")
    assert (
        "(explains 100% of y, 100% of dx); also consistent: float32_promoted_to_float64 (observed: " in line
    )
    recorded = d.to_dict()
    assert [c["slug"] for c in recorded["causes"]] == _slugs(d)
    assert recorded["causes"][0]["explains"] == {"y": 1.0, "dx": 1.0}
    assert line_of(recorded) == line


def test_the_promotion_alone_is_named_where_the_padding_cannot_show():
    impl = load("buggy.coexisting_maxpool_zero_padding_float64")
    case = make_case("max_pool2d", MaxPool2dParams((2, 2), (2, 2)), {"x": (1, 1, 4, 4)}, "float32", seed=1)
    d = diagnose(impl, case, impl.capabilities, "y")
    assert _slugs(d) == ["float32_promoted_to_float64"], d.line()


def test_in_float64_only_the_padding_is_named():
    impl = load("buggy.coexisting_maxpool_zero_padding_float64")
    case = _negative(make_case("max_pool2d", PADDED, {"x": (2, 2, 6, 6)}, "float64", "normal", seed=4))
    d = diagnose(impl, case, impl.capabilities, "y")
    assert _slugs(d) == ["maxpool_zero_padding"], d.line()


# --------------------------------------------------------------------------- separating probes


def _routing_probe():
    """The routing check's shrunk case: all-zero ``x`` (the zero padding ties the real zeros and
    comes first in window order), overlapping windows, a one-hot ``dy`` on the top-left window."""
    case = make_case(
        "max_pool2d", MaxPool2dParams((2, 2), (1, 1), (1, 1, 1, 1)), {"x": (1, 1, 3, 3)}, "float32", "zeros"
    )
    dy = np.zeros_like(case.dy)
    dy[0, 0, 0, 0] = 1
    return with_inputs(case, dy=dy)


def _fits_on_the_case(impl, case, slugs, output="dx"):
    """How each named catalogue mistake accounts for ``impl``'s wrong ``output`` on ``case`` alone (no probe)."""
    obs: Observation = observe(impl, case)
    ref = reference(case, {})
    catalogue = {m.slug: m for m in mistakes.CATALOGUE}
    return {slug: fit(catalogue[slug], obs, ref, {}, output, {output}) for slug in slugs}


PADDING_OR_OVERWRITE = ("maxpool_zero_padding", "maxpool_overlap_overwritten")


@pytest.mark.parametrize(
    ("plant", "named", "dropped"),
    [
        ("coexisting_maxpool_backward_zero_padding", *PADDING_OR_OVERWRITE),
        ("maxpool_overlap_overwritten", *reversed(PADDING_OR_OVERWRITE)),
    ],
)
def test_a_probe_separates_what_the_one_hot_dy_cannot(plant, named, dropped):
    impl = load(f"buggy.{plant}")
    case = _routing_probe()
    assert _wrong(impl, case, "dx")
    fits = _fits_on_the_case(impl, case, PADDING_OR_OVERWRITE)
    assert all(f is not None and f.complete() for f in fits.values()), "the case alone must not separate them"
    assert fits[named].key() == fits[dropped].key()
    d = diagnose(impl, case, impl.capabilities, "dx")
    assert d.slug == named, d.line()
    assert dropped not in _slugs(d), d.line()
    assert d.probes >= 1 and d.undecided == ()
    assert "cannot tell apart" not in d.line()


def _ceil_max_pool(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    """The output size always rounded up."""
    y = numpy_pool.max_pool2d_forward(
        x, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=True
    )
    return y.astype(x.dtype)


def _student(name: str, **functions):
    """An implementation of max pooling: the functions given, the rest the scipy oracle's (in the input dtype)."""

    def in_input_dtype(fn):
        return lambda *arrays, **kw: fn(*arrays, **kw).astype(arrays[-1].dtype)

    ns = {f: in_input_dtype(getattr(scipy_oracle, f)) for f in ("max_pool2d_forward", "max_pool2d_backward")}
    ns.update(functions)
    return from_namespace(SimpleNamespace(**ns), name, name)


def test_candidates_no_probe_separates_are_reported_as_undecided():
    """On a 6-wide input with a 3-wide window and stride 2, ceil((6 - 3) / 2) = round(1.5) = 2: rounding
    up and rounding to nearest give the same windows on every probe (the ceil_mode sibling hides both)."""
    impl = _student("ceil_always", max_pool2d_forward=_ceil_max_pool)
    case = make_case("max_pool2d", MaxPool2dParams((3, 3), (2, 2)), {"x": (1, 1, 6, 6)}, "float32", seed=3)
    d = diagnose(impl, case, impl.capabilities, "y")
    undecided = ("output_size_ceil_not_floor", "output_size_rounded_not_floored")
    assert d.undecided == undecided, d.line()
    assert d.slug == undecided[0] and d.probes >= 3
    assert (
        "; cannot tell apart output_size_ceil_not_floor and output_size_rounded_not_floored on this evidence"
        in d.line()
    )
    assert d.to_dict()["undecided"] == list(undecided)


# --------------------------------------------------------------------------- two mistakes composed


def _zero_padded_symmetric_forward(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    """Padding with zeros, and the larger side of each axis's padding used on both sides."""
    t, b, l, r = padding
    symmetric = (max(t, b), max(t, b), max(l, r), max(l, r))
    y = scipy_oracle.max_pool2d_forward(
        x,
        kernel_size=kernel_size,
        stride=stride,
        padding=symmetric,
        dilation=dilation,
        ceil_mode=ceil_mode,
        pad_value=0.0,
    )
    return y.astype(x.dtype)


def test_two_composed_mistakes_are_named_where_neither_explains_alone():
    impl = _student("zero_padded_symmetric", max_pool2d_forward=_zero_padded_symmetric_forward)
    params = MaxPool2dParams((3, 3), (2, 2), (0, 1, 0, 1))
    case = _negative(make_case("max_pool2d", params, {"x": (1, 2, 6, 6)}, "float32", "normal", seed=2))
    singles = _fits_on_the_case(
        impl, case, ("maxpool_zero_padding", "asymmetric_padding_treated_as_symmetric"), "y"
    )
    assert all(f is None for f in singles.values()), "each mistake alone must not reproduce y"
    d = diagnose(impl, case, impl.capabilities, "y")
    both = "maxpool_zero_padding+asymmetric_padding_treated_as_symmetric"
    assert d.slug == both, d.line()
    top = d.causes[0]
    assert top.kind == "combination" and dict(top.explains) == {"y": 1.0}
    alone = dict(top.parts)
    assert set(alone) == {"maxpool_zero_padding", "asymmetric_padding_treated_as_symmetric"}
    assert all(0.0 <= share < 1.0 for share in alone.values()), alone  # neither alone explains y whole
    assert "(together explain 100% of y, which neither does alone; alone: maxpool_zero_padding " in d.line()


# --------------------------------------------------------------------------- rendering


def test_a_diagnosis_recorded_before_the_ranking_renders_as_it_did():
    old = {"slug": "dx_kernel_not_flipped", "explanation": "because", "alternatives": ["x_y"], "tested": 3}
    assert line_of(old) == "likely cause: dx_kernel_not_flipped: because (also consistent with: x_y)"


def test_grouping_shows_the_ranked_causes():
    impl = load("buggy.coexisting_maxpool_zero_padding_float64")
    case = _negative(make_case("max_pool2d", PADDED, {"x": (2, 2, 6, 6)}, "float32", "normal", seed=4))
    d = diagnose(impl, case, impl.capabilities, "y")
    record = {
        "op": "max_pool2d",
        "property": "forward",
        "status": "failed",
        "failure": {"diagnosis": d.to_dict()},
    }
    key, title, cause = grouping.root_cause(record)
    assert key == ("cause", "maxpool_zero_padding") and title == "maxpool_zero_padding"
    assert cause == d.line()


def test_the_markdown_report_shows_the_ranked_causes():
    from convcheck.report.markdown import failure_lines

    impl = load("buggy.coexisting_maxpool_zero_padding_float64")
    case = _negative(make_case("max_pool2d", PADDED, {"x": (2, 2, 6, 6)}, "float32", "normal", seed=4))
    d = diagnose(impl, case, impl.capabilities, "y")
    record = {
        "op": "max_pool2d",
        "property": "forward",
        "check": "c",
        "status": "failed",
        "diagnosis": d.to_dict(),
    }
    cause = next(line for line in failure_lines(record) if "likely cause" in line)
    assert cause.startswith("- **likely cause: `maxpool_zero_padding`**: ")
    assert cause.endswith(
        "; also consistent: float32_promoted_to_float64 (observed: y, dx came back float64 for float32 inputs)"
    )

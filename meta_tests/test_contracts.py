"""``spec/contracts.py``: the two contracts, and the classification of failures at kinks into
defects, conventions (valid subgradients) and kink defects."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.spec import FULL, CapabilityError, contracts, parse_capabilities

X = np.array([[-1.0, 0.0, 2.0, -0.0, 0.0]])
DY = np.array([[3.0, 4.0, 5.0, 6.0, 0.0]])


def _relu_dx(slope_at_zero: float) -> np.ndarray:
    return np.where(X > 0, DY, 0.0) + np.where(X == 0, slope_at_zero * DY, 0.0)


@pytest.mark.parametrize("slope", [1.0, 0.5])
def test_a_slope_at_zero_in_the_unit_interval_is_a_convention(slope):
    verdict = contracts.relu_verdict(X, DY, _relu_dx(slope), 0, 1e-12)
    assert verdict is not None and verdict.kind == contracts.CONVENTION
    assert verdict.declaration == {"relu": {"derivative_at_zero": 1 if slope == 1 else slope}}
    assert parse_capabilities(verdict.declaration).value("relu", "derivative_at_zero") == slope


def test_a_slope_outside_the_unit_interval_is_a_kink_defect():
    verdict = contracts.relu_verdict(X, DY, _relu_dx(2.0), 0, 1e-12)
    assert verdict is not None and verdict.kind == contracts.KINK_DEFECT


def test_a_gradient_where_dy_is_zero_is_a_kink_defect():
    dx = _relu_dx(0.0)
    dx[0, 4] = 1.0  # x == 0 and dy == 0, yet dx != 0
    assert contracts.relu_verdict(X, DY, dx, 0, 1e-12).kind == contracts.KINK_DEFECT


@pytest.mark.parametrize(("declared", "slope"), [(1, 1.0), ([0, 1], 0.25), ([0.5, 1], 1.0), (0, 0.0)])
def test_a_declared_slope_is_the_contract(declared, slope):
    assert contracts.relu_verdict(X, DY, _relu_dx(slope), declared, 1e-12) is None


@pytest.mark.parametrize("bad", [2, -0.5, [1, 0], [0, 2], "any", True, [0, 0.5, 1]])
def test_derivative_at_zero_takes_a_number_or_a_range_in_the_unit_interval(bad):
    with pytest.raises(CapabilityError, match="derivative_at_zero"):
        parse_capabilities({"relu": {"derivative_at_zero": bad}})


CELLS = [(0, 0), (0, 1), (1, 1)]


@pytest.mark.parametrize(
    ("got", "rule"),
    [
        ({(0, 0): 1.0}, "first"),
        ({(1, 1): 1.0}, "last"),
        ({c: 1 / 3 for c in CELLS}, "split"),
        ({(0, 0): 0.25, (0, 1): 0.75}, "any"),
        (dict.fromkeys(CELLS, 1.0), "all"),
        ({(0, 0): 0.5}, None),  # half the gradient lost
        ({(0, 0): 1.0, (2, 2): 1.0}, None),  # a cell that is no maximum
        ({(0, 0): 1.5, (0, 1): -0.5}, None),  # sums to 1, but not a convex combination
    ],
)
def test_window_rule_names_what_a_window_does_with_its_gradient(got, rule):
    assert contracts.window_rule(got, CELLS, 1e-9) == rule


@pytest.mark.parametrize("declared", ["first", "last", "split", "any", "all"])
def test_a_single_maximum_follows_every_rule(declared):
    assert contracts.window_rule({(1, 0): 1.0}, [(1, 0)], 1e-9, declared) == declared
    assert contracts.tie_rule_verdict("max_pool2d", declared, declared) is None


@pytest.mark.parametrize(
    ("rule", "declared", "kind"),
    [
        ("first", "first", None),
        ("last", "first", contracts.CONVENTION),
        ("split", "last", contracts.CONVENTION),
        ("any", "first", contracts.CONVENTION),
        ("split", "any", None),
        ("any", "any", None),
        ("all", "first", contracts.KINK_DEFECT),
        ("all", "any", contracts.KINK_DEFECT),
        ("all", "all", None),
    ],
)
def test_tie_rules_against_the_declared_one(rule, declared, kind):
    verdict = contracts.tie_rule_verdict("max_pool2d", rule, declared)
    assert (verdict and verdict.kind) == kind


def test_verdict_lines_say_how_to_declare_under_library_and_note_under_course():
    verdict = contracts.tie_rule_verdict("max_pool2d", "last", "first")
    assert 'declare it: CONVCHECK_CAPABILITIES = {"max_pool2d": {"ties": "last"}}' in verdict.line("library")
    assert "--contract course" in verdict.line("library")
    assert "a note under the course contract" in verdict.line("course")
    every = contracts.tie_rule_verdict("max_pool2d", "all", "first")
    assert "a warning under the course contract" in every.line("course")


def test_the_course_contract_adds_the_exact_geometry_to_code_that_names_it():
    course = contracts.under(parse_capabilities({"contract": "course"}), contracts.COURSE)
    assert course.value("conv2d", "geometry") == "exact"
    assert course.value("max_pool3d", "geometry") == "exact"
    assert ("avg_pool1d", "geometry", "exact") in course.unsupported()
    library = contracts.under(parse_capabilities({"contract": "course"}), contracts.LIBRARY)
    # the run's contract, not the declared default, and no course geometry
    assert library.unsupported() == [] and library.contract == "library"
    # a contract module graded under the course contract keeps every geometry
    graded = contracts.under(FULL, contracts.COURSE)
    assert graded.contract == "course" and graded.value("conv2d", "geometry") == "any"
    assert graded.unsupported() == []


def test_the_contract_resolves_option_then_declaration_then_default():
    declared = parse_capabilities({"contract": "course"})
    assert contracts.resolve(None, declared) == "course"
    assert contracts.resolve("library", declared) == "library"
    assert contracts.resolve(None, FULL) == "library"
    assert contracts.resolve(None, FULL, default="course") == "course"
    with pytest.raises(CapabilityError, match="contract"):
        parse_capabilities({"contract": "lenient"})


def test_oracles_are_asked_for_the_contracts_own_answer_at_kinks():
    assert contracts.oracle_semantics({"derivative_at_zero": 1}) == {}
    assert contracts.oracle_semantics({"ties": "any"}) == {"ties": "first"}
    assert contracts.oracle_semantics({"ties": "all"}) == {"ties": "all"}


def test_the_declared_contract_survives_the_trip_to_the_isolated_worker_and_back():
    """The worker sends ``Capabilities.to_dict()``; the contract a declaration names must come back."""
    declared = parse_capabilities({"contract": "course", "relu": {"derivative_at_zero": [0, 1]}})
    again = parse_capabilities(declared.to_dict())
    assert again.contract == "course" and again.value("relu", "derivative_at_zero") == [0, 1]

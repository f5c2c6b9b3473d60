"""Budgets that find new cases: asymmetric strides and one-cell outputs are common, and the
coverage names the pairs of feature values a run never drew (``convcheck.pairs``)."""

from __future__ import annotations

from hypothesis import given, settings

from convcheck import pairs
from convcheck.recording import Recorder
from convcheck.spec import FULL, parse_capabilities
from convcheck.spec.params import Conv2dParams
from convcheck.summary import coverage_lines
from convcheck.tests.strategies import cases
from convcheck.tests.values import make_case


def _drawn(op_name: str, n: int = 400) -> list[dict[str, str]]:
    """The feature values of ``n`` drawn cases."""
    seen: list[dict[str, str]] = []

    @settings(max_examples=n, database=None, deadline=None)
    @given(case=cases(op_name, FULL))
    def draw(case):
        seen.append(pairs.values_of(case))

    draw()
    return seen


def test_one_unit_axis_strides_and_one_cell_outputs_are_common():
    """Per-axis draws: a stride like (1, 2) in at least 15% of the 2-D cases (about 21-24%; 12-14%
    before one-unit-axis strides were drawn on purpose), an output of one cell on some
    axis in a third, and both together in some."""
    for op_name in ("conv2d", "max_pool2d"):
        seen = _drawn(op_name)
        mixed = sum(v["stride"] == pairs.MIXED for v in seen) / len(seen)
        single = sum(v["output"] == pairs.ONE for v in seen) / len(seen)
        both = sum(v["stride"] == pairs.MIXED and v["output"] == pairs.ONE for v in seen)
        assert mixed >= 0.15 and single >= 1 / 3 and both > 0, (op_name, mixed, single, both)


def _conv(n: int, c: int, stride: tuple[int, int], width: int):
    params = Conv2dParams(stride=stride, padding=(0, 0, 0, 0), dilation=(1, 1), groups=1)
    return make_case("conv2d", params, {"x": (n, c, 3, width), "w": (1, c, 1, 1), "b": None}, "float64")


def test_the_summary_names_the_pairs_never_drawn():
    """Two cases reach 12 of the 30 pairs; the summary line counts them and lists the rest,
    among them the hole ``N=>=2 & stride=(1, >=2)``."""
    rec = Recorder(FULL)
    rec.case(_conv(1, 1, (1, 1), 3))  # N=1, C=1, stride 1, output 3x3
    rec.case(_conv(2, 2, (2, 2), 1))  # N>=2, C>=2, stride >=2, output width 1
    cov = rec.to_dict()["values"]
    reached = set(cov["pairs"])
    assert "N=1 & stride=1" in reached and "N=>=2 & output=1" in reached and len(reached) == 12
    assert len(cov["pairs_possible"]) == 30
    line = next(ln for ln in coverage_lines([{"impl": "x", "op": "conv2d", "values": cov}]) if "pairs" in ln)
    assert "12/30 reached" in line and "N=>=2 & stride=(1, >=2)" in line and "N=1 & stride=1;" not in line


def test_a_declaration_narrows_the_possible_pairs():
    """Uniform strides make the one-unit-axis pairs impossible; batch independence's ``N >= 2``
    makes every ``N=1`` pair impossible: neither is reported as a hole."""
    uniform = parse_capabilities({"conv2d": {"stride": "uniform"}})
    assert not any(pairs.MIXED in p for p in pairs.possible("conv2d", uniform))
    assert not any("N=1" in p for p in pairs.possible("conv2d", FULL, {"N": pairs.MANY}))
    assert not any(pairs.MIXED in p for p in pairs.possible("conv1d", FULL))

"""Reported counterexamples are minimal: planted defects with a known smallest trigger are reported on
exactly that case, and the pass after hypothesis's shrink (``tests/shrink.py`` over the neighbours of
``tests/neighbours.py``) keeps to valid, declared cases and records nothing while it tries them.

The planted implementations (``impls/buggy/minimal_*``) run through ``convcheck run --report`` under
the derandomised ``ci`` profile, as a user would; their minimal cases follow from the spec's validity
rules (``spec/conv.py``): a kernel must fit the padded input, so a kernel two wide needs an input two
wide (or padding), and the smallest value of every other number is 1 (padding 0).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcheck import recording
from convcheck.impls.registry import load
from convcheck.sandbox import Limits
from convcheck.sandbox.client import Sandbox, SandboxFailure, breakers_kept
from convcheck.spec import FULL, OPERATIONS, InvalidConfiguration, parse_capabilities
from convcheck.spec.ops import geometry_of
from convcheck.spec.params import Conv2dParams, MaxPool2dParams
from convcheck.tests import checks, neighbours, shrink
from convcheck.tests.strategies import cases
from convcheck.tests.values import make_case

PLAIN = {"stride": [1, 1], "padding": [0, 0, 0, 0], "dilation": [1, 1], "groups": 1}
MINIMAL = {
    # recurses without end once the kernel is two wide
    "minimal_conv_wide_kernel_recursion": ({"x": [1, 1, 1, 2], "w": [1, 1, 1, 2]}, PLAIN),
    # a width stride of 2 that does not divide the span (1 here): the width rounded up
    "minimal_conv_width_stride_ceil": ({"x": [1, 1, 1, 2], "w": [1, 1, 1, 1]}, {**PLAIN, "stride": [1, 2]}),
    # right padding 1 on the smallest input
    "minimal_conv_right_padding_dropped": (
        {"x": [1, 1, 1, 1], "w": [1, 1, 1, 1]},
        {**PLAIN, "padding": [0, 0, 0, 1]},
    ),
    # dy paired with consecutive cells: two outputs on an axis with stride 2 (3 cells, a 1x1 kernel)
    "conv_backward_ignores_stride": ({"x": [1, 1, 1, 3], "w": [1, 1, 1, 1]}, {**PLAIN, "stride": [1, 2]}),
}
CHECKS = {"conv_backward_ignores_stride": "test_backward or test_adjoint"}
"""The checks run on a plant (``-k``): its forward's by default."""


def _report(bug: str, folder: Path) -> list[dict[str, Any]]:
    """The failed records of ``convcheck run`` on the plant (``CHECKS``), reported on a shrunk case."""
    env = {**os.environ, "CONVCHECK_PROFILE": "ci"}
    cmd = [sys.executable, "-m", "convcheck", "run", "--impl", f"buggy.{bug}", "--profile", "ci"]
    cmd += ["--ops", "conv2d", "-k", CHECKS.get(bug, "test_forward"), "--report", str(folder)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 1, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
    doc = json.loads((folder / "report.json").read_text())
    failed = [
        r
        for r in doc["records"]
        if r["status"] == "failed"
        and r["counterexample"]
        and r["counterexample"]["shrunk"]
        and r["property"] != "sweep"  # the sweep reports its enumeration's first failing case
    ]
    assert failed, f"{bug}: no shrunk counterexample in {folder}/report.json"
    return failed


@pytest.mark.slow
@pytest.mark.parametrize("bug", list(MINIMAL))
def test_planted_defect_is_reported_on_its_minimal_case(bug, tmp_path):
    shapes, params = MINIMAL[bug]
    for record in _report(bug, tmp_path):
        found = record["counterexample"]
        assert {k: found["shapes"][k] for k in shapes} == shapes, (record["check"], found["description"])
        assert found["params"] == params, (record["check"], found["description"])
        x = tuple(shapes["x"])
        named = (f"'x': {x}", f"x {x}", f"x={x}")  # the reproduction, the raising call, the case
        assert any(n in record["message"] for n in named), "the message is not about the reported case"


# --------------------------------------------------------------------------- the neighbours


def _conv_case(x: tuple[int, ...], w: tuple[int, ...], family: str = "distinct", **params: Any):
    return make_case("conv2d", Conv2dParams(**params), {"x": x, "w": w, "b": (w[0],)}, "float64", family, 3)


def _differences(a: neighbours.Geometry, b: neighbours.Geometry) -> list[str]:
    return [f for f in a.__dataclass_fields__ if getattr(a, f) != getattr(b, f)]


WINDOW_OPS = [name for name, op in OPERATIONS.items() if op.family in neighbours.WINDOW_FAMILIES]


@pytest.mark.parametrize("operation", WINDOW_OPS)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_every_neighbour_is_valid_smaller_and_keeps_the_values(operation, data):
    case = data.draw(cases(operation, FULL))
    g = neighbours.geometry(case)
    assert g is not None
    for n in neighbours.neighbours(case, FULL):
        n.op.check(n.shapes(), n.params)
        h = neighbours.geometry(n)
        assert h is not None
        changed = _differences(g, h)
        traded = changed == ["spatial", "padding"] and sum(h.padding) == sum(g.padding) - 1
        channels = set(changed) <= {"c_in", "c_out"}  # a pooling layer's C is its K
        assert len(changed) == 1 or traded or channels, changed
        assert all(getattr(h, f) <= getattr(g, f) for f in changed if f != "spatial" or not traded)
        kept = tuple(slice(0, min(p, q)) for p, q in zip(case.x.shape, n.x.shape, strict=True))
        leading = tuple(slice(0, min(p, q)) for p, q in zip(case.x.shape, n.x.shape, strict=True))
        trailing = tuple(slice(p - min(p, q), p) for p, q in zip(case.x.shape, n.x.shape, strict=True))
        assert any(np.array_equal(n.x[kept], case.x[cut]) for cut in (leading, trailing))
        assert n.dy is not None and n.dy.shape == n.output_shape()


def test_a_wide_kernel_on_a_wide_input_reaches_its_smallest_trigger():
    """The shrink that stops short: a 5x5 input and a 1x5 kernel, where 2x2 and 1x2 fail the same way."""
    case = _conv_case((2, 2, 5, 5), (2, 2, 1, 5), stride=(2, 1), padding=(1, 1, 0, 0), dilation=(1, 1))

    def body(case):
        if case.array("w").shape[-1] >= 2:
            raise RecursionError("maximum recursion depth exceeded")

    key = shrink.trial(body, case, {}).key
    smallest, tried = shrink.smallest_failing(body, case, {}, FULL, key)
    assert smallest.shapes() == {"x": (1, 1, 1, 2), "w": (1, 1, 1, 2), "b": (1,)}
    assert smallest.params == Conv2dParams(stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1)
    assert 0 < tried <= shrink.TRIALS


def test_a_neighbour_fails_the_same_way_or_is_not_taken():
    case = _conv_case((1, 1, 3, 3), (1, 1, 2, 2))

    def body(case):  # a shape error below 3 rows, another failure (a value error) otherwise
        if case.x.shape[2] < 3:
            raise ValueError("another failure")
        raise AssertionError("the failure")

    key = shrink.trial(body, case, {}).key
    smallest, _ = shrink.smallest_failing(body, case, {}, FULL, key)
    assert smallest.shapes() == {"x": (1, 1, 3, 1), "w": (1, 1, 1, 1), "b": (1,)}


def test_grown_arrays_keep_the_case_values_and_fill_the_rest():
    case = _conv_case((1, 1, 4, 4), (1, 1, 2, 2), family="normal", stride=(2, 2))
    unit = next(n for n in neighbours.neighbours(case, FULL) if n.params.stride == (1, 2))
    assert unit.dy is not None and case.dy is not None
    assert unit.dy.shape == (1, 1, 3, 2)
    np.testing.assert_array_equal(unit.dy[:, :, :2], case.dy)
    again = next(n for n in neighbours.neighbours(case, FULL) if n.params.stride == (1, 2))
    np.testing.assert_array_equal(again.dy, unit.dy)  # filled from the case's seed: deterministic


@pytest.mark.parametrize(
    ("declaration", "allowed"),
    [
        ({"conv2d": {"geometry": "exact"}}, lambda n: geometry_of(n.op, n.shapes(), n.params) == "exact"),
        ({"conv2d": {"stride": "uniform"}}, lambda n: len(set(n.params.stride)) == 1),
        ({"conv2d": {"groups": False}}, lambda n: n.params.groups == 1),
    ],
)
def test_neighbours_are_only_what_the_implementation_declares(declaration, allowed):
    caps = parse_capabilities(declaration)
    case = _conv_case((2, 2, 5, 5), (2, 1, 3, 3), stride=(2, 2), padding=(1, 1, 1, 1), groups=2)
    found = list(neighbours.neighbours(case, caps))
    assert found and all(allowed(n) for n in found)
    assert len(found) < len(list(neighbours.neighbours(case, FULL)))


def test_square_pooling_windows_stay_square_and_the_predicate_is_honoured():
    caps = parse_capabilities(
        {"max_pool2d": {"kernel_size": "square"}, "supports": lambda op, p: p.stride[0] > 1 or "stride 1"}
    )
    params = MaxPool2dParams(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1, 1, 1))
    case = make_case("max_pool2d", params, {"x": (1, 2, 5, 5)}, "float32", "ties", 0)
    found = list(neighbours.neighbours(case, caps))
    assert found
    assert all(len(set(n.params.kernel_size)) == 1 and n.params.stride[0] > 1 for n in found)
    assert all(n.notes["ties"] in (True, False) for n in found)


def test_invalid_records_are_never_neighbours():
    case = _conv_case((1, 2, 3, 3), (2, 1, 3, 3), groups=2)
    for n in neighbours.neighbours(case, FULL):
        try:
            n.op.check(n.shapes(), n.params)
        except InvalidConfiguration as e:  # pragma: no cover - the assertion's message
            raise AssertionError(f"invalid neighbour {n.describe()}: {e}") from e
        assert n.x.shape[1] % n.params.groups == 0


# --------------------------------------------------------------------------- the pass inside hypothesis


def _property(calls: list[Any], fails: bool, further: bool):
    """A conv2d property failing once the kernel is two wide (when ``fails``), noting its cases."""

    def body(case):
        calls.append(case)
        rec = recording.current()
        assert rec is not None
        rec.case(case)
        if fails and case.array("w").shape[-1] >= 2:
            raise AssertionError(f"kernel too wide [{case.describe()}]")

    body = shrink.shrinks_further(body) if further else body
    strategy = cases("conv2d", FULL, dtypes_=("float64",))
    return settings(max_examples=40, deadline=None, database=None, derandomize=True)(
        given(case=strategy)(body)
    )


def test_a_passing_property_runs_its_body_once_per_example():
    counts = []
    for further in (False, True):
        calls: list[Any] = []
        with recording.active(recording.Recorder(FULL)):
            _property(calls, fails=False, further=further)()
        counts.append(len(calls))
    assert counts[0] == counts[1] > 0


def test_the_final_example_is_the_smallest_and_the_trials_are_not_recorded():
    rec = recording.Recorder(FULL)
    calls: list[Any] = []
    with recording.active(rec), pytest.raises(AssertionError) as raised:
        _property(calls, fails=True, further=True)()
    last = rec.to_dict()["last_case"]
    assert last["shapes"]["x"][-1] == 2 and last["shapes"]["w"] == [1, 1, 1, 2], last["description"]
    assert last["shapes"]["x"][:3] == [1, 1, 1]
    assert "kernel too wide [conv2d(x=(1, 1, 1, 2)" in str(raised.value)
    assert len(calls) > rec.examples, "the trial runs were recorded"


def test_paused_recorder_forgets_what_the_block_noted():
    rec = recording.Recorder(FULL)
    case = _conv_case((1, 1, 3, 3), (1, 1, 2, 2))
    rec.case(case)
    before = rec.to_dict()
    with rec.paused():
        rec.case(_conv_case((2, 2, 4, 4), (1, 2, 1, 1)))
        rec.failure(case, output="y", diagnosis=None, final=True, message="m")
    assert rec.to_dict() == before


@pytest.mark.parametrize(
    ("error", "same"),
    [(AssertionError("a"), True), (ValueError("a"), False)],
)
def test_failures_are_compared_by_type_and_key(error, same):
    assert (shrink.failure_key(error, "y") == shrink.failure_key(AssertionError("b"), "y")) is same
    keyed = AssertionError("c")
    keyed.convcheck_key = ("y", "mismatch")  # type: ignore[attr-defined]
    other = AssertionError("d")
    other.convcheck_key = ("dx", "mismatch")  # type: ignore[attr-defined]
    assert shrink.failure_key(keyed, None) != shrink.failure_key(other, None)
    assert shrink.failure_key(error, "y") != shrink.failure_key(error, "dx")


def test_trials_leave_every_sandbox_breaker_as_it_was():
    box = Sandbox("unused.py", Limits())
    box._tripped["conv2d_forward"] = SandboxFailure("timeout", "hung before")
    with breakers_kept():
        box._tripped["conv2d_backward"] = SandboxFailure("timeout", "hung on a neighbour")
        box._tripped.pop("conv2d_forward")
    assert list(box._tripped) == ["conv2d_forward"]


def test_every_property_drawing_a_case_registers_its_body():
    suite = Path(shrink.__file__).resolve().parent
    missing = []
    for path in sorted(suite.glob("test_*.py")):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            registered = [n.strip() for n in lines[i + 1 : i + 2]] == ["@checks.shrinks_further"]
            if line.strip().startswith("@given(case=") and not registered:
                missing.append(f"{path.name}:{i + 1}")
    assert not missing, f"@given(case=...) without @checks.shrinks_further under it: {missing}"


def test_the_reproduction_of_a_cut_case_rebuilds_its_arrays(capsys):
    case = _conv_case((1, 2, 4, 4), (2, 2, 2, 2), family="normal", stride=(2, 2))
    cut = next(n for n in neighbours.neighbours(case, FULL) if n.params.stride == (1, 2))
    snippet = checks.reproduction(cut, load("numpy_reference"))
    namespace: dict[str, Any] = {}
    exec(textwrap.dedent(snippet.split("reproduce:\n", 1)[1]), namespace)
    rebuilt = namespace["case"]
    for name in ("x", "w", "b"):
        np.testing.assert_array_equal(rebuilt.inputs[name], cut.inputs[name])
    np.testing.assert_array_equal(rebuilt.dy, cut.dy)
    assert "with_inputs" not in checks.reproduction(case, load("numpy_reference"))  # drawn: nothing to add


def test_a_cut_keeps_either_end_of_the_axis_it_shrinks():
    case = _conv_case((2, 2, 3, 3), (1, 2, 1, 1), family="normal")
    cut = [n for n in neighbours.neighbours(case, FULL) if n.x.shape == (2, 1, 3, 3)]
    assert any(np.array_equal(n.x, case.x[:, :1]) for n in cut)
    last = [n for n in cut if np.array_equal(n.x, case.x[:, 1:])]  # the second channel, in x and in w
    assert last and np.array_equal(last[0].inputs["w"], case.inputs["w"][:, 1:])

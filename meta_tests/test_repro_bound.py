"""Reproduction scripts compute the suite's bound: the same exactness rule and the same error scale.

A script written for a failed record (``convcheck.report.repro``) rebuilds the
case and compares the implementation with the oracle under the tolerance
policy. It must decide exactness and the error scale ``S`` exactly as the suite
does (``spec.tolerance.exact_required`` and ``error_scale``), for every
operation: 1-D and 3-D windows, element-wise functions with a spec magnitude,
data movement. Each test writes the script of a record, runs it, and checks its
``S``, its exactness and each comparison against what ``tests.checks`` computes
for the same arrays.
"""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from convcheck.impls.registry import load
from convcheck.recording import case_spec
from convcheck.report import repro
from convcheck.spec import contracts, params
from convcheck.tests import checks
from convcheck.tests.values import make_case

IMPL = "numpy_reference"


def _record(case, prop: str, direction: str) -> dict:
    """A failed record of ``case`` as the report writer receives it."""
    check = f"test_{prop}[{case.op_name}-scipy]"
    return {
        "id": f"{check}[{case.dtype}]",
        "check": check,
        "property": prop,
        "direction": direction,
        "dtype": case.dtype,
        "status": "failed",
        "message": f"{case.op_name} does not match",
        "counterexample": case_spec(case),
    }


def _run_script(tmp_path: Path, case, prop: str, direction: str, contract: str = contracts.LIBRARY):
    """Write and run the record's script; the script's namespace and the capabilities the run honoured."""
    impl = load(IMPL)
    caps = contracts.under(impl.capabilities, contract)
    rec = _record(case, prop, direction)
    written = repro.write(tmp_path, rec, impl, caps)
    assert written is not None
    namespace = runpy.run_path(str(tmp_path / written), run_name="repro")
    return namespace, caps, tmp_path / written


def _assert_suite_bound(namespace: dict, caps, functions: list[str]) -> None:
    """The script's exactness, S and comparisons equal the suite's for the script's own case."""
    case = namespace["case"]
    assert namespace["EXACT"] == checks.exact_required(case, caps)
    for function in functions:
        if function == case.op.forward:
            suite_scale = {"y": checks.oracle_forward("scipy", case, caps, absolute=True)}
            expected = {"y": checks.oracle_forward("scipy", case, caps)}
        else:
            suite_scale = checks.oracle_backward("scipy", case, caps, absolute=True)
            expected = checks.oracle_backward("scipy", case, caps)
        for name, s in suite_scale.items():
            if s is None:
                continue
            np.testing.assert_array_equal(namespace["scale"][name], s)
            got = np.asarray(namespace["got"][name])
            suite = checks.within(case, name, got, expected[name], s, caps)
            script = namespace["comparisons"][name]
            assert (script.mode, script.exact) == (suite.mode, suite.exact), name
            assert script.error_ratio == suite.error_ratio, name
            assert script.worst_bound == suite.worst_bound, name


def test_max_pool1d_backward_on_integer_data_is_exact_and_routes_by_x(tmp_path):
    case = make_case("max_pool1d", params.MaxPool1dParams(), {"x": (2, 3, 8)}, "float32", "exact", seed=3)
    namespace, caps, _ = _run_script(tmp_path, case, "backward", "backward")
    assert namespace["EXACT"]  # integer data, direct algorithm: bit for bit, as for 2-D
    _assert_suite_bound(namespace, caps, ["max_pool1d_backward"])


def test_conv3d_on_integer_data_is_exact(tmp_path):
    shapes = {"x": (1, 2, 4, 4, 4), "w": (3, 2, 2, 2, 2), "b": (3,)}
    case = make_case("conv3d", params.Conv3dParams(), shapes, "float32", "exact", seed=5)
    namespace, caps, _ = _run_script(tmp_path, case, "backward", "backward")
    assert namespace["EXACT"]
    _assert_suite_bound(namespace, caps, ["conv3d_backward"])


def test_conv3d_forward_on_normal_data_uses_the_elementwise_bound(tmp_path):
    shapes = {"x": (1, 2, 4, 4, 4), "w": (3, 2, 2, 2, 2), "b": None}
    case = make_case("conv3d", params.Conv3dParams(), shapes, "float64", "normal", seed=6)
    namespace, caps, _ = _run_script(tmp_path, case, "forward", "forward")
    assert not namespace["EXACT"] and namespace["comparisons"]["y"].mode == "elementwise"
    _assert_suite_bound(namespace, caps, ["conv3d_forward"])


def test_relu_is_exact_with_the_spec_magnitude(tmp_path):
    case = make_case("relu", params.NoParams(), {"x": (2, 5, 3)}, "float32", "normal", seed=7)
    namespace, caps, _ = _run_script(tmp_path, case, "backward", "backward")
    assert namespace["EXACT"]  # selection: always exact
    np.testing.assert_array_equal(namespace["scale"]["dx"], case.magnitude("dx"))
    _assert_suite_bound(namespace, caps, ["relu_backward"])


def test_flatten_forward_and_backward_are_exact(tmp_path):
    case = make_case("flatten", params.NoParams(), {"x": (2, 3, 4)}, "float64", "normal", seed=8)
    namespace, caps, _ = _run_script(tmp_path, case, "adjoint", "forward+backward")
    assert namespace["EXACT"] and namespace["FUNCTIONS"] == ["flatten_forward", "flatten_backward"]
    _assert_suite_bound(namespace, caps, ["flatten_forward", "flatten_backward"])


def test_a_tied_max_pool_under_the_course_contract_is_not_exact(tmp_path):
    x = np.zeros((1, 1, 4, 4), dtype=np.float32)  # every window tied
    case = make_case("max_pool2d", params.MaxPool2dParams(), {"x": (1, 1, 4, 4)}, "float32", "ties", seed=1)
    case = type(case)(case.op_name, case.params, {"x": x}, case.dy, case.dtype, case.family, case.seed,
                      case.layout, {**case.notes, "ties": True})  # fmt: skip
    namespace, caps, script = _run_script(tmp_path, case, "backward", "backward", contracts.COURSE)
    assert not namespace["EXACT"]  # the course accepts a split gradient at a tie
    _assert_suite_bound(namespace, caps, ["max_pool2d_backward"])
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # numpy_reference is right on this case


@pytest.mark.parametrize("op", ["max_pool1d", "relu"])
def test_the_script_exits_1_on_a_mismatch(tmp_path, op):
    """A script run on a wrong answer (one element off by one ULP, exactness required) fails."""
    shapes = {"x": (1, 2, 6)}
    p = params.MaxPool1dParams() if op == "max_pool1d" else params.NoParams()
    case = make_case(op, p, shapes, "float32", "exact", seed=2)
    impl = load(IMPL)
    caps = contracts.under(impl.capabilities, contracts.LIBRARY)
    rec = _record(case, "forward", "forward")
    path = tmp_path / repro.write(tmp_path, rec, impl, caps)
    wrong = (
        "_right = impl.functions[case.op.forward]\n"
        "impl.functions[case.op.forward] = lambda *a, **k: np.nextafter(_right(*a, **k), np.inf)\n"
    )
    text = path.read_text().replace("\nSEMANTICS = ", f"\n{wrong}SEMANTICS = ", 1)
    path.write_text(text)
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "y differs from the oracle: error ratio inf > 1" in proc.stdout

"""Blame the function at fault, and label every side of a comparison for what it is.

One pytest session (profile ``ci``, explicit) checks four planted implementations:

- ``forward_wrong``: the kernel-flipping forward of ``buggy.conv_flipped_kernel_forward`` with a
  correct backward, and a softmax loss whose value is doubled while ``dz`` is right. The
  backward-side properties that catch it (adjoint, finite differences) must blame the forward
  (the loss's value), and the reproduction must call the forward;
- ``backward_wrong``: a correct forward with ``dw`` averaged over the batch, and a softmax
  gradient without its ``1/N``: the same properties must blame the backward;
- ``nonlinear``: a correct forward with a ``dx`` that is not linear in ``dy``;
- ``noncontiguous``: ``buggy.conv_noncontiguous_wrong``, wrong on non-contiguous inputs only.

The labels meta-test reads every failure message of the session: wherever a message says
``got`` and ``expected``, ``got`` is the implementation's answer and ``expected`` the oracle's
(recomputed here on the reported counterexample); properties that compare two answers of
the implementation name both sides otherwise.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from convcheck.impls.registry import load
from convcheck.recording import case_from_spec
from convcheck.spec import FULL, OPERATIONS
from convcheck.tests import checks

SUITE = Path(__file__).resolve().parents[1] / "tests"

PLANTS = {
    "forward_wrong": """
        from convcheck.impls.buggy.conv_flipped_kernel_forward import conv2d_forward
        from convcheck.impls.numpy_reference import conv2d_backward
        from convcheck.impls.numpy_reference import softmax_cross_entropy as _right


        def softmax_cross_entropy(z, labels):
            loss, dz = _right(z, labels)
            return 2 * loss, dz  # the value is wrong, its gradient right
    """,
    "backward_wrong": """
        from convcheck.impls.buggy.conv_dw_batch_averaged import conv2d_backward
        from convcheck.impls.buggy.softmax_grad_missing_batch_mean import softmax_cross_entropy
        from convcheck.impls.numpy_reference import conv2d_forward
    """,
    "noncontiguous": """
        from convcheck.impls.buggy.conv_noncontiguous_wrong import conv2d_backward, conv2d_forward
    """,
    "nonlinear": """
        from convcheck.impls.numpy_reference import conv2d_forward
        from convcheck.impls.numpy_reference import conv2d_backward as _right


        def conv2d_backward(dy, x, w, b, **kw):
            dx, dw, db = _right(dy, x, w, b, **kw)
            dx2, _, _ = _right(dy * dy, x, w, b, **kw)
            return dx + dx2 / 8, dw, db  # dx is not linear in dy
    """,
}
BACKWARD_SIDE = ("adjoint", "finite_differences", "loss_finite_differences")
IDENTITIES = ("batch_independence", "linearity", "loss_batch_mean", "hygiene")
"""Properties comparing two answers of the implementation: they never say got/expected of them."""


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> tuple[list[dict], Path, dict[str, str]]:
    """The session's results, its report folder and the planted modules' paths."""
    tmp = tmp_path_factory.mktemp("blame")
    paths = {}
    for name, text in PLANTS.items():
        paths[name] = str(tmp / f"{name}.py")
        Path(paths[name]).write_text(textwrap.dedent(text))
    results, report = tmp / "results.jsonl", tmp / "report"
    cmd = [
        sys.executable, "-m", "pytest", str(SUITE), "-p", "convcheck.pytest_plugin", "-p", "no:cacheprovider",
        "-q", "--no-header", "--rootdir", str(SUITE), "-c", "/dev/null", "--impl", ",".join(paths.values()),
        "--ops", "conv2d,softmax_cross_entropy", "--convcheck-profile", "ci", "--max-examples", "25",
        "--convcheck-results", str(results), "--convcheck-report", str(report),
        "-k", "not shapes_dtypes and not sweep and not worked",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp)
    assert proc.returncode == 1, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
    return [json.loads(line) for line in results.read_text().splitlines() if line], report, paths


def _failed(results: list[dict], impl: str, prop: str, op: str) -> dict:
    found = [r for r in results if (r["impl"], r["property"], r["op"]) == (impl, prop, op)]
    assert found, f"{impl} {op}: no {prop} result"
    assert found[0]["status"] == "failed", f"{impl} {op}: {prop} {found[0]['status']}"
    return found[0]


@pytest.mark.parametrize(
    ("prop", "op"), [(p, "conv2d") for p in BACKWARD_SIDE[:2]] + [(BACKWARD_SIDE[2], "softmax_cross_entropy")]
)
def test_a_wrong_forward_found_by_a_backward_side_property_is_blamed_on_the_forward(session, prop, op):
    results, report, _ = session
    forward = OPERATIONS[op].forward
    r = _failed(results, "forward_wrong", prop, op)
    assert "the forward is wrong: " in r["message"] and f"the fault is in {forward}" in r["message"]
    assert f"print(impl.functions[{forward!r}](*case.forward_args()" in r["message"], (
        "reproduces another call"
    )
    assert r["failure"]["output"] == ("loss" if OPERATIONS[op].is_loss else "y")
    doc = json.loads((report / "forward_wrong" / "report.json").read_text())
    rec = next(
        x for x in doc["records"] if x["property"] == prop and x["op"] == op and x.get("failing_output")
    )
    script = report / "forward_wrong" / rec["reproduction"]["script"]
    assert f"FUNCTIONS = [{forward!r}]" in script.read_text()
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "differs from the oracle" in run.stdout, run.stdout[-2000:]


@pytest.mark.parametrize(
    ("prop", "op"), [("adjoint", "conv2d"), ("loss_finite_differences", "softmax_cross_entropy")]
)
def test_a_wrong_backward_is_still_blamed_on_the_backward(session, prop, op):
    r = _failed(session[0], "backward_wrong", prop, op)
    assert "the forward is wrong" not in r["message"]


def _labelled_pairs(message: str) -> list[tuple[tuple[int, ...], float, float]]:
    """``(index, got, expected)`` of every ``worst at index I: got G, expected E`` line."""
    pairs = []
    for m in re.finditer(r"worst at index (\([^)]*\)|\(\)): got (\S+), expected (\S+) \(bound", message):
        index = tuple(int(i) for i in re.findall(r"-?\d+", m.group(1)))
        pairs.append((index, float(m.group(2).rstrip(",")), float(m.group(3))))
    return pairs


def _answers(impl_path: str, failure: dict) -> tuple[dict, dict]:
    """The implementation's and the scipy oracle's outputs on a failure's counterexample."""
    case = case_from_spec(failure["counterexample"])
    impl = load(impl_path)
    op = case.op
    if op.is_loss:
        return checks.call_loss(impl, case), checks.oracle_loss("scipy", case)
    got = {"y": checks.call_forward(impl, case), **checks.call_backward(impl, case)}
    expected = {
        "y": checks.oracle_forward("scipy", case, FULL),
        **checks.oracle_backward("scipy", case, FULL),
    }
    return got, expected


def test_got_is_the_implementations_and_expected_the_oracles_in_every_message(session):
    """Every failure of the session: a ``got``/``expected`` pair is the implementation's value and the
    oracle's at the index named; an identity property names its own two sides."""
    results, _, paths = session
    failed = [
        r for r in results if r["status"] == "failed" and (r.get("failure") or {}).get("counterexample")
    ]
    checked: set[str] = set()
    for r in failed:
        pairs = _labelled_pairs(r["message"])
        blamed = "the forward is wrong" in r["message"]
        if r["property"] in IDENTITIES and not blamed:
            assert not pairs and "  expected = " not in r["message"], f"{r['check']} labels its own answers"
            checked.add(r["property"])
            continue
        if not pairs:
            continue
        got, expected = _answers(paths[r["impl"]], r["failure"])
        name = r["failure"]["output"]
        for index, g, e in pairs:
            assert g == float(np.asarray(got[name])[index]), (
                f"{r['check']}: got {g} is not the implementation's"
            )
            assert e == pytest.approx(float(np.asarray(expected[name])[index]), rel=1e-9, abs=1e-12), (
                f"{r['check']}: expected {e} is not the oracle's {name}"
            )
        checked.add(r["property"])
    wanted = {"forward", "backward", "loss_value", "loss_gradient", *BACKWARD_SIDE, *IDENTITIES}
    assert wanted <= checked, f"no labelled failure seen for {sorted(wanted - checked)}"

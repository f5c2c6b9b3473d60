"""Declarations per direction: a feature the forward supports and the backward does not.

The planted module is ``buggy.conv_dilation_ignored_backward`` (a right forward, a backward
that ignores dilation) with ``{"conv2d": {"dilation": "forward"}}``: the forward is checked
with dilations, every property calling the backward without, and both the summary and the
report's matrix say ``forward only``. Without the declaration the same code fails; with a
forward that ignores dilation too, the forward property still catches it. Every run names
its profile.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from convcheck.report.matrix import matrix
from convcheck.spec import CapabilityError
from convcheck.spec.capabilities import parse

PLANT = """
    from convcheck.impls.buggy.conv_dilation_ignored_backward import conv2d_backward, conv2d_forward
    {extra}
    {declaration}
"""
DECLARED = 'CONVCHECK_CAPABILITIES = {"conv2d": {"dilation": "forward"}}'
FORWARD_IGNORES_DILATION = """
    from convcheck.impls.numpy_reference import conv2d_forward as _right


    def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
        return _right(x, w, b, stride=stride, padding=padding, dilation=(1,) * len(dilation), groups=groups)
"""


def _run(
    tmp_path: Path, name: str, declaration: str, extra: str = ""
) -> tuple[subprocess.CompletedProcess, Path]:
    """``convcheck run`` of the plant on conv2d, profile ci; its output and report folder."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(PLANT).format(extra=textwrap.dedent(extra), declaration=declaration))
    report = tmp_path / f"{name}-report"
    cmd = [
        sys.executable,
        "-m",
        "convcheck",
        "run",
        "--impl",
        str(path),
        "--ops",
        "conv2d",
        "--profile",
        "ci",
    ]
    cmd += ["--max-examples", "30", "--report", str(report), "--results", str(report / "results.jsonl")]
    cmd += ["-k", "not hygiene and not sweep"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path), report


def _dilations(report: Path, prop: str) -> set[str]:
    """The dilations a property's results say it exercised."""
    found = set()
    for line in (report / "results.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry["property"] == prop:
            found |= set((entry.get("values") or {}).get("dilation", []))
    return found


def test_a_forward_only_feature_is_checked_in_the_forward_and_not_in_the_backward(tmp_path):
    proc, report = _run(tmp_path, "declared", DECLARED)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "unsupported (declared): conv2d.dilation = 'forward only'" in proc.stdout
    doc = json.loads((report / "report.json").read_text())
    assert any(d != "[1, 1]" for d in _dilations(report, "forward")), "the forward never met a dilation"
    for prop in ("backward", "adjoint", "finite_differences", "batch_independence", "linearity"):
        assert _dilations(report, prop) == {"[1, 1]"}, f"{prop} drew a dilation the backward does not support"
    row = next(r for r in matrix(doc)["rows"] if r["op"] == "conv2d")
    dilation = next(c for c in row["cells"] if c["column"] == "dilation")
    assert dilation["status"] != "unsupported" and dilation["note"].startswith("forward only"), dilation


def test_the_same_code_undeclared_fails_in_the_backward(tmp_path):
    proc, _ = _run(tmp_path, "undeclared", "")
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "conv2d:backward" in proc.stdout and "conv2d:forward," not in proc.stdout


def test_a_forward_only_declaration_still_checks_the_forward(tmp_path):
    proc, _ = _run(tmp_path, "forward_wrong", DECLARED, FORWARD_IGNORES_DILATION)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "conv2d:forward" in proc.stdout


@pytest.mark.parametrize(
    ("section", "error"),
    [
        ({"dilation": {"forward": True}}, "for each of 'forward' and 'backward'"),
        ({"stride": {"forward": "any", "backward": "sideways"}}, "must give a level of"),
        ({"convention": "forward"}, "must be one of"),
    ],
)
def test_a_malformed_per_direction_declaration_is_refused(section, error):
    with pytest.raises(CapabilityError, match=error):
        parse({"conv2d": section})


def test_the_general_form_gives_each_direction_its_level():
    caps = parse({"conv2d": {"stride": {"forward": "any", "backward": "unit"}}})
    assert caps.supports("conv2d", "stride", "unit") and not caps.supports("conv2d", "stride", "uniform")
    assert caps.for_direction("forward").supports("conv2d", "stride", "any")
    assert ("conv2d", "stride", "forward only") in caps.unsupported()

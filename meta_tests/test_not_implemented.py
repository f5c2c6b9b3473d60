"""``NotImplementedError`` from a contract function means "unsupported at this case": counted and
noted, neither failed nor checked; a check unsupported on every example ends ``unsupported``;
``--strict`` fails it (``convcheck/unsupported_calls.py``)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

NO_DILATION = """
from convcheck.impls import numpy_reference as ref

conv2d_backward = ref.conv2d_backward


def conv2d_forward(x, w, b, stride, padding, dilation, groups):
    if tuple(dilation) != (1, 1):
        raise NotImplementedError("dilation > 1 is not implemented")
    return ref.conv2d_forward(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
"""
"""A conv2d that handles every case but a dilated one, which it says it does not handle."""

NEVER = """
def conv2d_forward(x, w, b, stride, padding, dilation, groups):
    raise NotImplementedError("not yet")
"""


def _run(tmp_path: Path, source: str, *args: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    module = tmp_path / "layers.py"
    module.write_text(textwrap.dedent(source))
    results = tmp_path / "results.jsonl"
    proc = subprocess.run(
        [
            sys.executable, "-m", "convcheck", "run", "--impl", str(module), "--ops", "conv2d",
            "-k", "test_forward or test_sweep", "--results", str(results), *args,
        ],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "CONVCHECK_MAX_EXAMPLES": "10"},
    )  # fmt: skip
    records = [json.loads(ln) for ln in results.read_text().splitlines()] if results.exists() else []
    return proc, records


def test_raising_on_some_cases_passes_with_the_cases_counted(tmp_path):
    proc, records = _run(tmp_path, NO_DILATION)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "unsupported at some cases (NotImplementedError):" in proc.stdout
    notes = [ln for ln in proc.stdout.splitlines() if ln.startswith("  note: conv2d_forward raised")]
    assert len(records) == 3 and len(notes) == 1, proc.stdout  # one note for the function's three checks
    raised = sum(r["not_implemented"]["examples"] for r in records)
    ran = sum(r["examples"] for r in records)
    assert f"on {raised} of {ran} examples in 3 checks (" in notes[0], proc.stdout
    assert all(r["check"] in notes[0] for r in records)
    assert "dilation > 1 is not implemented; --strict fails them" in notes[0]
    for r in records:
        assert r["status"] == "passed", r
        info = r["not_implemented"]
        assert info["function"] == "conv2d_forward" and info["message"] == "dilation > 1 is not implemented"
        assert 0 < info["examples"] <= info["count"] and info["examples"] < r["examples"]
        assert "dilation=(" in info["first_case"] and "dilation=(1, 1)" not in info["first_case"]


@pytest.mark.parametrize("isolation", [(), ("--no-isolation",)], ids=["sandboxed", "in-process"])
def test_under_strict_it_is_a_failure(tmp_path, isolation):
    proc, records = _run(tmp_path, NO_DILATION, "--strict", *isolation)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "NotImplementedError: dilation > 1 is not implemented" in proc.stdout
    assert "unsupported at some cases" not in proc.stdout
    assert any(r["status"] == "failed" for r in records) and not any(
        r.get("not_implemented") for r in records
    )


def test_raising_on_every_case_is_unsupported_not_an_error(tmp_path):
    proc, records = _run(tmp_path, NEVER)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert records and all(r["status"] == "unsupported" and r["skip_kind"] == "unsupported" for r in records)
    for r in records:
        assert "conv2d_forward raised NotImplementedError on every example" in r["message"]
        assert r["message"].endswith("not yet (--strict fails it)")
    assert "unsupported: test_forward[conv2d-scipy]: conv2d_forward raised NotImplementedError" in proc.stdout


def test_notes_are_one_line_per_function_however_many_checks_and_messages():
    from convcheck.unsupported_calls import lines

    def result(check: str, function: str, raised: int, message: str, status: str = "passed") -> dict:
        info = {"function": function, "message": message, "examples": raised, "count": raised,
                "first_case": f"case of {check}"}  # fmt: skip
        return {"check": check, "status": status, "examples": 100, "not_implemented": info}

    results = [
        result("test_forward[avg_pool3d]", "avg_pool3d_forward", 5, "input (1, 2, 2) shorter than (2, 2, 2)"),
        result("test_adjoint[avg_pool3d]", "avg_pool3d_forward", 7, "input (1, 1, 3) shorter than (3, 1, 3)"),
        result("test_linearity[avg_pool3d]", "avg_pool3d_backward", 2, "input (1, 2, 2) shorter"),
        result("test_sweep[conv2d]", "conv2d_forward", 100, "never", status="unsupported"),
    ]
    out = lines(results)
    notes = [ln for ln in out if ln.startswith("  note:")]
    assert len(notes) == 2, out
    assert notes[0].startswith(
        "  note: avg_pool3d_forward raised NotImplementedError on 12 of 200 examples in 2 checks "
        "(test_forward[avg_pool3d], test_adjoint[avg_pool3d])"
    )
    assert "first case of test_forward[avg_pool3d]: input (1, 2, 2) shorter than (2, 2, 2)" in notes[0]
    assert "on 2 of 100 examples of test_linearity[avg_pool3d]" in notes[1]
    assert any(ln.startswith("  unsupported: test_sweep[conv2d]: conv2d_forward raised") for ln in out)

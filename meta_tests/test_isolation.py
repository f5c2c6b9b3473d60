"""Isolation: hostile and broken implementations fail honestly, and the run and its records survive.

Each implementation in ``impls/hostile`` returns wrong conv2d results (or none)
and tries to subvert the run from its own process, or breaks in a way that
would take an in-process run down. Every one runs through ``convcheck run`` with
isolation on, as a user would run it.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from convcheck.impls.hostile import BROKEN, TAMPERING
from convcheck.sandbox import wire

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "spec" / "report.schema.json").read_text())


def _run(module: str, tmp_path, *extra: str) -> subprocess.CompletedProcess:
    results = tmp_path / "results.jsonl"
    args = [
        sys.executable,
        "-m",
        "convcheck",
        "run",
        "--impl",
        f"convcheck.impls.hostile.{module}",
        "--profile",
        "fast",
        "--max-examples",
        "5",
        "--results",
        str(results),
        "--report",
        str(tmp_path / "report"),
        *extra,
    ]
    if "--ops" not in extra:
        args += ["--ops", "conv2d"]
    return subprocess.run(
        args, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=dict(os.environ)
    )


def _failed(stdout: str) -> set[str]:
    m = re.search(r"FAILED \d+ property group\(s\): (.+)$", stdout, re.MULTILINE)
    return set(m.group(1).split(", ")) if m else set()


def _records(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]


def _assert_report_intact(tmp_path, stdout: str) -> dict:
    """report.json is complete, schema-valid, and says what the run printed."""
    doc = json.loads((tmp_path / "report" / "report.json").read_text())
    errors = [e.message for e in jsonschema.Draft202012Validator(SCHEMA).iter_errors(doc)]
    assert not errors, errors[:3]
    assert doc["status"] == "complete"
    failed = {f"{r['op']}:{r['property']}" for r in doc["records"] if r["status"] in ("failed", "error")}
    assert failed == _failed(stdout), (failed, _failed(stdout))
    assert "<html" in (tmp_path / "report" / "report.html").read_text()[:500].lower()
    return doc


@pytest.mark.slow
@pytest.mark.parametrize("module", TAMPERING)
def test_tampering_fails_honestly(module, tmp_path):
    proc = _run(module, tmp_path, "--timeout", "20")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "conv2d:forward" in _failed(proc.stdout), proc.stdout[-3000:]
    assert "passed every check that applies" not in proc.stdout + proc.stderr
    records = _records(tmp_path)
    assert records and all({"test", "status", "impl"} <= set(r) for r in records), (
        "forged result lines survived"
    )
    forward = [r for r in records if r["property"] == "forward"]
    assert forward and all(r["status"] == "failed" for r in forward)
    assert not (tmp_path / "report.json").exists(), "the code under test wrote into the caller's folder"
    _assert_report_intact(tmp_path, proc.stdout)


BROKEN_EXPECTED = {
    "hangs": ("worker killed after 2 s", ["--timeout", "2"]),
    "exits": ("it exited with status 3", []),
    "segfaults": ("killed by signal SIGSEGV", []),
    "eats_memory": ("raised MemoryError", ["--memory", "1024"]),
    "burns_cpu": ("CPU-time cap of 1 s", ["--cpu-time", "1", "--timeout", "30"]),
    "returns_list": ("is a builtins.list, but should be a numpy.ndarray", []),
    "returns_tensor": ("is a torch.Tensor, but should be a numpy.ndarray", []),
    "returns_none": ("is a builtins.NoneType, but should be a numpy.ndarray", []),
    "wrong_output_count": ("but should return a tuple (dx, dw, db)", []),
    "returns_nan": ("NaN or inf", []),
    "raises": ("conv2d_backward raised IndexError: list index out of range", []),
    "torch_trap": ("killed by signal SIGABRT", ["--ops", "max_pool2d"]),
}


def test_every_broken_module_has_an_expectation():
    assert set(BROKEN_EXPECTED) == set(BROKEN)


@pytest.mark.slow
@pytest.mark.parametrize("module", BROKEN)
def test_broken_implementation_is_a_classified_failure(module, tmp_path):
    expected, extra = BROKEN_EXPECTED[module]
    proc = _run(module, tmp_path, *extra)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert expected in proc.stdout, proc.stdout[-4000:]
    assert "Traceback (most recent call last)" not in proc.stdout.split("FAILED")[0]
    assert _records(tmp_path), "the run lost its results"
    _assert_report_intact(tmp_path, proc.stdout)


def test_raised_exception_shows_the_implementations_own_frames(tmp_path):
    proc = _run("raises", tmp_path)
    assert "raises.py" in proc.stdout and "in _scatter" in proc.stdout
    assert "sandbox/worker.py" not in proc.stdout


@pytest.mark.parametrize(
    "make",
    [
        lambda a: a,
        lambda a: np.asfortranarray(a),
        lambda a: a[..., ::2],
        lambda a: a[::-1, :, ::-1],
        lambda a: np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2),
    ],
    ids=["contiguous", "fortran", "sliced", "reversed", "channels_last"],
)
def test_arrays_cross_by_value_with_their_layout(make):
    a = make(np.arange(2 * 3 * 4 * 6, dtype=np.float32).reshape(2, 3, 4, 6))
    b = wire.loads(wire.dumps(a))
    assert np.array_equal(a, b) and b.dtype == a.dtype and b.strides == a.strides
    assert not np.shares_memory(a, b)


def test_foreign_objects_never_unpickle():
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    decoded = wire.loads(wire.dumps([Evil(), {"k": (1, 2.5, float("nan"))}, None]))
    assert isinstance(decoded[0], wire.Foreign) and "Evil" in decoded[0].type_name
    assert decoded[1]["k"][:2] == (1, 2.5) and np.isnan(decoded[1]["k"][2]) and decoded[2] is None


def test_malformed_messages_are_rejected():
    with pytest.raises(ValueError, match="malformed"):
        wire.loads(b"\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00{bad")

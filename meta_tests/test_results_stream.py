"""The results stream carries typed fields, so no reader parses printed text.

A failure's text comes from its exception (``exception``), the same under
``--tb=native`` as under ``--tb=short``; a skip says its kind (``skip_kind``);
each result names what its implementation declared unsupported
(``declared_unsupported``); coverage values are JSON texts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from convcheck.grouping import block_lines, failure_groups, failure_text

ROOT = Path(__file__).resolve().parents[1]
BUGGY = "buggy.conv_flipped_kernel_forward"


def _pytest(tmp_path: Path, name: str, *args: str) -> list[dict]:
    """Run the suite's forward property with pytest; the results it wrote."""
    results = tmp_path / f"{name}.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_forward.py", "-p", "no:cacheprovider", "-q",
         "--max-examples", "10", "--hypothesis-seed", "3", "--no-isolation",
         "--convcheck-results", str(results), *args],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-2000:]
    return [json.loads(line) for line in results.read_text().splitlines()]


def test_a_failure_reads_the_same_under_any_traceback_style(tmp_path):
    short = _pytest(tmp_path, "short", "--impl", BUGGY, "--ops", "conv2d", "--tb=short")
    native = _pytest(tmp_path, "native", "--impl", BUGGY, "--ops", "conv2d", "--tb=native")
    failed = {r["test"]: r for r in short if r["status"] == "failed"}
    assert failed, "the planted bug failed nothing"
    for r in native:
        if r["test"] in failed:
            text = failure_text(r)
            assert text.startswith("AssertionError: conv2d_forward"), text
            assert text == failure_text(failed[r["test"]])
            assert r["message"] != failed[r["test"]]["message"]  # pytest's own text did differ
    assert [g.title for g in failure_groups(native)] == [g.title for g in failure_groups(short)]
    shown = "\n".join(block_lines(failure_groups(native)[0]))
    assert "AssertionError: conv2d_forward" in shown and "Traceback" not in shown


def test_skips_say_their_kind_and_results_what_was_declared(tmp_path):
    module = tmp_path / "partial.py"
    module.write_text(
        "from convcheck.impls.numpy_reference import conv2d_forward\n"
        "CONVCHECK_CAPABILITIES = {'conv2d': {'dilation': False}, 'max_pool2d': {'ceil_mode': False}}\n"
    )
    results = _pytest(tmp_path, "partial", "--impl", str(module), "--ops", "conv2d,max_pool2d")
    by_op = {op: [r for r in results if r["op"] == op] for op in ("conv2d", "max_pool2d")}
    assert by_op["max_pool2d"] and all(r["skip_kind"] == "missing" for r in by_op["max_pool2d"])
    assert all(r["status"] == "unsupported" for r in by_op["max_pool2d"])
    for r in results:  # only conv2d is provided, so only its declaration is named
        assert r["declared_unsupported"] == [{"op": "conv2d", "feature": "dilation", "value": False}]
    ran = [r for r in by_op["conv2d"] if r["status"] == "passed"]
    assert ran and all(json.loads(v) == [1, 1] for r in ran for v in r["values"]["dilation"])


WRONG_AT_FIRST = '''
from convcheck.impls.numpy_reference import *  # noqa: F403
from convcheck.impls import numpy_reference as _ref

_calls = [0]


def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
    """Off by one on the first two calls in a process, right afterwards."""
    _calls[0] += 1
    y = _ref.conv2d_forward(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return y + 1 if _calls[0] <= 2 else y
'''


def test_a_failure_hypothesis_cannot_replay_is_still_shown_and_diagnosed(tmp_path):
    """Hypothesis replays the shrunk example last; code whose answer changes between calls (an
    uninitialised buffer, state) can pass that replay, and the check fails as flaky. The last
    failing example is then the one noted, diagnosed, with the reason it is shown."""
    impl = tmp_path / "wrong_at_first.py"
    impl.write_text(WRONG_AT_FIRST)
    results = _pytest(tmp_path, "flaky", "--impl", str(impl), "--ops", "conv2d", "-k", "scipy")
    failed = [r for r in results if r["status"] == "failed"]
    assert [r["property"] for r in failed] == ["forward"], [(r["check"], r["status"]) for r in results]
    failure = failed[0]["failure"]
    assert failure["counterexample"]["op"] == "conv2d" and failure["output"] == "y"
    assert failure["diagnosis"] is not None and "tested" in failure["diagnosis"]
    assert "likely cause:" in failure["message"]
    assert "could not replay this failure" in failure["message"]
    assert failure["unreplayed"] and "could not replay this failure" in failed[0]["exception"]["text"]

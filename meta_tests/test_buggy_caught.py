"""The suite catches every shipped buggy implementation, and passes every correct one.

Each check runs ``convcheck run`` in a subprocess under the derandomised ``ci``
profile, exactly as a user would, and reads its exit status and output.
"""

import importlib
import os
import re
import subprocess
import sys

import pytest

from convcheck.impls.buggy import BUGGY
from convcheck.impls.registry import SHIPPED
from convcheck.options import DEFAULT_IMPL


def _run(impl: str, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CONVCHECK_PROFILE": "ci"}
    return subprocess.run(
        [sys.executable, "-m", "convcheck", "run", "--impl", impl, *extra],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )


def _failed_groups(stdout: str) -> set[str]:
    m = re.search(r"FAILED \d+ property group\(s\): (.+)$", stdout, re.MULTILINE)
    return set(m.group(1).split(", ")) if m else set()


@pytest.mark.slow
@pytest.mark.parametrize("bug", BUGGY)
def test_buggy_implementation_is_caught(bug):
    module = importlib.import_module(f"convcheck.impls.buggy.{bug}")
    ops = sorted({check.split(":")[0] for check in module.EXPECTED_FAILURES})
    proc = _run(f"buggy.{bug}", "--ops", ",".join(ops))
    assert proc.returncode == 1, (
        f"exit {proc.returncode}, expected 1\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
    )
    failed = _failed_groups(proc.stdout)
    missing = set(module.EXPECTED_FAILURES) - failed
    assert not missing, f"{bug}: expected {sorted(missing)} to fail; failed: {sorted(failed)}"
    # The terminal shows each mistake's smallest case with a snippet rebuilding it (the shrunk one,
    # or the sweep's first); hypothesis's own dump is in the report (convcheck.grouping).
    minimal = ("  reproduce:", "small-scope sweep, the first failing case")
    assert any(m in proc.stdout for m in minimal), (
        "no minimal counterexample printed (shrunk, or the sweep's first)"
    )


CHECKED_BY_THE_SUITE_ITSELF = DEFAULT_IMPL
"""The README's test command already runs every conformance property on this one under the same
profile and seed (``tests/``, the plug-in's default implementation); running it again here
doubled the suite's longest single check."""


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in SHIPPED if n != CHECKED_BY_THE_SUITE_ITSELF])
def test_correct_implementation_passes(name):
    proc = _run(name)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-5000:]}\n{proc.stderr[-2000:]}"
    assert "passed every check that applies" in proc.stdout

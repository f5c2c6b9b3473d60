"""Seeds that mean something: under every profile ``--seed`` chooses the draws.

An instrumented implementation appends every forward call (shapes, hyper-parameters and
a checksum of ``x``) to the file named by ``CALL_LOG``; the meta-tests compare those logs
between runs. Every run names its profile explicitly.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

LOGGED = '''
"""numpy_reference's conv2d forward, appending each call's shapes and hyper-parameters to $CALL_LOG."""
import os

from convcheck.impls import numpy_reference as ref


def conv2d_forward(x, w, b, **kw):
    with open(os.environ["CALL_LOG"], "a", encoding="utf-8") as fh:
        fh.write(f"{x.shape} {w.shape} {sorted(kw.items())} {float(abs(x).sum())!r}\\n")
    return ref.conv2d_forward(x, w, b, **kw)
'''


def _logged_run(tmp_path: Path, name: str, *args: str) -> tuple[list[str], subprocess.CompletedProcess]:
    """``convcheck run`` of the instrumented forward (in-process, so it sees ``CALL_LOG``): its call log."""
    impl = tmp_path / "logged.py"
    impl.write_text(textwrap.dedent(LOGGED))
    log = tmp_path / f"{name}.log"
    cmd = [sys.executable, "-m", "convcheck", "run", "--impl", str(impl), "--ops", "conv2d", "--no-isolation"]
    proc = subprocess.run(
        [*cmd, "--max-examples", "10", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "CALL_LOG": str(log)},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return log.read_text().splitlines(), proc


def test_ci_seeds_change_the_draws_and_one_seed_repeats_them(tmp_path):
    """Two ``ci`` runs with different ``--seed`` call the implementation on different cases; the same
    seed twice (once with ``--report``, which imports more of convcheck), on the same cases, call for
    call; report.json records the profile and seed used."""
    one, proc = _logged_run(
        tmp_path, "one", "--profile", "ci", "--seed", "1", "-k", "scipy", "--report", "rep"
    )
    again, _ = _logged_run(tmp_path, "again", "--profile", "ci", "--seed", "1", "-k", "scipy")
    two, _ = _logged_run(tmp_path, "two", "--profile", "ci", "--seed", "2", "-k", "scipy")
    assert one and one == again
    assert one != two, "seeds 1 and 2 drew the same cases under ci"
    assert "profile ci, seed 1" in proc.stdout
    run = json.loads((tmp_path / "rep" / "report.json").read_text())["run"]
    assert (run["profile"], run["seed"]) == ("ci", 1)


def test_ci_without_a_seed_is_derandomised(tmp_path):
    """No ``--seed`` under ``ci``: the default seed, so two runs draw the same cases."""
    first, proc = _logged_run(tmp_path, "first", "--profile", "ci", "-k", "scipy")
    second, _ = _logged_run(tmp_path, "second", "--profile", "ci", "-k", "scipy")
    assert first == second
    assert "profile ci, seed 0" in proc.stdout


def test_the_two_oracle_comparisons_draw_different_cases(tmp_path):
    """The forward's SciPy and torch comparisons spend their budgets on different cases."""
    scipy, _ = _logged_run(tmp_path, "scipy", "--profile", "ci", "-k", "test_forward and scipy")
    torch, _ = _logged_run(tmp_path, "torch", "--profile", "ci", "-k", "test_forward and torch")
    assert len(set(scipy) & set(torch)) < len(set(scipy)) / 2, "the oracle comparisons drew the same cases"


def test_a_failure_prints_the_command_that_replays_it(tmp_path):
    """A ``fast`` run without a seed picks one, and each failure's ``replay:`` command reruns that
    check on the same draws (in a fresh folder, so no example database helps)."""
    first = tmp_path / "first"
    first.mkdir()
    cmd = ["run", "--impl", "buggy.conv_flipped_kernel_forward", "--ops", "conv2d", "--profile", "fast"]
    cmd += ["-k", "test_forward and scipy", "--max-examples", "10"]
    proc = subprocess.run(
        [sys.executable, "-m", "convcheck", *cmd], capture_output=True, text=True, timeout=300, cwd=first
    )
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    seed = re.search(r"profile fast, seed (\d+)", proc.stdout).group(1)
    replay = re.search(r"^replay: (.+)$", proc.stdout, re.MULTILINE).group(1)
    assert f"--seed {seed}" in replay and "--profile fast" in replay
    second = tmp_path / "second"
    second.mkdir()
    argv = shlex.split(replay)
    assert argv[:2] == ["convcheck", "run"]
    again = subprocess.run(
        [sys.executable, "-m", "convcheck", *argv[1:]],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=second,
    )
    assert again.returncode == 1, again.stdout[-2000:]

    def shrunk(out: str) -> list[str]:
        """The reported counterexample: its case line and its worst element."""
        return [ln for ln in out.splitlines() if ln.startswith(("  case: ", "  worst at index"))]

    assert shrunk(proc.stdout) and shrunk(again.stdout) == shrunk(proc.stdout)
    assert "print(impl.functions['conv2d_forward'](" in proc.stdout, (
        "the forward's failure reproduces another call"
    )


@pytest.mark.parametrize("profile", ["ci", "fast"])
def test_grade_gives_the_whole_class_one_seed(profile):
    """``convcheck grade --seed`` is kept; without one, the derandomised profile's default or one
    random seed, passed to every child run alike."""
    import argparse

    from convcheck.grading.cli import class_seed
    from convcheck.options import DEFAULT_SEED, DERANDOMISED

    given = argparse.Namespace(seed=7, profile=profile)
    class_seed(given)
    assert given.seed == 7
    unset = argparse.Namespace(seed=None, profile=profile)
    class_seed(unset)
    assert isinstance(unset.seed, int) and (unset.seed == DEFAULT_SEED or profile not in DERANDOMISED)


def test_grade_seed_reaches_every_submission_and_the_summary(tmp_path):
    """``convcheck grade --seed 5``: the child's report.json records seed 5 and profile ci, and the
    class summary's title names both."""
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "alice.py").write_text(
        "from convcheck.impls.numpy_reference import relu_backward, relu_forward\n"
    )
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "convcheck", "grade", str(subs), "--report", str(out), "--profile", "ci"]
    cmd += ["--seed", "5", "--ops", "relu", "--max-examples", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    run = json.loads((out / "alice" / "report.json").read_text())["run"]
    assert (run["profile"], run["seed"]) == ("ci", 5)
    assert "profile ci, seed 5" in (out / "summary.html").read_text()

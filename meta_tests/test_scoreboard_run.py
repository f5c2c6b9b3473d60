"""``convcheck scoreboard --impl A,B,C --out OUT``: each implementation checked as a unit of its own,
recorded in the results database, and set side by side; ``--resume`` skips what is recorded.

The run on a real Dask cluster is in ``test_dask_grading.py``, beside its scheduler and workers.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from convcheck.grading.board import entrant
from convcheck.grading.cli import UsageProblem
from convcheck.grading.store import unit_hash

BUGGY = "buggy.conv_flipped_kernel_forward"
MINE = "from convcheck.impls.numpy_reference import conv2d_backward, conv2d_forward\n"
OPTIONS = ("--ops", "conv2d", "--max-examples", "4", "-j", "2")


def _board(cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "convcheck", "scoreboard", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)


def _verdicts(board_md: str) -> dict[str, str]:
    """``{column: verdict}`` from the scoreboard's Markdown table."""
    lines = [ln for ln in board_md.splitlines() if ln.startswith("|")]
    names = [c.strip() for c in lines[0].strip("|").split("|")][2:]
    verdict = next(ln for ln in lines if "**verdict**" in ln)
    return dict(zip(names, [c.strip() for c in verdict.strip("|").split("|")][2:], strict=True))


def _units(db: Path) -> list[tuple[int, str, str, str]]:
    """``(run_id, command, name, status)`` of every unit in every run's summary."""
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT r.run_id, runs.command, u.name, u.status FROM run_units r JOIN units u USING (unit_id)"
            " JOIN runs ON runs.run_id = r.run_id ORDER BY r.run_id, u.name"
        ).fetchall()


def test_a_scoreboard_run_checks_each_implementation_from_a_subfolder_and_resumes(tmp_path):
    """Typed in a subfolder with a relative file, a shipped name and a buggy one: one report per
    implementation, the board in ``--impl`` order with the right verdicts, the database holding each
    once; ``--resume`` checks again only the file that changed."""
    sub = tmp_path / "work"
    sub.mkdir()
    (sub / "mine.py").write_text(MINE)
    impls = f"mine.py,numpy_reference,{BUGGY}"
    proc = _board(sub, "--impl", impls, "--out", "board", *OPTIONS)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = sub / "board"
    board = (out / "scoreboard.md").read_text()
    assert list(_verdicts(board)) == ["mine", "numpy_reference", BUGGY]
    assert _verdicts(board) == {"mine": "PASSED", "numpy_reference": "PASSED", BUGGY: "FAILED"}
    assert board in proc.stdout and (out / "scoreboard.html").is_file()
    for name in ("mine", "numpy_reference", BUGGY):
        assert (out / name / "report.json").is_file(), name
    first = _units(out / "results.sqlite")
    assert [(c, n, s) for _, c, n, s in first] == [
        ("scoreboard", BUGGY, "graded"),
        ("scoreboard", "mine", "graded"),
        ("scoreboard", "numpy_reference", "graded"),
    ]

    (sub / "mine.py").write_text(MINE + "# edited\n")
    again = _board(sub, "--impl", impls, "--out", "board", "--resume", *OPTIONS)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "2 implementation(s) already recorded" in again.stdout and "1 to check" in again.stdout
    assert _verdicts((out / "scoreboard.md").read_text()) == _verdicts(board)
    with sqlite3.connect(out / "results.sqlite") as conn:
        per_name = dict(conn.execute("SELECT name, COUNT(*) FROM units GROUP BY name").fetchall())
    assert per_name == {"mine": 2, "numpy_reference": 1, BUGGY: 1}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--impl", "no_such_impl", "--out", "b"), "--impl no_such_impl: not a shipped name"),
        (("--impl", "missing.py", "--out", "b"), "--impl missing.py: no such file"),
        (("--impl", "buggy.nothing", "--out", "b"), "unknown buggy implementation"),
        (("--impl", "numpy_fast,numpy_fast", "--out", "b"), "would share the folder numpy_fast/"),
        (("--impl", "numpy_fast"), "--impl needs --out DIR"),
        (("--impl", "numpy_fast", "--out", "b", "rep/"), "both reports and --impl"),
        ((), "no report and no --impl"),
    ],
)
def test_bad_scoreboard_runs_are_one_line_and_exit_2(tmp_path, args, says):
    proc = _board(tmp_path, *args, timeout=120)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convcheck: error: ") and says in lines[0], proc.stderr
    assert not (tmp_path / "b").exists()


def test_a_framework_adapter_is_keyed_by_the_library_release(tmp_path):
    """The adapter's file and the library's version identify what ``torch_functional`` checks, so a
    new torch under the same adapter is checked again on ``--resume``; shipped code is found, not run."""
    import dataclasses
    import importlib.metadata

    unit = entrant("torch_functional", tmp_path)
    assert (
        unit.impl == "torch_functional"
        and unit.entry is not None
        and unit.entry.name == "torch_functional.py"
    )
    assert unit.library == f"torch=={importlib.metadata.version('torch')}"
    newer = dataclasses.replace(unit, library="torch==99.0")
    assert unit_hash(newer) != unit_hash(unit)
    assert unit_hash(entrant("numpy_fast", tmp_path)) == unit_hash(entrant("numpy_fast", tmp_path))
    with pytest.raises(UsageProblem, match="no such file"):
        entrant("absent.py", tmp_path)

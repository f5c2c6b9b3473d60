"""The results database (``OUT/results.sqlite``): resuming an interrupted grading, refusing unusable
files, and the ``convcheck report query`` command.

One class of three small submissions (a correct ReLU, one whose forward is off by one, a syntax
error) and a fourth, ``z_sleep``, which sleeps at import while a flag file exists, is graded
twice: straight through, and, with the flag set, killed with SIGKILL while ``z_sleep`` sleeps, resumed and stopped with SIGINT while it sleeps again, then
resumed with the flag gone. The two databases
must hold the same verdicts and per-check rows, each submission once.

Fixture and argument names avoid ``impl``, ``op_name``, ``grad`` and ``oracle_name``, which the
project's pytest plugin parametrizes.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from convcheck.cli import main
from convcheck.results_db import DB_NAME, SCHEMA_VERSION, ResultsDB, ResultsDBError, code_hash

GRADE_ARGS = ("--ops", "relu", "--max-examples", "2", "-j", "1", "--submission-timeout", "300")
STALL_SECONDS = 240
SLEEP_FLAG = "CONVCHECK_META_SLEEP_FLAG"

GOOD = "from convcheck.impls.numpy_reference import relu_forward, relu_backward\n"
OFF_BY_ONE = """
    from convcheck.impls.numpy_reference import relu_backward, relu_forward as _reference

    def relu_forward(x):
        return _reference(x) + 1
    """


def _sleeper(pids: Path) -> str:
    """A correct submission that, while the file its environment's ``SLEEP_FLAG`` names exists, notes
    its process ids in ``pids`` and sleeps."""
    return f"""
        import os, time
        if os.path.exists(os.environ.get({SLEEP_FLAG!r}, "/nonexistent")):
            with open({str(pids)!r}, "a") as fh:
                fh.write(f"{{os.getpid()}} {{os.getppid()}}\\n")
            time.sleep(600)
        from convcheck.impls.numpy_reference import relu_forward, relu_backward
        """


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())


def _grade(subs: Path, out: Path, *extra: str, flag: Path | None = None) -> subprocess.Popen:
    """Start ``convcheck grade``; ``flag``: the file whose existence makes ``z_sleep`` sleep."""
    cmd = [sys.executable, "-m", "convcheck", "grade", str(subs), "--report", str(out), *GRADE_ARGS, *extra]
    env = {**os.environ, SLEEP_FLAG: str(flag)} if flag else None
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _units(db: Path) -> list[str]:
    """The names of the units the database holds (an empty list while it does not exist yet)."""
    if not db.is_file():
        return []
    with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM units")]


def _is_convcheck_run(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"convcheck" in argv and b"run" in argv


def _kill_sleepers(pids: Path) -> None:
    """End what a killed grader left behind: the sleeping submission's process, and the ``convcheck run``
    above it with its process group (never this test's own group)."""
    for line in pids.read_text().split("\n") if pids.exists() else []:
        if not line.strip():
            continue
        pid, parent = map(int, line.split())
        for target in (pid, parent) if _is_convcheck_run(parent) else (pid,):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getpgid(target) != os.getpgid(0):
                    os.killpg(os.getpgid(target), signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(target, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _assert_gone_with_the_grader(pids: Path, wait: float = 15.0) -> None:
    """A grader killed outright takes its children along: the sleeping submission's process and
    the ``convcheck run`` above it end within ``wait`` seconds (nothing is left to write into OUT)."""
    started = [tuple(map(int, line.split())) for line in pids.read_text().split("\n") if line.strip()]
    deadline = time.monotonic() + wait
    while any(_alive(p) for pair in started for p in pair) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [p for pair in started for p in pair if _alive(p)]
    assert not left, f"processes {left} outlived the SIGKILLed grader"


def _stop_when_sleeping(
    proc: subprocess.Popen, pids: Path, db: Path, sig: int, lines: int
) -> tuple[str, str]:
    """Wait until ``z_sleep`` sleeps (``lines`` lines in ``pids``) and the other three are recorded, then
    send ``sig`` to the grader; its output."""
    deadline = time.monotonic() + STALL_SECONDS
    while not (pids.exists() and len(pids.read_text().split("\n")) > lines and len(_units(db)) >= 3):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "grading stalled before z_sleep started"
        time.sleep(0.3)
    proc.send_signal(sig)
    return proc.communicate(timeout=120)


def _snapshot(db: Path) -> dict[str, object]:
    """What must not depend on interruptions: each unit's verdict and its rows, timings left out."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        units = sorted(conn.execute("SELECT name, code_hash, status, score, message, checks FROM units"))
        rows = sorted(
            conn.execute(
                "SELECT u.name, r.check_id, r.op, r.property, r.dtype, r.status, r.dtype_failed, r.error_ratio,"
                " r.counterexample, r.message, r.examples FROM results r JOIN units u USING (unit_id)"
            )
        )
    return {"units": units, "rows": rows}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The class graded straight through (``straight``) and with interruptions (``resumed``)."""
    root = tmp_path_factory.mktemp("class")
    subs, pids = root / "subs", root / "sleep.pids"
    _write(subs / "a_good.py", GOOD)
    _write(subs / "b_off_by_one.py", OFF_BY_ONE)
    _write(subs / "c_syntax.py", "def relu_forward(x:\n")
    _write(subs / "z_sleep.py", _sleeper(pids))
    straight, resumed = root / "straight", root / "resumed"
    reference = _grade(subs, straight)  # no flag: z_sleep is graded at once; runs beside the rest
    flag = root / "sleep.flag"
    flag.touch()
    try:
        killed = _grade(subs, resumed, flag=flag)
        _stop_when_sleeping(killed, pids, resumed / DB_NAME, signal.SIGKILL, 1)
        _assert_gone_with_the_grader(pids)
        interrupted = _grade(subs, resumed, "--resume", flag=flag)
        _, err = _stop_when_sleeping(interrupted, pids, resumed / DB_NAME, signal.SIGINT, 2)
        assert interrupted.returncode == 130 and "Traceback" not in err, err
        flag.unlink()
        out, err = _grade(subs, resumed, "--resume", flag=flag).communicate(timeout=STALL_SECONDS)
        assert "3 submission(s) already recorded" in out, out + err
        out, err = reference.communicate(timeout=STALL_SECONDS)
        assert reference.returncode == 0, out[-3000:] + err[-3000:]
    finally:
        _kill_sleepers(pids)
        reference.kill()
    return {"subs": subs, "straight": straight, "resumed": resumed}


def test_an_interrupted_and_resumed_grading_equals_a_straight_one(graded):
    straight, resumed = _snapshot(graded["straight"] / DB_NAME), _snapshot(graded["resumed"] / DB_NAME)
    assert [u[0] for u in straight["units"]] == ["a_good", "b_off_by_one", "c_syntax", "z_sleep"]
    assert resumed == straight
    by_name = {u[0]: u for u in straight["units"]}
    assert by_name["a_good"][3] == 100.0 and by_name["z_sleep"][3] == 100.0
    assert by_name["b_off_by_one"][3] < 100.0 and by_name["c_syntax"][2] == "could not be loaded"
    failed = {(r[0], r[3]) for r in straight["rows"] if r[6]}
    assert ("b_off_by_one", "forward") in failed and not any(name == "a_good" for name, _ in failed)
    forward = [r for r in straight["rows"] if r[0] == "b_off_by_one" and r[3] == "forward" and r[6]]
    for row in forward:  # each failed dtype keeps its own counterexample, in that dtype
        cases = [f["case"] for f in json.loads(row[8])]
        assert cases and all(c.startswith("relu(x=") and f"dtype={row[4]}" in c for c in cases), cases
    assert (graded["straight"] / "summary.csv").read_text() == (graded["resumed"] / "summary.csv").read_text()


def test_resuming_records_each_submission_once_and_keeps_every_run(graded):
    db = graded["resumed"] / DB_NAME
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        names = [r[0] for r in conn.execute("SELECT name FROM units ORDER BY name")]
        runs = conn.execute(
            "SELECT run_id, state, resumed, finished IS NULL FROM runs ORDER BY run_id"
        ).fetchall()
        last = conn.execute("SELECT COUNT(*), SUM(reused) FROM run_units WHERE run_id=3").fetchone()
        hashes = dict(conn.execute("SELECT name, code_hash FROM units"))
    assert names == ["a_good", "b_off_by_one", "c_syntax", "z_sleep"]  # none recorded twice
    # SIGKILL leaves its run 'running' with no end; SIGINT marks it; the last one finished
    assert runs == [(1, "running", 0, 1), (2, "interrupted", 1, 0), (3, "finished", 1, 0)]
    assert last == (4, 3)
    assert hashes["z_sleep"] == code_hash(graded["subs"] / "z_sleep.py")
    with open(graded["resumed"] / "summary.csv", newline="") as fh:
        assert [row["student"] for row in csv.DictReader(fh)] == names
    assert all((graded["resumed"] / name / "grade.json").is_file() for name in names)


def test_a_rerun_without_resume_appends_a_run(graded, tmp_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    _write(subs / "c_syntax.py", (graded["subs"] / "c_syntax.py").read_text())
    out.mkdir()
    source = sqlite3.connect(graded["straight"] / DB_NAME)
    with contextlib.closing(source), contextlib.closing(sqlite3.connect(out / DB_NAME)) as copy:
        source.backup(copy)
    before = _snapshot(out / DB_NAME)
    for extra in ((), ("--resume",)):
        proc = subprocess.run(
            [sys.executable, "-m", "convcheck", "grade", str(subs), "--report", str(out), *GRADE_ARGS, *extra],
            capture_output=True, text=True, timeout=STALL_SECONDS,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    assert "1 submission(s) already recorded" in proc.stdout and "0 to grade" in proc.stdout
    with contextlib.closing(sqlite3.connect(out / DB_NAME)) as conn:
        per_run = conn.execute(
            "SELECT run_id, resumed, COUNT(unit_id), SUM(reused) FROM runs LEFT JOIN run_units USING (run_id)"
            " GROUP BY run_id ORDER BY run_id"
        ).fetchall()
        syntax = conn.execute(
            "SELECT run_id, status FROM units WHERE name='c_syntax' ORDER BY unit_id"
        ).fetchall()
    assert per_run == [(1, 0, 4, 0), (2, 0, 1, 0), (3, 1, 1, 1)]  # the rerun is a new run, kept apart
    assert syntax == [(1, "could not be loaded"), (2, "could not be loaded")]
    after = _snapshot(out / DB_NAME)
    assert set(before["units"]) <= set(after["units"]) and set(before["rows"]) <= set(after["rows"])


def test_query_failing_and_history(graded):
    db = graded["resumed"] / DB_NAME
    failing = _query(db, "--failing", "relu:forward")
    assert failing.returncode == 0, failing.stderr
    lines = failing.stdout.splitlines()
    assert lines[0] == "1 submission(s) fail relu:forward in run 3"
    rows = [ln for ln in lines[3:] if ln.strip()]
    assert rows and all(ln.startswith("b_off_by_one ") for ln in rows)
    assert any("test_forward[relu-" in ln and "relu(x=" in ln for ln in rows)
    assert _query(db, "--failing", "hygiene").stdout.startswith("no submission fails hygiene in run 3")
    history = _query(db, "--history", "z_sleep").stdout.splitlines()
    z_hash = code_hash(graded["subs"] / "z_sleep.py")[:12]
    assert len(history) == 3 and z_hash in history[2] and " 100.00" in history[2]
    assert _query(db, "--history", "nobody").stdout.strip() == "nothing recorded for nobody"
    board = _query(db, "--scoreboard").stdout.splitlines()
    assert board[0] == "run 3" and board[1].split() == [
        "item",
        "a_good",
        "b_off_by_one",
        "c_syntax",
        "z_sleep",
    ]
    cells = {line.split()[0]: line.split()[1:] for line in board[3:]}
    with open(graded["resumed"] / "summary.csv", newline="") as fh:
        summary = list(csv.DictReader(fh))
    assert cells["score"] == [row["score"] for row in summary]
    assert cells["relu:forward"][2:4] == ["failed", "(inf)"] and cells["relu:forward"][:2] == [
        "passed",
        "(0)",
    ]


def _query(db: Path, *args: str) -> subprocess.CompletedProcess:
    """``convcheck report query DB ARGS`` run in this process (as the console script calls ``main``)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["report", "query", str(db), *args])
    return subprocess.CompletedProcess(["convcheck", "report", "query"], code, out.getvalue(), err.getvalue())


# --------------------------------------------------------------------------- unusable files


def _newer_schema(path: Path) -> None:
    ResultsDB.open(path).close()
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))


def _not_sqlite(path: Path) -> None:
    path.write_bytes(b"student,score\nalice,100\n" * 50)


def _damaged(path: Path) -> None:
    """An SQLite header followed by garbage, as a disk error might leave."""
    ResultsDB.open(path).close()
    path.write_bytes(path.read_bytes()[:100] + b"\xff" * 4000)


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (_newer_schema, f"newer than this convcheck reads ({SCHEMA_VERSION})"),
        (_not_sqlite, "not an SQLite file"),
        (_damaged, "not a usable results database"),
    ],
    ids=["newer schema", "not sqlite", "damaged"],
)
def test_an_unusable_database_is_one_line_exit_2_and_left_alone(tmp_path, make, said):
    subs, out = tmp_path / "subs", tmp_path / "out"
    _write(subs / "a_good.py", GOOD)
    out.mkdir()
    make(out / DB_NAME)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = subprocess.run(
        [sys.executable, "-m", "convcheck", "grade", str(subs), "--report", str(out), "--resume", *GRADE_ARGS],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and said in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("convcheck: error: ")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    query = _query(out / DB_NAME, "--history", "a_good")
    assert query.returncode == 2 and said in query.stderr and query.stderr.count("\n") == 1
    with pytest.raises(ResultsDBError, match=said.replace("(", r"\(").replace(")", r"\)")):
        ResultsDB.open(out / DB_NAME)


# --------------------------------------------------------------------------- recording from any thread


def test_a_unit_recorded_from_another_thread_is_one_transaction_with_its_rows(tmp_path):
    from convcheck.grading.batch import GradeSettings
    from convcheck.grading.discover import Submission
    from convcheck.grading.outcome import Outcome
    from convcheck.grading.rubric import load_rubric
    from convcheck.grading.runner import RunOptions
    from convcheck.grading.store import GradeStore

    _write(tmp_path / "subs" / "alice.py", GOOD)
    sub = Submission("alice", tmp_path / "subs" / "alice.py", tmp_path / "subs" / "alice.py")
    settings = GradeSettings(tmp_path / "out", load_rubric(), RunOptions(), tmp_path / "subs")
    entry = {"op": "relu", "property": "forward", "status": "failed", "test": "t[alice-relu]", "check": "t[relu]",
             "by_dtype": {"float32": {"examples": 3, "outputs": {"y": {"error_ratio": 7.0}}},
                          "float64": {"examples": 2, "outputs": {"y": {"error_ratio": 0.5}}}},
             "failed_dtypes": ["float32"], "message": "y differs",
             "failures": [{"key": "k", "dtype": "float32", "output": "y", "message": "y differs",
                           "counterexample": {"description": "relu(x=(1, 1)) dtype=float32"}}]}  # fmt: skip
    _write(tmp_path / "out" / "alice" / "results.jsonl", json.dumps(entry) + "\n")
    store = GradeStore.start(settings, [sub], resume=False)
    outcome = Outcome("alice", "graded", 50.0, items={"relu:forward": "failed"})
    with ThreadPoolExecutor(1) as pool:  # as a distributed grader's callback may run
        pool.submit(store.record, outcome).result()
    store.record(outcome)  # the same student again in this run: nothing more is written
    assert [o.score for o in store.outcomes()] == [50.0]
    store.finish(interrupted=False)
    with contextlib.closing(sqlite3.connect(tmp_path / "out" / DB_NAME)) as conn:
        rows = conn.execute(
            "SELECT check_id, dtype, status, dtype_failed, error_ratio, counterexample FROM results ORDER BY dtype"
        ).fetchall()
        assert conn.execute("SELECT COUNT(*) FROM units").fetchone() == (1,)
    assert [r[:5] for r in rows] == [
        ("t[relu]", "float32", "failed", 1, 7.0),
        ("t[relu]", "float64", "failed", 0, 0.5),
    ]
    assert json.loads(rows[0][5])[0]["case"] == "relu(x=(1, 1)) dtype=float32" and rows[1][5] is None


# --------------------------------------------------------------------------- code hash


def test_code_hash_follows_the_files_not_where_they_lie(tmp_path):
    for where in ("one", "two"):
        _write(tmp_path / where / "bob" / "submission.py", GOOD)
        _write(tmp_path / where / "bob" / "helpers" / "util.py", "X = 1\n")
    (tmp_path / "two" / "bob" / "__pycache__").mkdir()
    (tmp_path / "two" / "bob" / "__pycache__" / "submission.cpython-311.pyc").write_bytes(b"\0compiled")
    one, two = code_hash(tmp_path / "one" / "bob"), code_hash(tmp_path / "two" / "bob")
    assert one == two  # the same files elsewhere, a bytecode cache aside
    (tmp_path / "two" / "bob" / "helpers" / "util.py").write_text("X = 2\n")
    assert code_hash(tmp_path / "two" / "bob") != one  # a helper's change is a new version
    (tmp_path / "two" / "bob" / "helpers" / "util.py").rename(
        tmp_path / "two" / "bob" / "helpers" / "other.py"
    )
    assert code_hash(tmp_path / "two" / "bob") != one
    single = _write_file(tmp_path / "alice.py", GOOD)
    assert code_hash(single) == code_hash(_write_file(tmp_path / "elsewhere" / "alice.py", GOOD))
    assert code_hash(single) != code_hash(_write_file(tmp_path / "carol.py", GOOD))  # the name counts


def _write_file(path: Path, text: str) -> Path:
    _write(path, text)
    return path

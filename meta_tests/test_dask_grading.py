"""``convcheck grade`` on Dask: a real scheduler and real workers, a worker killed mid-unit, a scheduler
that does not answer, and a LocalCluster against the thread pool.

Every cluster here is real processes on 127.0.0.1: ``dask scheduler`` and two
``dask worker`` processes (one thread each), each in its own process group,
killed in the fixture's finalizer. One submission waits at import until the
test releases it, so a worker can be killed while it grades that submission
and nothing else. The class is graded on ``relu`` only, with 3 examples per
property, so that each unit is a few seconds (mostly the child's start-up).

Fixture and argument names avoid ``impl``, ``op_name``, ``grad`` and
``oracle_name``, which the project's pytest plugin parametrizes.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="the dask extra is not installed")

OPTIONS = ("--ops", "relu", "--max-examples", "3", "--submission-timeout", "120")
START_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 240.0
REFERENCE = "from convcheck.impls.numpy_reference import *\n"


@dataclass
class Gate:
    """The files through which the waiting submission reports that it runs, and is let go."""

    started: Path
    release: Path

    def pids(self) -> list[int]:
        """The pids of the processes that imported the waiting submission, in order."""
        return [int(p) for p in self.started.read_text().split()] if self.started.exists() else []


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())


def make_class(folder: Path, gate: Gate) -> None:
    """Four submissions: correct, a wrong relu backward, unloadable, and one that waits
    at import (writing its pid) until ``gate.release`` exists."""
    _write(folder / "a_reference.py", REFERENCE)
    _write(folder / "c_backward_wrong.py", REFERENCE + "def relu_backward(dy, x):\n    return dy\n")
    _write(
        folder / "d_waits.py",
        f"""
        import os, time
        from pathlib import Path
        with open({str(gate.started)!r}, "a") as fh:
            fh.write(f"{{os.getpid()}}\\n")
        deadline = time.monotonic() + 120
        while not Path({str(gate.release)!r}).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        """
        + REFERENCE,
    )
    _write(folder / "e_unloadable.py", "def helper():\n    return 1\n")


def _grade(subs: Path, out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "convcheck", "grade", str(subs), "--report", str(out), *OPTIONS, *args]


def _grade_released_class(folder: Path, gate: Gate, *args: str) -> subprocess.CompletedProcess:
    """Grade the class in ``folder/subs`` into ``folder/out`` with ``args``, nothing held at the gate."""
    gate.release.touch()
    make_class(folder / "subs", gate)
    return subprocess.run(
        _grade(folder / "subs", folder / "out", *args), capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )


def _summary(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "summary.csv", newline="", encoding="utf-8") as fh:
        return {row["student"]: row for row in csv.DictReader(fh)}


def _scores(out: Path) -> dict[str, tuple[str, str]]:
    return {s: (row["score"], row["status"]) for s, row in _summary(out).items()}


def _wait_for(condition, what: str, timeout: float = START_TIMEOUT_S, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"grading ended (exit {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _gone(pid: int, wait: float = 15.0) -> bool:
    """Whether ``pid`` has ended (a zombie awaiting its reaper counts as ended)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


def _ancestors(pid: int) -> list[int]:
    out = []
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            break
        out.append(pid)
    return out


class Cluster:
    """A scheduler and two workers, each a process group of its own on 127.0.0.1."""

    def __init__(self, folder: Path) -> None:
        self.file = folder / "scheduler.json"
        self.log = folder / "cluster.log"
        self.groups: list[subprocess.Popen] = []
        self.scheduler = self._start("scheduler", "--host", "127.0.0.1", "--port", "0")
        self.scheduler_file_ready()
        self.workers = [
            self._start("worker", "--scheduler-file", str(self.file), "--host", "127.0.0.1") for _ in range(2)
        ]
        self.wait_for_workers(2)

    def _start(self, role: str, *args: str) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "dask", role, *args, "--no-dashboard"]
        if role == "scheduler":
            cmd += ["--scheduler-file", str(self.file)]
        else:
            cmd += ["--nworkers", "1", "--nthreads", "1", "--death-timeout", "30"]
        with open(self.log, "ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
        self.groups.append(proc)
        return proc

    def scheduler_file_ready(self) -> None:
        _wait_for(lambda: self.file.exists() and self.file.stat().st_size > 0, "the scheduler file")

    @property
    def address(self) -> str:
        return json.loads(self.file.read_text())["address"]

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=START_TIMEOUT_S, set_as_default=False) as client:
            client.wait_for_workers(n, timeout=START_TIMEOUT_S)

    def worker_running(self, pid: int) -> subprocess.Popen:
        """The worker (group) that ``pid`` runs under."""
        above = _ancestors(pid)
        found = [w for w in self.workers if w.pid in above]
        assert found, f"process {pid} does not run under a worker of this cluster (ancestors {above})"
        return found[0]

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def close(self) -> None:
        for proc in reversed(self.groups):
            self.kill(proc)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(tmp_path)
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def gate(tmp_path: Path) -> Gate:
    return Gate(tmp_path / "started.pids", tmp_path / "release")


@pytest.fixture(scope="module")
def thread_pool_scores(tmp_path_factory) -> dict[str, tuple[str, str]]:
    """The class graded on the thread pool (``-j 2``): the scores every cluster must give."""
    folder = tmp_path_factory.mktemp("thread_pool")
    proc = _grade_released_class(folder, Gate(folder / "started.pids", folder / "release"), "-j", "2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    scores = _scores(folder / "out")
    assert scores["a_reference"] == ("100.00", "graded") and scores["d_waits"] == ("100.00", "graded")
    assert scores["e_unloadable"] == ("0.00", "could not be loaded")
    assert 0 < float(scores["c_backward_wrong"][0]) < 100
    return scores


def _progress_counts(stdout: str) -> dict[str, int]:
    """How many progress lines (``[k/N] student: ...``) name each student."""
    counts: dict[str, int] = {}
    for line in stdout.splitlines():
        if line.startswith("[") and "] " in line and ": " in line:
            student = line.split("] ", 1)[1].split(":", 1)[0]
            counts[student] = counts.get(student, 0) + 1
    return counts


def _grade_killing_the_waiting_worker(
    tmp_path: Path, cluster: Cluster, gate: Gate, *args: str
) -> tuple[subprocess.CompletedProcess, list[int]]:
    """Grade the class on ``cluster``, SIGKILL the worker that runs the waiting submission once it
    runs, release it once a second try has started; the finished run and the waiting pids."""
    subs, out = tmp_path / "subs", tmp_path / "out"
    make_class(subs, gate)
    cmd = _grade(subs, out, "--scheduler", cluster.address, *args)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: gate.pids(), "the waiting submission to start", RUN_TIMEOUT_S, proc)
        first = gate.pids()[0]
        cluster.kill(cluster.worker_running(first))
        _wait_for(
            lambda: len(gate.pids()) > 1 or proc.poll() is not None or _recorded(out, "d_waits"),
            "a second try",
            RUN_TIMEOUT_S,
        )
        assert _gone(first), f"the killed worker's child {first} outlived it and the retry"
        gate.release.touch()
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr), gate.pids()


def _db_latest_run(out: Path) -> list[tuple[str, str, str, int]]:
    """``(student, score, status, reused)`` of every unit the results database's latest run holds,
    scores formatted as in ``summary.csv``, sorted by student."""
    with contextlib.closing(sqlite3.connect(out / "results.sqlite")) as db:
        rows = db.execute(
            "SELECT u.name, u.score, u.status, ru.reused FROM run_units ru JOIN units u USING (unit_id)"
            " WHERE ru.run_id = (SELECT MAX(run_id) FROM runs) ORDER BY u.name"
        ).fetchall()
    return [(n, "" if score is None else f"{score:.2f}", status, reused) for n, score, status, reused in rows]


def _recorded(out: Path, student: str) -> bool:
    return (out / "summary.csv").exists() and student in _summary(out)


def test_a_killed_worker_is_retried_and_every_submission_recorded_once(
    tmp_path, cluster, gate, thread_pool_scores
):
    run, pids = _grade_killing_the_waiting_worker(tmp_path, cluster, gate)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert len(pids) >= 2, "the waiting submission was not tried again"
    out = tmp_path / "out"
    assert _scores(out) == thread_pool_scores
    assert _progress_counts(run.stdout) == dict.fromkeys(thread_pool_scores, 1)
    for student, (score, _) in thread_pool_scores.items():
        grade = json.loads((out / student / "grade.json").read_text())
        assert f"{grade['score']:.2f}" == score
    assert len((out / "d_waits" / "results.jsonl").read_text().splitlines()) == len(
        (out / "a_reference" / "results.jsonl").read_text().splitlines()
    ), "the killed try's child wrote into the published results"
    assert not (out / ".convcheck-units").exists()
    assert "grading on the Dask scheduler at tcp://127.0.0.1:" in run.stderr
    assert _db_latest_run(out) == [
        (s, score, status, 0) for s, (score, status) in sorted(thread_pool_scores.items())
    ]


def test_a_worker_dying_on_every_try_is_an_infrastructure_error(tmp_path, cluster, gate, thread_pool_scores):
    run, _ = _grade_killing_the_waiting_worker(tmp_path, cluster, gate, "--retries", "0")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = _summary(tmp_path / "out")
    waits = rows.pop("d_waits")
    assert waits["status"] == "infrastructure error" and waits["score"] == ""
    assert "died 1 time(s)" in waits["message"]
    assert {s: (r["score"], r["status"]) for s, r in rows.items()} == {
        s: v for s, v in thread_pool_scores.items() if s != "d_waits"
    }
    grade = json.loads((tmp_path / "out" / "d_waits" / "grade.json").read_text())
    assert grade["score"] is None and grade["status"] == "infrastructure error"
    assert "1 submission(s) not scored, an infrastructure error" in run.stderr and "d_waits" in run.stderr
    html = (tmp_path / "out" / "summary.html").read_text()
    assert "1 not scored (infrastructure error)" in html


def test_losing_the_scheduler_keeps_what_finished_and_resuming_completes_the_class(
    tmp_path, cluster, gate, thread_pool_scores
):
    """The run ends (exit 3) with what finished recorded and the resume command printed; resumed
    (here on the thread pool), the finished submissions are taken from the database and the rest
    graded, each exactly once, to the thread pool's scores."""
    subs, out = tmp_path / "subs", tmp_path / "out"
    make_class(subs, gate)
    cmd = _grade(subs, out, "--scheduler", cluster.address)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: gate.pids() and len(_summary(out)) >= 1, "a finished unit", RUN_TIMEOUT_S, proc)
        cluster.kill(cluster.scheduler)
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        gate.release.touch()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 3, stdout[-3000:] + stderr[-3000:]
    assert "went away" in stderr and "Traceback" not in stderr
    assert "--resume" in stderr.splitlines()[-1] and "--scheduler" in stderr.splitlines()[-1]
    rows = _summary(out)
    assert rows and "d_waits" not in rows
    assert all((out / s / "grade.json").is_file() for s in rows)
    finished_before = [r[0] for r in _db_latest_run(out)]
    assert finished_before == sorted(rows), "the database and the summary disagree"

    resumed = subprocess.run(
        _grade(subs, out, "--resume"), capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    after = _db_latest_run(out)
    assert [(s, score, status) for s, score, status, _ in after] == [
        (s, score, status) for s, (score, status) in sorted(thread_pool_scores.items())
    ]
    assert [s for s, *_, reused in after if reused] == finished_before
    assert _scores(out) == thread_pool_scores


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_scoreboard_run_spreads_its_implementations_over_the_workers(tmp_path, cluster):
    """``convcheck scoreboard --impl`` on the cluster: one unit per implementation (a relative file,
    a shipped and a buggy one), each recorded once with its verdict, its report published whole."""
    work = tmp_path / "work"
    _write(work / "mine.py", REFERENCE)
    names = ["mine", "numpy_reference", "buggy.tanh_backward_from_input"]
    cmd = [sys.executable, "-m", "convcheck", "scoreboard", "--impl", ",".join(["mine.py", *names[1:]])]
    cmd += ["--out", "board", "--scheduler", cluster.address, "--ops", "tanh", "--max-examples", "3"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, cwd=work)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "checking on the Dask scheduler at tcp://127.0.0.1:" in proc.stderr
    out = work / "board"
    verdict = next(ln for ln in (out / "scoreboard.md").read_text().splitlines() if "**verdict**" in ln)
    assert [c.strip() for c in verdict.strip("|").split("|")][2:] == ["PASSED", "PASSED", "FAILED"]
    assert all((out / n / "report.json").is_file() for n in names)
    assert [(n, status) for n, _, status, _ in _db_latest_run(out)] == [(n, "graded") for n in sorted(names)]
    assert not (out / ".convcheck-units").exists()


def test_an_unreachable_scheduler_is_one_line_and_exit_2(tmp_path):
    subs = tmp_path / "subs"
    _write(subs / "a.py", REFERENCE)
    address = f"tcp://127.0.0.1:{_free_port()}"
    proc = subprocess.run(
        _grade(subs, tmp_path / "out", "--scheduler", address), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convcheck: error: cannot reach the Dask scheduler"), lines
    assert address in lines[0]


def test_a_local_cluster_gives_the_thread_pools_scores(tmp_path, gate, thread_pool_scores):
    proc = _grade_released_class(tmp_path, gate, "--cluster", "local:2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "grading on a local Dask cluster of 2 worker(s)" in proc.stderr
    assert _scores(tmp_path / "out") == thread_pool_scores
    assert not (tmp_path / "out" / ".convcheck-units").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--cluster", "remote"), "is not a cluster this command starts"),
        (("--cluster", "local:0"), "must be at least 1"),
        (("--retries", "-1"), "--retries=-1 must be at least 0"),
        (("--cluster", "local", "--scheduler", "tcp://127.0.0.1:1"), "not allowed with argument"),
    ],
)
def test_cluster_usage_errors(tmp_path, args, expected):
    _write(tmp_path / "subs" / "a.py", REFERENCE)
    proc = subprocess.run(
        _grade(tmp_path / "subs", tmp_path / "out", *args), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and expected in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1

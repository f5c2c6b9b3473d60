"""One submission graded on a cluster as a retryable unit: each try in its own folder, published whole.

A Dask worker can die while it grades a submission; the scheduler then runs the
unit again elsewhere, while the first try's ``convcheck run`` child (its own
session) may still be running. So a try never writes into ``OUT/<student>/``
directly: it works in ``OUT/.convcheck-units/<run>/<student>/try-<k>/``, and
only a finished try is published, its files moved into ``OUT/<student>/`` with
``grade.json`` last (a folder without ``grade.json`` is an unfinished one).
Publishing again replaces the same files, so a unit that runs twice is
recorded once.

Tries are counted by their folders (the submissions and ``OUT`` are on a
file system every worker shares, as grading needs anyway). A try past the
allowed retries publishes an ``infrastructure error`` instead of running. A
new try first kills an earlier try's child still running on its machine,
found by the pid and host that try wrote down.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from pathlib import Path

from .discover import Submission
from .outcome import INFRASTRUCTURE_ERROR, Outcome
from .runner import kill_tree
from .submission import GradeSettings, fresh_folder, write_outcome

UNITS_FOLDER = ".convcheck-units"
"""Under ``OUT``: the tries of the units of each run, removed when the run ends."""
CHILD_FILE = "child"
"""In a try's folder: ``<host> <pid>`` of its ``convcheck run`` child."""
STOP_FILE = "STOP"
"""In a run's folder: present once the run is interrupted; every running try stops."""


def run_folder(out: Path, token: str) -> Path:
    """The folder of one grading run's tries."""
    return out / UNITS_FOLDER / token


def new_try(run: Path, student: str) -> tuple[Path, int]:
    """Create the next try's folder for ``student``; return it and how many tries came before."""
    unit = run / student
    unit.mkdir(parents=True, exist_ok=True)
    k = len(earlier_tries(unit)) + 1
    while True:
        try:
            folder = unit / f"try-{k}"
            folder.mkdir()
            return folder, k - 1
        except FileExistsError:  # a try of the same unit running at once (the scheduler ran it twice)
            k += 1


def earlier_tries(unit: Path) -> list[Path]:
    """The try folders of a unit, oldest first."""
    tries = [p for p in unit.glob("try-*") if p.name[4:].isdigit()]
    return sorted(tries, key=lambda p: int(p.name[4:]))


def note_child(folder: Path, pid: int) -> None:
    """Record the try's child (this host, ``pid``) so a later try can stop it."""
    (folder / CHILD_FILE).write_text(f"{socket.gethostname()} {pid}\n")


def stop_leftovers(unit: Path, keep: Path | None = None) -> None:
    """Kill the children of the unit's earlier tries still running on this machine (not ``keep``'s).

    A pid is killed only when its command line names that try's folder, so a
    reused pid is left alone.
    """
    for folder in earlier_tries(unit):
        if folder == keep:
            continue
        try:
            host, pid = (folder / CHILD_FILE).read_text().split()
        except (OSError, ValueError):
            continue
        if host == socket.gethostname() and _runs_in(int(pid), folder):
            kill_tree(int(pid))


def _runs_in(pid: int, folder: Path) -> bool:
    """Whether process ``pid`` is alive and its command line names ``folder``."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return os.fsencode(str(folder)) in cmdline


def publish(folder: Path, final: Path) -> None:
    """Move a finished try's files from ``folder`` into the student's ``final`` folder, ``grade.json``
    last, replacing what an earlier grading left there."""
    fresh_folder(final)
    entries = [p for p in folder.iterdir() if p.name not in (CHILD_FILE, "grade.json")]
    for path in entries:
        target = final / path.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(path, target)
    os.replace(folder / "grade.json", final / "grade.json")


def infrastructure_error(sub: Submission, settings: GradeSettings, why: str) -> Outcome:
    """Record that the grading machines, not the submission, failed ``sub``: no score, published now."""
    ops = list(settings.options.ops) or None
    items = {k: "not_run" for k in settings.rubric.items(ops)}
    message = f"{why}; not scored: grade again (convcheck grade ... --resume) to score this submission"
    outcome = Outcome(sub.student, INFRASTRUCTURE_ERROR, None, message, items)
    final = settings.out / sub.student
    fresh_folder(final)
    write_outcome(final, outcome, settings)
    return outcome


def remove_run(run: Path) -> None:
    """Remove a finished run's tries (and the units folder once no run is left in it)."""
    shutil.rmtree(run, ignore_errors=True)
    with contextlib.suppress(OSError):
        run.parent.rmdir()

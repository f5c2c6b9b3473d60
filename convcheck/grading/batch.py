"""Grading many submissions in parallel, and stopping cleanly when interrupted.

Each submission is graded by ``grade_submission`` in a worker thread (the work
happens in its child process; the thread only waits for it). Finished
outcomes are handed to a callback in the calling thread, one at a time, so the
caller can rewrite the class summary after each. A ``KeyboardInterrupt`` (the
caller turns SIGTERM into one too) sets the stop event: every running child's
process group is killed, queued submissions are dropped, and the outcomes that
finished are returned with ``interrupted=True``.
"""

from __future__ import annotations

import shutil
import signal
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic
from ..notebook import notes_of
from .discover import Submission
from .feedback import write_feedback
from .gradescope import write_results
from .outcome import Outcome, judge, write_grade
from .rubric import Rubric
from .runner import RunOptions, child_command, replay_command, run_child

STALE_FILES = (
    "grade.json",
    "results.jsonl",
    "stdout.txt",
    "stderr.txt",
    "grader-error.txt",
    "feedback.md",
    "results.json",
)
"""Files of an earlier grading in a student's folder, removed before the student is graded again."""
STALE_REPORT = ("report.json", "report.md", "report.html", "junit.xml", "repro")
"""What ``convcheck run --report`` writes there, removed too: a stale report must not pass for this run's."""


@dataclass(frozen=True)
class GradeSettings:
    """What every submission is graded with: where reports go, the rubric, the child's options.

    ``out`` and ``root`` (the submissions folder) are absolute: the children run in their own folders.
    """

    out: Path
    rubric: Rubric
    options: RunOptions
    root: Path
    gradescope: bool = False
    """Also write ``OUT/<student>/results.json`` in Gradescope's format (``--format gradescope``)."""


def _fresh_folder(folder: Path) -> None:
    """Create ``folder``, or remove from it what an earlier grading wrote (nothing else)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in (*STALE_FILES, *STALE_REPORT):
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:  # reached through a link that leaves the submissions folder
        return str(path)


def grade_submission(sub: Submission, settings: GradeSettings, stop: threading.Event) -> Outcome | None:
    """Grade one submission into ``OUT/<student>/``; ``None`` if ``stop`` was set while it ran."""
    folder = settings.out / sub.student
    ops = list(settings.options.ops) or None
    try:
        _fresh_folder(folder)
        if sub.entry is None:
            items = {k: "not_run" for k in settings.rubric.items(ops)}
            outcome = Outcome(sub.student, "invalid submission", 0.0, sub.problem or "no entry module", items)
        else:
            cmd = child_command(sub.entry, folder, settings.options)
            run = run_child(cmd, folder, settings.options.submission_timeout, stop)
            if run.stopped:
                return None
            outcome = judge(sub.student, folder, run, settings.rubric, ops, settings.root)
            outcome.entry = _relative(sub.entry, settings.root)
            outcome.notes = notes_of(sub.entry)
            for mistake in outcome.mistakes:
                mistake["replay"] = replay_command(sub.entry.name, settings.options, mistake["shown"])
        write_grade(folder, outcome)
        write_feedback(folder, outcome, settings.rubric, ops)
        if settings.gradescope:
            write_results(folder, outcome, settings.rubric, ops)
    except OSError as e:
        write_text_atomic(folder / "grader-error.txt", traceback.format_exc())
        return Outcome(sub.student, "grader error", 0.0, f"{type(e).__name__}: {e}")
    return outcome


def _finished(futures: list[Future]) -> list[Outcome]:
    """The outcomes of the futures that completed with one (not cancelled, not stopped)."""
    done = [f for f in futures if f.done() and not f.cancelled() and f.exception() is None]
    return sorted((o for f in done if (o := f.result()) is not None), key=lambda o: o.student)


def grade_all(
    submissions: list[Submission],
    settings: GradeSettings,
    jobs: int,
    on_done: Callable[[Outcome], None],
) -> tuple[list[Outcome], bool]:
    """Grade every submission with ``jobs`` at a time; ``on_done`` sees each outcome as it comes.

    Returns the finished outcomes sorted by student, and whether the run was interrupted.
    """
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="grade")
    futures = [pool.submit(grade_submission, sub, settings, stop) for sub in submissions]
    pending = set(futures)
    try:
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=futures.index):
                outcome = fut.result()
                if outcome is not None:
                    on_done(outcome)
    except KeyboardInterrupt:
        _stop(pool, stop)
        return _finished(futures), True
    except BaseException:
        _stop(pool, stop)
        raise
    pool.shutdown(wait=True)
    return _finished(futures), False


def _stop(pool: ThreadPoolExecutor, stop: threading.Event) -> None:
    """Kill the running children, drop the queued submissions, wait for the workers (ignoring more Ctrl-C)."""
    stop.set()
    previous = _ignore_interrupts()
    try:
        pool.shutdown(wait=True, cancel_futures=True)
    finally:
        _restore(previous)


def _ignore_interrupts() -> dict[int, Any]:
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, signal.SIG_IGN)
    return previous


def _restore(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)

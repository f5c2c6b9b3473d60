"""Grading one submission: its child run, its verdict and its files in one folder.

``grade_submission`` grades into ``OUT/<student>/``; ``grade_into`` grades into
any folder (a cluster's try folder, published later by
``convcheck.grading.units``). Both the thread pool (``convcheck.grading.batch``)
and the Dask tasks (``convcheck.grading.dask_batch``) call them, so a submission
is graded the same way wherever it runs.
"""

from __future__ import annotations

import shutil
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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


def fresh_folder(folder: Path) -> None:
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
    try:
        return grade_into(sub, settings, stop, folder)
    except OSError as e:
        return grader_error(sub, folder, e)


def grader_error(sub: Submission, folder: Path, error: OSError) -> Outcome:
    """The ``grader error`` outcome of ``sub``, its traceback kept in ``folder/grader-error.txt``."""
    write_text_atomic(folder / "grader-error.txt", traceback.format_exc())
    return Outcome(sub.student, "grader error", 0.0, f"{type(error).__name__}: {error}")


def grade_into(
    sub: Submission,
    settings: GradeSettings,
    stop: threading.Event,
    folder: Path,
    started: Callable[[int], None] | None = None,
) -> Outcome | None:
    """Grade ``sub`` with every file (the child's output, ``grade.json``, feedback) written into ``folder``.

    ``started`` is called with the child's pid once it runs. ``None`` if ``stop`` was set while it
    ran; an ``OSError`` (the disk is full) is the caller's to report.
    """
    ops = list(settings.options.ops) or None
    fresh_folder(folder)
    if sub.entry is None:
        items = {k: "not_run" for k in settings.rubric.items(ops)}
        outcome = Outcome(sub.student, "invalid submission", 0.0, sub.problem or "no entry module", items)
    else:
        cmd = child_command(sub.impl or sub.entry, folder, settings.options)
        run = run_child(cmd, folder, settings.options.submission_timeout, stop, started)
        if run.stopped:
            return None
        outcome = judge(sub.student, folder, run, settings.rubric, ops, settings.root)
        outcome.entry = _relative(sub.entry, settings.root)
        outcome.notes = notes_of(sub.entry)
        for mistake in outcome.mistakes:
            mistake["replay"] = replay_command(sub.impl or sub.entry.name, settings.options, mistake["shown"])
    write_outcome(folder, outcome, settings)
    return outcome


def write_outcome(folder: Path, outcome: Outcome, settings: GradeSettings) -> None:
    """Write ``grade.json``, ``feedback.md`` and (``--format gradescope``, for a scored outcome)
    ``results.json`` for ``outcome`` into ``folder``."""
    ops = list(settings.options.ops) or None
    write_grade(folder, outcome)
    write_feedback(folder, outcome, settings.rubric, ops)
    if settings.gradescope and outcome.score is not None:
        write_results(folder, outcome, settings.rubric, ops)

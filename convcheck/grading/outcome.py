"""One student's verdict: from how their ``convcheck run`` child ended to a status, a score and a message.

Statuses, and how they are scored:

``graded``
    the child finished (exit 0 or 1): scored from its ``results.jsonl`` by the rubric;
``incomplete``
    the child finished, but some graded groups have no result: scored, those groups
    earning ``credit.not_run``;
``timed out``
    still running at ``--submission-timeout``: killed, score 0 (the checks that finished
    are kept in ``grade.json``);
``could not be loaded``
    exit 2, a usage error: the child's one-line error, score 0;
``crashed``
    any other exit, or killed by a signal: the tail of its stderr, score 0;
``invalid submission``
    no entry module could be chosen (``convcheck.grading.discover``), score 0;
``grader error``
    the grader itself failed on this submission (e.g. the disk is full), score 0;
``infrastructure error``
    the machines grading it failed, not the submission: a Dask worker died while
    running it on every allowed try (``convcheck grade --retries``). No score (``None``,
    an empty cell in the summary): the student is graded again on a rerun.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic
from ..grouping import FailureGroup, block_lines, failure_groups
from .rubric import Rubric
from .runner import ChildRun
from .scoring import declared_features, group_statuses, item_statuses, score

GRADED_STATUSES = ("graded", "incomplete")
"""Statuses whose score comes from the rubric; every other status scores 0, but ``UNSCORED``."""
INFRASTRUCTURE_ERROR = "infrastructure error"
UNSCORED = (INFRASTRUCTURE_ERROR,)
"""Statuses that carry no score: the grading machines failed, so the student was not judged."""

ERROR_PREFIX = "convcheck: error: "
STDERR_TAIL_LINES = 20


@dataclass
class Outcome:
    """The verdict on one student, as written to ``OUT/<student>/grade.json`` and the summary."""

    student: str
    status: str
    score: float | None
    message: str = ""
    items: dict[str, str] = field(default_factory=dict)
    checks: int = 0
    returncode: int | None = None
    seconds: float = 0.0
    entry: str | None = None
    stderr_tail: list[str] = field(default_factory=list)
    mistakes: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What was dropped from a notebook before running it (``convcheck.notebook``)."""

    @property
    def failing(self) -> list[str]:
        """The graded items that failed or errored (``"op:property"``)."""
        return [k for k, s in self.items.items() if s in ("failed", "error")]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "failing": self.failing}


def read_results(path: Path) -> list[dict[str, Any]]:
    """The finished checks in a ``results.jsonl`` (a line cut short by a kill is dropped)."""
    out = []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    for line in lines:
        with_dict = _json_line(line)
        if with_dict is not None:
            out.append(with_dict)
    return out


def _json_line(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) and {"op", "property", "status"} <= value.keys() else None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _load_error(stderr: str) -> str:
    """The child's one-line usage error (its last ``convcheck: error:`` line, else its last line)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln.removeprefix(ERROR_PREFIX) for ln in lines if ln.startswith(ERROR_PREFIX)]
    return (errors or lines or ["(no message on stderr)"])[-1]


def _how_it_ended(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def _verdict(run: ChildRun, checks: int, stderr: str, items: dict[str, str]) -> tuple[str, str]:
    """The status and the one-line message for how the child ended (see the module docstring)."""
    if run.timed_out:
        return (
            "timed out",
            f"still running after the {run.seconds:.0f} s limit; killed ({checks} check(s) had finished)",
        )
    code = run.returncode if run.returncode is not None else -signal.SIGKILL
    if code == 2:
        return "could not be loaded", _load_error(stderr)
    if code not in (0, 1):
        last = next((ln for ln in reversed(stderr.splitlines()) if ln.strip()), "(nothing on stderr)")
        return "crashed", f"{_how_it_ended(code)}: {last}"
    not_run = [k for k, s in items.items() if s == "not_run"]
    if not_run:
        more = ", ..." if len(not_run) > 5 else ""
        return (
            "incomplete",
            f"{len(not_run)} graded item(s) produced no result: {', '.join(not_run[:5])}{more}",
        )
    return "graded", ""


def judge(
    student: str, folder: Path, run: ChildRun, rubric: Rubric, ops: list[str] | None, root: Path | None = None
) -> Outcome:
    """The verdict on a finished (or killed) child whose files are in ``folder``.

    ``root`` (the submissions folder) is cut from paths in messages, for short lines.
    """
    results = read_results(folder / "results.jsonl")
    stderr = _read_text(folder / "stderr.txt")
    declared = declared_features(results)
    items = item_statuses(rubric, group_statuses(results), declared, ops)
    status, message = _verdict(run, len(results), stderr, items)
    groups = failure_groups(results)  # one entry per mistake, not per failing property
    if status == "graded" and groups:
        message = mistakes_message(groups)
    if root:
        message = message.replace(f"{root}{os.sep}", "")
        stderr = stderr.replace(f"{root}{os.sep}", "")
    return Outcome(
        student,
        status,
        score(rubric, items, ops) if status in GRADED_STATUSES else 0.0,
        _one_line(message),
        items,
        checks=len(results),
        returncode=run.returncode,
        seconds=round(run.seconds, 1),
        stderr_tail=[] if status == "graded" else stderr.splitlines()[-STDERR_TAIL_LINES:],
        mistakes=[mistake_record(g, root) for g in groups],
    )


def mistake_record(group: FailureGroup, root: Path | None = None) -> dict[str, Any]:
    """One mistake as ``grade.json`` keeps it for feedback: the group (``FailureGroup.to_dict``), its
    smallest failing case's description (``case``) and the lines a terminal shows for it (``details``:
    the failure with expected against got, the likely cause), with ``root`` cut from paths."""
    case = group.smallest_case() or {}
    details = block_lines(group)[1:]
    if root:
        details = [line.replace(f"{root}{os.sep}", "") for line in details]
    return {**group.to_dict(), "case": case.get("description"), "details": details}


def mistakes_message(groups: list[Any]) -> str:
    """The feedback line of a graded run: each mistake once, with how many checks it failed."""
    return f"{len(groups)} mistake(s): " + "; ".join(f"{g.op}: {g.title} ({g.span()})" for g in groups)


def score_text(outcome: Outcome) -> str:
    """The score as the summary and the progress lines print it: two decimals, or ``-`` for none."""
    return "-" if outcome.score is None else f"{outcome.score:.2f}"


def write_grade(folder: Path, outcome: Outcome) -> None:
    """Write ``folder/grade.json``: the verdict, every graded item's status and the stderr tail."""
    write_text_atomic(folder / "grade.json", json.dumps(outcome.to_dict(), indent=2) + "\n")

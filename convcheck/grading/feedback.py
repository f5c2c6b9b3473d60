"""Per-student feedback a student can read: ``OUT/<student>/feedback.md``, from their ``Outcome`` alone.

The file says, in this order: the score and the status; why nothing could be
graded, when that happened (the error, e.g. a notebook cell's number and its
traceback); what was dropped from a notebook (magics, shell lines, skipped
cells); then each mistake once (``convcheck.grouping``): the graded items it
fails, the smallest input that shows it, the hint (the likely cause), the
failure as the terminal shows it (expected against got) and the command that
replays it; last, a table of every graded item with its status.

``item_text`` explains one rubric item in plain text (passed, which mistake
fails it, or why it earned what it did); the Gradescope results reuse it
(``convcheck.grading.gradescope``), so both say the same thing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic
from .outcome import ERROR_PREFIX, GRADED_STATUSES, Outcome
from .rubric import Rubric

CELL_NUMBERING = "Cell numbers count code cells only, from 1 at the top; markdown cells are not counted."

_STATUS_TEXT = {
    "unsupported": "declared unsupported in CONVCHECK_CAPABILITIES, so not checked",
    "missing": "not checked: the contract function(s) it needs are not defined",
    "skipped": "not checked: nothing could be checked under what the module declares",
}


def item_parts(item: str) -> tuple[str, str]:
    """``("conv2d", "backward")`` for ``conv2d:backward``, ``("conv2d", "dilation")`` for ``conv2d.dilation``."""
    op, _, rest = item.partition(":") if ":" in item else item.partition(".")
    return op, rest


def mistakes_of(outcome: Outcome, item: str) -> list[dict[str, Any]]:
    """The outcome's mistakes that fail a property item (``op:property``); none for a feature item."""
    if ":" not in item:
        return []
    op, prop = item_parts(item)
    return [m for m in outcome.mistakes if m.get("op") == op and prop in m.get("properties", [])]


def mistake_text(mistake: dict[str, Any]) -> str:
    """One mistake in plain text: title, smallest input, hint, the failure's lines, the replay command."""
    lines = [f"{mistake['op']}: {mistake['title']} ({len(mistake.get('checks', []))} failing check(s))"]
    if mistake.get("case"):
        lines.append(f"smallest input: {mistake['case']}")
    cause = mistake.get("cause")
    lines.append(
        f"hint: {cause}" if cause else "hint: no known mistake matches; compare expected and got below"
    )
    details = [ln for ln in mistake.get("details", []) if ln.strip() != (cause or "").strip()]
    lines += details
    if mistake.get("replay"):
        lines.append(f"replay: {mistake['replay']}")
    return "\n".join(lines)


def _not_run_text(outcome: Outcome) -> str:
    if outcome.status in GRADED_STATUSES:
        return "not run: the run ended before reaching this check"
    return f"not run: the submission {outcome.status}" + (f": {outcome.message}" if outcome.message else "")


def item_text(outcome: Outcome, item: str) -> str:
    """What one graded item's status means for this student, in plain text (several lines for a mistake)."""
    status = outcome.items.get(item, "not_run")
    if status == "passed":
        return "passed"
    if status in ("failed", "error"):
        found = mistakes_of(outcome, item)
        if not found:
            return f"{status}: see the run's output (stdout.txt) for the failure"
        return "\n\n".join(mistake_text(m) for m in found)
    if status == "not_run":
        return _not_run_text(outcome)
    return f"{status}: {_STATUS_TEXT.get(status, status)}"


def load_error_lines(outcome: Outcome) -> list[str]:
    """The error that kept the submission from being graded, with what follows it (a traceback)."""
    tail = outcome.stderr_tail
    starts = [i for i, line in enumerate(tail) if line.startswith(ERROR_PREFIX)]
    lines = tail[starts[-1] :] if starts else tail
    lines = [lines[0].removeprefix(ERROR_PREFIX), *lines[1:]] if lines else []
    return lines or [outcome.message]


def _fenced(lines: list[str]) -> list[str]:
    return ["```text", *lines, "```"]


def summary_markdown(outcome: Outcome) -> str:
    """The head of the feedback: the score, the status, why nothing was graded, the notebook's notes."""
    parts = [f"# convcheck feedback: {outcome.student}", ""]
    source = f" (`{outcome.entry}`)" if outcome.entry else ""
    score = "not given" if outcome.score is None else f"{outcome.score:.2f} / 100"
    parts.append(f"**Score: {score}**, status: {outcome.status}{source}")
    parts.append("")
    if outcome.status not in GRADED_STATUSES:
        parts += ["## Why nothing could be graded", ""]
        parts += _fenced(load_error_lines(outcome)) if outcome.stderr_tail else [outcome.message]
        parts.append("")
        if (outcome.entry or "").endswith(".ipynb") and not outcome.notes:
            parts += [CELL_NUMBERING, ""]
    elif outcome.message:
        parts += [outcome.message, ""]
    if outcome.notes:
        parts += ["## Dropped from your notebook before running it", "", CELL_NUMBERING, ""]
        parts += [f"- {note}" for note in outcome.notes]
        parts.append("")
    return "\n".join(parts)


def _mistake_markdown(outcome: Outcome, mistake: dict[str, Any]) -> list[str]:
    items = [
        f"{mistake['op']}:{p}"
        for p in mistake.get("properties", [])
        if f"{mistake['op']}:{p}" in outcome.items
    ]
    lines = [f"### {mistake['op']}: {mistake['title']}", ""]
    if items:
        lines.append(f"- **Fails**: {', '.join(items)} ({len(mistake.get('checks', []))} check(s))")
    if mistake.get("case"):
        lines.append(f"- **Smallest input**: `{mistake['case']}`")
    lines.append(
        f"- **Hint**: {mistake.get('cause') or 'no known mistake matches; compare expected and got below'}"
    )
    if mistake.get("replay"):
        lines.append(f"- **Replay it**: `{mistake['replay']}`")
    lines.append("")
    cause = (mistake.get("cause") or "").strip()
    return [*lines, *_fenced([ln for ln in mistake.get("details", []) if ln.strip() != cause]), ""]


def _items_table(outcome: Outcome, rubric: Rubric, ops: list[str] | None) -> list[str]:
    weights = rubric.items(ops)
    total = sum(weights.values()) or 1.0
    lines = ["## Every graded item", "", "| item | status | share of the score |", "|---|---|---|"]
    for item, weight in weights.items():
        lines.append(f"| {item} | {outcome.items.get(item, 'not_run')} | {100 * weight / total:.1f}% |")
    return [*lines, ""]


def feedback_markdown(outcome: Outcome, rubric: Rubric, ops: list[str] | None = None) -> str:
    """The whole ``feedback.md`` for one student (see the module docstring)."""
    parts = [summary_markdown(outcome)]
    if outcome.mistakes:
        parts += ["## What failed", "", "Each mistake once, shown on the smallest input that exposes it.", ""]
        for mistake in outcome.mistakes:
            parts += _mistake_markdown(outcome, mistake)
    parts += _items_table(outcome, rubric, ops)
    return "\n".join(parts)


def write_feedback(folder: Path, outcome: Outcome, rubric: Rubric, ops: list[str] | None = None) -> None:
    """Write ``folder/feedback.md`` (atomically)."""
    write_text_atomic(folder / "feedback.md", feedback_markdown(outcome, rubric, ops))

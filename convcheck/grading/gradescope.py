"""Gradescope's autograder output: ``OUT/<student>/results.json`` (``convcheck grade --format gradescope``).

The file follows the fields of Gradescope's autograder specification
("Output format"), written down as a JSON Schema in
``convcheck/spec/gradescope_results.schema.json``:

- top level: ``score`` (the student's 0-100 score), ``execution_time`` (seconds),
  ``output`` (the head of ``feedback.md``: the status, why nothing was graded with
  the error and its traceback, the notes on a notebook; Markdown, ``output_format``
  ``md``), ``visibility`` and ``stdout_visibility``, and ``tests``;
- one test per rubric item (``conv2d:backward``, ``conv2d.dilation``), in the
  rubric's order: ``name``, ``max_score`` (its share of 100 points), ``score``
  (that share times the credit its status earns), ``status`` (``passed`` when it
  earned every point, else ``failed``), ``output`` (``feedback.item_text``: the
  mistake with its smallest input, hint and replay command, or what the status
  means), ``tags`` (the operation, and ``feature`` or ``property``) and ``visibility``.

Scores are out of 100: give the Gradescope assignment's autograder 100 points, or
let Gradescope scale them. Tests are ``visible`` to students at once and the
autograder's own stdout is ``hidden`` (it is for the course staff); a course that
wants another policy edits the file in its ``run_autograder`` script.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic
from .feedback import item_parts, item_text, summary_markdown
from .outcome import GRADED_STATUSES, Outcome
from .rubric import Rubric

RESULTS_NAME = "results.json"
TEST_VISIBILITY = "visible"
STDOUT_VISIBILITY = "hidden"
POINTS = 100.0


def schema_path() -> Path:
    """Where the JSON Schema of the fields written here lives (``convcheck.spec``)."""
    from .. import spec

    return Path(spec.__file__).resolve().parent / "gradescope_results.schema.json"


def _test(outcome: Outcome, rubric: Rubric, item: str, points: float) -> dict[str, Any]:
    status = outcome.items.get(item, "not_run")
    graded = outcome.status in GRADED_STATUSES
    earned = round(points * rubric.credit.get(status, 0.0), 4) if graded else 0.0
    output = item_text(outcome, item)
    if not graded and status != "not_run":  # the checks that finished are kept, but earn nothing
        output += f"\n(no points: the submission {outcome.status}, which scores 0)"
    op, name = item_parts(item)
    return {
        "name": item,
        "score": earned,
        "max_score": round(points, 4),
        "status": "passed" if earned >= round(points, 4) else "failed",
        "output": output,
        "tags": [op, "feature" if ":" not in item else "property", name],
        "visibility": TEST_VISIBILITY,
    }


def results(outcome: Outcome, rubric: Rubric, ops: list[str] | None = None) -> dict[str, Any]:
    """The ``results.json`` document of one student (see the module docstring)."""
    weights = rubric.items(ops)
    total = sum(weights.values())
    tests = [_test(outcome, rubric, item, POINTS * w / total) for item, w in weights.items() if total > 0]
    return {
        "score": round(outcome.score or 0.0, 2),  # never called for an unscored outcome
        "execution_time": round(outcome.seconds),
        "output": summary_markdown(outcome),
        "output_format": "md",
        "test_output_format": "text",
        "visibility": TEST_VISIBILITY,
        "stdout_visibility": STDOUT_VISIBILITY,
        "tests": tests,
        "extra_data": {"status": outcome.status, "failing": outcome.failing, "notes": outcome.notes},
    }


def write_results(folder: Path, outcome: Outcome, rubric: Rubric, ops: list[str] | None = None) -> None:
    """Write ``folder/results.json`` (atomically)."""
    text = json.dumps(results(outcome, rubric, ops), indent=2, ensure_ascii=False) + "\n"
    write_text_atomic(folder / RESULTS_NAME, text)

"""The class summary: ``OUT/summary.csv`` for spreadsheets and ``OUT/summary.html`` for reading.

Both list the students graded so far, sorted by name, and are rewritten
atomically after each one finishes, so an interrupted run leaves a valid
summary of what finished. They hold no times or durations, so a rerun on the
same submissions gives byte-identical files, except for a student who timed
out: how far their run got before the limit depends on the machine's load.

CSV columns: ``student, score, status, message, failing`` (the failed items,
``;``-separated), then one column per graded item (``conv2d:forward``,
``conv2d.dilation``, ...) holding its status. The HTML page is self-contained
(inline CSS, no scripts): the scores, a status matrix, and the rubric.
"""

from __future__ import annotations

import csv
import io
import statistics
from html import escape
from pathlib import Path
from urllib.parse import quote

from ..atomic import write_text_atomic
from .outcome import Outcome, score_text
from .rubric import Rubric

FIXED_COLUMNS = ("student", "score", "status", "message", "failing")

_SYMBOL = {
    "passed": "✓",
    "failed": "✗",
    "error": "!",
    "unsupported": "u",
    "missing": "m",
    "skipped": "s",
    "not_run": "·",
}

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ddd; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.bar { display: inline-block; height: 0.7em; background: #4a8; margin-right: 4px; }
.st-graded { color: #161; } .st-incomplete { color: #963; }
.st-other { color: #a11; font-weight: 600; }
.m td { text-align: center; padding: 2px 4px; min-width: 1.2em; }
.m th.v { writing-mode: vertical-rl; transform: rotate(180deg); font-weight: normal; }
.passed { background: #dfd; } .failed, .error { background: #fcc; }
.unsupported, .missing, .skipped { background: #ffe6b3; } .not_run { background: #eee; }
.msg { max-width: 40em; font-size: 0.9em; }
"""


def _csv_text(outcomes: list[Outcome], items: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*FIXED_COLUMNS, *items])
    for o in outcomes:
        cells = [
            o.student,
            "" if o.score is None else f"{o.score:.2f}",
            o.status,
            o.message,
            ";".join(o.failing),
        ]
        writer.writerow([*cells, *(o.items.get(k, "not_run") for k in items)])
    return buf.getvalue()


def _links(out: Path, student: str) -> str:
    """Links to the student's report files that exist."""
    names = ("feedback.md", "report.html", "stdout.txt", "grade.json", "stderr.txt", "results.json")
    found = [n for n in names if (out / student / n).is_file()]
    return " ".join(f'<a href="{quote(student)}/{quote(n)}">{escape(n)}</a>' for n in found)


def _status_class(status: str) -> str:
    return {"graded": "st-graded", "incomplete": "st-incomplete"}.get(status, "st-other")


def _score_rows(out: Path, outcomes: list[Outcome]) -> list[str]:
    rows = []
    for o in outcomes:
        failing = ", ".join(o.failing)
        rows.append(
            f"<tr><td>{escape(o.student)}</td>"
            f'<td class="num"><span class="bar" style="width:{(o.score or 0) * 0.8:.0f}px"></span>{score_text(o)}</td>'
            f'<td class="{_status_class(o.status)}">{escape(o.status)}</td>'
            f'<td class="msg">{escape(failing)}</td><td class="msg">{escape(o.message)}</td>'
            f"<td>{_links(out, o.student)}</td></tr>"
        )
    return rows


def _matrix(outcomes: list[Outcome], items: list[str]) -> list[str]:
    head = "".join(f'<th class="v">{escape(k)}</th>' for k in items)
    lines = [f'<table class="m"><tr><th>student</th>{head}</tr>']
    for o in outcomes:
        cells = []
        for k in items:
            s = o.items.get(k, "not_run")
            cells.append(f'<td class="{s}" title="{escape(k)}: {s}">{_SYMBOL.get(s, "?")}</td>')
        lines.append(f"<tr><td>{escape(o.student)}</td>{''.join(cells)}</tr>")
    lines.append("</table>")
    legend = ", ".join(f"{sym} {escape(st)}" for st, sym in _SYMBOL.items())
    lines.append(f"<p>{legend}</p>")
    return lines


def _rubric_table(rubric: Rubric, weights: dict[str, float]) -> list[str]:
    total = sum(weights.values())
    lines = ["<table><tr><th>item</th><th>weight</th><th>share of the score</th></tr>"]
    for k, w in weights.items():
        lines.append(
            f'<tr><td>{escape(k)}</td><td class="num">{w:g}</td><td class="num">{100 * w / total:.1f}%</td></tr>'
        )
    lines.append("</table>")
    credit = ", ".join(f"{escape(s)} {c:g}" for s, c in rubric.credit.items())
    lines.append(f"<p>Credit by status: {credit}. Strict: {'yes' if rubric.strict else 'no'}.</p>")
    return lines


def _stats(outcomes: list[Outcome]) -> str:
    if not outcomes:
        return "No submission has finished yet."
    scores = [o.score for o in outcomes if o.score is not None]
    unscored = len(outcomes) - len(scores)
    not_scored = (
        f" {unscored} not scored (infrastructure error): grade again to score them." if unscored else ""
    )
    if not scores:
        return f"No student has a score yet.{not_scored}"
    return (
        f"{len(scores)} student(s); mean {statistics.fmean(scores):.2f}, median {statistics.median(scores):.2f}, "
        f"min {min(scores):.2f}, max {max(scores):.2f}.{not_scored}"
    )


def _html_text(out: Path, outcomes: list[Outcome], rubric: Rubric, ops: list[str] | None, title: str) -> str:
    weights = rubric.items(ops)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>{escape(_stats(outcomes))} Rubric: <code>{escape(Path(rubric.source).name)}</code>.</p>",
        "<table><tr><th>student</th><th>score</th><th>status</th><th>failing</th><th>message</th><th>report</th></tr>",
        *_score_rows(out, outcomes),
        "</table>",
        "<h2>Status of every graded item</h2>",
        *_matrix(outcomes, list(weights)),
        "<h2>Rubric</h2>",
        *_rubric_table(rubric, weights),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_summary(
    out: Path,
    outcomes: list[Outcome],
    rubric: Rubric,
    ops: list[str] | None = None,
    title: str = "convcheck grades",
) -> None:
    """Write ``out/summary.csv`` and ``out/summary.html`` (atomically) for ``outcomes``, sorted by student."""
    ordered = sorted(outcomes, key=lambda o: o.student)
    items = list(rubric.items(ops))
    write_text_atomic(out / "summary.csv", _csv_text(ordered, items))
    write_text_atomic(out / "summary.html", _html_text(out, ordered, rubric, ops, title))

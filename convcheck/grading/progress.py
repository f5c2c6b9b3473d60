"""Progress while grading, and the final table.

On a terminal, a rich progress bar with each finished student printed above
it; otherwise (a log, CI, a pipe) one plain line per finished student. The
final table lists every graded student: score, status, and the failing
properties (or, for a submission that was not graded, why).
"""

from __future__ import annotations

import os
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .outcome import GRADED_STATUSES, Outcome, score_text

PLAIN_WIDTH = 160
"""Width of the output when it is not a terminal (a log keeps the table unwrapped), unless COLUMNS says."""
DETAIL_LIMIT = 160


def _console() -> Console:
    """A console for progress and the table: the terminal's width, or ``PLAIN_WIDTH`` in a log."""
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(highlight=False, width=PLAIN_WIDTH)
    return console


def _line(outcome: Outcome) -> str:
    detail = ", ".join(outcome.failing) if outcome.status in GRADED_STATUSES else outcome.message
    return f"{outcome.student}: {score_text(outcome)} ({outcome.status}){' - ' + detail if detail else ''}"


class GradeProgress:
    """A context manager that shows how many of ``total`` submissions are graded."""

    def __init__(self, total: int, console: Console | None = None) -> None:
        self.console = console or _console()
        self.total = total
        self.done = 0
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> GradeProgress:
        if self.console.is_terminal:
            self._bar = Progress(
                TextColumn("grading"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("grading", total=self.total)
        return self

    def finished(self, outcome: Outcome) -> None:
        """Report one finished submission."""
        self.done += 1
        width = len(str(self.total))
        line = f"[{self.done:>{width}}/{self.total}] {_line(outcome)}"
        if self._bar is not None and self._task is not None:
            self._bar.console.print(line, markup=False)
            self._bar.advance(self._task)
        else:
            self.console.print(line, markup=False, soft_wrap=True)

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, value, tb)


def final_table(outcomes: list[Outcome]) -> Table:
    """The table printed at the end: student, score, status, failing properties (or why not graded).

    Long messages are cut here; ``summary.csv`` and ``grade.json`` hold them whole.
    """
    table = Table(title="convcheck grades", title_justify="left")
    table.add_column("student")
    table.add_column("score", justify="right")
    table.add_column("status")
    table.add_column("failing properties")
    for o in sorted(outcomes, key=lambda o: o.student):
        detail = ", ".join(o.failing) if o.status in GRADED_STATUSES else o.message
        detail = detail if len(detail) <= DETAIL_LIMIT else detail[: DETAIL_LIMIT - 3] + "..."
        style = None if o.status in GRADED_STATUSES else "red"
        table.add_row(Text(o.student), score_text(o), Text(o.status), Text(detail), style=style)
    return table

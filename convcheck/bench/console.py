"""The terminal side of ``convcheck bench``: a progress bar while it runs, tables when it is done.

The progress bar goes to standard error and disappears when the run ends, so
standard output holds only the tables, the same rows as bench.md. Off a
terminal (a log, CI), where no bar can be drawn, one line per finished entry
goes to standard error instead.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any

from . import rows


class Progress:
    """One bar over the planned entries, with the current entry and phase as its text."""

    def __init__(self, total: int, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        console = console or Console(stderr=True)
        self._plain = not console.is_terminal
        self._console, self._total, self._finished, self._current = console, total, 0, ""
        self._start = time.perf_counter()
        self._progress = RichProgress(
            TextColumn("[bold]bench[/bold]"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task("starting", total=total)

    def phase(self, text: str) -> None:
        """Show what is happening now."""
        self._current = text.split(":")[0]
        self._progress.update(self._task, description=text)

    def done(self, _: object = None) -> None:
        """One more entry finished (off a terminal, where no bar is drawn, a line says so)."""
        self._finished += 1
        self._progress.advance(self._task)
        if self._plain:
            elapsed = time.perf_counter() - self._start
            print(
                f"bench: [{self._finished}/{self._total}] {self._current} done, {elapsed:.0f} s elapsed",
                file=sys.stderr,
                flush=True,
            )

    @contextlib.contextmanager
    def running(self) -> Iterator[Progress]:
        with self._progress:
            yield self


TERMINAL_COLUMNS = tuple(i for i, h in enumerate(rows.ROW_HEADER) if h != "layer")
"""bench.md's columns without the layer description, which the terminal has no room for."""


def _console(console: Any) -> Any:
    """``console``, or a new one on standard output (140 columns wide when not a terminal)."""
    from rich.console import Console

    if console is not None:
        return console
    plain = Console()
    return plain if plain.is_terminal else Console(width=140)


def tables(sec: dict[str, Any], console: Any = None) -> None:
    """Print the headline, one table per corpus and the summary table."""
    from ..tables import rich_table

    console = _console(console)
    for line in rows.headline(sec):
        console.print(line, highlight=False)
    header = [rows.ROW_HEADER[i] for i in TERMINAL_COLUMNS]
    justify = ["left" if h in ("entry", "function", "check") else "right" for h in header]
    for c in sec["corpora"]:
        body = rows.rows(sec, c["name"])
        styles = ["bold red" if row[-1].startswith(("FAIL", "ERROR")) else None for row in body]
        shown = [[row[i] for i in TERMINAL_COLUMNS] for row in body]
        console.print(rich_table(header, shown, justify, f"{c['title']} ({c['name']})", styles, fold=True))
    summary = rich_table(
        rows.SUMMARY_HEADER,
        rows.summary_rows(sec),
        ["right"] * len(rows.SUMMARY_HEADER),
        "Summary (ratio = implementation / torch median time)",
        fold=True,
    )
    console.print(summary)


__all__ = ["Progress", "tables"]

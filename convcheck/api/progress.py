"""Progress while ``check`` runs: each finished check's verdict as soon as it is known.

``Progress`` is a pytest plugin handed to the engine. After each check it reads
the results the convcheck plugin has collected and updates a view: in a Jupyter
kernel, an HTML display updated in place (``IPython.display`` with a display
id) showing the operation x property verdicts so far; in a terminal, one rich
progress line on standard error (the descriptor as it was before pytest's
output capture), with a line printed for each property that fails.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

MIN_INTERVAL_S = 0.25
"""Least time between two updates of the view (the last one is always shown)."""


def in_jupyter() -> bool:
    """Whether this process is a Jupyter (IPython) kernel that can display rich output."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class _View:
    def start(self, total: int) -> None: ...
    def update(self, progress: Progress, final: bool = False) -> None: ...
    def close(self) -> None: ...


class _Notebook(_View):
    def __init__(self) -> None:
        import IPython.display

        ipy: Any = IPython.display  # untyped
        self._html: Any = ipy.HTML
        self._handle: Any = ipy.display(ipy.HTML("<p>convcheck: starting...</p>"), display_id=True)

    def update(self, progress: Progress, final: bool = False) -> None:
        from .display import progress_html

        if self._handle is not None:
            self._handle.update(
                self._html(progress_html(progress.label, progress.results, progress.total, final))
            )


class _Terminal(_View):
    def __init__(self, stream: Any) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._console = Console(file=stream, stderr=True)
        self._bar = Progress(
            TextColumn("convcheck {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self._console,
            transient=True,
            redirect_stdout=False,  # pytest swaps sys.stdout and sys.stderr itself while tests run
            redirect_stderr=False,
        )
        self._task: Any = None
        self._reported: set[tuple[str, str]] = set()

    def start(self, total: int) -> None:
        self._bar.start()
        self._task = self._bar.add_task("", total=total or None)

    def update(self, progress: Progress, final: bool = False) -> None:
        from ..summary import rows

        for row in rows(progress.results):
            key = (row["op"], row["property"])
            if row["status"] in ("failed", "error") and key not in self._reported:
                self._reported.add(key)
                self._console.print(f"convcheck: {row['op']}:{row['property']} {row['status'].upper()}")
        last = progress.results[-1] if progress.results else None
        what = f"{last['op']}:{last['property']} {last['status']}" if last else ""
        if self._task is not None:
            self._bar.update(self._task, completed=len(progress.results), description=what)

    def close(self) -> None:
        self._bar.stop()


class Progress:
    """The pytest plugin: counts the checks, reads each finished result, updates the view."""

    def __init__(self, label: str, mode: bool | None, started_at: float | None = None) -> None:
        self.label = label
        self.results: list[dict[str, Any]] = []
        self.total = 0
        self.first_result_at: float | None = None
        self.started_at = time.perf_counter() if started_at is None else started_at
        self._config: Any = None
        self._last = 0.0
        self._stream: Any = None
        self.view = self._choose(mode)

    def _choose(self, mode: bool | None) -> _View:
        if mode is False:
            return _View()
        if in_jupyter():
            return _Notebook()
        try:  # pytest captures descriptor 2 while tests run: write to a copy of it made now
            fd = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            return _View()
        if mode is None and not os.isatty(fd):
            return _View()
        self._stream = os.fdopen(os.dup(fd), "w", encoding="utf-8", errors="replace")
        return _Terminal(self._stream)

    def pytest_configure(self, config: Any) -> None:
        self._config = config

    def pytest_collection_finish(self, session: Any) -> None:
        self.total = len(session.items)
        self.view.start(self.total)

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        from ..pytest_plugin import collected_results

        self.results = collected_results(self._config)
        if self.results and self.first_result_at is None:
            self.first_result_at = time.perf_counter()
        now = time.perf_counter()
        if now - self._last >= MIN_INTERVAL_S:
            self._last = now
            self.view.update(self)

    def pytest_sessionfinish(self, session: Any, exitstatus: int) -> None:
        from ..pytest_plugin import collected_results

        if self._config is not None:
            self.results = collected_results(self._config)
        self.view.update(self, final=True)

    def close(self) -> None:
        self.view.close()
        if self._stream is not None:
            self._stream.close()
            self._stream = None


__all__ = ["Progress", "in_jupyter"]

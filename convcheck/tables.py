"""Tables, one renderer per medium: the terminal (rich) and Markdown (GitHub pipe tables).

HTML tables are written in the jinja2 templates (``convcheck/report/templates``).
Both renderers here take a header and rows of cells (anything ``str()`` can show)
and return lines, so callers print them, write them to a file or assert on them
alike, on a terminal or off one (a log, a test capturing standard output).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from rich.console import JustifyMethod

LEFT, RIGHT = "left", "right"


def _box() -> Any:
    """A rule of hyphens under the header and nothing else: plain ASCII, safe in any encoding."""
    from rich.box import Box

    return Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)


def rich_table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    justify: Sequence[str] | None = None,
    title: str | None = None,
    row_styles: Sequence[str | None] | None = None,
    fold: bool = False,
) -> Any:
    """A ``rich.table.Table`` for a console to print (colours on a terminal, plain text off one).

    ``justify`` gives ``"left"`` or ``"right"`` per column (left by default), ``row_styles`` a rich
    style per row (``None`` for none). Cells never wrap, unless ``fold``: then a cell too wide for
    the console folds onto further lines, so that the table fits.
    """
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=_box(), show_edge=False, pad_edge=False)
    for i, name in enumerate(header):
        side = justify[i] if justify else LEFT
        if fold:
            table.add_column(name, justify=cast("JustifyMethod", side), overflow="fold")
        else:
            table.add_column(name, justify=cast("JustifyMethod", side), no_wrap=True)
    for i, row in enumerate(rows):
        table.add_row(*(str(c) for c in row), style=row_styles[i] if row_styles else None)
    return table


def terminal(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    justify: Sequence[str] | None = None,
    title: str | None = None,
) -> list[str]:
    """``rich_table`` drawn as plain-text lines, without trailing spaces or colour codes.

    The table is as wide as its widest row, whatever the width of the terminal, if any. In a
    Jupyter kernel too: rich would otherwise display the table there instead of writing it.
    """
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=100_000,
        color_system=None,
        force_terminal=False,
        force_jupyter=False,
        highlight=False,
    )
    console.print(rich_table(header, rows, justify, title))
    return [line.rstrip() for line in buffer.getvalue().splitlines()]


def _markdown_cell(value: Any) -> str:
    """A cell's text for a pipe table: pipes escaped, line breaks as spaces."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A GitHub Markdown table, as lines (pipes in cells escaped)."""
    lines = ["| " + " | ".join(_markdown_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_markdown_cell(v) for v in row) + " |" for row in rows]
    return lines


__all__ = ["LEFT", "RIGHT", "markdown", "rich_table", "terminal"]

"""bench.html, and the HTML fragment a conformance report embeds, from a ``"benchmark"`` section.

``fragment(section)`` is self-contained markup (a ``<section>`` with its own
scoped styles, the summary, the two figures inline as SVG, and a table per
corpus) for another page to include; ``page(section)`` wraps it into a
complete document. Both are rendered from jinja2 templates
(``convcheck/report/templates/bench_section.html.j2`` and ``bench.html.j2``),
which HTML-escape every text from the data.
"""

from __future__ import annotations

from typing import Any

from ..report.templating import environment, inline_svg
from . import plots, rows


def fragment(sec: dict[str, Any], figures: dict[str, str] | None = None) -> str:
    """The benchmark as an HTML ``<section>``; ``figures`` are drawn from ``sec`` when not given."""
    if figures is None:
        figures = plots.figures(sec)
    return (
        environment()
        .get_template("bench_section.html.j2")
        .render(
            sec=sec,
            headline=rows.headline(sec),
            summary_header=rows.SUMMARY_HEADER,
            summary_rows=rows.summary_rows(sec),
            row_header=rows.ROW_HEADER,
            figures={name: inline_svg(svg) for name, svg in figures.items()},
            corpora=[{**c, "rows": rows.rows(sec, c["name"])} for c in sec["corpora"]],
        )
    )


def page(sec: dict[str, Any], figures: dict[str, str] | None = None) -> str:
    """bench.html: a complete HTML document around ``fragment``."""
    template = environment().get_template("bench.html.j2")
    return template.render(name=sec["implementation"]["name"], fragment=fragment(sec, figures)) + "\n"


__all__ = ["fragment", "page"]

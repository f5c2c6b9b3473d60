"""bench.html, and the HTML fragment a conformance report embeds, from a ``"benchmark"`` section.

``fragment(section)`` is self-contained markup (a ``<section>`` with its own
scoped styles, the summary, the two figures inline as SVG, and a table per
corpus) for another page to include; ``page(section)`` wraps it into a
complete document. Every text from the data is HTML-escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

from . import output

STYLE = """
.convcheck-bench table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1.5em; }
.convcheck-bench th, .convcheck-bench td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
.convcheck-bench th:first-child, .convcheck-bench td:first-child,
.convcheck-bench td:nth-child(2) { text-align: left; }
.convcheck-bench .bad { color: #b00; font-weight: bold; }
.convcheck-bench figure { margin: 1em 0; }
.convcheck-bench figure svg { max-width: 100%; height: auto; }
"""


def _table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    rows = []
    for row in body:
        cells = []
        for c in row:
            cls = ' class="bad"' if c.startswith(("FAIL", "ERROR")) else ""
            cells.append(f"<td{cls}>{html.escape(c)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _inline(svg: str) -> str:
    """An SVG document as inline markup (the XML declaration and doctype removed)."""
    return re.sub(r"^\s*(<\?xml[^>]*\?>)?\s*(<!DOCTYPE[^>]*>)?", "", svg, flags=re.S)


def fragment(sec: dict[str, Any], figures: dict[str, str] | None = None) -> str:
    """The benchmark as an HTML ``<section>``; ``figures`` are drawn from ``sec`` when not given."""
    if figures is None:
        from . import plots

        figures = plots.figures(sec)
    parts = [
        f'<section class="convcheck-bench"><style>{STYLE}</style>',
        f"<h2>Benchmark: {html.escape(sec['implementation']['name'])} against torch</h2>",
        "<ul>" + "".join(f"<li>{html.escape(h)}</li>" for h in output.headline(sec)) + "</ul>",
        "<h3>Summary</h3>",
        _table(output.SUMMARY_HEADER, output.summary_rows(sec)),
        "<h3>Time relative to torch, per layer</h3>",
        f"<figure>{_inline(figures['ratio'])}</figure>",
        "<h3>Time against FLOPs</h3>",
        f"<figure>{_inline(figures['scaling'])}</figure>",
    ]
    for c in sec["corpora"]:
        parts.append(f"<h3>{html.escape(c['title'])} (<code>{html.escape(c['name'])}</code>)</h3>")
        parts.append(f"<p>{html.escape(c['description'])}<br>Source: {html.escape(c['source'])}</p>")
        parts.append(_table(output.ROW_HEADER, output.rows(sec, c["name"])))
    parts.append("</section>")
    return "\n".join(parts)


def page(sec: dict[str, Any], figures: dict[str, str] | None = None) -> str:
    """bench.html: a complete HTML document around ``fragment``."""
    title = f"convcheck bench: {sec['implementation']['name']}"
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head>\n<body>\n{fragment(sec, figures)}\n</body></html>\n"
    )


__all__ = ["fragment", "page"]

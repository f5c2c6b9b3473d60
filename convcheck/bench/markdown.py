"""bench.md: the headline, the per-corpus summary and a table per corpus, in Markdown."""

from __future__ import annotations

from typing import Any

from ..tables import markdown as table
from .rows import ROW_HEADER, SUMMARY_HEADER, headline, rows, summary_rows


def markdown(sec: dict[str, Any]) -> str:
    """bench.md: the headline, the per-corpus summary and a table per corpus."""
    lines = [f"# convcheck bench: {sec['implementation']['name']} against torch", ""]
    lines += [f"- {h}" for h in headline(sec)]
    lines += ["", "## Summary", "", *table(SUMMARY_HEADER, summary_rows(sec))]
    for c in sec["corpora"]:
        lines += [
            "",
            f"## {c['title']} (`{c['name']}`)",
            "",
            c["description"],
            "",
            f"Source: {c['source']}",
            "",
        ]
        lines += table(ROW_HEADER, rows(sec, c["name"]))
    return "\n".join(lines) + "\n"


__all__ = ["markdown"]

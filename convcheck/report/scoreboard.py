"""``convcheck scoreboard``: several implementations' reports side by side.

Rows are operations with their properties (status and worst error ratio)
and their features (the conformance matrix's cells); columns are the
implementations. Written as a Markdown table (printed, and ``scoreboard.md``)
and a self-contained HTML page (``scoreboard.html``) with ``--out DIR``.

Usage: ``convcheck scoreboard A/report.json B/ C/report.json --out board/``
(a folder stands for the report.json inside it). ``convcheck scoreboard --impl
numpy_fast,torch --out board/`` checks the implementations first
(``convcheck.grading.board``, which holds the command line and calls ``run`` here
for reports).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..spec import OPERATIONS
from ..spec.networks import NETWORKS
from ..tables import markdown as table
from . import matrix, model, writer
from .markdown import MARK
from .model import fmt_ratio


def columns(docs: list[dict[str, Any]]) -> list[str]:
    """Column titles: the implementations' names, made unique."""
    names: list[str] = []
    for doc in docs:
        name = doc["implementation"]["name"]
        if name in names:
            name = f"{name} ({sum(n.startswith(name) for n in names) + 1})"
        names.append(name)
    return names


def rows(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (operation, property) and per (operation, feature); cells per report."""
    props = [model.property_table(d["records"]) for d in docs]
    mats = [matrix.matrix(d) for d in docs]
    ops = [op for op in (*OPERATIONS, *NETWORKS) if any(op in p for p in props)]
    out: list[dict[str, Any]] = []
    for op in ops:
        overall = []
        for m in mats:
            row = next((r for r in m["rows"] if r["op"] == op), None)
            overall.append({"status": row["overall"] if row else "untested", "text": ""})
        out.append({"op": op, "kind": "overall", "name": "overall", "cells": overall})
        names = sorted({name for p in props for name in p.get(op, {})})
        for name in names:
            cells = []
            for p in props:
                c = p.get(op, {}).get(name)
                cells.append(
                    {"status": c["status"], "text": fmt_ratio(c["worst_error_ratio"])}
                    if c
                    else {"status": "untested", "text": ""}
                )
            out.append({"op": op, "kind": "property", "name": name, "cells": cells})
        for col in matrix.COLUMNS:
            if op not in col.ops:
                continue
            cells = []
            for m in mats:
                row = next((r for r in m["rows"] if r["op"] == op), None)
                cell = next((c for c in row["cells"] if c["column"] == col.key), None) if row else None
                cells.append(
                    {"status": cell["status"], "text": cell["note"]}
                    if cell
                    else {"status": "untested", "text": ""}
                )
            out.append({"op": op, "kind": "feature", "name": col.label, "cells": cells})
    return out


def markdown(docs: list[dict[str, Any]]) -> str:
    """The scoreboard as a Markdown table (worst error ratio after each property's status)."""
    names = columns(docs)
    body = []
    for row in rows(docs):
        label = row["name"] if row["kind"] != "overall" else "**overall**"
        cells = []
        for c in row["cells"]:
            text = MARK.get(c["status"], c["status"])
            if c["text"] and row["kind"] == "property":
                text += f" ({c['text']})"
            cells.append(text)
        body.append([row["op"], f"{row['kind']}: {label}" if row["kind"] == "feature" else label, *cells])
    verdicts = [d["summary"]["verdict"].upper() for d in docs]
    lines = [
        "# convcheck scoreboard",
        "",
        *table(["operation", "check", *names], [["", "**verdict**", *verdicts], *body]),
        "",
    ]
    lines.append(
        "Cells: property status (worst error ratio); feature cells as in each report's conformance matrix."
    )
    return "\n".join(lines) + "\n"


def html(docs: list[dict[str, Any]], title: str = "convcheck scoreboard") -> str:
    """The scoreboard as one self-contained HTML page."""
    from .html import environment

    template = environment().get_template("scoreboard.html.j2")
    return template.render(title=title, names=columns(docs), docs=docs, rows=rows(docs))


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reports", nargs="*", metavar="REPORT", help="report.json files or report folders")
    parser.add_argument(
        "--out", metavar="DIR", default=None, help="write scoreboard.md and scoreboard.html here"
    )
    parser.add_argument("--title", default="convcheck scoreboard", help="title of the HTML page")


def run(args: argparse.Namespace) -> int:
    """The board of the reports ``args.reports`` names; the exit status."""
    try:
        docs = [writer.load(p) for p in args.reports]
    except ValueError as e:
        print(f"convcheck: error: {e}", file=sys.stderr)
        return 2
    text = markdown(docs)
    print(text, end="")
    if args.out:
        out = Path(args.out)
        writer.atomic_write(out / "scoreboard.md", text)
        writer.atomic_write(out / "scoreboard.html", html(docs, args.title))
        print(f"convcheck: scoreboard written to {out}/ (scoreboard.html, scoreboard.md)")
    return 0

"""How a ``CheckResult`` shows itself: text for a terminal or a doctest, HTML for Jupyter.

The text is the CLI's: a verdict line, ``summary.compact_table`` and one
``grouping.block_lines`` block per mistake. The HTML (``templates/check_result.html.j2``,
autoescaped: everything that comes from the code under test is escaped) shows
the verdict, the operation x property matrix, and the first failures with their
counterexample's shapes, where the outputs differ and the likely cause.
``progress_html`` is the view ``api.progress`` updates while the run goes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .arrays import Arrays
    from .result import CheckResult

SHOWN_FAILURES = 3
"""Failures the HTML view details (the text view lists every one)."""

GLYPH = {
    "passed": "\u2713",
    "failed": "\u2717",
    "error": "!",
    "unsupported": "\u2013",
    "skipped": "\u00b7",
    "xfail": "x",
}


def verdict(result: CheckResult) -> str:
    """One line: passed or not, how many mistakes, the run's profile and seed."""
    how = f"profile {result.profile}, seed {result.seed}"
    if result.interrupted:
        return f"convcheck: {result.impl}: INTERRUPTED; the checks that finished are shown ({how})"
    if result.passed:
        return f"convcheck: {result.impl} passed every check that applies ({how})"
    failed = [p for p in result.properties if p.status in ("failed", "error")]
    n = len(result.failures)
    return (
        f"convcheck: {result.impl} FAILED {len(failed)} property group(s), "
        f"{n} mistake{'s' if n != 1 else ''} ({how})"
    )


def text(result: CheckResult) -> str:
    """The result as the CLI prints it: verdict, the contract and what the implementation declares
    unsupported, the status table, notes at kinks, one block per mistake."""
    from ..cli import declared_lines, kink_lines, predicate_lines
    from ..grouping import block_lines
    from ..spec import contracts
    from ..summary import compact_table

    impl = result.implementation
    lines = [verdict(result)]
    lines.append(f"convcheck: {contracts.summary_line(impl.extras.get('contract', contracts.LIBRARY))}")
    lines += declared_lines(impl)
    lines.append("")
    lines += compact_table(result.results)
    lines += kink_lines(result.results) + predicate_lines(result.results)
    source = result.source if result.source.endswith(".py") else result.impl
    for failure in result.failures:
        lines.append("")
        lines += block_lines(failure.group, source)
    return "\n".join(lines)


def where_they_differ(arrays: Arrays) -> list[str]:
    """Per output, in words: a shape or presence mismatch, or how many elements differ and the worst."""
    out = []
    for name, expected in arrays.expected.items():
        got = arrays.got.get(name)
        if expected is None and got is None:
            continue
        if expected is None or got is None:
            out.append(f"{name}: got {type(got).__name__}, expected {type(expected).__name__}")
            continue
        g, e = np.asarray(got), np.asarray(expected)
        if g.shape != e.shape:
            out.append(f"{name}: shape {g.shape}, expected {e.shape}")
            continue
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.abs(g.astype(np.float64) - e.astype(np.float64))
        scale = max(float(np.max(np.abs(e))) if e.size else 0.0, 1e-30)
        wrong = ~(diff <= 1e-5 * scale) if diff.size else np.zeros(0, bool)
        if not wrong.any():
            continue
        worst = np.unravel_index(int(np.nanargmax(np.where(np.isnan(diff), np.inf, diff))), diff.shape)
        out.append(
            f"{name}: {int(wrong.sum())} of {wrong.size} elements differ; worst at {tuple(int(i) for i in worst)}: "
            f"got {float(g[worst]):.7g}, expected {float(e[worst]):.7g}"
        )
    return out + arrays.problems


def _matrix(result: CheckResult) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    """The operation x property matrix: the property columns, one row per operation with a cell each,
    and the operations the implementation does not provide (one line, as the text view has it)."""
    from ..grouping import absent_operations

    absent = [op for ops in absent_operations(result.results).values() for op in ops]
    present = [p for p in result.properties if p.op not in absent]
    props = list(dict.fromkeys(p.property for p in sorted(present, key=lambda p: p.property)))
    rows = []
    by_key = {(p.op, p.property): p for p in present}
    for op, status in result.operations.items():
        if op in absent:
            continue
        cells = []
        for prop in props:
            p = by_key.get((op, prop))
            cells.append(
                None
                if p is None
                else {
                    "status": p.status,
                    "glyph": GLYPH.get(p.status, "?"),
                    "title": f"{op}:{prop} {p.status}",
                }
            )
        rows.append({"op": op, "status": status, "cells": cells})
    return props, rows, absent


def _failure_view(failure: Any) -> dict[str, Any]:
    where: list[str] = []
    try:
        if failure.compared:  # computed by compute_arrays; never a call that raised or hung again
            where = failure.where() or []
    except Exception as e:
        where = [f"(the outputs could not be recomputed: {type(e).__name__}: {e})"]
    spec = failure.counterexample or {}
    return {
        "op": failure.op,
        "property": failure.property,
        "title": failure.title,
        "span": failure.group.span(),
        "dtype": failure.dtype,
        "check": failure.check,
        "hint": failure.hint,
        "first_line": (failure.message or "").strip().splitlines()[0] if failure.message else "",
        "shapes": ", ".join(f"{k} {tuple(v)}" for k, v in failure.shapes.items() if v is not None),
        "case": spec.get("description", ""),
        "where": where,
        "others": failure.group.others(),
    }


def html(result: CheckResult) -> str:
    """The rich view for Jupyter (``_repr_html_``)."""
    from ..report import templating

    shown = result.failures[:SHOWN_FAILURES]
    result.compute_arrays([f for f in shown if f.compared])
    props, rows, absent = _matrix(result)
    env = templating.environment()
    return str(
        env.get_template("check_result.html.j2").render(
            verdict=verdict(result),
            passed=result.passed,
            props=props,
            rows=rows,
            absent=absent,
            failures=[_failure_view(f) for f in shown],
            more=len(result.failures) - len(shown),
        )
    )


def progress_html(label: str, results: list[dict[str, Any]], total: int, final: bool) -> str:
    """The view while the run goes: checks done, and each operation's property verdicts so far."""
    from ..report import templating
    from ..summary import rows as summary_rows

    by_op: dict[str, list[dict[str, Any]]] = {}
    for row in summary_rows(results):
        by_op.setdefault(row["op"], []).append(
            {"property": row["property"], "status": row["status"], "glyph": GLYPH.get(row["status"], "?")}
        )
    failed = sum(r["status"] in ("failed", "error") for r in results)
    env = templating.environment()
    page = env.get_template("check_progress.html.j2").render(
        label=label, done=len(results), total=total, failed=failed, final=final, ops=by_op
    )
    return str(page)


__all__ = ["html", "progress_html", "text", "verdict", "where_they_differ"]

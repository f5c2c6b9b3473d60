"""Summaries of a conformance run: per operation and property, and what the run exercised.

Input is the list of per-check results the pytest plugin collects (one dict per
test: impl, op, property, status, message, examples, values, worst_error_ratio).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

STATUS_ORDER = ("error", "failed", "passed", "unsupported", "skipped")
"""Worst first: a group's status is the worst of its checks' (``unsupported`` and
``skipped`` count only when nothing ran)."""


def group_status(statuses: Iterable[str | None]) -> str:
    """The verdict of several checks of one (operation, property)."""
    s = {x or "error" for x in statuses}
    for status in ("error", "failed"):
        if status in s:
            return status
    if "passed" in s:
        return "passed"
    return "unsupported" if "unsupported" in s else "skipped"


def grouped(results: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """Results keyed by ``(impl, op, property)``, in a stable order."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in sorted(results, key=lambda r: (r["impl"], r["op"], r["property"], r["test"])):
        groups[(r["impl"], r["op"], r["property"])].append(r)
    return groups


def row_status(items: list[dict[str, Any]]) -> str:
    """A row's status: the worst of its checks' (``group_status``), but ``xfail`` when every failure
    is one the run's expected-failures file expects (``convcheck.xfails``)."""
    status = group_status(r["status"] for r in items)
    failures = [r for r in items if r["status"] in ("failed", "error")]
    return "xfail" if failures and all(r.get("expected") for r in failures) else status


MISMATCH_TYPES = frozenset({"AssertionError"})
"""Exception types of a check that failed by comparing: an output outside its bound (``tests/checks.py``)."""

RAISED, VIOLATED = "raised", "contract"
"""How a check failed other than by a mismatch: the implementation raised (or its worker died), or it
returned what the contract does not allow (``ContractViolation``: a wrong shape, dtype or type)."""


def failed_by(result: dict[str, Any]) -> str | None:
    """``RAISED`` or ``VIOLATED`` for a check that failed that way; ``None`` for a check that failed by a
    mismatch, or did not fail, or whose exception did not reach the report (a crashed xdist worker:
    nothing says how it failed)."""
    if result["status"] not in ("failed", "error"):
        return None
    kind = (result.get("exception") or {}).get("type")
    if kind is None or kind in MISMATCH_TYPES:
        return None
    return VIOLATED if kind == "ContractViolation" else RAISED


def worst_cell(row: dict[str, Any]) -> str:
    """The terminal's ``worst ratio`` cell: ``raised`` (or ``contract``) when a failing check of the row
    failed that way, since the ratio of its passing examples says nothing of it; else the worst
    error ratio, empty when nothing was compared."""
    kinds = row.get("failed_by") or []
    if kinds:
        return RAISED if RAISED in kinds else VIOLATED
    return "" if row["worst_error_ratio"] is None else f"{row['worst_error_ratio']:.3g}"


def rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary row per (impl, op, property): status, counts, examples, worst error ratio, and how its failures
    that were not mismatches failed (``failed_by``: ``RAISED``, ``VIOLATED``)."""
    out = []
    for (impl, op, prop), items in grouped(results).items():
        worst = max((v for r in items for v in (r.get("worst_error_ratio") or {}).values()), default=None)
        out.append(
            {
                "impl": impl,
                "op": op,
                "property": prop,
                "status": row_status(items),
                "checks": len(items),
                "passed": sum(r["status"] == "passed" for r in items),
                "examples": sum(r.get("examples", 0) for r in items),
                "worst_error_ratio": worst,
                "failures": [
                    r for r in items if r["status"] in ("failed", "error") and not r.get("expected")
                ],
                "failed_by": sorted({k for r in items if (k := failed_by(r)) is not None}),
                "reasons": sorted({r.get("message", "") for r in items if r["status"] in ("unsupported",)}),
                "skip_kinds": sorted({r["skip_kind"] for r in items if r.get("skip_kind")}),
            }
        )
    return out


def status_table(results: list[dict[str, Any]]) -> list[str]:
    """Terminal table lines, one row per (impl, op, property)."""
    return _table_lines(rows(results))


def compact_table(results: list[dict[str, Any]]) -> list[str]:
    """The status table for a terminal: an operation whose every property passed is one row, the
    operations the implementation does not have are one line (``convcheck.grouping``), every other
    (operation, property) keeps its row."""
    from .grouping import absent_line, absent_operations

    absent = absent_operations(results)
    kept = [r for r in results if r["op"] not in absent.get(r["impl"], ())]
    table = rows(kept)
    by_op: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in table:
        by_op[(row["impl"], row["op"])].append(row)
    shown = []
    for items in by_op.values():
        if len(items) > 1 and all(r["status"] == "passed" for r in items):
            ratios = [r["worst_error_ratio"] for r in items if r["worst_error_ratio"] is not None]
            shown.append(
                {
                    **items[0],
                    "property": f"all {len(items)} properties",
                    "checks": sum(r["checks"] for r in items),
                    "passed": sum(r["passed"] for r in items),
                    "examples": sum(r["examples"] for r in items),
                    "worst_error_ratio": max(ratios, default=None),
                }
            )
        else:
            shown += items
    lines = _table_lines(shown) if shown else []
    return lines + [absent_line(impl, ops) for impl, ops in absent.items()]


STATUS_HEADER = ("implementation", "operation", "property", "status", "checks", "examples", "worst ratio")
STATUS_JUSTIFY = ("left", "left", "left", "left", "right", "right", "right")


def _table_lines(table: list[dict[str, Any]]) -> list[str]:
    """Terminal table lines for summary rows (``convcheck.tables.terminal``)."""
    from .tables import terminal

    body = [
        (
            row["impl"],
            row["op"],
            row["property"],
            row["status"],
            f"{row['passed']}/{row['checks']}",
            row["examples"],
            worst_cell(row),
        )
        for row in table
    ]
    return terminal(STATUS_HEADER, body, STATUS_JUSTIFY)


def declared_unsupported(impl: Any) -> list[dict[str, Any]]:
    """``{"op", "feature", "value"}`` for every feature ``impl``'s capabilities (as the run honours
    them) declare unsupported, in the operations it provides: the ``declared_unsupported`` field of
    each result, and the CLI's ``unsupported (declared):`` lines."""
    from .recording import _plain
    from .spec import OPERATIONS

    provided = {name for name, op in OPERATIONS.items() if any(f in impl.functions for f in op.functions)}
    return [
        {"op": op, "feature": feature, "value": _plain(value)}
        for op, feature, value in impl.capabilities.unsupported()
        if op in provided
    ]


def declared_features(results: list[dict[str, Any]]) -> set[str]:
    """``"op.feature"`` for every feature the results say their implementation declared unsupported."""
    return {f"{d['op']}.{d['feature']}" for r in results for d in r.get("declared_unsupported") or []}


def coverage(results: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, set[str]]]:
    """Distinct values each hyper-parameter took, per (impl, op), over every example run."""
    cov: dict[tuple[str, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for r in results:
        for key, values in (r.get("values") or {}).items():
            cov[(r["impl"], r["op"])][key].update(values)
    return cov


def coverage_lines(results: list[dict[str, Any]], limit: int = 8) -> list[str]:
    """What the run exercised, so a pass is not mistaken for more than it covered."""
    lines = ["", "exercised values (distinct count: examples of values):"]
    for (impl, op), params in sorted(coverage(results).items()):
        lines.append(f"{impl} {op}:")
        for key in sorted(set(params) - PAIR_KEYS):
            values = sorted(params[key])
            shown = ", ".join(values[:limit]) + (", ..." if len(values) > limit else "")
            lines.append(f"    {key:<18} {len(values):>3}: {shown}")
        if params.get("pairs_possible"):
            lines.append(f"    {pairs_line(params)}")
    return lines


PAIR_KEYS = frozenset({"pairs", "pairs_possible"})
"""Coverage keys of ``convcheck.pairs``: shown as one line of the pairs never drawn."""


def pairs_line(params: dict[str, Any]) -> str:
    """``pairs  27/30 reached; never drawn: ...`` for an operation's coverage (``convcheck.pairs``)."""
    from .pairs import missing

    never = missing(params)
    total = len(set(params.get("pairs_possible", [])))
    head = f"{'feature pairs':<18} {total - len(never):>3}/{total} reached (N, C, stride, output extent)"
    return head + (f"; never drawn: {'; '.join(never)}" if never else "")

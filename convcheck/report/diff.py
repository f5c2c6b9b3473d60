"""``convcheck report diff BASE NEW``: what changed between two reports, and whether it regressed.

Records are matched by their ``id`` (check and dtype, without the
implementation's name), so two runs of one implementation, or two
implementations, can be compared. The diff lists

* newly failing records (failed or errored in NEW, not in BASE, including
  checks BASE did not have): regressions;
* error-ratio growth: the worst error ratio of a record that passes in both
  grew by more than ``growth`` times and reached at least ``floor`` (a
  quarter of the bound by default: a correct implementation's ratios are
  usually far below, so growth above it is worth a look): regressions. A
  record checked under different tolerance overrides in the two reports is
  not compared (its ratios are against different bounds); a note says so;
* timing regressions, when both reports carry a benchmark section
  (``convcheck.bench.diff.timing_regressions``): regressions;
* newly passing records, records still failing, and records no longer
  checked (unsupported, skipped or gone in NEW): information.

Exit status: 0 without regressions, 1 with, 2 when a file cannot be used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .model import as_float, fmt_ratio

BAD = ("failed", "error")
GROWTH = 2.0
FLOOR = 0.25
TIMING_THRESHOLD = 0.10


@dataclass(frozen=True)
class Change:
    """One record that changed between the two reports."""

    id: str
    op: str
    property: str
    dtype: str | None
    base_status: str
    new_status: str
    base_ratio: float | None
    new_ratio: float | None
    note: str = ""

    def describe(self) -> str:
        ratios = ""
        if self.base_ratio is not None or self.new_ratio is not None:
            ratios = (
                f", worst ratio {fmt_ratio(self.base_ratio) or '-'} -> {fmt_ratio(self.new_ratio) or '-'}"
            )
        note = f"; {self.note}" if self.note else ""
        return f"{self.id} ({self.op} {self.property}): {self.base_status} -> {self.new_status}{ratios}{note}"


@dataclass
class Diff:
    """The changes, by kind; ``regressions`` counts what should fail a CI job."""

    newly_failing: list[Change] = field(default_factory=list)
    ratio_growth: list[Change] = field(default_factory=list)
    newly_passing: list[Change] = field(default_factory=list)
    still_failing: list[Change] = field(default_factory=list)
    no_longer_checked: list[Change] = field(default_factory=list)
    timing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> int:
        return len(self.newly_failing) + len(self.ratio_growth) + len(self.timing)


def _index(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in doc.get("records", [])}


def _change(key: str, base: dict[str, Any] | None, new: dict[str, Any] | None, note: str = "") -> Change:
    ref = new or base or {}
    return Change(
        key,
        ref.get("op", ""),
        ref.get("property", ""),
        ref.get("dtype"),
        base["status"] if base else "absent",
        new["status"] if new else "absent",
        as_float(base.get("worst_error_ratio")) if base else None,
        as_float(new.get("worst_error_ratio")) if new else None,
        note,
    )


def grew(base: float | None, new: float | None, growth: float, floor: float) -> bool:
    """Whether an error ratio grew past ``growth`` times its base and reached ``floor``."""
    if base is None or new is None or new < floor:
        return False
    if math.isinf(new):
        return not math.isinf(base)
    return new > growth * base


def compare(
    base: dict[str, Any],
    new: dict[str, Any],
    *,
    growth: float = GROWTH,
    floor: float = FLOOR,
    timing_threshold: float = TIMING_THRESHOLD,
) -> Diff:
    """The diff of two report documents (``writer.load``)."""
    out = Diff()
    other_bounds: list[str] = []
    b, n = _index(base), _index(new)
    for key in sorted(set(b) | set(n)):
        old, cur = b.get(key), n.get(key)
        old_status = old["status"] if old else "absent"
        cur_status = cur["status"] if cur else "absent"
        if cur_status in BAD and old_status not in BAD:
            out.newly_failing.append(_change(key, old, cur))
        elif cur_status in BAD:
            out.still_failing.append(_change(key, old, cur))
        elif old_status in BAD and cur_status == "passed":
            out.newly_passing.append(_change(key, old, cur))
        elif old_status in ("passed", *BAD) and cur_status in ("unsupported", "skipped", "absent"):
            out.no_longer_checked.append(_change(key, old, cur))
        elif old_status == cur_status == "passed" and old and cur:
            if old.get("tolerance_override") != cur.get("tolerance_override"):
                other_bounds.append(key)  # ratios against different bounds do not compare
                continue
            r0, r1 = as_float(old.get("worst_error_ratio")), as_float(cur.get("worst_error_ratio"))
            if grew(r0, r1, growth, floor):
                out.ratio_growth.append(_change(key, old, cur, f"grew more than {growth:g}x"))
    if other_bounds:
        shown = ", ".join(other_bounds[:3]) + (", ..." if len(other_bounds) > 3 else "")
        out.notes.append(
            f"{len(other_bounds)} passing record(s) ran under different tolerance overrides in BASE and NEW; "
            f"their error ratios are measured against different bounds and not compared: {shown}"
        )
    out.timing, note = timing_regressions(base, new, timing_threshold)
    if note:
        out.notes.append(note)
    return out


def timing_regressions(base: dict[str, Any], new: dict[str, Any], threshold: float) -> tuple[list[str], str]:
    """Timing regressions between the reports' benchmark sections (none unless both have one)."""
    if "benchmark" not in base or "benchmark" not in new:
        missing = [name for name, d in (("BASE", base), ("NEW", new)) if "benchmark" not in d]
        if len(missing) == 1:
            return (
                [],
                f"timing not compared: only {'NEW' if missing == ['BASE'] else 'BASE'} carries a benchmark",
            )
        return [], ""
    from ..bench.diff import timing_regressions as bench_regressions

    try:
        found = bench_regressions(base, new, threshold)
    except ValueError as e:
        return [], f"timing not compared: {e}"
    return [r.describe() for r in found], ""


def lines(diff: Diff, base_name: str, new_name: str) -> list[str]:
    """The diff as text (Markdown-friendly)."""
    out = [f"convcheck report diff: {base_name} -> {new_name}", ""]
    sections = (
        ("Newly failing (regressions)", diff.newly_failing),
        ("Error-ratio growth (regressions)", diff.ratio_growth),
        ("Newly passing", diff.newly_passing),
        ("Still failing", diff.still_failing),
        ("No longer checked (unsupported, not applicable or gone)", diff.no_longer_checked),
    )
    for title, items in sections:
        out.append(f"## {title}: {len(items)}")
        out += [f"- {c.describe()}" for c in items]
        out.append("")
    out.append(f"## Timing regressions (benchmark): {len(diff.timing)}")
    out += [f"- {t}" for t in diff.timing]
    out += [f"  ({note})" for note in diff.notes]
    out.append("")
    verdict = f"{diff.regressions} regression(s)" if diff.regressions else "no regressions"
    out.append(f"convcheck report diff: {verdict}")
    return out

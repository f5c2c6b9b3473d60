"""Timing regressions between two benchmark runs, compared by ratio to PyTorch, not by absolute time.

Each run timed the implementation and PyTorch side by side on the same
machine, so the ratio ``impl median / torch median`` cancels most of what
differs between two runs (a busier machine, another CPU). A function of an
entry *regressed* when

    new_ratio > base_ratio * (1 + threshold)

(``threshold=0.10``: more than 10% slower relative to PyTorch), or when it
was correct in the base run and is wrong or raises in the new one (it was not
timed then, so it would otherwise drop out of the comparison silently).

Entries are matched by ``corpus/id``, function and batch; both runs must be of
one dtype. ``convcheck bench-diff BASE.json NEW.json --threshold 0.10`` prints
the regressions and exits 1 if there are any (0 if none, 2 if a file cannot be
used); ``convcheck report diff`` calls ``timing_regressions`` for reports that
carry a benchmark section.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

from .record import KEY, read_section

EXIT_OK, EXIT_REGRESSED, EXIT_USAGE = 0, 1, 2
TIMED = ("ok", "no-baseline")
BROKEN = ("wrong", "error")


@dataclass(frozen=True)
class Regression:
    """One function of one entry that got slower relative to PyTorch (``slower``) or broke (``incorrect``)."""

    key: str
    function: str
    batch: int
    kind: str
    base_ratio: float | None
    new_ratio: float | None
    note: str = ""

    @property
    def change(self) -> float | None:
        """Relative change of the ratio, ``new / base - 1`` (``0.25``: 25% slower relative to torch)."""
        if self.base_ratio is None or self.new_ratio is None or self.base_ratio <= 0:
            return None
        return self.new_ratio / self.base_ratio - 1

    def describe(self) -> str:
        """One line for a terminal or a report."""
        where = f"{self.key} {self.function} (batch {self.batch})"
        if self.kind == "incorrect":
            return f"{where}: correct in the base run, now {self.note}"
        return (
            f"{where}: ratio to torch {self.base_ratio:.3g} -> {self.new_ratio:.3g} "
            f"({100 * (self.change or 0):+.1f}%)"
        )


def _section(doc: dict[str, Any]) -> dict[str, Any]:
    """The ``"benchmark"`` section of a bench.json, or the section itself."""
    return doc.get(KEY, doc)


def _index(sec: dict[str, Any]) -> dict[tuple[str, str, int], dict[str, Any]]:
    return {(e["key"], f["function"], e["batch"]): f for e in sec["entries"] for f in e["functions"]}


def timing_regressions(base: dict[str, Any], new: dict[str, Any], threshold: float) -> list[Regression]:
    """Functions whose ratio to torch grew by more than ``threshold`` (or that broke), base to new.

    ``base`` and ``new`` are bench.json documents or their ``"benchmark"``
    sections. Raises ``ValueError`` for a negative threshold or runs of
    different dtypes.
    """
    if not threshold >= 0:
        raise ValueError(f"threshold={threshold!r} must be >= 0 (0.10 means 10% slower relative to torch)")
    b, n = _section(base), _section(new)
    b_dtype, n_dtype = b["settings"]["dtype"], n["settings"]["dtype"]
    if b_dtype != n_dtype:
        raise ValueError(
            f"the base run is {b_dtype} and the new run {n_dtype}; compare two runs of one dtype"
        )
    base_index = _index(b)
    found = []
    for (key, fn, batch), f in _index(n).items():
        old = base_index.get((key, fn, batch))
        if old is None:
            continue
        if old["status"] in TIMED and f["status"] in BROKEN:
            note = "wrong" if f["status"] == "wrong" else "raising"
            detail = f": {f['note']}" if f.get("note") else ""
            found.append(Regression(key, fn, batch, "incorrect", old["ratio"], None, note + detail))
        elif (
            old["ratio"] is not None
            and f["ratio"] is not None
            and f["ratio"] > old["ratio"] * (1 + threshold)
        ):
            found.append(Regression(key, fn, batch, "slower", old["ratio"], f["ratio"]))
    return found


def compared(base: dict[str, Any], new: dict[str, Any]) -> tuple[int, int]:
    """``(functions with a ratio in both runs, functions only one run has)``."""
    bi, ni = _index(_section(base)), _index(_section(new))
    both = [k for k in ni if k in bi and ni[k]["ratio"] is not None and bi[k]["ratio"] is not None]
    return len(both), len(set(bi) ^ set(ni))


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``convcheck bench-diff BASE.json NEW.json [--threshold 0.10]``."""
    parser.add_argument("base", metavar="BASE.json", help="bench.json of the earlier run")
    parser.add_argument("new", metavar="NEW.json", help="bench.json of the later run")
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.10,
        help="flag a function whose ratio to torch grew by more than this fraction (default 0.10 = 10%%)",
    )


def run(args: argparse.Namespace) -> int:
    """Print the regressions; exit 1 if there are any, 2 if a file cannot be used."""
    try:
        base, new = read_section(args.base), read_section(args.new)
        found = timing_regressions(base, new, args.threshold)
    except ValueError as e:
        print(f"convcheck bench-diff: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    n_both, n_unmatched = compared(base, new)
    print(
        f"compared {n_both} function timings by ratio to torch ({base['settings']['dtype']}); "
        f"{n_unmatched} present in only one run"
    )
    if not found:
        print(f"no regression beyond {100 * args.threshold:.0f}%")
        return EXIT_OK
    print(f"{len(found)} regression(s) beyond {100 * args.threshold:.0f}%:")
    for r in found:
        print(f"  {r.describe()}")
    return EXIT_REGRESSED


__all__ = ["Regression", "add_arguments", "compared", "run", "timing_regressions"]

"""``convcheck calibrate``: measure the suite's false-alarm rate on correct implementations.

Runs ``convcheck run`` on implementations known to be correct (the shipped
ones by default) under many hypothesis seeds, with a profile that is not
derandomised, and counts what the tolerance policy judged: comparisons, output
elements compared per dtype, comparisons large enough for an aggregate verdict,
and failures. A correct implementation must never fail; the count of compared
elements says how much evidence stands behind that zero.

Every run is its own subprocess (a fresh interpreter, as a user's run would
be) and writes its results file as it goes; the summary is written to
``--out`` after each run, so an interrupted calibration keeps what finished.

Usage::

    convcheck calibrate --impl numpy_reference,numpy_fast,torch --seeds 1-20 --max-examples 300
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

DEFAULT_IMPLS = "numpy_reference,numpy_fast,torch"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``calibrate`` subcommand's options."""
    parser.add_argument(
        "--impl", default=DEFAULT_IMPLS, help=f"correct implementations (default {DEFAULT_IMPLS})"
    )
    parser.add_argument(
        "--seeds", default="1-10", help="hypothesis seeds: a range A-B and/or a list, e.g. 1-10,507"
    )
    parser.add_argument(
        "--max-examples", type=int, default=200, help="examples per property per run (default 200)"
    )
    parser.add_argument("--ops", default=None, help="only these operations, comma-separated (default all)")
    parser.add_argument(
        "--profile", default="thorough", help="a profile that is not derandomised (default thorough)"
    )
    parser.add_argument(
        "--out", metavar="FILE", default=None, help="write the summary as JSON here after each run"
    )
    parser.add_argument(
        "--isolation", action="store_true", help="run the implementations in the isolated worker"
    )


def parse_seeds(text: str) -> list[int]:
    """``"1-3,507"`` -> ``[1, 2, 3, 507]``; raises ``UsageError`` on anything else."""
    from .spec import UsageError

    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            seeds += list(range(int(lo), int(hi) + 1)) if sep else [int(part)]
        except ValueError:
            raise UsageError(f"--seeds {text!r}: expected integers and ranges such as 1-10,507") from None
    if not seeds:
        raise UsageError(f"--seeds {text!r} names no seed; give e.g. 1-10")
    return seeds


def run_command(impl: str, seed: int, args: argparse.Namespace, results: str) -> list[str]:
    """The ``convcheck run`` command line of one calibration run."""
    cmd = [sys.executable, "-m", "convcheck", "run", "--impl", impl, "--seed", str(seed)]
    cmd += ["--profile", args.profile, "--max-examples", str(args.max_examples), "--results", results]
    if args.ops:
        cmd += ["--ops", args.ops]
    if not args.isolation:
        cmd.append("--no-isolation")
    return cmd


def tally(records: list[dict[str, Any]], into: dict[str, Any], replay: str = "") -> None:
    """Fold one run's result records into the per-dtype totals ``into``; ``replay`` is the command
    that reproduces the run, kept with each failure."""
    into["checks"] += len(records)
    for rec in records:
        if rec["status"] in ("failed", "error"):
            first = (rec.get("message") or "").strip().splitlines()[:1]
            into["failed_checks"].append(f"{rec['op']}:{rec['property']} {first} replay: {replay}")
        for dtype, entry in (rec.get("by_dtype") or {}).items():
            totals = into["by_dtype"][dtype]
            for stats in entry.get("outputs", {}).values():
                totals["comparisons"] += stats["comparisons"]
                totals["elements"] += stats.get("elements", 0)
                totals["aggregate_judged"] += stats.get("aggregate_judged", 0)
                totals["failed_comparisons"] += stats["failed"]
                totals["worst_error_ratio"] = max(totals["worst_error_ratio"], stats["error_ratio"])


def _empty() -> dict[str, Any]:
    def dtype_totals() -> dict[str, Any]:
        keys = ("comparisons", "elements", "aggregate_judged", "failed_comparisons")
        return {**dict.fromkeys(keys, 0), "worst_error_ratio": 0.0}

    return {
        "runs": 0,
        "checks": 0,
        "failed_checks": [],
        "seconds": 0.0,
        "by_dtype": defaultdict(dtype_totals),
    }


CALIBRATION_HEADER = (
    "implementation",
    "dtype",
    "runs",
    "checks",
    "failed",
    "comparisons",
    "elements",
    "aggregate",
    "worst ratio",
)


def lines(summary: dict[str, dict[str, Any]]) -> list[str]:
    """The summary as a terminal table (``convcheck.tables.terminal``): one row per implementation
    and dtype."""
    from .tables import terminal

    body = [
        (
            impl,
            dtype,
            s["runs"],
            s["checks"],
            len(s["failed_checks"]),
            d["comparisons"],
            d["elements"],
            d["aggregate_judged"],
            f"{d['worst_error_ratio']:.3g}",
        )
        for impl, s in summary.items()
        for dtype, d in sorted(s["by_dtype"].items())
    ]
    return terminal(CALIBRATION_HEADER, body, ("left", "left", *["right"] * 7))


def run(args: argparse.Namespace) -> int:
    """Run the calibration; exit 0 when no correct implementation failed anything, else 1."""
    from .atomic import write_text_atomic
    from .impls.registry import requested
    from .spec import ConvcheckError

    try:
        seeds = parse_seeds(args.seeds)
        impls = requested(args.impl)
    except ConvcheckError as e:
        print(f"convcheck: error: {e}", file=sys.stderr)
        return 2
    summary: dict[str, dict[str, Any]] = {impl: _empty() for impl in impls}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for impl in impls:
                results = os.path.join(tmp, f"{Path(impl).stem}-{seed}.jsonl")
                start = time.perf_counter()
                command = run_command(impl, seed, args, results)
                done = subprocess.run(command, capture_output=True, text=True)
                s = summary[impl]
                s["seconds"] += time.perf_counter() - start
                s["runs"] += 1
                if done.returncode == 2:
                    print(done.stderr.strip(), file=sys.stderr)
                    return 2
                records = [
                    json.loads(line) for line in Path(results).read_text().splitlines() if line.strip()
                ]
                replay = " ".join(["convcheck", *command[3:]]).replace(f" --results {results}", "")
                tally(records, s, replay)
                if done.returncode not in (0, 1):
                    s["failed_checks"].append(f"run ended with exit {done.returncode}: {done.stderr[-300:]}")
                print(
                    f"seed {seed:>5} {impl:<18} {len(records):>4} checks, exit {done.returncode}, "
                    f"{time.perf_counter() - start:.1f} s",
                    flush=True,
                )
                if args.out:
                    write_text_atomic(args.out, json.dumps(summary, indent=1, default=dict) + "\n")
    print()
    for line in lines(summary):
        print(line)
    failures = [(impl, f) for impl, s in summary.items() for f in s["failed_checks"]]
    for impl, failure in failures:
        print(f"FAILED {impl}: {failure}")
    total = sum(len(s["failed_checks"]) for s in summary.values())
    print(f"\nconvcheck calibrate: {total} failure(s) of correct implementations over {len(seeds)} seed(s)")
    return 1 if total else 0


__all__ = ["add_arguments", "parse_seeds", "run"]

"""``convcheck report``: work with report folders after a run.

* ``convcheck report diff BASE NEW``: newly failing and newly passing checks,
  error-ratio growth and (with benchmark sections) timing regressions; exit 1
  on regressions, so CI can gate on it (``convcheck.report.diff``).
* ``convcheck report build DIR``: re-render report.md and report.html from
  DIR/report.json, embedding a bench.json written into DIR since the run.
* ``convcheck report validate FILE``: check a report.json against the schema
  (``convcheck/spec/report.schema.json``; needs ``jsonschema``).
* ``convcheck report query DB --failing PROPERTY | --history NAME``: ask a grading's
  results database (``convcheck.report.query``).

Exit status: 0 fine, 1 regressions (diff) or an invalid report (validate),
2 when a file cannot be used.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import REPORT_JSON, bench, diff, query, writer

EXIT_OK, EXIT_REGRESSED, EXIT_USAGE = 0, 1, 2


def schema_path() -> Path:
    """The report schema, installed (``convcheck/spec``) or in a clone (``spec/``)."""
    from .. import spec

    return Path(spec.__file__).resolve().parent / "report.schema.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="report_command", required=True, parser_class=type(parser))
    d = sub.add_parser("diff", help="compare two reports; exit 1 on regressions")
    d.add_argument("base", metavar="BASE", help="the earlier report.json (or its folder)")
    d.add_argument("new", metavar="NEW", help="the later report.json (or its folder)")
    d.add_argument(
        "--growth",
        type=float,
        default=diff.GROWTH,
        help=f"error-ratio growth factor that counts as a regression (default {diff.GROWTH:g})",
    )
    d.add_argument(
        "--floor",
        type=float,
        default=diff.FLOOR,
        help=f"only ratios reaching this much of the bound count as growth (default {diff.FLOOR:g})",
    )
    d.add_argument(
        "--timing-threshold",
        type=float,
        default=diff.TIMING_THRESHOLD,
        help="relative slow-down against torch that counts as a timing regression "
        f"(default {diff.TIMING_THRESHOLD:g}); used when both reports carry a benchmark",
    )
    b = sub.add_parser("build", help="re-render report.md and report.html of a report folder")
    b.add_argument("folder", metavar="DIR", help="a folder holding report.json")
    v = sub.add_parser("validate", help="check a report.json against the JSON Schema")
    v.add_argument("file", metavar="FILE", help="report.json (or its folder)")
    q = sub.add_parser("query", help="ask a results database: who fails a property, one submission's history")
    query.add_arguments(q)


def run(args: argparse.Namespace) -> int:
    handlers = {"diff": cmd_diff, "build": cmd_build, "validate": cmd_validate, "query": query.run}
    return handlers[args.report_command](args)


def cmd_diff(args: argparse.Namespace) -> int:
    try:
        base, new = writer.load(args.base), writer.load(args.new)
    except ValueError as e:
        print(f"convcheck: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.growth <= 1 or args.floor < 0 or args.timing_threshold < 0:
        print(
            "convcheck: error: --growth must exceed 1, --floor and --timing-threshold be >= 0",
            file=sys.stderr,
        )
        return EXIT_USAGE
    result = diff.compare(
        base, new, growth=args.growth, floor=args.floor, timing_threshold=args.timing_threshold
    )
    print("\n".join(diff.lines(result, args.base, args.new)))
    return EXIT_REGRESSED if result.regressions else EXIT_OK


def cmd_build(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    try:
        doc = writer.load(folder)
    except ValueError as e:
        print(f"convcheck: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    section = bench.read(folder)
    if section is not None:
        doc["benchmark"] = section
        writer.atomic_write(folder / REPORT_JSON, writer.dump(doc))
    writer.render(folder, doc)
    extra = " with the benchmark from bench.json" if section is not None else ""
    print(f"convcheck: rebuilt {folder}/report.md and {folder}/report.html{extra}")
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        import jsonschema
    except ImportError:
        print(
            "convcheck: error: validating needs the jsonschema package (pip install jsonschema)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    path = Path(args.file)
    path = path / REPORT_JSON if path.is_dir() else path
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        print(f"convcheck: error: {path}: {e}", file=sys.stderr)
        return EXIT_USAGE
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
    for err in errors[:20]:
        print(f"{path}: {err.json_path}: {err.message[:300]}")
    if errors:
        print(f"convcheck: {path} is NOT a valid report ({len(errors)} error(s))")
        return EXIT_REGRESSED
    print(f"convcheck: {path} is a valid report (schema {doc.get('schema_version')})")
    return EXIT_OK

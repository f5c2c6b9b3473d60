"""The ``convcheck`` command line.

``convcheck run --impl X`` runs the conformance properties on one
implementation and prints a per-operation, per-property summary with the
shrunk counterexample of every failure. ``convcheck list`` names what can be
checked. Exit status: 0 when every check that applies passes, 1 when any
fails, 2 for usage errors (each a one-line message, no traceback).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from .impls.registry import Implementation

from .engine import EXIT_FAILED, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, execute, prepare, stale_xfails
from .tether import GRADER, tether


class _Parser(argparse.ArgumentParser):
    """argparse with exit status 2 and a one-line message on bad usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"convcheck: error: {message}\n")


def _add_run(parser: argparse.ArgumentParser) -> None:
    """``convcheck run``'s options, made from ``convcheck.options``."""
    from .options import RUN_OPTIONS, add_to_parser

    add_to_parser(parser, RUN_OPTIONS)


EXTERNAL_COMMANDS: list[tuple[str, str, str]] = [
    ("bench", "convcheck.bench.cli", "time an implementation against torch on real network layers"),
    ("bench-diff", "convcheck.bench.diff", "compare two bench.json files by ratio to torch"),
    ("grade", "convcheck.grading.cli", "grade a folder of submissions"),
    ("report", "convcheck.report.cli", "rebuild a report folder, or diff two reports (exit 1 if regressed)"),
    ("scoreboard", "convcheck.grading.board", "several reports side by side, or check implementations first"),
    ("calibrate", "convcheck.calibration", "count false alarms: correct implementations under many seeds"),
]
"""Subcommands that live in their own modules: ``(name, module, help)``. Each module
defines ``add_arguments(parser)`` and ``run(args) -> int`` (an exit status)."""


RUN_HELP = "check one implementation against the contract"
LIST_HELP = "list shipped, buggy and installed implementations (--ops: the contract)"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``convcheck`` parser. Only ``command``'s options are added (every command's when ``None``,
    no command's when ``""``): the other subcommands' modules, which import pytest, torch or numpy,
    are not imported."""
    parser = _Parser(
        prog="convcheck",
        description="Conformance checks and benchmarks for conv2d, max-pool and avg-pool, forward and backward.",
        epilog="Exit status: 0 all checks that apply pass, 1 a check failed, 2 usage error.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help=RUN_HELP)
    if command in (None, "run"):
        _add_run(run)
    listing = sub.add_parser("list", help=LIST_HELP)
    listing.add_argument(
        "--ops",
        action="store_true",
        help="list the contract instead: every operation's functions, signatures and properties, and the networks",
    )
    for name, module, help_text in EXTERNAL_COMMANDS:
        external = sub.add_parser(name, help=help_text)
        if command in (None, name):
            importlib.import_module(module).add_arguments(external)
    return parser


def _command_of(argv: Sequence[str]) -> str:
    """The subcommand ``argv`` names: its first word that is not an option (``""`` if none)."""
    return next((a for a in argv if not a.startswith("-")), "")


def cmd_run(args: argparse.Namespace) -> int:
    """``convcheck run``: the engine (``convcheck.engine``) runs the suite; this prints its summary."""
    from .grouping import block_lines, failure_groups
    from .impls.registry import is_file_source
    from .spec import ConvcheckError
    from .summary import rows

    try:
        impl = prepare(args)
    except ConvcheckError as e:
        print(f"convcheck: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    outcome = execute(args)
    results = outcome.results
    if outcome.exit_code in (EXIT_USAGE, EXIT_INTERNAL):
        if outcome.exit_code == EXIT_INTERNAL:
            print(
                f"convcheck: error: the test session ended with pytest exit code {outcome.pytest_code}",
                file=sys.stderr,
            )
        return outcome.exit_code
    print(f"convcheck: profile {args.profile}, seed {args.seed} (--seed {args.seed} draws these cases again)")
    _print_summary(impl, results, coverage=args.coverage or args.verbose)
    summary = rows(results)
    new = [r for r in results if not r.get("expected")]  # expected ones are listed with their reasons
    for group in failure_groups(new):  # one block per mistake, however many properties it fails
        print()
        for line in block_lines(group, impl.source if is_file_source(impl.source) else impl.name):
            print(line)
        print(f"replay: {replay_command(args, group.first['test'])}")
    if getattr(args, "xfails", None):
        from . import xfails

        verdict = xfails.classify(xfails.load(args.xfails), results)
        for line in xfails.lines(verdict, args.xfails):
            print(line)
    failed = [r for r in summary if r["status"] in ("failed", "error")]
    stale = stale_xfails(args, results)
    if args.report:
        files = "report.html, report.md, report.json, junit.xml, repro/"
        print(f"\nconvcheck: report in {args.report}/ ({files})")
    if outcome.interrupted:
        print("convcheck: interrupted; the summary above covers the checks that finished", file=sys.stderr)
        return EXIT_FAILED
    if failed:
        names = ", ".join(f"{r['op']}:{r['property']}" for r in failed)
        print(f"\nconvcheck: {impl.name} FAILED {len(failed)} property group(s): {names}")
        return EXIT_FAILED
    if stale:
        entries = ", ".join(f"#{e.index}" for e in stale)
        print(f"\nconvcheck: --strict-xfails: expected-failure entries {entries} now pass; delete them")
        return EXIT_FAILED
    expected = [r for r in summary if r["status"] == "xfail"]
    but = f", but for {len(expected)} property group(s) of expected failures (--xfails)" if expected else ""
    print(f"\nconvcheck: {impl.name} passed every check that applies{but}")
    return EXIT_OK


def replay_command(args: argparse.Namespace, test: str) -> str:
    """``convcheck run`` restricted to one failed check, with the run's profile and seed: the same draws."""
    import shlex

    from .options import BY_NAME

    argv = ["convcheck", "run"]
    for name in REPLAYED:
        option, value = BY_NAME[name], getattr(args, name, None)
        if value is True:
            argv.append(option.flag)
        elif value is not None and value is not False:
            argv += [option.flag, str(value)]
    return shlex.join([*argv, "-k", test.split("::")[-1]])


REPLAYED = (
    "impl",
    "profile",
    "seed",
    "max_examples",
    "strict",
    "contract",
    "no_isolation",
    "python",
    "xfails",
)
"""``--strict-xfails`` is not repeated: a replay runs one check, and says nothing of the others."""
"""The options of ``convcheck run`` that a replay command repeats: those that choose the draws and
the verdict (``convcheck.options``)."""


def interpreter_sides(side: dict[str, Any]) -> str:
    """Both interpreters of a ``--python`` run: the implementation's (the worker's handshake) and convcheck's."""
    import platform

    import numpy

    return (
        f"implementation side: Python {side['python']} ({side['executable']}), NumPy {side['numpy']}; "
        f"convcheck side: Python {platform.python_version()}, NumPy {numpy.__version__}"
    )


def _print_summary(impl: Implementation, results: list[dict[str, Any]], coverage: bool = False) -> None:
    """What the implementation provides and declares, the compact status table, and (``coverage``)
    the values each hyper-parameter took."""
    from .spec import contracts
    from .summary import compact_table, coverage_lines

    print(f"convcheck: {impl.name} ({impl.source}) provides {', '.join(impl.functions)}")
    sandbox = impl.extras.get("sandbox")
    if sandbox is not None and sandbox.python is not None:
        print(f"convcheck: {interpreter_sides(sandbox.info['environment'])}")
    print(f"convcheck: {contracts.summary_line(impl.extras.get('contract', contracts.LIBRARY))}")
    for line in declared_lines(impl):
        print(line)
    print()
    for line in compact_table(results):
        print(line)
    for line in kink_lines(results) + predicate_lines(results):
        print(line)
    from .unsupported_calls import lines as not_implemented_lines

    for line in not_implemented_lines(results):
        print(line)
    if coverage:
        for line in coverage_lines(results):
            print(line)


def kink_lines(results: list[dict[str, Any]]) -> list[str]:
    """The course contract's notes (conventions) and warnings (kink defects), one line per
    (kind, operation, rule) with the checks that met it (``spec.contracts``)."""
    seen: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in results:
        for k in r.get("kinks") or []:
            entry = seen.setdefault((k["kind"], k["op"], k["rule"]), {**k, "checks": set()})
            entry["checks"].add(r.get("property", ""))
    if not seen:
        return []
    lines = ["", "notes and warnings (not failures under the course contract):"]
    for (kind, _, _), k in sorted(seen.items()):
        label = "note" if kind == "convention" else "warning"
        lines.append(f"  {label}: {k['line']} [{', '.join(sorted(k['checks']))}]")
    return lines


def predicate_lines(results: list[dict[str, Any]]) -> list[str]:
    """What the declared ``supports`` predicate left out: one line per operation, its first check's
    count and example (``Recorder.excluded_line``) and how many checks it left cases out of."""
    by_op: dict[str, list[str]] = {}
    for r in results:
        if r.get("declared_by_predicate"):
            by_op.setdefault(r.get("op", ""), []).append(r["declared_by_predicate"])
    if not by_op:
        return []
    lines = ["", "left out as declared (CONVCHECK_CAPABILITIES['supports']; --strict checks them):"]
    for op, texts in sorted(by_op.items()):
        lines.append(f"  {op}: {texts[0]} (in {len(texts)} check{'s' if len(texts) > 1 else ''})")
    return lines


def declared_lines(impl: Implementation) -> list[str]:
    """One ``unsupported (declared):`` line per operation the implementation provides, naming each
    feature it declares unsupported (``op.feature = value``, separated by ``;``)."""
    from .summary import declared_unsupported

    by_op: dict[str, list[str]] = {}
    for d in declared_unsupported(impl):
        by_op.setdefault(d["op"], []).append(f"{d['op']}.{d['feature']} = {d['value']!r}")
    return [f"  unsupported (declared): {'; '.join(items)}" for items in by_op.values()]


def cmd_list(args: argparse.Namespace) -> int:
    if args.ops:
        for line in contract_lines():
            print(line)
        return EXIT_OK
    from .impls import registry

    for name in registry.available():
        print(name)
    return EXIT_OK


def contract_lines() -> list[str]:
    """``convcheck list --ops``: every operation's functions and properties, then the networks."""
    from .spec import OPERATIONS
    from .spec.networks import NETWORKS, required_functions

    lines = []
    for op in OPERATIONS.values():
        lines.append(f"{op.name}:")
        lines += [f"  {op.signature(fname)}" for fname in op.functions]
        lines.append(f"  properties: {', '.join(sorted(op.properties))}")
    for net in NETWORKS.values():
        lines.append(f"{net.name}: {net.title}, {net.parameter_count()} parameters")
        lines.append(f"  needs: {', '.join(required_functions(net))}")
    return lines


PATH_OPTIONS = ("report", "results", "junitxml", "tolerance_file", "xfails", "rubric", "submissions")
"""Options of any subcommand that name a file or folder (argparse ``dest`` names)."""


def absolute_paths(args: argparse.Namespace, cwd: str | None = None) -> argparse.Namespace:
    """Resolve every path the user typed against ``cwd`` (default: the working folder), in place.

    This happens once, right after parsing and before anything changes folder (the
    isolated worker runs in a scratch folder of its own), so a relative path means
    what it meant where it was typed. ``--impl`` keeps its non-path forms.
    """
    from .impls.registry import absolute

    base = cwd or os.getcwd()
    for name in PATH_OPTIONS:
        value = getattr(args, name, None)
        if isinstance(value, str | Path) and str(value) and not os.path.isabs(value):
            resolved = os.path.normpath(os.path.join(base, value))
            setattr(args, name, Path(resolved) if isinstance(value, Path) else resolved)
    if getattr(args, "impl", None):
        args.impl = ",".join(absolute(part, base) for part in args.impl.split(",") if part.strip())
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``convcheck`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    tether(GRADER)
    args = absolute_paths(build_parser(_command_of(argv)).parse_args(argv))
    handlers = {"run": cmd_run, "list": cmd_list}
    if args.command in handlers:
        return handlers[args.command](args)
    module = next(m for name, m, _ in EXTERNAL_COMMANDS if name == args.command)
    return int(importlib.import_module(module).run(args))


if __name__ == "__main__":
    sys.exit(main())

"""The ``convcheck`` command line.

``convcheck run --impl X`` runs the conformance properties on one
implementation and prints a per-operation, per-property summary with the
shrunk counterexample of every failure. ``convcheck list`` names what can be
checked. Exit status: 0 when every check that applies passes, 1 when any
fails, 2 for usage errors (each a one-line message, no traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from .impls.registry import Implementation

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


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
    ("scoreboard", "convcheck.report.scoreboard", "several reports side by side: one page and table"),
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


def suite_dir() -> Path:
    """Where the property tests live (``convcheck.tests``, installed or in a clone)."""
    from . import tests

    return Path(tests.__file__).resolve().parent


def pytest_args(args: argparse.Namespace, results_path: str) -> list[str]:
    """The pytest command line that ``convcheck run`` executes in-process: every option with a pytest
    spelling (``convcheck.options``) passed on, the results file always, junit.xml into the report."""
    from .options import BY_NAME, RUN_OPTIONS

    ini = Path(__file__).resolve().parent / "suite.ini"
    argv = [str(suite_dir()), "-c", str(ini), "--rootdir", str(suite_dir())]
    argv += ["-p", "convcheck.pytest_plugin", "-p", "no:cacheprovider"]
    for option in RUN_OPTIONS:
        if option.name != "results":
            argv += option.pytest_argv(getattr(args, option.name, None))
    argv += [BY_NAME["results"].pytest or "", results_path]
    if args.junitxml or args.report:
        argv += ["--junitxml", args.junitxml or str(Path(args.report) / "junit.xml")]
    argv += ["-q", "--tb=short"] if args.verbose else ["-q", "--no-header", "--no-summary", "--tb=short"]
    return argv


def failure_text(message: str, limit: int = 60) -> str:
    """The assertion message and hypothesis's falsifying example from a pytest failure text."""
    lines = [ln[4:] if ln.startswith("E   ") else None for ln in message.splitlines()]
    picked = [ln for ln in lines if ln is not None]
    if not picked:
        picked = message.strip().splitlines()[-limit:]
    if len(picked) > limit:
        picked = [*picked[:limit], f"... ({len(picked) - limit} more lines)"]
    return "\n".join(picked)


def _apply_contract(impl: Implementation, args: argparse.Namespace) -> None:
    """Resolve the run's contract for ``impl`` as the plugin does (``--contract``, else the declaration's,
    else library), so that the summary states it and lists what it declares (``spec.contracts``)."""
    from .spec import FULL, contracts

    contract = contracts.LIBRARY if args.strict else contracts.resolve(args.contract, impl.capabilities)
    impl.extras["contract"] = contract
    impl.capabilities = FULL if args.strict else contracts.under(impl.capabilities, contract)


def _load_for_summary(args: argparse.Namespace) -> Any:
    """Validate the implementation up front (exit 2 on a bad one), in a worker unless --no-isolation."""
    from .impls import registry

    if args.no_isolation:
        return registry.load(args.impl)
    from .sandbox import Limits, load

    limits = Limits(
        **{
            k: v
            for k, v in (("timeout_s", args.timeout), ("memory_mb", args.memory), ("cpu_s", args.cpu_time))
            if v is not None
        }
    )
    try:
        limits.check()
    except ValueError as e:
        from .spec import UsageError

        raise UsageError(str(e)) from None
    impl = load(args.impl, limits)
    impl.extras["sandbox"].close()
    return impl


class _SessionGrab:
    """A plugin handed to ``pytest.main`` that keeps the session's config, to read results back."""

    def __init__(self) -> None:
        self.config: Any = None

    def pytest_configure(self, config: Any) -> None:
        self.config = config

    def results(self) -> list[dict[str, Any]]:
        from .pytest_plugin import collected_results

        return collected_results(self.config) if self.config is not None else []


def _write_lines(path: str, records: list[dict[str, Any]]) -> None:
    """Atomically replace ``path`` with one JSON line per record."""
    import json

    from .atomic import write_text_atomic

    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in records))


def with_mistakes(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The results, each failed one carrying its mistake (``convcheck.grouping``): the group's title,
    cause and the check shown for it, so that a reader of the results sees each mistake once."""
    from .grouping import group_of

    groups = group_of(results)
    out = []
    for r in results:
        g = groups.get(r["test"])
        mistake = None if g is None else {"title": g.title, "cause": g.cause, "shown": g.first["test"]}
        out.append({**r, "mistake": mistake} if mistake else r)
    return out


def writable_folder(path: str, what: str) -> None:
    """Raise ``UsageError`` (one line) unless ``path`` is, or can be made, a writable folder."""
    from .spec import UsageError

    probe = Path(path) / f".convcheck-probe-{os.getpid()}"
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UsageError(
            f"cannot write the {what} {path}: {e.strerror or e}; choose a folder you can write to"
        ) from None


def cmd_run(args: argparse.Namespace) -> int:

    import pytest

    from .grouping import block_lines, failure_groups
    from .impls.registry import is_file_source
    from .spec import ConvcheckError
    from .summary import rows

    try:
        if args.report:
            writable_folder(args.report, "report folder")
        if args.results:
            writable_folder(str(Path(args.results).resolve().parent), "folder of --results")
        impl = _load_for_summary(args)
        _apply_contract(impl, args)
    except ConvcheckError as e:
        print(f"convcheck: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.max_examples is not None and args.max_examples < 1:
        print(f"convcheck: error: --max-examples={args.max_examples} must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        from .pytest_plugin import env_max_examples

        env_max_examples()
    except pytest.UsageError as e:
        print(f"convcheck: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        resolve_draws(args)
    except ConvcheckError as e:
        print(f"convcheck: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    with tempfile.TemporaryDirectory() as tmp:
        results_path = args.results or os.path.join(tmp, "results.jsonl")
        Path(results_path).parent.mkdir(parents=True, exist_ok=True)
        Path(results_path).write_text("")
        log_path = os.path.join(tmp, "pytest.log")
        grab = _SessionGrab()
        with open(log_path, "w", encoding="utf-8") as log:
            if args.verbose:
                code = pytest.main(pytest_args(args, results_path), plugins=[grab])
            else:  # pytest's own progress output is replaced by the summary below
                with contextlib.redirect_stdout(log):
                    code = pytest.main(pytest_args(args, results_path), plugins=[grab])
        # The results held in memory are the record: the file is rewritten from them, so nothing the
        # code under test wrote into it survives.
        results = grab.results()
        if args.results:
            _write_lines(results_path, with_mistakes(results))
    if code == pytest.ExitCode.USAGE_ERROR:
        return EXIT_USAGE
    if code == pytest.ExitCode.INTERNAL_ERROR or (code not in (0, 1, 5) and not results):
        print(f"convcheck: error: the test session ended with pytest exit code {int(code)}", file=sys.stderr)
        return EXIT_INTERNAL
    print(f"convcheck: profile {args.profile}, seed {args.seed} (--seed {args.seed} draws these cases again)")
    _print_summary(impl, results, coverage=args.coverage or args.verbose)
    summary = rows(results)
    for group in failure_groups(results):  # one block per mistake, however many properties it fails
        print()
        for line in block_lines(group, impl.source if is_file_source(impl.source) else impl.name):
            print(line)
        print(f"replay: {replay_command(args, group.first['test'])}")
    failed = [r for r in summary if r["status"] in ("failed", "error")]
    if args.report:
        files = "report.html, report.md, report.json, junit.xml, repro/"
        print(f"\nconvcheck: report in {args.report}/ ({files})")
    if code == pytest.ExitCode.INTERRUPTED:
        print("convcheck: interrupted; the summary above covers the checks that finished", file=sys.stderr)
        return EXIT_FAILED
    if failed:
        names = ", ".join(f"{r['op']}:{r['property']}" for r in failed)
        print(f"\nconvcheck: {impl.name} FAILED {len(failed)} property group(s): {names}")
        return EXIT_FAILED
    print(f"\nconvcheck: {impl.name} passed every check that applies")
    return EXIT_OK


def resolve_draws(args: argparse.Namespace) -> None:
    """Fix the profile and the seed before the run, in ``args``, so that both are printed and every
    failure's replay command names them: the default profile, and a fresh seed unless the profile
    is derandomised (``pytest_plugin.run_seed``). ``UsageError`` for an unknown profile."""
    import secrets

    from .options import DEFAULT_SEED, DERANDOMISED, PROFILE_EXAMPLES, default_profile
    from .spec import UsageError

    args.profile = args.profile or default_profile()
    if args.profile not in PROFILE_EXAMPLES:
        raise UsageError(f"unknown profile {args.profile!r}; choose one of {', '.join(PROFILE_EXAMPLES)}")
    if args.seed is None:
        args.seed = DEFAULT_SEED if args.profile in DERANDOMISED else secrets.randbelow(2**32)


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


REPLAYED = ("impl", "profile", "seed", "max_examples", "strict", "contract", "no_isolation")
"""The options of ``convcheck run`` that a replay command repeats: those that choose the draws and
the verdict (``convcheck.options``)."""


def _print_summary(impl: Implementation, results: list[dict[str, Any]], coverage: bool = False) -> None:
    """What the implementation provides and declares, the compact status table, and (``coverage``)
    the values each hyper-parameter took."""
    from .spec import contracts
    from .summary import compact_table, coverage_lines

    print(f"convcheck: {impl.name} ({impl.source}) provides {', '.join(impl.functions)}")
    print(f"convcheck: {contracts.summary_line(impl.extras.get('contract', contracts.LIBRARY))}")
    for line in declared_lines(impl):
        print(line)
    print()
    for line in compact_table(results):
        print(line)
    for line in kink_lines(results):
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
    lines = ["", "notes and warnings at kinks (not failures under the course contract):"]
    for (kind, _, _), k in sorted(seen.items()):
        label = "warning" if kind == "kink defect" else "note"
        lines.append(f"  {label}: {k['line']} [{', '.join(sorted(k['checks']))}]")
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


PATH_OPTIONS = ("report", "results", "junitxml", "tolerance_file", "rubric", "submissions")
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
    args = absolute_paths(build_parser(_command_of(argv)).parse_args(argv))
    handlers = {"run": cmd_run, "list": cmd_list}
    if args.command in handlers:
        return handlers[args.command](args)
    module = next(m for name, m, _ in EXTERNAL_COMMANDS if name == args.command)
    return int(importlib.import_module(module).run(args))


if __name__ == "__main__":
    sys.exit(main())

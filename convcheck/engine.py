"""The one engine behind ``convcheck run`` and ``convcheck.check``: validate, then run the suite.

``prepare(args)`` does every check that makes ``convcheck run`` exit with status 2
(writable folders, the implementation loaded and validated up front, the
contract resolved, the example count, the profile and the seed fixed), raising
``ConvcheckError`` with the one-line message. ``execute(args, impl, plugins)``
runs the conformance suite in this process with ``pytest.main`` (pytest's own
output kept out of sight unless ``args.verbose``), and returns a ``RunOutcome``:
the results records, the exit status, and the session's config. The CLI prints
from the outcome; the Python API (``convcheck.api``) builds a ``CheckResult``
from it. Neither has a second code path: every option means the same on both.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .impls.registry import Implementation

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def suite_dir() -> Path:
    """Where the property tests live (``convcheck.tests``, installed or in a clone)."""
    from . import tests

    return Path(tests.__file__).resolve().parent


def pytest_args(args: argparse.Namespace, results_path: str) -> list[str]:
    """The pytest command line that a run executes in-process: every option with a pytest
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


def apply_contract(impl: Implementation, args: argparse.Namespace) -> None:
    """Resolve the run's contract for ``impl`` as the plugin does (``--contract``, else the declaration's,
    else library), so that the summary states it and lists what it declares (``spec.contracts``)."""
    from .spec import FULL, contracts

    contract = contracts.LIBRARY if args.strict else contracts.resolve(args.contract, impl.capabilities)
    impl.extras["contract"] = contract
    impl.capabilities = FULL if args.strict else contracts.under(impl.capabilities, contract)


def load_for_summary(args: argparse.Namespace) -> Any:
    """Validate the implementation up front, in a worker unless ``no_isolation``. ``ContractError``
    for a bad implementation, ``UsageError`` for a bad limit."""
    from .impls import registry
    from .sandbox.interpreter import requested

    python = requested(getattr(args, "python", None))
    if args.no_isolation:
        if python is not None:
            from .spec import UsageError

            raise UsageError(f"--python {python} runs the implementation in a worker; drop --no-isolation")
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
    impl = load(args.impl, limits, python)
    impl.extras["sandbox"].close()
    return impl


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


def prepare(args: argparse.Namespace) -> Implementation:
    """Everything a run checks before it starts, in the CLI's order; the implementation as loaded
    for the summary (its contract applied). ``ConvcheckError`` (a usage error: exit status 2) with
    a one-line message for the first problem. Fixes ``args.profile`` and ``args.seed``."""
    from .spec import UsageError

    if args.report:
        writable_folder(args.report, "report folder")
    if args.results:
        writable_folder(str(Path(args.results).resolve().parent), "folder of --results")
    if getattr(args, "xfails", None):
        from . import xfails

        xfails.load(args.xfails)  # a bad file is a usage error before anything runs
    impl: Implementation = load_for_summary(args)
    apply_contract(impl, args)
    if args.max_examples is not None and args.max_examples < 1:
        raise UsageError(f"--max-examples={args.max_examples} must be at least 1")
    import pytest

    from .pytest_plugin import env_max_examples

    try:
        env_max_examples()
    except pytest.UsageError as e:
        raise UsageError(str(e)) from None
    resolve_draws(args)
    return impl


class SessionGrab:
    """A plugin handed to ``pytest.main`` that keeps the session's config, to read results back."""

    def __init__(self) -> None:
        self.config: Any = None

    def pytest_configure(self, config: Any) -> None:
        self.config = config

    def results(self) -> list[dict[str, Any]]:
        from .pytest_plugin import collected_results

        return collected_results(self.config) if self.config is not None else []


@dataclass
class RunOutcome:
    """What one run of the suite gave: ``results`` (one record per finished check, as the plugin
    collects them), ``pytest_code`` (pytest's exit code), ``exit_code`` (the CLI's: 0 passed, 1 a
    check failed or the run was interrupted, 2 usage error, 3 internal error), ``interrupted``, the
    session's pytest ``config`` and ``log`` (pytest's own output when it was hidden)."""

    results: list[dict[str, Any]]
    pytest_code: int
    exit_code: int
    interrupted: bool = False
    config: Any = None
    log: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


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


def exit_code_of(pytest_code: int, results: list[dict[str, Any]]) -> int:
    """The CLI's exit status for a finished session (see ``RunOutcome``)."""
    import pytest

    from .summary import rows

    if pytest_code == pytest.ExitCode.USAGE_ERROR:
        return EXIT_USAGE
    if pytest_code == pytest.ExitCode.INTERNAL_ERROR or (pytest_code not in (0, 1, 5) and not results):
        return EXIT_INTERNAL
    if pytest_code == pytest.ExitCode.INTERRUPTED:
        return EXIT_FAILED
    failed = any(r["status"] in ("failed", "error") for r in rows(results))
    return EXIT_FAILED if failed else EXIT_OK


def stale_xfails(args: argparse.Namespace, results: list[dict[str, Any]]) -> list[Any]:
    """Under ``--strict-xfails``, the ``--xfails`` entries whose checks now pass (they fail the run);
    else none (``convcheck.xfails``)."""
    if not (getattr(args, "strict_xfails", False) and getattr(args, "xfails", None)):
        return []
    from . import xfails

    return xfails.classify(xfails.load(args.xfails), results).now_passing


def execute(args: argparse.Namespace, plugins: list[Any] | None = None) -> RunOutcome:
    """Run the suite in this process as ``args`` says (``prepare`` first), with ``plugins`` handed
    to ``pytest.main`` besides the engine's own. ``--results`` is rewritten from the records held in
    memory at the end, so nothing the code under test wrote into it survives."""
    import pytest

    with tempfile.TemporaryDirectory() as tmp:
        results_path = args.results or os.path.join(tmp, "results.jsonl")
        Path(results_path).parent.mkdir(parents=True, exist_ok=True)
        Path(results_path).write_text("")
        log_path = os.path.join(tmp, "pytest.log")
        grab = SessionGrab()
        argv = pytest_args(args, results_path)
        with open(log_path, "w", encoding="utf-8") as log:
            if args.verbose:
                code = pytest.main(argv, plugins=[grab, *(plugins or [])])
            else:  # pytest's own progress output is replaced by the caller's summary
                with contextlib.redirect_stdout(log):
                    code = pytest.main(argv, plugins=[grab, *(plugins or [])])
        results = grab.results()
        if args.results:
            _write_lines(results_path, with_mistakes(results))
        log_text = Path(log_path).read_text(encoding="utf-8", errors="replace")
    exit_code = exit_code_of(int(code), results)
    if exit_code == EXIT_OK and stale_xfails(args, results):
        exit_code = EXIT_FAILED
    return RunOutcome(
        results=results,
        pytest_code=int(code),
        exit_code=exit_code,
        interrupted=code == pytest.ExitCode.INTERRUPTED,
        config=grab.config,
        log=log_text,
    )

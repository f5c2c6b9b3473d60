"""``convcheck.check``: the conformance suite as a function call, for notebooks and scripts.

The call builds the same ``argparse.Namespace`` ``convcheck run`` parses (every
option of ``convcheck.options.RUN_OPTIONS`` at its default, then the keyword
arguments), and hands it to the same engine (``convcheck.engine``): the same
properties, oracles, tolerance policy, diagnosis and grouping. Only the way
the implementation is named differs (``api.target``), and what comes back: a
``CheckResult`` instead of printed text.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
import weakref
from collections.abc import Iterator
from typing import Any

from .errors import InvalidOption
from .result import CheckResult

ISOLATIONS = ("process", "none")

OWN_OPTIONS = frozenset(
    {
        "impl",
        "ops",
        "profile",
        "max_examples",
        "seed",
        "tolerance",
        "no_isolation",
        "report",
        "results",
        "junitxml",
    }
)
"""``convcheck run`` options that ``check`` takes under its own arguments (``target``, ``isolation``,
``report``...) or sets itself. Every other run option (``convcheck.options.RUN_OPTIONS``: ``strict``,
``contract``, ``timeout``, ``memory``, ``cpu_time``, ``select``, ``workers``, ``coverage``,
``tolerance_file``, ``verbose``) is a keyword argument of ``check`` under its own name and meaning."""


def passed_on() -> list[str]:
    """The run options ``check`` takes as keyword arguments of the same name (see ``OWN_OPTIONS``)."""
    from ..options import RUN_OPTIONS

    return [o.name for o in RUN_OPTIONS if o.name not in OWN_OPTIONS]


def run_args(
    impl: str,
    *,
    ops: str | list[str] | tuple[str, ...] | None,
    profile: str | None,
    max_examples: int | None,
    seed: int | None,
    tolerance: Any,
    isolation: str,
    options: dict[str, Any],
) -> argparse.Namespace:
    """The ``convcheck run`` namespace of a ``check`` call: ``RUN_OPTIONS`` defaults, then the arguments.
    ``InvalidOption`` naming an unknown keyword or a bad value."""
    from ..options import RUN_OPTIONS

    args = argparse.Namespace(command="run")
    for option in RUN_OPTIONS:
        default = option.parsed_default
        setattr(args, option.name, list(default) if isinstance(default, list) else default)
    unknown = sorted(set(options) - set(passed_on()))
    if unknown:
        own = (
            "ops",
            "profile",
            "max_examples",
            "seed",
            "isolation",
            "report",
            "tolerance",
            "progress",
            "name",
        )
        known = ", ".join([*own, *passed_on()])
        raise InvalidOption(f"check() got an unexpected keyword argument {unknown[0]!r}; it takes {known}")
    for key, value in options.items():
        if value is not None:
            setattr(args, key, value)
    if isolation not in ISOLATIONS:
        raise InvalidOption(f"isolation={isolation!r}: choose 'process' (the default) or 'none'")
    args.impl = impl
    args.ops = ",".join(ops) if isinstance(ops, list | tuple) else ops
    args.profile = profile
    args.max_examples = max_examples
    args.seed = seed
    args.no_isolation = isolation == "none"
    args.tolerance = _tolerance(tolerance)
    if args.tolerance_file:
        args.tolerance_file = os.path.abspath(os.fspath(args.tolerance_file))
    if profile is not None and not isinstance(profile, str):
        raise InvalidOption(f"profile={profile!r} must be a profile name such as 'fast'")
    for name in ("max_examples", "seed"):
        value = getattr(args, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidOption(f"{name}={value!r} must be an int")
    return args


def _tolerance(tolerance: Any) -> list[str]:
    """``tolerance=`` as ``--tolerance`` values: a string, a list of them, or a mapping
    ``{"conv2d:float32": 4, "avg_pool2d:float64": "rtol=1e-12"}``."""
    if tolerance is None:
        return []
    if isinstance(tolerance, str):
        return [tolerance]
    if isinstance(tolerance, dict):
        return [f"{k}={v}" for k, v in tolerance.items()]
    if isinstance(tolerance, list | tuple) and all(isinstance(t, str) for t in tolerance):
        return list(tolerance)
    raise InvalidOption(
        f"tolerance={tolerance!r}: give 'op:dtype=value' strings (as --tolerance takes) or a mapping "
        "{'conv2d:float32': 4}"
    )


def _in_process(target: Any, label: str | None, timeout_s: float) -> tuple[str, Any, Any]:
    """Register ``target``'s functions in this process, each wrapped by a timeout guard; the name
    the engine loads, the guard and the in-process source description."""
    import types

    from ..impls import registry
    from ..spec import FUNCTION_NAMES
    from .inprocess import Guard, guarded
    from .target import CAPABILITIES_NAME, namespace_of

    if isinstance(target, str | os.PathLike):
        from ..impls.registry import absolute

        impl = registry.load(absolute(os.fspath(target), os.getcwd()))
        obj: Any = types.SimpleNamespace(**impl.functions)
        if impl.raw_capabilities is not None:
            setattr(obj, CAPABILITIES_NAME, impl.raw_capabilities)
        name, source = impl.name, impl.source
    else:
        found = namespace_of(target)
        name, source = label or found.label, f"{found.label} (in this process)"
        if found.cs231n:
            from ..impls.adapters import from_cs231n

            members = dict(found.functions)
            if found.capabilities is not None:
                members[CAPABILITIES_NAME] = found.capabilities
            obj = from_cs231n(members)
        else:
            obj = types.SimpleNamespace(**found.functions)
            if found.capabilities is not None:
                setattr(obj, CAPABILITIES_NAME, found.capabilities)
    guard = Guard(timeout_s)
    key = registry.register_in_process(guarded(obj, list(FUNCTION_NAMES), guard), name, source)
    return key, guard, source


@contextlib.contextmanager
def _sandboxed(spec: str, limits: Any) -> Iterator[Any]:
    from ..sandbox import load

    impl = load(spec, limits)
    try:
        yield impl
    finally:
        impl.extras["sandbox"].close()


def _limits(args: argparse.Namespace) -> Any:
    from ..sandbox import Limits

    given = {"timeout_s": args.timeout, "memory_mb": args.memory, "cpu_s": args.cpu_time}
    return Limits(**{k: v for k, v in given.items() if v is not None})


class _RunInfo:
    """A pytest plugin keeping what ``report.writer.run_info`` records about the session."""

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}

    def pytest_sessionstart(self, session: Any) -> None:
        from ..pytest_plugin import seed_of
        from ..report.writer import run_info

        config = session.config
        self.info = run_info(config, config.getoption("convcheck_profile") or "", seed_of(config))


def check(
    target: Any,
    *,
    ops: str | list[str] | tuple[str, ...] | None = None,
    profile: str | None = "fast",
    max_examples: int | None = None,
    seed: int | None = None,
    isolation: str = "process",
    report: str | os.PathLike[str] | None = None,
    tolerance: Any = None,
    progress: bool | None = None,
    name: str | None = None,
    **options: Any,
) -> CheckResult:
    """Check an implementation against the contract and return a ``CheckResult``.

    ``target``: what ``--impl`` takes (a shipped name such as ``"numpy_fast"``, a ``.py`` path
    relative to the working folder, ``"module[:attr]"``, an entry point), a module object, or a
    mapping or object whose keys or attributes are contract functions, a notebook's ``globals()``
    included. CS231n-style functions (``conv_forward_naive(x, w, b, conv_param)`` and friends) are
    adapted with ``convcheck.impls.adapters.from_cs231n`` when the target has them and no contract
    function of its own.

    The run is ``convcheck run``'s, option for option: ``ops`` (names, comma-separated or a list),
    ``profile`` (``fast``, ``ci``, ``thorough``; ``None``: ``$CONVCHECK_PROFILE``, else ``ci``
    under CI, else ``fast``), ``max_examples``, ``seed`` (the same seed draws the same cases),
    ``tolerance`` (``--tolerance`` strings, or ``{"conv2d:float32": 4}``), and as further keywords
    ``strict``, ``contract`` (``"library"`` or ``"course"``), ``timeout`` (seconds per call),
    ``memory`` (MB), ``cpu_time`` (seconds), ``select`` (``-k``), ``workers`` (``-n``),
    ``tolerance_file``, ``coverage``, ``verbose`` (pytest's own output). ``report=DIR`` also
    writes the report folder (``CheckResult.write_report``). ``name`` names a captured target
    (default ``notebook`` for ``globals()``). ``progress``: ``None`` shows progress in Jupyter
    or on a terminal, ``False`` never, ``True`` always.

    ``isolation="process"`` (the default) runs the code in the same isolated worker as the CLI,
    with its per-call wall-clock, CPU and memory limits: a hang, a crash or a huge allocation is a
    failure of that call, never of the caller. Functions that live only in the caller (a notebook's
    cells) are captured into a module file first: their source with the globals they read
    (``api.capture``); what cannot be captured raises ``NotCapturable``. ``isolation="none"``
    runs the functions in this process with only a per-call wall-clock timeout (a ``SIGALRM``
    timer, on the main thread, interrupting Python code but not a long C call); no memory cap, no
    protection from a crash or from changes to the caller's state.

    Raises ``NoContractFunctions`` or ``MisspeltName`` (``ValueError``) for a target with no
    contract function or a misspelt one, ``NotCapturable`` (``ValueError``) for a function that
    cannot be sent to the worker, ``UnusableTarget`` (``TypeError``) for a target of another type,
    ``InvalidOption`` (``ValueError``) for a bad keyword argument, and ``ContractError`` /
    ``UsageError`` (convcheck's, with the CLI's one-line messages) for what ``convcheck run``
    would reject with exit status 2.
    """
    from ..spec import FULL, ConvcheckError
    from .errors import as_api_error

    started_at = time.perf_counter()
    args = run_args(
        "",
        ops=ops,
        profile=profile,
        max_examples=max_examples,
        seed=seed,
        tolerance=tolerance,
        isolation=isolation,
        options=options,
    )
    keep: list[Any] = []
    try:
        _validate(args)
        outcome, impl, registered, paths = _run(args, target, name, progress, keep, started_at)
    except ConvcheckError as e:
        for folder in keep:
            shutil.rmtree(folder, ignore_errors=True)
        raise as_api_error(e) from None
    except BaseException:
        for folder in keep:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    shown: Any = outcome.extra["progress"]
    run_info: Any = outcome.extra["run_info"]
    caps = FULL if args.strict else impl.capabilities
    result = CheckResult(
        impl=impl.name,
        source=impl.source,
        profile=args.profile,
        seed=args.seed,
        exit_code=outcome.exit_code,
        results=outcome.results,
        implementation=impl,
        capabilities=caps,
        run_info={**run_info.info, "command": _command(target, args)},
        junit_xml=args.junitxml,
        isolation=isolation,
        interrupted=outcome.interrupted,
        _keep=keep,
    )
    result._loader = _loader(args, registered, paths)
    for folder in keep:  # the captured module and junit.xml live as long as the result
        if os.path.isdir(folder):
            weakref.finalize(result, shutil.rmtree, folder, True)
    if shown.first_result_at is not None:  # from the call itself
        result.first_result_s = shown.first_result_at - started_at
    if registered is not None:
        from ..impls.registry import unregister_in_process

        weakref.finalize(result, unregister_in_process, registered)
    if outcome.exit_code == 2:
        said = _last_line(outcome.extra["stderr"] or outcome.log).removeprefix("ERROR: ")
        raise InvalidOption(f"the test session refused the options: {said}")
    if report is not None:
        result.write_report(report)
    return result


def _validate(args: argparse.Namespace) -> None:
    """What the pytest plugin would refuse at configure time, refused here with its message."""
    from ..spec import tolerance
    from ..spec.networks import selection

    selection([o.strip() for o in (args.ops or "").split(",") if o.strip()])
    found = tolerance.ToleranceOverrides.from_cli(args.tolerance or [])
    if args.tolerance_file:
        found += tolerance.ToleranceOverrides.from_file(str(args.tolerance_file))


def _run(
    args: argparse.Namespace,
    target: Any,
    name: str | None,
    progress: bool | None,
    keep: list[Any],
    started_at: float,
) -> tuple[Any, Any, str | None, list[str]]:
    """Resolve the target, prepare and execute the run (``convcheck.engine``); temporary folders
    are appended to ``keep``. The outcome (its ``extra`` holds the progress and run-info plugins),
    the implementation as loaded for the summary, the in-process registration and import paths."""
    from ..engine import execute, prepare
    from ..sandbox import Limits
    from ..spec import UsageError
    from .progress import Progress
    from .state import preserved, with_import_path
    from .target import resolve

    plugins: list[Any] = []
    registered = None
    paths: list[str] = []
    if args.no_isolation:
        timeout = args.timeout if args.timeout is not None else Limits().timeout_s
        registered, guard, _ = _in_process(target, name, timeout)
        args.impl = registered
        from .inprocess import BreakerReset

        plugins.append(BreakerReset(guard))
    else:
        resolved = resolve(target, name=name)
        keep += [p for p in (resolved.folder, resolved.module_file) if p]
        args.impl = resolved.spec
        paths = resolved.paths
    run_info = _RunInfo()
    junit = tempfile.mkdtemp(prefix="convcheck-junit-")
    keep.append(junit)
    args.junitxml = os.path.join(junit, "junit.xml")
    with preserved():
        with_import_path(paths)
        try:
            impl = prepare(args)
        except ValueError as e:  # a bad limit, told as the CLI tells it
            raise UsageError(str(e)) from None
        shown = Progress(impl.name, progress, started_at)
        errors = io.StringIO()  # pytest's own complaints (a bad -k expression): the error's message
        try:
            with contextlib.redirect_stderr(errors):
                outcome = execute(args, [run_info, shown, *plugins])
        finally:
            shown.close()
    said = errors.getvalue()
    if said and outcome.exit_code != 2:
        sys.stderr.write(said)
    outcome.extra.update(progress=shown, run_info=run_info, stderr=said)
    return outcome, impl, registered, paths


def _last_line(log: str) -> str:
    lines = [ln for ln in log.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(no message)"


def _command(target: Any, args: argparse.Namespace) -> str:
    shown = repr(target) if isinstance(target, str) else f"<{type(target).__name__}>"
    return f"convcheck.check({shown}, profile={args.profile!r}, seed={args.seed})"


def _loader(args: argparse.Namespace, registered: str | None, paths: list[str]) -> Any:
    """How a result loads its implementation again to compute a failure's arrays: the in-process
    registration, or a fresh isolated worker with the run's limits."""

    @contextlib.contextmanager
    def load() -> Iterator[Any]:
        from ..impls import registry
        from .state import preserved, with_import_path

        if registered is not None:
            yield registry.load(registered)
            return
        with preserved():
            with_import_path(paths)
            with _sandboxed(args.impl, _limits(args)) as impl:
                yield impl

    return load


__all__ = ["check"]

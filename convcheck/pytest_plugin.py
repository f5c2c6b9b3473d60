"""The pytest plugin behind the conformance suite: options, profiles, fixtures, summary.

Loaded by the project's top-level ``conftest.py`` (a clone run with pytest)
and by ``convcheck run`` (``-p convcheck.pytest_plugin``). It is deliberately
not an auto-loaded ``pytest11`` entry point, so installing convcheck adds no
options to other projects' test runs.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import Unsatisfiable

from . import draws, interrupts, recording, unsupported_calls, xfails
from .bench.threads import limit_threads
from .impls import registry
from .options import (
    BY_NAME,
    DEFAULT_IMPL,
    DEFAULT_SEED,
    DERANDOMISED,
    MAX_EXAMPLES_ENV,
    PROFILE_EXAMPLES,
    add_to_pytest,
    default_profile,
)
from .recording import Recorder
from .spec import FULL, OPERATIONS, Capabilities, ConvcheckError, contracts, tolerance
from .spec.capabilities import FORWARD_ONLY_PROPERTIES
from .spec.networks import selection

_COMMON = {
    # Explicitly off: with ``CI`` set, hypothesis loads its own ``ci`` profile (derandomize=True),
    # which every profile registered after it would inherit, and ``--seed`` would choose nothing.
    "derandomize": False,
    "deadline": None,
    # No explain phase: it reruns each failure many times, and the message already says what differs.
    "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    "print_blob": True,
    # Every distinct failure of a check, each shrunk on its own: convcheck raises each kind of
    # failure as its own exception class (convcheck.failure_keys), and the recorder keeps them all.
    "report_multiple_bugs": True,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
}
PROFILES: dict[str, dict[str, Any]] = {
    name: {"max_examples": n, **_COMMON} for name, n in PROFILE_EXAMPLES.items()
}
# Derandomised by the run's seed (``DEFAULT_SEED`` unless one is given), not hypothesis's
# ``derandomize``: that ignores every seed and gives tests of one source the same draws.
PROFILES["ci"]["database"] = None
"""Hypothesis settings of every profile (``convcheck.options.PROFILE_EXAMPLES``)."""

for _name, _kw in PROFILES.items():
    settings.register_profile(f"convcheck-{_name}", **_kw)


def pytest_addoption(parser: pytest.Parser) -> None:
    """The convcheck option group, made from ``convcheck.options``."""
    add_to_pytest(parser.getgroup("convcheck", "convcheck conformance suite"))


def env_max_examples() -> int | None:
    """``$CONVCHECK_MAX_EXAMPLES`` as a positive int, ``None`` when unset; a usage error otherwise."""
    raw = os.environ.get(MAX_EXAMPLES_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise pytest.UsageError(f"{MAX_EXAMPLES_ENV}={raw!r} must be a positive integer, e.g. 20")
    return int(raw)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "conformance(prop, ops=..., direction=...): a conformance property (ops: the operations it "
        "checks, when not every one whose spec lists prop; direction: forward or backward, when the "
        "test checks one pass only)",
    )
    limit_threads()  # one thread per checking process, before any sandbox worker starts
    draws.pin()  # a seed draws the same cases whatever is imported (convcheck/draws.py)
    interrupts.install()  # a Ctrl-C that something caught is raised again (convcheck/interrupts.py)
    profile = config.getoption("convcheck_profile") or default_profile()
    if profile not in PROFILES:
        raise pytest.UsageError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    overrides: dict[str, Any] = {}
    max_examples = config.getoption("max_examples") or env_max_examples()
    if max_examples:
        overrides["max_examples"] = max_examples
    settings.register_profile("convcheck-active", settings.get_profile(f"convcheck-{profile}"), **overrides)
    if not config.getoption("hypothesis_profile", default=None):
        settings.load_profile("convcheck-active")
    try:
        names = registry.requested(config.getoption("impl"), str(config.invocation_params.dir)) or [
            DEFAULT_IMPL
        ]
        impls = [load_implementation(n, config) for n in names]
    except ConvcheckError as e:
        raise pytest.UsageError(str(e)) from None
    ops = [o.strip() for o in (config.getoption("ops") or "").split(",") if o.strip()]
    try:
        config.stash[_OPS] = selection(ops)
    except ConvcheckError as e:
        raise pytest.UsageError(str(e)) from None
    for impl in impls:  # the run's contract (spec/contracts.py); --strict checks the library's
        option = contracts.LIBRARY if config.getoption("strict_contract") else config.getoption("contract")
        contract = contracts.resolve(option, impl.capabilities)
        impl.extras["contract"] = contract
        impl.capabilities = contracts.under(impl.capabilities, contract)
        if not config.getoption("strict_contract"):  # NotImplementedError: unsupported at that case
            unsupported_calls.wrap(impl)
    config.stash[_IMPLS] = impls
    config.stash[_PROFILE] = profile
    config.stash[_SEED] = run_seed(config, profile)
    tolerance.use_overrides(_tolerance_overrides(config))  # in every process, workers included
    config.stash[_XFAILS] = _expected_failures(config)
    if hasattr(config, "workerinput"):
        return  # an xdist worker: results travel to the controller, which collects and writes them
    collector = Collector(path_option(config, "convcheck_results"), config.stash[_XFAILS])
    config.stash[_COLLECTOR] = collector
    config.pluginmanager.register(collector, "convcheck-collector")
    if config.getoption("convcheck_report"):
        from .report.writer import ReportPlugin

        folder = path_option(config, "convcheck_report")
        reporter = ReportPlugin(
            config, str(folder), impls, profile, config.stash[_SEED], config.stash[_XFAILS]
        )
        collector.listeners.append(reporter.add)
        config.pluginmanager.register(reporter, "convcheck-report")


def _expected_failures(config: pytest.Config) -> list[xfails.Entry]:
    """The entries of ``--xfails FILE`` (none without it); a bad file is a usage error."""
    path = path_option(config, "xfails")
    if not path:
        return []
    try:
        return xfails.load(path)
    except ConvcheckError as e:
        raise pytest.UsageError(str(e)) from None


def run_seed(config: pytest.Config, profile: str) -> int:
    """The run's seed: ``--hypothesis-seed`` (``convcheck run --seed``); else ``DEFAULT_SEED`` under a
    derandomised profile and a fresh random one otherwise. xdist workers take the controller's."""
    worker = getattr(config, "workerinput", None)
    if worker is not None and "convcheck_seed" in worker:
        return int(worker["convcheck_seed"])
    given = config.getoption("hypothesis_seed", default=None)
    if given is None:
        import secrets

        return DEFAULT_SEED if profile in DERANDOMISED else secrets.randbelow(2**32)
    try:
        return int(given)
    except ValueError:
        raise pytest.UsageError(f"--hypothesis-seed={given!r} must be an integer for convcheck") from None


def seed_for(run: int, key: str) -> int:
    """The seed one test draws from: the run's seed mixed with the test's ``draw_key``."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{run}|{key}".encode()).digest()[:8], "big")


def draw_key(item: pytest.Item) -> str:
    """What names a test's draws: its file and check (operation, oracle, output, dtype), not the
    implementation, so every implementation of a run meets the same cases; else its node id."""
    if item.get_closest_marker("conformance"):
        return f"{item.path.name}::{_identity(item)['check']}"
    return item.nodeid


@pytest.fixture(autouse=True)
def _seeded(request: pytest.FixtureRequest) -> Any:
    """Every hypothesis test of the run draws from ``seed_for(run seed, draw_key)``: deterministic for
    a seed, different between seeds, and different between two checks of one property (two oracles)."""
    import hypothesis.core as core

    seed = request.config.stash.get(_SEED, None)
    if seed is None:
        yield
        return
    before = core.global_force_seed
    core.global_force_seed = seed_for(seed, draw_key(request.node))  # type: ignore[assignment]  # hypothesis annotates it as None only
    try:
        yield
    finally:
        core.global_force_seed = before


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: every worker draws from the controller's seed."""
    node.workerinput["convcheck_seed"] = node.config.stash[_SEED]


def replay_command(item: pytest.Item) -> str:
    """The pytest command line that reruns one failed test with the same draws."""
    import shlex

    config = item.config
    names = ",".join(i.source if registry.is_file_source(i.source) else i.name for i in config.stash[_IMPLS])
    values = {
        "impl": names,
        "profile": config.stash[_PROFILE],
        "seed": config.stash[_SEED],
        "max_examples": config.getoption("max_examples"),
        "strict": config.getoption("strict_contract"),
        "xfails": path_option(config, "xfails"),
    }
    argv = ["python", "-m", "pytest", item.nodeid]
    for name, value in values.items():
        argv += BY_NAME[name].pytest_argv(value)
    return shlex.join(argv)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """A check whose every example raised ``NotImplementedError`` ends ``unsupported``
    (``convcheck.unsupported_calls.finish``), and so does one whose every drawn case the declared
    ``supports`` predicate left out (hypothesis finds none to run: ``Unsatisfiable``), saying so."""
    rec = getattr(item, "funcargs", {}).get("record")
    try:
        result = yield
    except Exception as e:
        if isinstance(rec, Recorder):
            rec.note_raised(e)  # failures no check noted: the code under test raised, hung, crashed
            unsupported_calls.finish(rec, e)
            if isinstance(e, Unsatisfiable) and rec.excluded and not rec.examples:
                recording.skip("unsupported", f"unsupported: {rec.excluded_line()}")
        raise
    if isinstance(rec, Recorder):
        unsupported_calls.finish(rec, None)
    return result


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Any:
    """A conformance test's report carries, as typed fields, what its exception says (the text of the
    assertion, whatever ``--tb`` is), the kind of its skip, and for a failure the replay command."""
    outcome = yield
    report = outcome.get_result()
    if not item.get_closest_marker("conformance"):
        return
    if call.excinfo is not None:
        if report.skipped:
            kind = getattr(call.excinfo.value, recording.SKIP_KIND_ATTRIBUTE, None)
            report.user_properties.append(("convcheck_skip_kind", kind))
        elif report.failed:
            exception = {"type": call.excinfo.typename, "text": exception_text(call.excinfo)}
            report.user_properties.append(("convcheck_exception", json.dumps(exception)))
    if report.when == "call" and report.failed:
        item.stash[_CALL_FAILED] = True
        command = replay_command(item)
        report.sections.append(("convcheck replay", command))
        report.user_properties.append(("convcheck_replay", command))
        _mark_expected(item, report)


def _mark_expected(item: pytest.Item, report: pytest.TestReport) -> None:
    """A failure an ``--xfails`` entry expects becomes pytest's xfail (``wasxfail``: junit.xml and
    xdist count it as expected); the entry travels as ``convcheck_expected``."""
    entries = item.config.stash.get(_XFAILS, [])
    rec = getattr(item, "funcargs", {}).get("record")
    if not entries or not isinstance(rec, Recorder):
        return
    record = {**_identity(item), **rec.to_dict(), "status": "failed"}
    found = xfails.expected(entries, record)
    if found is None:
        return
    report.outcome = "skipped"
    report.wasxfail = f"convcheck --xfails entry #{found['entry']}: {found['reason']}"
    report.user_properties.append(("convcheck_expected", json.dumps(found)))


def exception_text(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    """What an exception says, as pytest's ``E`` lines show it (notes such as hypothesis's falsifying
    example included); an exception group (hypothesis's flaky replay) with each sub-exception's."""
    import traceback

    text = excinfo.exconly(tryshort=True)
    if isinstance(excinfo.value, BaseExceptionGroup):
        for sub in excinfo.value.exceptions:
            text += "\n" + "".join(traceback.format_exception_only(type(sub), sub)).rstrip()
    return text


def isolation_limits(config: pytest.Config) -> Any:
    """The per-call limits from the options, or ``None`` with ``--no-isolation``."""
    if config.getoption("no_isolation"):
        return None
    from .sandbox import Limits

    defaults = Limits()
    limits = Limits(
        timeout_s=config.getoption("timeout") or defaults.timeout_s,
        memory_mb=config.getoption("memory") or defaults.memory_mb,
        cpu_s=config.getoption("cpu_time") or defaults.cpu_s,
    )
    try:
        limits.check()
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None
    return limits


def load_implementation(name: str, config: pytest.Config) -> registry.Implementation:
    """Load in a sandbox worker (the default) or, with ``--no-isolation``, in this process."""
    from .sandbox.interpreter import requested

    limits = isolation_limits(config)
    python = requested(config.getoption("python"))
    if limits is None:
        if python is not None:
            raise pytest.UsageError(
                f"--python {python} runs the implementation in a worker; drop --no-isolation"
            )
        return registry.load(name)
    from . import sandbox

    return sandbox.load(name, limits, python)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """No test starts after a Ctrl-C (``convcheck.interrupts``)."""
    interrupts.raise_if_interrupted()


def pytest_unconfigure(config: pytest.Config) -> None:
    interrupts.uninstall()
    for impl in config.stash.get(_IMPLS, []):
        if "sandbox" in impl.extras:
            impl.extras["sandbox"].close()


@pytest.fixture(autouse=True)
def _fresh_breaker(request: pytest.FixtureRequest) -> None:
    """Every test starts trusting every function again (see ``sandbox.client``)."""
    for impl in request.config.stash.get(_IMPLS, []):
        if "sandbox" in impl.extras:
            impl.extras["sandbox"].reset_breaker()


def path_option(config: pytest.Config, name: str) -> str | None:
    """A file or folder option resolved against the folder pytest was invoked from.

    The isolated worker and xdist's workers may run elsewhere; a relative path
    means what it meant where the user typed it.
    """
    value = config.getoption(name)
    if not value:
        return None
    return os.path.normpath(os.path.join(str(config.invocation_params.dir), value))


def _tolerance_overrides(config: pytest.Config) -> tolerance.ToleranceOverrides:
    """The file's overrides, then the command line's (which win among equally specific ones)."""
    try:
        found = tolerance.ToleranceOverrides()
        if config.getoption("convcheck_tolerance_file"):
            found += tolerance.ToleranceOverrides.from_file(
                str(path_option(config, "convcheck_tolerance_file"))
            )
        return found + tolerance.ToleranceOverrides.from_cli(config.getoption("convcheck_tolerance") or [])
    except ConvcheckError as e:
        raise pytest.UsageError(str(e)) from None


_IMPLS = pytest.StashKey[list[registry.Implementation]]()
_PROFILE = pytest.StashKey[str]()
_SEED = pytest.StashKey[int]()
_OPS = pytest.StashKey[list[str]]()
_COLLECTOR = pytest.StashKey["Collector"]()
_XFAILS = pytest.StashKey[list[xfails.Entry]]()
_CALL_FAILED = pytest.StashKey[bool]()
"""Set on an item whose call phase failed (its recorder then settles an unreplayed failure)."""


def collected_results(config: pytest.Config) -> list[dict[str, Any]]:
    """Every finished check's result, as the controller's collector holds them in memory."""
    collector = config.stash.get(_COLLECTOR, None)
    return list(collector.results) if collector is not None else []


def loaded_implementations(config: pytest.Config) -> list[registry.Implementation]:
    return config.stash[_IMPLS]


def seed_of(config: pytest.Config) -> int | None:
    """The seed the run draws from (``run_seed``)."""
    return config.stash.get(_SEED, None)


def pytest_report_header(config: pytest.Config) -> list[str]:
    import numpy
    import scipy
    import torch

    lines = [
        f"convcheck: profile={config.stash[_PROFILE]} seed={config.stash[_SEED]} strict={config.getoption('strict_contract')} "
        f"numpy={numpy.__version__} scipy={scipy.__version__} torch={torch.__version__}",
    ]
    for impl in config.stash[_IMPLS]:
        unsupported = (
            ", ".join(f"{o}.{f}={v!r}" for o, f, v in impl.capabilities.unsupported(impl.functions)) or "none"
        )
        lines.append(
            f"convcheck: impl {impl.name} ({impl.source}): {', '.join(impl.functions)}; "
            f"declared unsupported: {unsupported}"
        )
        lines.append(
            f"convcheck: {impl.name}: {contracts.summary_line(impl.extras.get('contract', 'library'))}"
        )
    return lines


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``impl`` over the requested implementations and ``op`` over the spec."""
    if "impl" in metafunc.fixturenames:
        impls = metafunc.config.stash[_IMPLS]
        metafunc.parametrize("impl", impls, ids=[i.name for i in impls], scope="session")
    marker = metafunc.definition.get_closest_marker("conformance")
    ops = (marker.kwargs.get("ops") if marker else None) or _checked_by(marker.args[0] if marker else "")
    if "grad" in metafunc.fixturenames:
        pairs = [(o, g) for o in ops for g in OPERATIONS[o].grads]
        metafunc.parametrize(("op_name", "grad"), pairs, ids=[f"{o}-{g}" for o, g in pairs])
    elif "op_name" in metafunc.fixturenames:
        metafunc.parametrize("op_name", ops)
    if "oracle_name" in metafunc.fixturenames:
        from .oracles import ORACLES

        metafunc.parametrize("oracle_name", list(ORACLES))


def _checked_by(prop: str) -> tuple[str, ...]:
    """The operations whose spec lists property ``prop`` (``Operation.properties``)."""
    return tuple(name for name, op in OPERATIONS.items() if prop in op.properties)


@pytest.fixture(scope="session")
def strict(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("strict_contract"))


@pytest.fixture
def caps(request: pytest.FixtureRequest, impl: registry.Implementation, strict: bool) -> Capabilities:
    """The capabilities the run honours: the declaration, or the full contract under --strict; seen
    from the direction the property calls (a forward-only declaration reaches the forward property)."""
    if strict:
        return FULL
    marker = request.node.get_closest_marker("conformance")
    prop = marker.args[0] if marker and marker.args else ""
    return impl.capabilities.for_direction("forward" if prop in FORWARD_ONLY_PROPERTIES else None)


@pytest.fixture
def contract(impl: registry.Implementation) -> str:
    """The contract the run checks ``impl`` against (``spec.contracts``): ``library`` or ``course``."""
    return impl.extras.get("contract", contracts.LIBRARY)


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Any:
    """A ``Recorder`` (``convcheck.recording``) whose contents travel with the test report
    (through xdist too); ``recording.current()`` finds it while the test runs."""
    caps = request.getfixturevalue("caps") if "impl" in request.fixturenames else None
    rec = Recorder(caps)
    with recording.active(rec):
        yield rec
    if request.node.stash.get(_CALL_FAILED, False):
        rec.settle_unreplayed()
    request.node.user_properties.append(("convcheck_record", json.dumps(rec.to_dict())))


def _original_name(item: pytest.Item) -> str:
    """The test function's name without its parameters (every convcheck item is a ``pytest.Function``)."""
    assert isinstance(item, pytest.Function)
    return item.originalname


def _identity(item: pytest.Item) -> dict[str, str]:
    marker = item.get_closest_marker("conformance")
    params = getattr(item, "callspec", None)
    p = params.params if params else {}
    impl = p.get("impl")
    others = [str(v) for k, v in p.items() if k != "impl"]
    op = p.get("op_name", (marker.kwargs.get("ops") or ("",))[0] if marker else "")
    if "network_name" in p:  # a whole-network check is keyed, selected and reported by its network
        op = p["network_name"]
    return {
        "impl": getattr(impl, "name", "") if impl is not None else "",
        "op": op,
        "direction": p.get("grad", ""),
        "oracle": p.get("oracle_name", ""),
        "property": marker.args[0] if marker and marker.args else _original_name(item),
        "test": item.nodeid,
        "check": _original_name(item) + (f"[{'-'.join(others)}]" if others else ""),
        "dtype": str(p["dtype"]) if "dtype" in p else "",
        "test_direction": (marker.kwargs.get("direction") if marker else None),
        "declared_unsupported": declared_unsupported(impl, item.config) if impl is not None else [],
    }


def declared_unsupported(impl: registry.Implementation, config: pytest.Config) -> list[dict[str, Any]]:
    """What ``impl`` declares unsupported under the run's contract (nothing under
    ``--strict-contract``), for the operations it provides (``summary.declared_unsupported``)."""
    from .summary import declared_unsupported as declared

    return [] if config.getoption("strict_contract") else declared(impl)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tag conformance tests with their identity; deselect operations not asked for (``--ops``)."""
    keep, drop = [], []
    for item in items:
        if item.get_closest_marker("conformance"):
            ident = _identity(item)
            if ident["op"] not in config.stash[_OPS]:
                drop.append(item)
                continue
            item.user_properties.append(("convcheck_id", json.dumps(ident)))
        keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


UNSUPPORTED_KINDS = frozenset({"missing", "unsupported"})
"""Skip kinds (``recording.SKIP_KINDS``) that make a result ``unsupported``; any other skip is ``skipped``."""


def _failed(entry: dict[str, Any], report: pytest.TestReport, props: dict[str, Any]) -> None:
    """A failure's fields: pytest's full text (``message``) and the exception's own (``exception``:
    ``type`` and ``text``, absent when no exception reached the report, e.g. a crashed xdist worker)."""
    entry["message"] = report.longreprtext
    if "convcheck_exception" in props:
        entry["exception"] = json.loads(props["convcheck_exception"])
    else:
        entry.pop("exception", None)


def _show_unreplayed(entry: dict[str, Any]) -> None:
    """A failure hypothesis could not replay raised only its flaky-replay exception group; its
    shown text becomes the recorded failure's (message, diagnosis and why it is the one shown)."""
    failure = entry.get("failure") or {}
    if not failure.get("unreplayed"):
        return
    exception = entry.get("exception") or {}
    entry["exception"] = {"type": exception.get("type", "AssertionError"), "text": failure["message"]}
    entry["message"] = f"{failure['message']}\n\n{entry.get('message') or ''}".rstrip()


class Collector:
    """Gathers one result per conformance test (on the controller under xdist)."""

    def __init__(self, results_path: str | None, expected: list[xfails.Entry] | None = None) -> None:
        self.results: list[dict[str, Any]] = []
        self.expected = expected or []  # the --xfails entries
        self.listeners: list[Any] = []  # called with each finished result (the report writer)
        self._pending: dict[str, dict[str, Any]] = {}
        self._path = results_path

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        if "convcheck_id" not in props:
            return
        entry = self._pending.setdefault(
            report.nodeid, {**json.loads(str(props["convcheck_id"])), "status": None}
        )
        if report.when == "call" or (report.when == "setup" and not report.passed):
            if "convcheck_expected" in props:  # a failure an --xfails entry expects (pytest's xfail)
                entry["status"] = "failed"
                _failed(entry, report, props)
                entry["expected"] = json.loads(str(props["convcheck_expected"]))
            elif report.skipped:
                reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
                kind = props.get("convcheck_skip_kind")
                entry["status"] = "unsupported" if kind in UNSUPPORTED_KINDS else "skipped"
                entry["skip_kind"] = kind
                entry["message"] = reason.removeprefix("Skipped: ")
            elif report.failed:
                entry["status"] = "failed" if report.when == "call" else "error"
                _failed(entry, report, props)
            else:
                entry["status"] = "passed"
            entry["duration"] = report.duration
            if "convcheck_replay" in props:
                entry["replay"] = props["convcheck_replay"]
        if report.when == "teardown":
            if "convcheck_record" in props:
                entry.update(json.loads(str(props["convcheck_record"])))
                _show_unreplayed(entry)
            if report.failed and entry["status"] in (None, "passed"):
                entry["status"] = "error"
                _failed(entry, report, props)
            if self.expected and not entry.get("expected"):
                found = xfails.expected(self.expected, entry)
                if found is not None:
                    entry["expected"] = found
            self._finish(report.nodeid)

    def _finish(self, nodeid: str) -> None:
        entry = self._pending.pop(nodeid)
        self.results.append(entry)
        if self._path:
            with open(self._path, "a", encoding="utf-8") as fh:  # written as each check finishes
                fh.write(json.dumps(entry) + "\n")
        for listener in self.listeners:
            listener(entry)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.results:
            return
        from .grouping import failure_groups
        from .summary import compact_table, coverage_lines

        tr = terminalreporter
        tr.section("convcheck conformance summary")
        for line in compact_table(self.results):
            tr.write_line(line)
        new = [r for r in self.results if not r.get("expected")]  # expected ones: listed below
        for group in failure_groups(new):  # each mistake once, however many tests it failed
            tr.write_line(f"mistake: {group.impl} {group.op}: {group.title} ({group.span()})")
        if self.expected:
            for line in xfails.lines(xfails.classify(self.expected, self.results)):
                tr.write_line(line)
        for line in unsupported_calls.lines(self.results):
            tr.write_line(line)
        for line in coverage_lines(self.results):
            tr.write_line(line)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """``--strict-xfails``: an entry whose checks now pass fails the session."""
        strict = session.config.getoption("strict_xfails")
        if strict and exitstatus == 0 and xfails.classify(self.expected, self.results).now_passing:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

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

from . import recording
from .impls import registry
from .recording import Recorder
from .spec import FULL, OPERATIONS, Capabilities, ConvcheckError, tolerance
from .spec.networks import ALL_NETWORKS, NETWORKS, selection

DEFAULT_IMPL = "numpy_fast"
PROFILE_ENV = "CONVCHECK_PROFILE"
"""``--ops networks`` selects every whole-network check (tests/test_networks.py)."""

_COMMON = {
    "deadline": None,
    # No explain phase: it reruns each failure many times, and the message already says what differs.
    "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    "print_blob": True,
    # One minimal counterexample per check: shrinking several distinct failures costs time and
    # buries the smallest one in an exception group.
    "report_multiple_bugs": False,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
}
PROFILES = {
    "fast": {"max_examples": 15, **_COMMON},
    "ci": {"max_examples": 100, "derandomize": True, "database": None, **_COMMON},
    "thorough": {"max_examples": 400, **_COMMON},
}
"""Hypothesis profiles: ``fast`` for local work, ``ci`` (derandomised, the default
when ``CI`` is set) and ``thorough`` for a release or a grading run."""

for _name, _kw in PROFILES.items():
    settings.register_profile(f"convcheck-{_name}", **_kw)


def default_profile() -> str:
    """``CONVCHECK_PROFILE`` if set, ``ci`` under CI, else ``fast``."""
    if os.environ.get(PROFILE_ENV):
        return os.environ[PROFILE_ENV]
    return "ci" if os.environ.get("CI") else "fast"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("convcheck", "convcheck conformance suite")
    group.addoption(
        "--impl",
        default=None,
        help="implementation(s) to check, comma-separated: a shipped name (numpy_reference, numpy_fast, "
        f"torch, buggy.<name>), a .py path, module[:attr] or an entry point; default ${registry.ENV_VAR} "
        f"or {DEFAULT_IMPL}",
    )
    group.addoption(
        "--strict-contract",
        action="store_true",
        default=False,
        help="ignore capability declarations and check the full contract",
    )
    group.addoption(
        "--convcheck-profile",
        default=None,
        choices=sorted(PROFILES),
        help=f"hypothesis profile: {', '.join(PROFILES)} (default ${PROFILE_ENV}, 'ci' under CI, else 'fast')",
    )
    group.addoption(
        "--no-isolation",
        action="store_true",
        default=False,
        help="run the implementation in this process (plain tracebacks; a crash takes the run down)",
    )
    group.addoption("--timeout", type=float, default=None, help="wall-clock seconds per call (default 10)")
    group.addoption("--memory", type=int, default=None, help="memory cap per worker in MB (default 4096)")
    group.addoption("--cpu-time", type=int, default=None, help="CPU seconds per call (default 60)")
    group.addoption(
        "--ops",
        default=None,
        help=f"only these operations, comma-separated ({', '.join(OPERATIONS)}), or '{ALL_NETWORKS}' for the "
        f"whole-network checks ({', '.join(NETWORKS)}, each also by name); default all",
    )
    group.addoption("--max-examples", type=int, default=None, help="override the profile's examples per test")
    group.addoption(
        "--convcheck-results",
        default=None,
        help="append one JSON line per finished check to this file (used by `convcheck run`)",
    )
    group.addoption(
        "--convcheck-report",
        default=None,
        metavar="DIR",
        help="write report.json (rewritten as each check finishes), report.md, report.html and "
        "reproduction scripts into DIR (one sub-folder per implementation when several are checked)",
    )
    group.addoption(
        "--convcheck-tolerance",
        action="append",
        default=[],
        metavar="OP:DTYPE=VALUE",
        help="override the tolerance policy for an operation and dtype (either may be *): VALUE is a "
        "factor on the policy's bound (conv2d:float32=4) or rtol=R[,atol=A]; repeatable",
    )
    group.addoption(
        "--convcheck-tolerance-file",
        default=None,
        metavar="FILE",
        help="tolerance overrides from a TOML or JSON file: [conv2d.float32] factor = 4 (or rtol/atol)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance(prop): a conformance property")
    profile = config.getoption("convcheck_profile") or default_profile()
    if profile not in PROFILES:
        raise pytest.UsageError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    overrides: dict[str, Any] = {}
    if config.getoption("max_examples"):
        overrides["max_examples"] = config.getoption("max_examples")
    settings.register_profile("convcheck-active", settings.get_profile(f"convcheck-{profile}"), **overrides)
    if not config.getoption("hypothesis_profile", default=None):
        settings.load_profile("convcheck-active")
    try:
        names = registry.requested(config.getoption("impl")) or [DEFAULT_IMPL]
        impls = [load_implementation(n, config) for n in names]
    except ConvcheckError as e:
        raise pytest.UsageError(str(e)) from None
    ops = [o.strip() for o in (config.getoption("ops") or "").split(",") if o.strip()]
    try:
        config.stash[_OPS] = selection(ops)
    except ConvcheckError as e:
        raise pytest.UsageError(str(e)) from None
    config.stash[_IMPLS] = impls
    config.stash[_PROFILE] = profile
    tolerance.use_overrides(_tolerance_overrides(config))  # in every process, workers included
    if hasattr(config, "workerinput"):
        return  # an xdist worker: results travel to the controller, which collects and writes them
    collector = Collector(config.getoption("convcheck_results"))
    config.stash[_COLLECTOR] = collector
    config.pluginmanager.register(collector, "convcheck-collector")
    if config.getoption("convcheck_report"):
        from .report.writer import ReportPlugin

        reporter = ReportPlugin(config, config.getoption("convcheck_report"), impls, profile)
        collector.listeners.append(reporter.add)
        config.pluginmanager.register(reporter, "convcheck-report")


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
    limits = isolation_limits(config)
    if limits is None:
        return registry.load(name)
    from . import sandbox

    return sandbox.load(name, limits)


def pytest_unconfigure(config: pytest.Config) -> None:
    for impl in config.stash.get(_IMPLS, []):
        if "sandbox" in impl.extras:
            impl.extras["sandbox"].close()


@pytest.fixture(autouse=True)
def _fresh_breaker(request: pytest.FixtureRequest) -> None:
    """Every test starts trusting every function again (see ``sandbox.client``)."""
    for impl in request.config.stash.get(_IMPLS, []):
        if "sandbox" in impl.extras:
            impl.extras["sandbox"].reset_breaker()


def _tolerance_overrides(config: pytest.Config) -> tolerance.ToleranceOverrides:
    """The file's overrides, then the command line's (which win among equally specific ones)."""
    try:
        found = tolerance.ToleranceOverrides()
        if config.getoption("convcheck_tolerance_file"):
            found += tolerance.ToleranceOverrides.from_file(config.getoption("convcheck_tolerance_file"))
        return found + tolerance.ToleranceOverrides.from_cli(config.getoption("convcheck_tolerance") or [])
    except ConvcheckError as e:
        raise pytest.UsageError(str(e)) from None


_IMPLS = pytest.StashKey[list[registry.Implementation]]()
_PROFILE = pytest.StashKey[str]()
_OPS = pytest.StashKey[list[str]]()
_COLLECTOR = pytest.StashKey["Collector"]()


def collected_results(config: pytest.Config) -> list[dict[str, Any]]:
    """Every finished check's result, as the controller's collector holds them in memory."""
    collector = config.stash.get(_COLLECTOR, None)
    return list(collector.results) if collector is not None else []


def loaded_implementations(config: pytest.Config) -> list[registry.Implementation]:
    return config.stash[_IMPLS]


def pytest_report_header(config: pytest.Config) -> list[str]:
    import numpy
    import scipy
    import torch

    lines = [
        f"convcheck: profile={config.stash[_PROFILE]} strict={config.getoption('strict')} "
        f"numpy={numpy.__version__} scipy={scipy.__version__} torch={torch.__version__}",
    ]
    for impl in config.stash[_IMPLS]:
        unsupported = ", ".join(f"{o}.{f}={v!r}" for o, f, v in impl.capabilities.unsupported()) or "none"
        lines.append(
            f"convcheck: impl {impl.name} ({impl.source}): {', '.join(impl.functions)}; "
            f"declared unsupported: {unsupported}"
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
def caps(impl: registry.Implementation, strict: bool) -> Capabilities:
    """The capabilities the run honours: the declaration, or the full contract under --strict."""
    return FULL if strict else impl.capabilities


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Any:
    """A ``Recorder`` (``convcheck.recording``) whose contents travel with the test report
    (through xdist too); ``recording.current()`` finds it while the test runs."""
    caps = request.getfixturevalue("caps") if "impl" in request.fixturenames else None
    rec = Recorder(caps)
    with recording.active(rec):
        yield rec
    request.node.user_properties.append(("convcheck_record", json.dumps(rec.to_dict())))


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
        "property": marker.args[0] if marker and marker.args else item.originalname,
        "test": item.nodeid,
        "check": item.originalname + (f"[{'-'.join(others)}]" if others else ""),
        "dtype": str(p["dtype"]) if "dtype" in p else "",
    }


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


class Collector:
    """Gathers one result per conformance test (on the controller under xdist)."""

    def __init__(self, results_path: str | None) -> None:
        self.results: list[dict[str, Any]] = []
        self.listeners: list[Any] = []  # called with each finished result (the report writer)
        self._pending: dict[str, dict[str, Any]] = {}
        self._path = results_path

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        if "convcheck_id" not in props:
            return
        entry = self._pending.setdefault(report.nodeid, {**json.loads(props["convcheck_id"]), "status": None})
        if report.when == "call" or (report.when == "setup" and not report.passed):
            if report.skipped:
                reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
                reason = reason.removeprefix("Skipped: ")
                entry["status"] = "unsupported" if reason.startswith("unsupported") else "skipped"
                entry["message"] = reason
            elif report.failed:
                entry["status"] = "failed" if report.when == "call" else "error"
                entry["message"] = report.longreprtext
            else:
                entry["status"] = "passed"
            entry["duration"] = report.duration
        if report.when == "teardown":
            if "convcheck_record" in props:
                entry.update(json.loads(props["convcheck_record"]))
            if report.failed and entry["status"] in (None, "passed"):
                entry["status"], entry["message"] = "error", report.longreprtext
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
        from .summary import coverage_lines, status_table

        tr = terminalreporter
        tr.section("convcheck conformance summary")
        for line in status_table(self.results):
            tr.write_line(line)
        for line in coverage_lines(self.results):
            tr.write_line(line)

"""The options of a conformance run, defined once.

``convcheck run``, the pytest plug-in (``python -m pytest --impl ...``) and
``convcheck grade`` share these options. Each ``Option`` names its spelling on
each of them, its type and its default, and its help states that default from
the code (the sandbox's ``Limits``, the profiles' example counts), never from
text typed twice. The argparse parsers, ``pytest_addoption`` and the grader's
pass-through options are all made from ``RUN_OPTIONS``.

This module imports neither pytest nor hypothesis: ``convcheck --help`` and
``convcheck list`` stay quick.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

PROFILE_EXAMPLES: dict[str, int] = {"fast": 15, "ci": 100, "thorough": 400}
"""Hypothesis profiles by name, with the examples each property draws: ``fast`` for local work,
``ci`` (derandomised, the default when ``CI`` is set) and ``thorough`` for a release or grading."""
DERANDOMISED = frozenset({"ci"})
"""Profiles whose run draws the same cases every time: without ``--seed`` they use ``DEFAULT_SEED``."""
DEFAULT_SEED = 0
PROFILE_ENV = "CONVCHECK_PROFILE"
MAX_EXAMPLES_ENV = "CONVCHECK_MAX_EXAMPLES"
"""Examples per property for every run in this environment, unless ``--max-examples`` says
otherwise: a budget knob for CI jobs and for running documentation commands quickly."""
DEFAULT_IMPL = "numpy_fast"
"""The implementation the pytest plug-in checks when neither ``--impl`` nor ``$CONVCHECK_IMPL`` names one."""


def default_profile() -> str:
    """``CONVCHECK_PROFILE`` if set, ``ci`` under CI, else ``fast``."""
    if os.environ.get(PROFILE_ENV):
        return os.environ[PROFILE_ENV]
    return "ci" if os.environ.get("CI") else "fast"


def _limit(name: str) -> str:
    """The default of one sandbox limit, from the ``Limits`` dataclass."""
    from .sandbox.limits import Limits

    value = next(f.default for f in dataclasses.fields(Limits) if f.name == name)
    return f"{value:g}"


def _impl_default() -> str:
    from .impls.registry import ENV_VAR

    return f"${ENV_VAR}, else {DEFAULT_IMPL}"


def _contracts() -> Sequence[str]:
    from .spec.contracts import CONTRACTS

    return tuple(CONTRACTS)


def _ops_help() -> str:
    from .spec import OPERATIONS
    from .spec.networks import ALL_NETWORKS, NETWORKS

    return (
        f"only these operations, comma-separated ({', '.join(OPERATIONS)}), or '{ALL_NETWORKS}' for the "
        f"whole-network checks ({', '.join(NETWORKS)}, each also by name)"
    )


@dataclass(frozen=True)
class Option:
    """One option of a conformance run.

    ``flags`` is its spelling on ``convcheck run`` (empty: not there), ``pytest``
    its spelling on pytest's command line; ``plugin`` says whether convcheck's
    plug-in declares that spelling (``False``: pytest, xdist or hypothesis own
    it). ``default`` is the parsed value when the option is absent, ``default_text``
    what then applies, as the help shows it (a callable: computed from the code
    when a parser is built). ``grade`` is ``"pass"`` for an option ``convcheck
    grade`` passes through to every ``convcheck run``, ``"own"`` for one it
    takes itself (``grade_default`` then replaces ``default``).
    """

    name: str
    flags: tuple[str, ...]
    help: str | Callable[[], str]
    pytest: str | None = None
    plugin: bool = True
    type: Callable[[str], Any] | None = None
    default: Any = None
    default_text: str | Callable[[], str] | None = None
    action: str | None = None
    choices: Callable[[], Sequence[str]] | None = None
    metavar: str | None = None
    group: str | None = None
    required: bool = False
    grade: str | None = None
    grade_default: Any = None

    @property
    def flag(self) -> str:
        """The long spelling on ``convcheck run`` (``--timeout``)."""
        return next((f for f in self.flags if f.startswith("--")), self.flags[0] if self.flags else "")

    def shown_default(self, surface: str = "run") -> str | None:
        """What applies when the option is not given, as the help on ``surface`` (``run``, ``pytest``
        or ``grade``) shows it; ``None`` for an option ``surface`` requires."""
        if self.required and surface == "run":
            return None
        if surface == "grade" and self.grade == "own" and self.grade_default is not None:
            return str(self.grade_default)
        text = self.default_text() if callable(self.default_text) else self.default_text
        if text is not None:
            return text
        if self.action == "store_true":
            return "off"
        return "none" if self.default in (None, []) else str(self.default)

    def help_text(self, surface: str = "run") -> str:
        """The help line on ``surface``: what the option does, then its default."""
        text = self.help() if callable(self.help) else self.help
        shown = self.shown_default(surface)
        return text if shown is None else f"{text} (default: {shown})"

    def argparse_kwargs(self, surface: str = "run") -> dict[str, Any]:
        """Keyword arguments for ``add_argument`` (argparse) or ``addoption`` (pytest) on ``surface``."""
        grade = surface == "grade"
        kwargs: dict[str, Any] = {"help": self.help_text(surface)}
        if self.action:
            kwargs["action"] = self.action
        if self.type is not None:
            kwargs["type"] = self.type
        if self.choices is not None:
            kwargs["choices"] = sorted(self.choices())
        if self.metavar:
            kwargs["metavar"] = self.metavar
        if self.required and surface == "run":
            kwargs["required"] = True
        default = self.grade_default if grade and self.grade == "own" else self.parsed_default
        kwargs["default"] = list(default) if isinstance(default, list) else default
        return kwargs

    @property
    def parsed_default(self) -> Any:
        """The value a parser gives the option when it is absent (``False`` for a flag)."""
        return False if self.action == "store_true" and self.default is None else self.default

    def pytest_argv(self, value: Any) -> list[str]:
        """The pytest arguments that pass ``value`` on (none when it is the default)."""
        if self.pytest is None or value is None or value == self.parsed_default:
            return []
        if self.action == "store_true":
            return [self.pytest] if value is True else []
        if self.action == "append":
            return [arg for item in value for arg in (self.pytest, str(item))]
        return [self.pytest, str(value)]


_ISOLATION = "isolation (the implementation runs in a separate worker process)"
_TOLERANCE = "tolerance overrides (reported whenever used)"
_PASSED = "passed through to every submission's `convcheck run`"

RUN_OPTIONS: tuple[Option, ...] = (
    Option(
        "impl",
        ("--impl",),
        "implementation(s) to check, comma-separated: a shipped name (numpy_reference, numpy_fast, torch, "
        "buggy.<name>), a .py path, module[:attr] or an entry point",
        pytest="--impl",
        default_text=_impl_default,
        required=True,
    ),
    Option(
        "profile",
        ("--profile",),
        lambda: (
            "hypothesis profile: "
            + ", ".join(f"{name} ({n} examples)" for name, n in PROFILE_EXAMPLES.items())
        ),
        pytest="--convcheck-profile",
        choices=lambda: tuple(PROFILE_EXAMPLES),
        default_text=f"${PROFILE_ENV}, else 'ci' under CI, else 'fast'",
        grade="own",
        grade_default="ci",
    ),
    Option(
        "strict",
        ("--strict",),
        "ignore the capabilities declaration and check the full contract",
        pytest="--strict-contract",
        action="store_true",
    ),
    Option(
        "contract",
        ("--contract",),
        "library: PyTorch's exact rules at kinks (ReLU'(0) = 0, ties to the first maximum); course: "
        "conventions at kinks are notes, kink defects warnings, output sizes divide exactly (spec/contracts.py)",
        pytest="--contract",
        choices=_contracts,
        default_text="what the declaration names (from_cs231n: course), else library",
        grade="own",
        grade_default="course",
    ),
    Option(
        "max_examples",
        ("--max-examples",),
        "examples per property (overrides the profile)",
        pytest="--max-examples",
        type=int,
        metavar="N",
        default_text=f"${MAX_EXAMPLES_ENV} when set, else the profile's",
        grade="own",
    ),
    Option("ops", ("--ops",), _ops_help, pytest="--ops", default_text="all", grade="own"),
    Option(
        "no_isolation",
        ("--no-isolation",),
        "run the implementation in this process (plain tracebacks; a crash takes the run down)",
        pytest="--no-isolation",
        action="store_true",
        group=_ISOLATION,
    ),
    Option(
        "python",
        ("--python",),
        "run the implementation under this Python interpreter (its own environment: Python 3.9+ with "
        "NumPy 1.21+, no convcheck needed there)",
        pytest="--python",
        metavar="PATH",
        default_text="$CONVCHECK_PYTHON, else convcheck's own interpreter",
        group=_ISOLATION,
        grade="pass",
    ),
    Option(
        "timeout",
        ("--timeout",),
        "wall-clock seconds per call",
        pytest="--timeout",
        type=float,
        metavar="SECONDS",
        default_text=lambda: _limit("timeout_s"),
        group=_ISOLATION,
        grade="pass",
    ),
    Option(
        "memory",
        ("--memory",),
        "memory cap per worker, MB",
        pytest="--memory",
        type=int,
        metavar="MB",
        default_text=lambda: _limit("memory_mb"),
        group=_ISOLATION,
        grade="pass",
    ),
    Option(
        "cpu_time",
        ("--cpu-time",),
        "CPU seconds per call",
        pytest="--cpu-time",
        type=int,
        metavar="SECONDS",
        default_text=lambda: _limit("cpu_s"),
        group=_ISOLATION,
        grade="pass",
    ),
    Option(
        "workers",
        ("-n", "--workers"),
        "parallel pytest-xdist workers",
        pytest="-n",
        plugin=False,
        type=int,
        default=0,
        metavar="N",
    ),
    Option(
        "select",
        ("-k",),
        "only checks whose name matches (pytest -k)",
        pytest="-k",
        plugin=False,
        metavar="EXPRESSION",
    ),
    Option(
        "junitxml",
        ("--junitxml",),
        "also write a JUnit XML report here",
        metavar="FILE",
        default_text="none; with --report, DIR/junit.xml",
    ),
    Option(
        "results",
        ("--results",),
        "append one JSON line per finished check to this file",
        pytest="--convcheck-results",
        metavar="FILE",
    ),
    Option("verbose", ("-v", "--verbose"), "show pytest's own output as well", action="store_true"),
    Option(
        "coverage",
        ("--coverage",),
        "also list how many distinct values each hyper-parameter took (always in the report)",
        action="store_true",
    ),
    Option(
        "report",
        ("--report",),
        "write report.json (rewritten as each check finishes), report.md, report.html, junit.xml and "
        "reproduction scripts (DIR/repro/) into DIR (one sub-folder per implementation when several are checked)",
        pytest="--convcheck-report",
        metavar="DIR",
    ),
    Option(
        "seed",
        ("--seed",),
        "the seed every draw derives from: one seed, the same cases; another seed, other cases "
        "(printed and recorded either way)",
        pytest="--hypothesis-seed",
        plugin=False,
        type=int,
        metavar="SEED",
        default_text=f"{DEFAULT_SEED} under a derandomised profile ({', '.join(sorted(DERANDOMISED))}), else random",
        grade="pass",
    ),
    Option(
        "tolerance",
        ("--tolerance",),
        "per operation and dtype (either may be *): a factor on the policy's bound, e.g. conv2d:float32=4, "
        "or absolute rtol=R[,atol=A], e.g. avg_pool2d:float64=rtol=1e-12; repeatable",
        pytest="--convcheck-tolerance",
        action="append",
        default=[],
        metavar="OP:DTYPE=VALUE",
        group=_TOLERANCE,
    ),
    Option(
        "tolerance_file",
        ("--tolerance-file",),
        "overrides from a TOML or JSON file, e.g. [conv2d.float32] factor = 4 (or rtol/atol); the command "
        "line's win",
        pytest="--convcheck-tolerance-file",
        metavar="FILE",
        group=_TOLERANCE,
    ),
    Option(
        "xfails",
        ("--xfails",),
        "expected failures: a TOML file of [[xfail]] entries (op, property, dtype, feature: glob patterns; "
        "reason; link). Failures an entry matches are reported as expected (xfail) and do not fail the run; "
        "an entry whose checks now pass is flagged for deletion",
        pytest="--xfails",
        metavar="FILE",
    ),
    Option(
        "strict_xfails",
        ("--strict-xfails",),
        "with --xfails, also fail the run (exit 1) when an entry now passes, so that the file is pruned",
        pytest="--strict-xfails",
        action="store_true",
    ),
)
"""Every option of a conformance run (see ``Option``)."""

BY_NAME: dict[str, Option] = {o.name: o for o in RUN_OPTIONS}


def run_flags() -> set[str]:
    """Every flag ``convcheck run`` accepts."""
    return {f for o in RUN_OPTIONS for f in o.flags}


def plugin_options() -> list[Option]:
    """The options convcheck's pytest plug-in declares."""
    return [o for o in RUN_OPTIONS if o.pytest and o.plugin]


def grade_options() -> list[Option]:
    """The run options ``convcheck grade`` takes itself or passes through."""
    return [o for o in RUN_OPTIONS if o.grade]


def add_to_parser(parser: Any, options: Sequence[Option], surface: str = "run") -> None:
    """Add ``options`` to an argparse parser (``surface``: ``run`` or ``grade``), each in its group
    (created once) when it has one."""
    groups: dict[str, Any] = {}
    for option in options:
        target = parser
        title = option.group if surface == "run" else (_PASSED if option.grade == "pass" else None)
        if title:
            if title not in groups:
                groups[title] = parser.add_argument_group(title)
            target = groups[title]
        target.add_argument(*option.flags, dest=option.name, **option.argparse_kwargs(surface))


def add_to_pytest(group: Any) -> None:
    """Add the plug-in's options to pytest's ``convcheck`` option group (``pytest_addoption``)."""
    for option in plugin_options():
        group.addoption(option.pytest, **option.argparse_kwargs("pytest"))

"""``convcheck scoreboard --impl A,B,C --out OUT``: check many implementations, then set them side by side.

Each implementation is one unit of the grading engine, as a student's
submission is for ``convcheck grade``: its own ``convcheck run --report`` child
under the same limits, ``-j`` at a time or as the tasks of a Dask cluster
(``--cluster local[:N]``, ``--scheduler ADDR``), each finished one written to
``OUT/results.sqlite`` at once. ``OUT/<name>/`` gets the implementation's report
and results; ``OUT/scoreboard.md`` and ``OUT/scoreboard.html`` set the reports
side by side (``convcheck.report.scoreboard``), ``OUT/summary.*`` scores them by
the default rubric. ``--resume`` skips the implementations already recorded for
the same code (and, for a framework adapter, the same library release),
convcheck version, profile, seed and settings.

Names are those ``--impl`` takes: shipped ones (``numpy_fast``, ``torch``,
``buggy.<name>``), framework adapters (``torch_functional``, ``jax_lax``), files
(relative to the folder the command is typed in) and ``module[:attr]``. They are
found here without being imported: the grader never runs the code it checks.

Exit status as ``convcheck grade``: 0 when every implementation was checked
(whatever its verdict), 2 for a usage error, 3 when ``convcheck run`` does not
start or the Dask scheduler went away (the command that finishes the rest is
printed), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import re
import sys
from pathlib import Path

from ..impls import registry
from ..impls.buggy import BUGGY
from ..results_db import ResultsDBError
from ..spec import UsageError
from .batch import GradeSettings
from .cli import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    UsageProblem,
    check_numbers,
    check_python,
    child_options,
    cluster_spec,
    default_jobs,
    grade_recorded,
    parse_ops,
    resume_command,
)
from .cluster import ClusterUnavailable, open_cluster
from .dask_batch import ClusterLost
from .discover import Submission
from .outcome import Outcome
from .rubric import load_rubric
from .runner import RunUnavailable
from .store import GradeStore

DEFAULT_IMPL_TIMEOUT = 3600.0
"""Wall-clock limit for one implementation's whole run (``--impl-timeout``): a library under the
``thorough`` profile takes far longer than a student's layer under ``ci``."""


def _column(name: str) -> str:
    """A folder name for an implementation: its name with anything but letters, digits, ``._-`` made ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "impl"


def _module_file(module: str) -> Path | None:
    """The file ``module`` would be imported from (a package's ``__init__.py``), without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin and spec.has_location else None


def _release(library: str) -> str:
    """``library==version`` of an installed distribution (``library`` alone when it has no metadata)."""
    try:
        return f"{library}=={importlib.metadata.version(library)}"
    except importlib.metadata.PackageNotFoundError:
        return library


def entrant(spec: str, cwd: Path) -> Submission:
    """The unit that checks the implementation ``spec`` names (an ``--impl`` value), found without
    importing it; ``UsageProblem`` when it names nothing that could be loaded."""
    name = spec.strip()
    if name.endswith(registry.FILE_SUFFIXES) or (cwd / name).is_file():
        path = Path(registry.absolute(name, str(cwd)))
        if not path.is_file():
            raise UsageProblem(f"--impl {name}: no such file (relative paths are taken from {cwd})")
        return Submission(_column(path.stem), path, path.resolve())
    library = None
    if name in registry.SHIPPED:
        module = registry.SHIPPED[name]
    elif name in registry.FRAMEWORKS:
        module, lib, extra = registry.FRAMEWORKS[name]
        if _module_file(lib) is None:
            install = f'python -m pip install -c constraints.txt -e ".[{extra}]"' if extra else lib
            raise UsageProblem(f"--impl {name} checks {lib}, which is not installed; install it: {install}")
        library = _release(lib)
    elif name.startswith("buggy."):
        if name.removeprefix("buggy.") not in BUGGY:
            raise UsageProblem(f"--impl {name}: unknown buggy implementation; `convcheck list` names them")
        module = f"convcheck.impls.{name}"
    else:
        module = name.partition(":")[0]
        top = module.split(".")[0]
        dist = importlib.metadata.packages_distributions().get(top)
        library = _release(dist[0]) if dist else None
    origin = _module_file(module)
    if origin is None:
        raise UsageProblem(
            f"--impl {name}: not a shipped name, a .py file or an importable module; "
            "`convcheck list` names the shipped ones"
        )
    return Submission(_column(name), origin, origin, impl=name, library=library)


def entrants(value: str, cwd: Path) -> list[Submission]:
    """The units of a comma-separated ``--impl`` value, in its order; a name given twice is a usage error."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise UsageProblem(
            "--impl names no implementation; give a comma-separated list, e.g. numpy_fast,torch"
        )
    subs = [entrant(n, cwd) for n in names]
    seen: dict[str, str] = {}
    for name, sub in zip(names, subs, strict=True):
        if sub.student in seen:
            raise UsageProblem(
                f"--impl {seen[sub.student]} and {name} would share the folder {sub.student}/; give each once "
                "(copy a file under another name to compare two versions of it)"
            )
        seen[sub.student] = name
    return subs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``convcheck scoreboard``'s options: the reports' (``convcheck.report.scoreboard``) and a
    scoreboard run's (``--impl``)."""
    from ..options import add_to_parser, grade_options
    from ..report import scoreboard
    from .cli import add_cluster_arguments

    scoreboard.add_arguments(parser)
    parser.add_argument(
        "--impl",
        metavar="A,B,...",
        default=None,
        help="check these implementations (as --impl takes them) first, each a unit of its own, and "
        "set their reports side by side in --out",
    )
    parser.add_argument(
        "-j", "--jobs", metavar="N", type=int, default=None, help="implementations checked at once"
    )
    parser.add_argument(
        "--impl-timeout",
        dest="submission_timeout",
        metavar="SECONDS",
        type=float,
        default=DEFAULT_IMPL_TIMEOUT,
        help=f"wall-clock limit for one implementation's whole run (default {DEFAULT_IMPL_TIMEOUT:g})",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="skip the implementations OUT/results.sqlite already holds for the same code, convcheck "
        "version, profile, seed and settings",
    )
    add_cluster_arguments(parser, "check the implementations", "an implementation")
    add_to_parser(parser, grade_options(), "grade")


def _settings(args: argparse.Namespace) -> GradeSettings:
    """The grading settings of a scoreboard run; ``UsageProblem`` on the first mistake."""
    check_numbers(args, "--impl-timeout")
    check_python(getattr(args, "python", None))
    ops = parse_ops(args.ops)
    options = child_options(args, ops, strict=False, report=True)
    return GradeSettings(Path(args.out).resolve(), load_rubric(None), options, Path.cwd())


def board_title(settings: GradeSettings) -> str:
    return f"convcheck scoreboard (profile {settings.options.profile}, seed {settings.options.passthrough['--seed']})"


def write_board(settings: GradeSettings, subs: list[Submission], outcomes: list[Outcome], title: str) -> str:
    """Write ``OUT/scoreboard.md`` and ``.html`` from the reports the units left, in ``--impl`` order;
    the Markdown, with a line for each implementation that left no report (and why)."""
    from ..report import writer
    from ..report.scoreboard import html, markdown

    status = {o.student: o for o in outcomes}
    docs, missing = [], []
    for sub in subs:
        path = settings.out / sub.student / "report.json"
        try:
            docs.append(writer.load(path))
        except (OSError, ValueError):
            outcome = status.get(sub.student)
            why = f"{outcome.status}: {outcome.message}" if outcome else "not checked"
            missing.append(f"- {sub.impl or sub.entry}: no report ({' '.join(why.split())[:300]})")
    text = markdown(docs) if docs else "# convcheck scoreboard\n\nNo implementation left a report.\n"
    if missing:
        text += "\nNot on the board:\n\n" + "\n".join(missing) + "\n"
    writer.atomic_write(settings.out / "scoreboard.md", text)
    if docs:
        writer.atomic_write(settings.out / "scoreboard.html", html(docs, title))
    return text


def run(args: argparse.Namespace) -> int:
    """``convcheck scoreboard``: the board of the reports given, or (``--impl``) check every
    implementation first and write the board; the exit status (module docstring)."""
    if args.impl is None or args.reports:
        if args.reports and args.impl is None:
            from ..report import scoreboard

            return scoreboard.run(args)
        what = "both reports and --impl" if args.reports else "no report and no --impl"
        print(
            f"convcheck: error: scoreboard got {what}; give report.json files or folders, or "
            "--impl A,B,... to check those implementations first",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        if not args.out:
            raise UsageProblem(
                "--impl needs --out DIR: each implementation's report and the scoreboard go there"
            )
        subs = entrants(args.impl, Path(os.getcwd()))
        settings = _settings(args)
        spec = cluster_spec(args)
        settings.out.mkdir(parents=True, exist_ok=True)
        store = GradeStore.start(settings, subs, args.resume, command="scoreboard")
    except (UsageProblem, UsageError, OSError, ResultsDBError) as e:
        print(f"convcheck: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except RunUnavailable as e:
        print(f"convcheck: error: {e}; fix the installation, then run again", file=sys.stderr)
        return EXIT_INTERNAL
    todo = subs
    if args.resume:
        todo, reused = store.resume(subs)
        print(
            f"convcheck scoreboard: resuming; {len(reused)} implementation(s) already recorded in "
            f"{store.path}, {len(todo)} to check"
        )
    title = board_title(settings)
    try:
        with open_cluster(spec, args.retries) as client:
            if spec is not None:
                print(f"convcheck scoreboard: checking on {spec.describe()}", file=sys.stderr)
            jobs = args.jobs or default_jobs()
            outcomes, interrupted = grade_recorded(settings, todo, jobs, store, client, args.retries, title)
    except ClusterUnavailable as e:
        store.finish(interrupted=True)
        print(f"convcheck: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ClusterLost as e:
        print(f"convcheck scoreboard: {e}; check the rest with:", file=sys.stderr)
        print(f"  {resume_command(sys.argv[1:])}", file=sys.stderr)
        return EXIT_INTERNAL
    print(write_board(settings, subs, outcomes, title), end="")
    print(f"convcheck: scoreboard written to {settings.out}/ (scoreboard.html, scoreboard.md)")
    if interrupted:
        print(
            f"convcheck scoreboard: interrupted; {len(outcomes)} of {len(subs)} implementation(s) finished "
            "and are recorded (--resume goes on from there)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return EXIT_OK

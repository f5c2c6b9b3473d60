"""``convcheck grade SUBMISSIONS_DIR --report OUT``: check and score every submission in a folder.

Each submission (``alice.py``, a notebook ``carol.ipynb``, or a folder ``bob/``
with ``submission.py`` or a single top-level ``.py`` or notebook; see
``convcheck.grading.discover``) is checked by
its own ``python -m convcheck run`` child, ``-j`` at a time, under the
derandomised ``ci`` profile by default, so the same submissions get the same
scores on every rerun. Each student gets ``OUT/<student>/`` (``results.jsonl``,
the run's ``stdout.txt`` with every counterexample, ``stderr.txt``,
``grade.json``, ``feedback.md`` for the student to read, and with ``--format
gradescope`` Gradescope's ``results.json``); the class gets ``OUT/summary.csv`` and ``OUT/summary.html``,
rewritten after each student. Scores follow the rubric (``--rubric``; format in
``convcheck.grading.rubric``, default ``default_rubric.toml``).

With ``--cluster local[:N]`` or ``--scheduler ADDR`` the submissions run as
tasks of a Dask cluster instead (``convcheck.grading.cluster``,
``convcheck.grading.dask_batch``), each still in its own child.

Exit status: 0 when every submission was graded (whatever the scores), 2 for
a usage error (no such folder, an invalid rubric, a bad option, a Dask
scheduler that does not answer), 3 when ``convcheck run`` itself does not
start (nothing is graded) or the Dask scheduler went away mid-run (the command
that grades the rest is printed), 130 when
interrupted (Ctrl-C or SIGTERM): the children are killed and the summary keeps
the students who finished.

Every finished submission is written to ``OUT/results.sqlite`` at once
(``convcheck.results_db``), and the summary is made from it. Each grading
appends a run to it; ``--resume`` skips the submissions it already holds for the
same files, convcheck version, profile, seed and settings, so an interrupted
grading goes on where it stopped. A database that cannot be used (not SQLite, a
newer schema) is a usage error, and nothing in the folder is changed.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..options import DEFAULT_SEED, DERANDOMISED, add_to_parser, grade_options, run_flags
from ..results_db import ResultsDBError
from ..spec import UsageError
from ..spec.networks import selection
from .batch import GradeSettings, grade_all
from .cluster import ClusterSpec, ClusterUnavailable, open_cluster, parse_cluster
from .dask_batch import ClusterLost
from .discover import Submission, discover
from .feedback import write_feedback
from .gradescope import write_results
from .outcome import INFRASTRUCTURE_ERROR, Outcome, write_grade
from .progress import GradeProgress, final_table
from .rubric import RubricError, load_rubric
from .runner import RunOptions, RunUnavailable, check_run_available, passthrough
from .store import GradeStore
from .summary import write_summary

if TYPE_CHECKING:
    from distributed import Client

EXIT_OK, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 2, 3, 130
RESUME_FLAG = "--resume"
FORMATS = ("gradescope",)
"""Course-platform outputs ``--format`` adds beside the standard files."""


class UsageProblem(Exception):
    """A mistake in the command line or its files, reported in one line with exit status 2."""


def default_jobs() -> int:
    """The number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``grade`` subcommand's options."""
    parser.add_argument(
        "submissions", type=Path, help="folder with one .py file, notebook (.ipynb) or folder per student"
    )
    parser.add_argument(
        "--report",
        metavar="OUT",
        type=Path,
        required=True,
        help="output folder: OUT/<student>/, OUT/summary.*",
    )
    parser.add_argument(
        "--rubric",
        metavar="FILE",
        type=Path,
        default=None,
        help="TOML or JSON rubric (default: convcheck/grading/default_rubric.toml)",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        metavar="N",
        type=int,
        default=None,
        help="submissions checked at once (default: cores)",
    )
    parser.add_argument(
        "--submission-timeout",
        metavar="SECONDS",
        type=float,
        default=600.0,
        help="wall-clock limit for one whole submission; past it, it is killed and scored 0 (default 600)",
    )
    parser.add_argument(
        "--format",
        dest="formats",
        metavar="FORMAT",
        choices=FORMATS,
        action="append",
        default=[],
        help="also write each student's results for a course platform: gradescope "
        "(OUT/<student>/results.json, Gradescope's autograder format)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="skip the submissions OUT/results.sqlite already holds for the same files, convcheck version, "
        "profile, seed and settings (go on with an interrupted grading)",
    )
    add_cluster_arguments(parser, "grade", "a submission")
    add_to_parser(parser, grade_options(), "grade")


def add_cluster_arguments(parser: argparse.ArgumentParser, verb: str, unit: str) -> None:
    """``--cluster``, ``--scheduler`` and ``--retries``: where the units (``unit``, "a submission") run."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--cluster",
        metavar="local[:N]",
        default=None,
        help=f"{verb} on a Dask LocalCluster of N worker processes started for this run "
        "(default N: --jobs, else the cores); needs the dask extra",
    )
    where.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        default=None,
        help=f"{verb} on the running Dask cluster of this scheduler (its workers must see the "
        "code checked and OUT at the same paths); needs the dask extra",
    )
    parser.add_argument(
        "--retries",
        metavar="N",
        type=int,
        default=1,
        help=f"on a Dask cluster, run {unit} again this many times when its worker dies; "
        "then it is an infrastructure error, not scored (default 1)",
    )


def parse_ops(value: str | None) -> tuple[str, ...]:
    ops = [o.strip() for o in (value or "").split(",") if o.strip()]
    if not ops:
        return ()
    try:
        return tuple(selection(ops))
    except UsageError as e:
        raise UsageProblem(str(e)) from None


def check_numbers(args: argparse.Namespace, timeout_flag: str = "--submission-timeout") -> None:
    """``UsageProblem`` for a count or a limit out of range (``timeout_flag`` names the unit's limit)."""
    if args.jobs is not None and args.jobs < 1:
        raise UsageProblem(f"-j/--jobs={args.jobs} must be at least 1")
    if args.retries < 0:
        raise UsageProblem(f"--retries={args.retries} must be at least 0")
    if args.max_examples is not None and args.max_examples < 1:
        raise UsageProblem(f"--max-examples={args.max_examples} must be at least 1")
    if not args.submission_timeout > 0:
        raise UsageProblem(f"{timeout_flag}={args.submission_timeout:g} must be a positive number of seconds")


def check_python(given: str | None) -> None:
    """An interpreter named by ``--python`` (or ``CONVCHECK_PYTHON``) must host the worker: checked once
    here, so that a bad one is one usage error rather than every submission scored 0 for it."""
    from ..sandbox.interpreter import probe, requested

    python = requested(given)
    if python is not None:
        try:
            probe(python)
        except UsageError as e:
            raise UsageProblem(str(e)) from None


def _settings(args: argparse.Namespace) -> GradeSettings:
    """Everything a grading run needs, validated; ``UsageProblem`` on the first mistake."""
    if not args.submissions.is_dir():
        raise UsageProblem(f"{args.submissions} is not a folder; give the folder that holds the submissions")
    check_numbers(args)
    check_python(getattr(args, "python", None))
    ops = parse_ops(args.ops)
    try:
        rubric = load_rubric(args.rubric)
    except RubricError as e:
        raise UsageProblem(str(e)) from None
    if rubric.total(list(ops) or None) <= 0:
        raise UsageProblem(
            f"rubric {rubric.source} gives no weight to the operations asked for ({', '.join(ops)})"
        )
    options = child_options(args, ops, strict=rubric.strict, report="--report" in run_flags())
    gradescope = "gradescope" in args.formats
    return GradeSettings(args.report.resolve(), rubric, options, args.submissions.resolve(), gradescope)


def child_options(args: argparse.Namespace, ops: tuple[str, ...], strict: bool, report: bool) -> RunOptions:
    """How each unit's ``convcheck run`` child is invoked, once ``convcheck run`` is known to start
    (``RunUnavailable`` if not) and the run's one seed is chosen (``class_seed``)."""
    check_run_available()
    class_seed(args)
    return RunOptions(
        profile=args.profile,
        max_examples=args.max_examples,
        ops=ops,
        strict=strict,
        contract=args.contract,
        submission_timeout=args.submission_timeout,
        report=report,
        passthrough=passthrough(args),
    )


def class_seed(args: argparse.Namespace) -> None:
    """One seed for the whole class, so every submission meets the same cases: ``--seed``, else the
    derandomised profile's default, else one random seed drawn here; passed to every child."""
    import secrets

    if args.seed is None:
        args.seed = DEFAULT_SEED if args.profile in DERANDOMISED else secrets.randbelow(2**32)


def grade_title(settings: GradeSettings) -> str:
    """The summary's title, with the profile and seed every submission was run under."""
    seed = settings.options.passthrough.get("--seed", "each run's own")
    return f"convcheck grades (profile {settings.options.profile}, seed {seed})"


def _raise_interrupt(signum: int, frame: Any) -> None:
    """SIGTERM handler: stop the way Ctrl-C does."""
    raise KeyboardInterrupt


def _write_student(settings: GradeSettings, outcome: Outcome) -> None:
    """Write a student's ``grade.json``, ``feedback.md`` (and Gradescope file) from their recorded verdict."""
    ops = list(settings.options.ops) or None
    folder = settings.out / outcome.student
    folder.mkdir(parents=True, exist_ok=True)
    write_grade(folder, outcome)
    write_feedback(folder, outcome, settings.rubric, ops)
    if settings.gradescope:
        write_results(folder, outcome, settings.rubric, ops)


def grade_recorded(
    settings: GradeSettings,
    submissions: list[Submission],
    jobs: int,
    store: GradeStore,
    cluster: Client | None = None,
    retries: int = 1,
    title: str | None = None,
) -> tuple[list[Outcome], bool]:
    """Grade with progress, recording each student in the database and rewriting the summary (headed
    ``title``, by default ``grade_title``) from it; SIGTERM acts as Ctrl-C. Returns every verdict of
    the run (resumed ones included).

    A lost Dask scheduler (``ClusterLost``) ends the run the same way, the database and the summary
    holding what finished; the exception is raised again for the caller to explain.
    """
    ops = list(settings.options.ops) or None
    title = title or grade_title(settings)
    write_summary(settings.out, store.outcomes(), settings.rubric, ops, title)
    on_main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)} if on_main else {}
    if on_main:
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with GradeProgress(len(submissions)) as progress:

            def on_done(outcome: Outcome) -> None:
                store.record(outcome)
                write_summary(settings.out, store.outcomes(), settings.rubric, ops, title)
                progress.finished(outcome)

            lost: ClusterLost | None = None
            try:
                finished, interrupted = grade_all(submissions, settings, jobs, on_done, cluster, retries)
            except ClusterLost as e:
                lost, finished, interrupted = e, e.outcomes, True
        for sig in previous:  # the last writes are quick: let no second Ctrl-C cut them short
            signal.signal(sig, signal.SIG_IGN)
        for outcome in finished:  # one an interrupt kept on_done from recording
            store.record(outcome)
        outcomes = store.outcomes()
        write_summary(settings.out, outcomes, settings.rubric, ops, title)
        progress.console.print(final_table(outcomes))
        progress.console.print(title, markup=False)
        progress.console.print(
            f"summary: {settings.out / 'summary.csv'}, {settings.out / 'summary.html'}; "
            f"results: {store.path} (run {store.run_id})",
            markup=False,
        )
        store.finish(interrupted)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if lost is not None:
        raise lost
    return outcomes, interrupted


def cluster_spec(args: argparse.Namespace) -> ClusterSpec | None:
    """The Dask cluster ``--cluster``/``--scheduler`` ask for; ``None`` for the thread pool."""
    if args.scheduler:
        return ClusterSpec(scheduler=args.scheduler)
    if args.cluster is None:
        return None
    try:
        return parse_cluster(args.cluster, args.jobs or default_jobs())
    except ValueError as e:
        raise UsageProblem(str(e)) from None


def resume_command(argv: list[str]) -> str:
    """The command that grades again what a run did not finish: this one, with ``--resume``."""
    import shlex

    words = ["convcheck", *argv]
    return shlex.join(words if RESUME_FLAG in words else [*words, RESUME_FLAG])


def _unscored_line(outcomes: list[Outcome]) -> str | None:
    """A line naming the submissions that the grading machines failed (no score), if any."""
    names = sorted(o.student for o in outcomes if o.status == INFRASTRUCTURE_ERROR)
    if not names:
        return None
    return (
        f"convcheck grade: {len(names)} submission(s) not scored, an infrastructure error "
        f"(their Dask worker died on every try): {', '.join(names)}; grade again to score them"
    )


def run(args: argparse.Namespace) -> int:
    """Grade every submission in ``args.submissions``; the exit status (see the module docstring)."""
    try:
        settings = _settings(args)
        spec = cluster_spec(args)
        submissions = discover(args.submissions)
        if not submissions:
            raise UsageProblem(
                f"{args.submissions} holds no submission (a .py file, a notebook or a folder per student)"
            )
        settings.out.mkdir(parents=True, exist_ok=True)
        store = GradeStore.start(settings, submissions, args.resume)
    except (UsageProblem, OSError, ResultsDBError) as e:
        print(f"convcheck: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except RunUnavailable as e:
        print(f"convcheck: error: {e}; fix the installation, then grade again", file=sys.stderr)
        return EXIT_INTERNAL
    todo = submissions
    if args.resume:
        todo, reused = store.resume(submissions)
        for outcome in reused:
            _write_student(settings, outcome)
        print(
            f"convcheck grade: resuming; {len(reused)} submission(s) already recorded in {store.path}, "
            f"{len(todo)} to grade"
        )
    try:
        with open_cluster(spec, args.retries) as client:
            if spec is not None:
                print(f"convcheck grade: grading on {spec.describe()}", file=sys.stderr)
            outcomes, interrupted = grade_recorded(
                settings, todo, args.jobs or default_jobs(), store, client, args.retries
            )
    except ClusterUnavailable as e:
        store.finish(interrupted=True)  # nothing was graded; the run's row says so
        print(f"convcheck: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ClusterLost as e:
        print(f"convcheck grade: {e}; grade the rest with:", file=sys.stderr)
        print(f"  {resume_command(sys.argv[1:])}", file=sys.stderr)
        return EXIT_INTERNAL
    unscored = _unscored_line(outcomes)
    if unscored:
        print(unscored, file=sys.stderr)
    if interrupted:
        print(
            f"convcheck grade: interrupted; {len(outcomes)} of {len(submissions)} submission(s) finished "
            "and are in the summary and the results database (--resume goes on from there)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return EXIT_OK

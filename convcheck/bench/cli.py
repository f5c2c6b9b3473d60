"""``convcheck bench``: time an implementation against PyTorch on real network layers.

Usage::

    convcheck bench --impl X [--corpus NAME|FILE ...] [--batch N] [--dtype float32]
                    [--threads N] [--min-time S] [--min-runs N] [--match REGEX]
                    [--memory-limit SIZE] [--skip-too-large] [--seed N] [--report DIR]
    convcheck bench --list-corpora
    convcheck bench --harness-check [--corpus resnet50] [--threads N]

Every function the implementation provides is checked against the float64
oracle on each entry, then timed interleaved with PyTorch's own on the same
inputs; the tables show medians, IQRs, runs, GFLOP/s and the ratio to
PyTorch. ``--report DIR`` writes bench.json, bench.md, bench_ratio.svg,
bench_scaling.svg and bench.html (see ``convcheck.bench.output``).

Exit status: 0 when every checked function is correct, 1 when any is wrong or
raises (or, with ``--harness-check``, when the two timers disagree by more
than 5%), 2 for usage errors: an unknown implementation or corpus, a malformed
corpus file, a dtype the implementation does not declare, or an entry that
would not fit in the memory limit.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from typing import TYPE_CHECKING

from convcheck.spec.dtypes import DTYPES

if TYPE_CHECKING:
    from convcheck.impls.registry import Implementation

    from .corpus import Corpus
    from .memory import Limit
    from .runner import Planned, Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_CORPORA = ("course_toy", "course_two_conv", "lenet5", "alexnet", "vgg16", "resnet50", "sweep")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{value} must be >= 0 seconds")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``convcheck bench`` (module docstring)."""
    parser.add_argument("--impl", help="a .py path, module[:attr], entry point or shipped name")
    parser.add_argument(
        "--corpus",
        action="extend",
        nargs="+",
        default=None,
        metavar="NAME",
        help="shipped corpora or corpus .json files (several after one --corpus, repeated, or comma-separated) "
        f"(default: {', '.join(DEFAULT_CORPORA)})",
    )
    parser.add_argument(
        "--batch",
        type=_positive_int,
        default=None,
        help="batch size for every entry (default: each entry's own; entries on a batch scaling curve keep theirs)",
    )
    parser.add_argument(
        "--dtype",
        choices=DTYPES,
        default="float32",
        help="dtype of every array (default float32; float16 and bfloat16 need an implementation declaring them)",
    )
    parser.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="threads for NumPy's BLAS and for torch (default: as they are)",
    )
    parser.add_argument(
        "--min-time",
        type=_seconds,
        default=0.2,
        help="seconds of timed calls per function and side, at least (default 0.2)",
    )
    parser.add_argument(
        "--min-runs",
        type=_positive_int,
        default=5,
        help="timed runs per function and side, at least (default 5)",
    )
    parser.add_argument(
        "--match",
        default=None,
        metavar="REGEX",
        help="only entries whose corpus/id matches this regular expression",
    )
    parser.add_argument(
        "--memory-limit",
        default=None,
        metavar="SIZE",
        help="refuse entries estimated above this (e.g. 8G; default: half the available memory)",
    )
    parser.add_argument(
        "--skip-too-large",
        action="store_true",
        help="leave out entries over the memory limit instead of refusing the run",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the input values (default 0)")
    parser.add_argument(
        "--python",
        default=None,
        metavar="PATH",
        help="run and time the implementation in a worker under this interpreter (its own environment: "
        "Python 3.9+ with NumPy 1.21+); each block is timed inside the worker (default: $CONVCHECK_PYTHON, "
        "else in this process)",
    )
    parser.add_argument(
        "--report",
        default=None,
        metavar="DIR",
        help="write bench.json, bench.md, the SVG figures and bench.html here",
    )
    parser.add_argument("--list-corpora", action="store_true", help="list the shipped corpora and exit")
    parser.add_argument(
        "--harness-check",
        action="store_true",
        help="instead of benchmarking, time torch's conv2d through convcheck and through "
        "torch.utils.benchmark.Timer and compare (default corpus: resnet50)",
    )


def _error(message: str) -> int:
    print(f"convcheck bench: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _corpus_names(args: argparse.Namespace, default: tuple[str, ...]) -> list[str]:
    if not args.corpus:
        return list(default)
    return [n.strip() for value in args.corpus for n in value.split(",") if n.strip()]


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run, for the report."""
    parts = ["convcheck", "bench", "--impl", args.impl or ""]
    for name in args.corpus or ():
        parts += ["--corpus", name]
    options = {
        "--batch": args.batch,
        "--dtype": args.dtype,
        "--threads": args.threads,
        "--min-time": args.min_time,
        "--min-runs": args.min_runs,
        "--match": args.match,
        "--memory-limit": args.memory_limit,
        "--seed": args.seed,
    }
    for flag, value in options.items():
        if value is not None:
            parts += [flag, str(value)]
    if args.skip_too_large:
        parts.append("--skip-too-large")
    return " ".join(shlex.quote(p) for p in parts)


def _list_corpora() -> int:
    from .corpus import load, shipped

    for name in shipped():
        c = load(name)
        print(f"{name:16} {len(c.entries):3} entries  {c.title}: {c.source}")
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    """Run ``convcheck bench`` with parsed ``args``; the exit status."""
    if args.list_corpora:
        return _list_corpora()
    from convcheck.spec import ConvcheckError

    from . import corpus, memory, runner, threads, timing

    try:
        match = re.compile(args.match) if args.match else None
    except re.error as e:
        return _error(f"--match={args.match!r} is not a regular expression: {e}")
    try:
        limit = (
            memory.Limit(memory.parse_size(args.memory_limit), f"--memory-limit {args.memory_limit}")
            if args.memory_limit
            else memory.default_limit()
        )
        corpora = corpus.load_many(
            _corpus_names(args, ("resnet50",) if args.harness_check else DEFAULT_CORPORA)
        )
        if args.threads is not None:
            threads.set_threads(args.threads)
    except (ConvcheckError, ValueError, RuntimeError) as e:
        return _error(str(e))
    settings = runner.Settings(
        dtype=args.dtype,
        batch=args.batch,
        policy=timing.Policy(min_time=args.min_time, min_runs=args.min_runs),
        seed=args.seed,
        threads=args.threads,
    )
    planned = runner.plan(corpora, settings, (lambda e: bool(match.search(e.key))) if match else None)
    if not planned:
        return _error(f"no entry of {', '.join(c.name for c in corpora)} matches --match={args.match!r}")
    over = runner.too_large(planned, limit)
    if over and not args.skip_too_large:
        return _error(runner.refusal(over, limit))
    skipped_large = {p.entry.key for p in over}
    if args.harness_check:
        return _harness_check(
            [p for p in planned if p.entry.op == "conv2d" and p.entry.key not in skipped_large],
            settings,
            args,
        )
    if not args.impl:
        return _error("--impl is required (a shipped name, a .py file, module[:attr] or an entry point)")
    try:
        impl = _load(args.impl, args.python, limit, args.threads)
    except ConvcheckError as e:
        return _error(str(e))
    if args.dtype not in impl.capabilities.dtypes:
        return _error(
            f"{impl.name} declares dtypes {', '.join(impl.capabilities.dtypes)}, not --dtype {args.dtype}; "
            f"pass --dtype {impl.capabilities.dtypes[0]}"
        )
    return _benchmark(impl, corpora, planned, over, settings, limit, args)


def _load(spec: str, python: str | None, limit: Limit, threads: int | None) -> Implementation:
    """The implementation, in this process; under ``--python`` (or ``CONVCHECK_PYTHON``) in an isolated
    worker with generous limits (a benchmark's layer may take minutes; memory as ``--memory-limit``)
    and ``threads`` (``--threads``) in its environment."""
    from convcheck.impls import registry
    from convcheck.sandbox.interpreter import requested

    python = requested(python)
    if python is None:
        return registry.load(spec)
    import os

    from convcheck.sandbox import Limits, load

    from .threads import ENV_VARS

    if threads is not None:  # the worker's BLAS reads them when it starts
        os.environ.update({name: str(threads) for name in ENV_VARS})

    limits = Limits(timeout_s=3600.0, memory_mb=max(Limits().memory_mb, 2 * (limit.bytes >> 20)), cpu_s=36000)
    impl: Implementation = load(spec, limits, python)
    return impl


def _benchmark(
    impl: Implementation,
    corpora: list[Corpus],
    planned: list[Planned],
    over: list[Planned],
    settings: Settings,
    limit: Limit,
    args: argparse.Namespace,
) -> int:
    """Check and time every planned entry, print the tables, write the report; the exit status."""
    from . import console, memory, output, record, runner, threads

    env_threads = threads.snapshot(args.threads)
    load_start = record.load_average()
    cpus = env_threads["cpu_count"] or 1
    if load_start and load_start[0] > cpus:
        print(
            f"convcheck bench: warning: the machine is busy (load average {load_start[0]:.1f} on {cpus} CPUs); "
            "times will be noisy and multi-threaded ones unreliable, ratios less so; --threads 1 helps",
            file=sys.stderr,
        )
    skipped_large = {p.entry.key for p in over}
    todo = [p for p in planned if p.entry.key not in skipped_large]
    progress = console.Progress(len(todo))
    with progress.running():
        results = runner.run(impl, todo, settings, phase=progress.phase, done=progress.done)
    for p in over:
        results.append(
            runner.EntryResult(
                p.entry,
                p.batch,
                settings.dtype,
                p.bytes,
                skipped=f"too large: needs about {memory.format_bytes(p.bytes)}, over the limit",
            )
        )
    order = {p.entry.key: i for i, p in enumerate(planned)}
    results.sort(key=lambda r: order[r.entry.key])
    env = record.environment(env_threads, load_start)
    from convcheck.report.model import implementation_side

    env["implementation_side"] = implementation_side(impl)  # --python: the worker's handshake
    sec = record.section(impl, corpora, results, settings, limit, env, command_line(args))
    console.tables(sec)
    if args.report:
        paths = output.write(sec, args.report)
        print(f"wrote {', '.join(str(p) for p in paths.values())}")
    summary = sec["summary"]
    if summary["wrong"] or summary["errors"]:
        print(
            f"convcheck bench: {impl.name} gave {summary['wrong']} wrong result(s) and raised {summary['errors']} time(s); those were not timed"
        )
        return EXIT_FAILED
    return EXIT_OK


def _harness_check(planned: list[Planned], settings: Settings, args: argparse.Namespace) -> int:
    """Time torch's conv2d through convcheck and through ``Timer`` (``overhead``); 1 if they disagree."""
    import json
    from pathlib import Path

    from . import overhead, threads
    from .rows import fmt_time

    if not planned:
        return _error("--harness-check needs conv2d entries; the selected corpora have none")
    th = threads.snapshot(args.threads)
    print(
        f"harness check: torch conv2d through convcheck and through torch.utils.benchmark.Timer, "
        f"{settings.dtype}, torch threads {th['torch']}, min time {settings.policy.min_time} s per measurement"
    )
    comps = []
    for p in planned:
        for c in overhead.compare_entry(p, settings):
            comps.append(c)
            print(
                f"  {c.key:28} {c.kind:8} convcheck {fmt_time(c.convcheck):>10}  "
                f"Timer {fmt_time(c.timer):>10}  {100 * c.difference:+6.1f}%  "
                f"(paired {100 * c.paired:+5.1f}%)",
                flush=True,
            )
    s = overhead.summary(comps)
    print(
        f"{s['within_tolerance']} of {s['compared']} within {100 * s['tolerance']:.0f}%; median |difference| "
        f"{100 * s['median_abs_difference']:.1f}%, largest {100 * s['max_abs_difference']:.1f}%; "
        f"median signed difference {100 * s['median_difference']:+.1f}%, median paired difference "
        f"{100 * s['median_paired_difference']:+.1f}% (overhead would make both positive)"
    )
    if args.report:
        out = Path(args.report)
        out.mkdir(parents=True, exist_ok=True)
        doc = {
            "harness_check": {
                "threads": th,
                "settings": {"dtype": settings.dtype, "min_time": settings.policy.min_time},
                "comparisons": [c.to_dict() for c in comps],
                "summary": s,
            }
        }
        (out / "bench_overhead.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return EXIT_OK if s["passed"] else EXIT_FAILED


__all__ = ["DEFAULT_CORPORA", "add_arguments", "run"]

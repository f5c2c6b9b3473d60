"""Running one submission: ``python -m convcheck run`` in a child process under a wall-clock limit.

The child is its own session (``start_new_session``), so a Ctrl-C on the
terminal reaches only the grader, and everything the submission spawned can be
killed at once with its process group. The grader never imports student code
itself: a hang, a crash or a huge allocation costs that student's run only.

The options ``convcheck grade`` passes through to every child (the isolation
limits ``--timeout``, ``--memory``, ``--cpu-time`` and ``--seed``) are those
``convcheck.options`` marks so; the child is this same package, so it has them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..bench.threads import ENV_VARS as THREAD_ENV_VARS
from ..tether import GRADER, tether_env

POLL_SECONDS = 0.1


def python_command() -> list[str]:
    """The interpreter running convcheck, with ``-P``: the child's working folder is not importable."""
    return [sys.executable, "-P"]


class RunUnavailable(RuntimeError):
    """``convcheck run`` itself does not start, so no submission could be graded."""


def check_run_available(timeout: float = 120.0) -> None:
    """A preflight: raise ``RunUnavailable`` when ``convcheck run --help`` fails in a child, since every
    submission's child would then fail the same way and be misgraded."""
    cmd = [*python_command(), "-m", "convcheck", "run", "--help"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=child_env())
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RunUnavailable(f"`convcheck run --help` did not complete: {e}") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(nothing on stderr)"])[-1]
        raise RunUnavailable(f"`convcheck run --help` failed with exit status {proc.returncode}: {last}")


def passthrough(args: argparse.Namespace) -> dict[str, str]:
    """``{flag: value}`` for every option ``convcheck grade`` passes through (``convcheck.options``)
    that the command line gave a value."""
    from ..options import grade_options

    return {
        o.flag: str(getattr(args, o.name))
        for o in grade_options()
        if o.grade == "pass" and getattr(args, o.name, None) is not None
    }


@dataclass(frozen=True)
class RunOptions:
    """How every submission's ``convcheck run`` is invoked.

    ``passthrough`` holds the flags to pass through (``{"--timeout": "10", "--seed": "0"}``);
    ``report`` passes ``--report <folder>``. Both must be flags the child supports.
    """

    profile: str = "ci"
    max_examples: int | None = None
    ops: tuple[str, ...] = ()
    strict: bool = False
    contract: str = "course"
    submission_timeout: float = 600.0
    report: bool = False
    passthrough: dict[str, str] = field(default_factory=dict)


def child_command(entry: Path | str, folder: Path, opts: RunOptions) -> list[str]:
    """The ``convcheck run`` command line that checks ``entry`` (a file, or a name ``--impl`` takes),
    writing into ``folder``."""
    cmd = [*python_command(), "-m", "convcheck", "run", "--impl", str(entry), "--profile", opts.profile]
    cmd += ["--results", str(folder / "results.jsonl")]
    if opts.max_examples:
        cmd += ["--max-examples", str(opts.max_examples)]
    if opts.ops:
        cmd += ["--ops", ",".join(opts.ops)]
    if opts.strict:
        cmd.append("--strict")
    cmd += ["--contract", opts.contract]  # grading's default is the course contract (spec/contracts.py)
    if opts.report:
        cmd += ["--report", str(folder)]
    for flag, value in sorted(opts.passthrough.items()):
        cmd += [flag, value]
    return cmd


def replay_command(entry: str, opts: RunOptions, test: str) -> str:
    """The ``convcheck run`` command a student types, beside their file ``entry``, to rerun one failed
    check (pytest id ``test``) on the cases the grader drew: the same profile, seed and options."""
    import shlex

    cmd = ["convcheck", "run", "--impl", entry, "--profile", opts.profile]
    if "--seed" in opts.passthrough:
        cmd += ["--seed", opts.passthrough["--seed"]]
    if opts.max_examples:
        cmd += ["--max-examples", str(opts.max_examples)]
    if opts.strict:
        cmd.append("--strict")
    cmd += ["--contract", opts.contract, "-k", test.split("::")[-1]]
    return shlex.join(cmd)


def child_env() -> dict[str, str]:
    """The child's environment: ours, single-threaded maths libraries, no bytecode written, unbuffered.

    One BLAS thread per child keeps ``-j`` children from oversubscribing the
    cores; no ``__pycache__`` is written into the submissions folder.
    """
    env = dict(os.environ)
    for name in ("CONVCHECK_IMPL", "CONVCHECK_PROFILE", "PYTEST_ADDOPTS"):
        env.pop(name, None)
    for name in THREAD_ENV_VARS:  # one thread per submission's run: several run side by side
        env.setdefault(name, "1")
    env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1", PYTHONHASHSEED="0")
    env.update(tether_env(GRADER))  # a grader killed outright takes its children with it
    return env


@dataclass(frozen=True)
class ChildRun:
    """How a child ended: its exit status (negative: killed by that signal), or why it was killed."""

    returncode: int | None
    seconds: float
    timed_out: bool = False
    stopped: bool = False


def _children_map() -> dict[int, list[int]]:
    """Parent pid -> child pids of every process, from ``/proc`` (empty where there is none)."""
    out: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": state, ppid, ...
        out.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return out


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, including those that left its group (e.g. a sandbox worker's session)."""
    children = _children_map()
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL the child's process group and every process below it, while the child still holds them.

    The child leads its own group (its pid is the group id); processes that
    started their own session, such as ``convcheck run``'s sandbox workers, are
    found through ``/proc`` before the child dies and they are re-parented.
    """
    for _ in range(3):  # a process may fork while we look; look again
        below = _descendants(pid)
        for target in below:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(target, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        if not below:
            break


def _kill_group(pid: int) -> None:
    """SIGKILL what is left in the child's process group once the child has exited."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _exited(pid: int) -> bool:
    """Whether the child has exited, without reaping it (its pid, and so its group id, stay reserved)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def run_child(
    cmd: list[str],
    folder: Path,
    timeout: float,
    stop: threading.Event,
    started: Callable[[int], None] | None = None,
) -> ChildRun:
    """Run ``cmd`` in ``folder`` (stdout/stderr to ``stdout.txt``/``stderr.txt`` there).

    ``started``, if given, is called with the child's pid as soon as it runs.

    Returns when the child exits, ``timeout`` seconds pass, or ``stop`` is set;
    in the last two cases the child, its process group and every process below
    it are killed. Once the child has exited, what it left running in its group
    is killed too.
    """
    start = time.monotonic()
    with open(folder / "stdout.txt", "wb") as out, open(folder / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(
            cmd,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=child_env(),
            start_new_session=True,
        )
        if started is not None:
            try:
                started(proc.pid)
            except BaseException:
                kill_tree(proc.pid)
                proc.wait()
                raise
        timed_out = stopped = False
        while not _exited(proc.pid):
            timed_out = time.monotonic() - start > timeout
            stopped = stop.is_set()
            if timed_out or stopped:
                kill_tree(proc.pid)
                break
            time.sleep(POLL_SECONDS)
        _kill_group(proc.pid)
        code = proc.wait()
    killed = timed_out or stopped
    return ChildRun(None if killed else code, time.monotonic() - start, timed_out, stopped and not timed_out)

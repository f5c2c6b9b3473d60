"""Grading on a Dask cluster: one task per submission, outcomes streamed back as they finish.

The task (``grade_unit``, run on a Dask worker) grades its submission the way
the thread pool does, in its own ``convcheck run`` child under the same limits,
as a retryable unit (``convcheck.grading.units``): its files are published into
``OUT/<student>/`` only once graded. The caller (``grade_on_cluster``) hands
each outcome to ``on_done`` as it arrives (``as_completed``), so the summary
and the progress lines are those of the thread pool.

Faults, and what is recorded:

- a worker dies mid-unit: the scheduler runs the unit again; after
  ``retries`` deaths it is an ``infrastructure error`` (no score), never a
  student's 0. A task that fails in convcheck's own code on the worker (say,
  convcheck is not installed there) is one too.
- the scheduler goes away: ``ClusterLost`` carries the outcomes that
  finished (each already handed to ``on_done``); the others are not recorded.
- Ctrl-C (or SIGTERM): the run's ``STOP`` file tells every running unit to kill
  its child, the queued ones are cancelled, and the finished ones are returned.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .discover import Submission
from .interrupts import ignore_interrupts, restore
from .outcome import Outcome
from .submission import GradeSettings, grade_into, grader_error
from .units import (
    STOP_FILE,
    infrastructure_error,
    new_try,
    note_child,
    publish,
    remove_run,
    run_folder,
    stop_leftovers,
)

if TYPE_CHECKING:
    from distributed import Client, Future

STOP_POLL_S = 0.5
STOP_GRACE_S = 30.0
"""After Ctrl-C, how long running units get to kill their children and return."""


class ClusterLost(Exception):
    """The scheduler went away mid-run; ``outcomes`` are the submissions that finished before."""

    def __init__(self, message: str, outcomes: list[Outcome]) -> None:
        super().__init__(message)
        self.outcomes = outcomes


def _watch_stop(stop_file: Path, stop: threading.Event, done: threading.Event) -> None:
    """Set ``stop`` once ``stop_file`` appears (the run was interrupted), until ``done`` is set."""
    while not done.wait(STOP_POLL_S):
        if stop_file.exists():
            stop.set()
            return


def grade_unit(sub: Submission, settings: GradeSettings, token: str, retries: int) -> Outcome | None:
    """Grade ``sub`` on this worker as one try of its unit; ``None`` if the run was interrupted.

    Past ``retries`` earlier tries (each ended by a dying worker), the unit is
    recorded as an infrastructure error without running again.
    """
    run = run_folder(settings.out, token)
    final = settings.out / sub.student
    if (run / STOP_FILE).exists():
        return None
    try:
        folder, before = new_try(run, sub.student)
        stop_leftovers(folder.parent, keep=folder)
        if before > retries:
            why = f"the Dask worker grading it died {before} time(s)"
            return infrastructure_error(sub, settings, why)
        stop, done = threading.Event(), threading.Event()
        watcher = threading.Thread(target=_watch_stop, args=(run / STOP_FILE, stop, done), daemon=True)
        watcher.start()
        try:
            outcome = grade_into(sub, settings, stop, folder, lambda pid: note_child(folder, pid))
        finally:
            done.set()
        if outcome is not None:
            publish(folder, final)
        return outcome
    except OSError as e:
        return grader_error(sub, final, e)


def _failed_task(fut: Future, sub: Submission, settings: GradeSettings) -> Outcome:
    """The infrastructure error of a task that ended with an exception instead of an outcome."""
    from distributed import KilledWorker

    error = fut.exception()
    if isinstance(error, KilledWorker):
        why = "the Dask workers grading it died more often than the scheduler allows (allowed-failures)"
    else:
        why = f"the grading task failed on its Dask worker: {type(error).__name__}: {error}"
    return infrastructure_error(sub, settings, " ".join(why.split()))


def grade_on_cluster(
    client: Client,
    submissions: list[Submission],
    settings: GradeSettings,
    on_done: Callable[[Outcome], None],
    retries: int = 1,
) -> tuple[list[Outcome], bool]:
    """Grade every submission as a task on ``client``'s cluster; ``on_done`` sees each outcome as it
    comes. Returns the finished outcomes sorted by student and whether the run was interrupted;
    raises ``ClusterLost`` when the scheduler goes away."""
    from distributed import as_completed

    token = f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"
    run = run_folder(settings.out, token)
    run.mkdir(parents=True, exist_ok=True)
    futures = {
        client.submit(
            grade_unit, sub, settings, token, retries, key=f"grade-{sub.student}-{token}", pure=False
        ): sub
        for sub in submissions
    }
    finished: list[Outcome] = []
    try:
        for fut in as_completed(futures, loop=client.loop):
            if fut.status == "cancelled":  # only the scheduler cancels them: it went away
                (run / STOP_FILE).touch()  # units still running on live workers stop their children
                raise ClusterLost(_lost_message(client, finished, futures), _sorted(finished))
            outcome = fut.result() if fut.status == "finished" else _failed_task(fut, futures[fut], settings)
            if outcome is not None:
                finished.append(outcome)
                on_done(outcome)
    except KeyboardInterrupt:
        if _interrupt(client, run, list(futures)):
            remove_run(run)
        return _sorted(finished), True
    except BaseException:
        (run / STOP_FILE).touch()  # the run ends here: its units stop their children
        raise
    remove_run(run)
    return _sorted(finished), False


def _lost_message(client: Client, finished: list[Outcome], futures: dict[Any, Submission]) -> str:
    address = getattr(client.scheduler, "address", None) or "its address"
    return (
        f"the Dask scheduler at {address} went away; {len(finished)} of {len(futures)} "
        "submission(s) finished and are recorded"
    )


def _interrupt(client: Client, run: Path, futures: list[Future]) -> bool:
    """Stop the run: every unit, running or about to start, sees the ``STOP`` file, kills its child
    and returns. Waits for them up to ``STOP_GRACE_S``, then cancels what is left; whether all
    returned (their try folders can go)."""
    (run / STOP_FILE).touch()
    previous = ignore_interrupts()
    try:
        deadline = time.monotonic() + STOP_GRACE_S
        while not all(f.done() for f in futures) and time.monotonic() < deadline:
            time.sleep(STOP_POLL_S)
    finally:
        restore(previous)
    not_done = [f for f in futures if not f.done()]
    if not_done:
        client.cancel(not_done)
    return not not_done


def _sorted(outcomes: list[Outcome]) -> list[Outcome]:
    return sorted(outcomes, key=lambda o: o.student)

"""Grading many submissions in parallel, and stopping cleanly when interrupted.

Each submission is graded by ``grade_submission`` in a worker thread (the work
happens in its child process; the thread only waits for it). Finished
outcomes are handed to a callback in the calling thread, one at a time, so the
caller can rewrite the class summary after each. A ``KeyboardInterrupt`` (the
caller turns SIGTERM into one too) sets the stop event: every running child's
process group is killed, queued submissions are dropped, and the outcomes that
finished are returned with ``interrupted=True``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from .discover import Submission
from .interrupts import ignore_interrupts, restore
from .outcome import Outcome
from .submission import GradeSettings, grade_submission

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["GradeSettings", "grade_all", "grade_submission"]


def _finished(futures: list[Future]) -> list[Outcome]:
    """The outcomes of the futures that completed with one (not cancelled, not stopped)."""
    done = [f for f in futures if f.done() and not f.cancelled() and f.exception() is None]
    return sorted((o for f in done if (o := f.result()) is not None), key=lambda o: o.student)


def grade_all(
    submissions: list[Submission],
    settings: GradeSettings,
    jobs: int,
    on_done: Callable[[Outcome], None],
    cluster: Client | None = None,
    retries: int = 1,
) -> tuple[list[Outcome], bool]:
    """Grade every submission with ``jobs`` at a time; ``on_done`` sees each outcome as it comes.

    Returns the finished outcomes sorted by student, and whether the run was interrupted. With
    ``cluster`` (a Dask client), the submissions run as its tasks instead, each retried ``retries``
    times when its worker dies (``convcheck.grading.dask_batch``); ``jobs`` is then the cluster's.
    """
    if cluster is not None:
        from .dask_batch import grade_on_cluster

        return grade_on_cluster(cluster, submissions, settings, on_done, retries)
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="grade")
    futures = [pool.submit(grade_submission, sub, settings, stop) for sub in submissions]
    pending = set(futures)
    try:
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=futures.index):
                outcome = fut.result()
                if outcome is not None:
                    on_done(outcome)
    except KeyboardInterrupt:
        _stop(pool, stop)
        return _finished(futures), True
    except BaseException:
        _stop(pool, stop)
        raise
    pool.shutdown(wait=True)
    return _finished(futures), False


def _stop(pool: ThreadPoolExecutor, stop: threading.Event) -> None:
    """Kill the running children, drop the queued submissions, wait for the workers (ignoring more Ctrl-C)."""
    stop.set()
    previous = ignore_interrupts()
    try:
        pool.shutdown(wait=True, cancel_futures=True)
    finally:
        restore(previous)

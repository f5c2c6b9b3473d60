"""A last, deterministic shrink after hypothesis's: smaller neighbours of the reported case.

Hypothesis's shrinker often stops short on window geometry (a kernel cannot shrink past the
input it must fit in one step). On hypothesis's final example of a failing property, the body
of the property (registered with ``shrinks_further``, placed under ``@given``) is run on the
case's smaller neighbours (``tests/neighbours.py``), in the natural order; the first that fails
the same way (``failure_key``) replaces the case, until none does or the bounds (``TRIALS``
runs, ``SECONDS``) are reached. These trial runs note nothing in the test's recorder
(``Recorder.paused``) and are never the final example (``checks.fail`` diagnoses nothing on
them). The body then runs once more on the smallest case as the final example, so that the
record, the message, its diagnosis and its reproduction describe it, and the message says that
convcheck shrank the case further (``note``).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from convcheck import recording
from convcheck.sandbox.client import breakers_kept
from convcheck.spec import Capabilities
from convcheck.spec.case import Case

from .neighbours import geometry, neighbours

TRIALS = 200
"""Most trial runs of one pass."""
SECONDS = 20.0
"""Longest a pass starts new trials for."""
UNTRUSTED_KINDS = ("timeout", "crash", "cpu", "protocol")
"""Kinds of sandbox failure after which the worker's circuit breaker fails every later call of the
function alike (``convcheck.sandbox.client``): a pass on them would shrink to nothing real."""

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Trial:
    """A trial run: the output its failure named (``checks.fail`` notes it) and what it raised."""

    output: str | None = None
    error: BaseException | None = None

    @property
    def key(self) -> Hashable | None:
        """The failure's ``failure_key``, or ``None`` when the run passed."""
        return None if self.error is None else failure_key(self.error, self.output)

    @property
    def trusted(self) -> bool:
        """False after a failure that trips the sandbox's circuit breaker (``UNTRUSTED_KINDS``)."""
        return getattr(self.error, "kind", None) not in UNTRUSTED_KINDS


_TRIALS: list[Trial] = []
_NOTES: list[str] = []


def in_trial() -> bool:
    """Whether a neighbour (or the reported case) is being tried: not a final example."""
    return bool(_TRIALS)


def note_output(output: str | None) -> None:
    """Note, during a trial, the output a failure names (called by ``checks.fail``)."""
    if _TRIALS:
        _TRIALS[-1].output = output


def note() -> str | None:
    """The line saying how convcheck shrank the final example further, while it runs; else ``None``."""
    return _NOTES[-1] if _NOTES else None


def failure_key(error: BaseException, output: str | None) -> Hashable:
    """What makes two failures the same: the exception's type and its ``convcheck_key`` where it has
    one; else its type's name, the output it names, and a sandbox failure's kind and raised type."""
    key = getattr(error, "convcheck_key", None)
    if key is not None:
        return (type(error), key)
    raised = getattr(error, "raised", None) or {}
    return (type(error).__name__, output, getattr(error, "kind", None), raised.get("type"))


def trial(body: Callable[..., Any], case: Case, kwargs: dict[str, Any]) -> Trial:
    """Run ``body`` on ``case`` as a trial, catching what it raises."""
    run = Trial()
    _TRIALS.append(run)
    try:
        body(case, **kwargs)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # a skip or an unmet assumption is a failure of another kind
        run.error = e
    finally:
        _TRIALS.remove(run)
    return run


def smallest_failing(
    body: Callable[..., Any],
    case: Case,
    kwargs: dict[str, Any],
    caps: Capabilities,
    key: Hashable,
    trials: int = TRIALS,
    seconds: float = SECONDS,
) -> tuple[Case, int]:
    """The smallest case reached from ``case`` by greedy steps to a neighbour failing with ``key``,
    and how many trials that took (bounded by ``trials`` and ``seconds``)."""
    start, tried = time.monotonic(), 0
    improved = True
    while improved:
        improved = False
        for smaller in neighbours(case, caps):
            if tried >= trials or time.monotonic() - start > seconds:
                return case, tried
            tried += 1
            run = trial(body, smaller, kwargs)
            if not run.trusted:  # it hung or crashed: the others may too, and each costs its limit
                return case, tried
            if run.key == key:
                case, improved = smaller, True
                break
    return case, tried


def _final_hypothesis_example() -> bool:
    from hypothesis.control import current_build_context, currently_in_test_context

    return currently_in_test_context() and current_build_context().is_final


@contextlib.contextmanager
def _noted(line: str) -> Iterator[None]:
    _NOTES.append(line)
    try:
        yield
    finally:
        _NOTES.remove(line)


def shrinks_further(body: F) -> F:
    """Register a property's body (``body(case, **drawn)``) for the pass after hypothesis's shrink;
    place it under ``@given(case=...)``. Outside hypothesis's final example the body runs as is."""

    @functools.wraps(body)
    def run(case: Case, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        rec = recording.current()
        if in_trial() or rec is None or rec.caps is None or not _final_hypothesis_example():
            return body(case, **kwargs)
        if geometry(case) is None:  # no neighbours: nothing to try
            return body(case, **kwargs)
        with rec.paused(), breakers_kept():
            first = trial(body, case, kwargs)
            smallest, tried = case, 0
            if first.key is not None and first.trusted:
                smallest, tried = smallest_failing(body, case, kwargs, rec.caps, first.key)
        if smallest is case:
            return body(case, **kwargs)
        line = f"convcheck shrank this further ({tried} trials): from {case.describe()}"
        with _noted(line):
            try:
                body(smallest, **kwargs)
            except BaseException as e:
                if line not in str(e):
                    e.add_note(line)
                raise
        return body(case, **kwargs)  # the smallest passed this time: report hypothesis's own

    return run  # type: ignore[return-value]

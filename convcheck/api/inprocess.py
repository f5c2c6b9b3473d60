"""``isolation="none"``: the functions run in the caller's process, each call under a wall-clock limit.

The engine finds them by a name registered in this process only
(``registry.register_in_process``). Every contract function is wrapped so that
a call still running after the run's per-call timeout is interrupted: a
``SIGALRM`` timer (``signal.setitimer``) raises ``CallTimedOut`` inside it.
Within one check, a function that timed out fails at once on later calls (as
the sandbox does), so hypothesis's shrinking never waits on a hang twice.

What this does not protect: the timer only works on the main thread (off it,
calls run without a time limit), and it interrupts Python code only: C code
that never returns to the interpreter (a huge NumPy operation, a deadlocked
library) runs on. There is no memory cap, a crash (segfault, ``os._exit``) ends
the caller's process, and the code can change anything in it (globals,
monkeypatches, the working folder). ``isolation="process"`` protects against
all of these.
"""

from __future__ import annotations

import functools
import signal
import threading
import types
from collections.abc import Callable
from typing import Any

from ..sandbox.client import describe_call


class CallTimedOut(TimeoutError):
    """A function under test did not return within the per-call timeout (``isolation="none"``)."""


class Guard:
    """The per-call timeout of one in-process implementation, and the functions that tripped it."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.tripped: dict[str, CallTimedOut] = {}
        self._depth = threading.local()

    def reset_breaker(self) -> None:
        """Trust every function again (at the start of every test)."""
        self.tripped.clear()

    def wrap(self, fname: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            if fname in self.tripped:
                raise self.tripped[fname]
            if getattr(self._depth, "n", 0) or threading.current_thread() is not threading.main_thread():
                return fn(*args, **kwargs)
            return self._timed(fname, fn, args, kwargs)

        return call

    def _timed(
        self, fname: str, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        __tracebackhide__ = True
        message = (
            f"{fname} did not return within {self.timeout_s:g} s on {describe_call(fname, args, kwargs)}: "
            "it was interrupted (an endless loop?)"
        )

        def alarm(signum: int, frame: Any) -> None:
            raise CallTimedOut(message)

        previous = signal.signal(signal.SIGALRM, alarm)
        self._depth.n = 1
        try:
            signal.setitimer(signal.ITIMER_REAL, self.timeout_s)
            try:
                return fn(*args, **kwargs)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except CallTimedOut as e:
            self.tripped[fname] = CallTimedOut(f"{e} (not run again in this check)")
            raise
        finally:
            self._depth.n = 0
            signal.signal(signal.SIGALRM, previous)


def guarded(obj: Any, function_names: list[str], guard: Guard) -> types.SimpleNamespace:
    """A namespace holding ``obj``'s contract functions wrapped by ``guard``, its declaration and version."""
    from .target import CAPABILITIES_NAME

    ns = types.SimpleNamespace()
    for fname in function_names:
        fn = getattr(obj, fname, None)
        if fn is not None:
            setattr(ns, fname, guard.wrap(fname, fn))
    for extra in (CAPABILITIES_NAME, "__version__"):
        value = getattr(obj, extra, None)
        if value is not None:
            setattr(ns, extra, value)
    return ns


class BreakerReset:
    """A pytest plugin: every test starts trusting every in-process function again."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    def pytest_runtest_setup(self, item: Any) -> None:
        self.guard.reset_breaker()


__all__ = ["BreakerReset", "CallTimedOut", "Guard", "guarded"]

"""A Ctrl-C is never lost: a run that was interrupted stops at the next example, whatever caught it.

Python turns SIGINT into a ``KeyboardInterrupt`` raised wherever the main thread happens to be.
Where that is, is chance, and some places drop it: a bare ``except:`` (or ``except
BaseException``) in the code under test, which ``--no-isolation`` runs in the run's own process,
or a finaliser (``__del__``, a ``weakref.finalize`` callback) that the garbage collector ran just
then, whose exceptions Python prints and ignores. The run would then go on to the end of its
profile, as if Ctrl-C had never been pressed.

``install()`` (the plug-in's ``pytest_configure``, on the main thread) puts a SIGINT handler in
place that notes the interrupt and raises ``KeyboardInterrupt`` as Python's own does.
``raise_if_interrupted()`` raises it again where convcheck is sure the first one was lost: at the
start of every test and of every example (``recording.Recorder.case``). A ``KeyboardInterrupt``
that was not lost never reaches those points, since it ends the test and then the session, so the
second raise changes nothing for it. ``uninstall()`` puts the previous handler back.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

_state: dict[str, Any] = {"pending": False, "previous": None, "installed": False}


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    """Note the interrupt, then raise it where the main thread is (Python's own behaviour)."""
    _state["pending"] = True
    raise KeyboardInterrupt


def install() -> bool:
    """Put the noting SIGINT handler in place, forgetting any earlier interrupt; False (and nothing
    done) off the main thread, or where someone else's handler is in place (a notebook kernel's, a
    host program's): convcheck leaves theirs alone."""
    _state["pending"] = False
    if threading.current_thread() is not threading.main_thread():
        return False
    current = signal.getsignal(signal.SIGINT)
    if current is _on_sigint:
        return True
    if current is not signal.default_int_handler:
        return False
    _state["previous"] = signal.signal(signal.SIGINT, _on_sigint)
    _state["installed"] = True
    return True


def uninstall() -> None:
    """Put back the handler ``install`` replaced (a no-op where it replaced none)."""
    if not _state["installed"] or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is _on_sigint:
        signal.signal(signal.SIGINT, _state["previous"])
    _state["installed"] = False


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if SIGINT came since ``install``: the first one was lost, since
    the run went on to a new test or example (module docstring)."""
    if _state["pending"]:
        raise KeyboardInterrupt("interrupted (raised again: the first KeyboardInterrupt was caught)")

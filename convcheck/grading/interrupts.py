"""Shielding a run's last steps from a second Ctrl-C: ignore SIGINT and SIGTERM, then put them back.

Once grading is being stopped, the children are killed and the finished
outcomes written; another Ctrl-C there must not cut that short.
"""

from __future__ import annotations

import signal
import threading
from typing import Any


def ignore_interrupts() -> dict[int, Any]:
    """Ignore SIGINT and SIGTERM (on the main thread); the handlers they had, for ``restore``."""
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, signal.SIG_IGN)
    return previous


def restore(previous: dict[int, Any]) -> None:
    """Put back the handlers ``ignore_interrupts`` replaced."""
    for sig, handler in previous.items():
        signal.signal(sig, handler)

"""A child process that ends with the process that started it.

The children convcheck starts are their own sessions, so that a Ctrl-C on the
terminal reaches only convcheck, which decides: each submission's
``convcheck run`` under ``convcheck grade``, and the sandbox worker that runs
the code under test. The price: a parent killed outright (SIGKILL, the OOM
killer, a Dask worker dying) would leave them running, and a student's run
could go on writing into ``OUT/<student>/`` while a ``--resume``d grading
grades that student again. So a parent puts its pid in the child's environment
(``tether_env``) and the child, first thing, asks Linux to send it SIGKILL
when that parent dies (``prctl(PR_SET_PDEATHSIG)``); a parent already gone by
then ends it at once. Elsewhere this is a no-op. Python 3.9 compatible: the
sandbox worker imports it under ``--python``.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

GRADER = "CONVCHECK_GRADER_PID"
"""Set by ``convcheck grade`` for each submission's ``convcheck run``."""
SANDBOX = "CONVCHECK_SANDBOX_PARENT_PID"
"""Set by the sandbox client for its worker."""
_PR_SET_PDEATHSIG = 1


def tether_env(name: str) -> dict[str, str]:
    """What a parent adds to a child's environment so that the child tethers itself (``tether(name)``)."""
    return {name: str(os.getpid())}


def tether(name: str) -> None:
    """Die with the parent whose pid the environment variable ``name`` holds, if it is set.

    The variable is removed first, so that this process's own children do not tether
    themselves to the wrong parent.
    """
    parent = os.environ.pop(name, None)
    if not parent or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if str(os.getppid()) != parent:  # the parent died before the request took effect
        os._exit(128 + int(signal.SIGKILL))

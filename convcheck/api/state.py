"""The caller's process as ``check`` found it: saved before a run, put back after it.

A run changes process-wide settings for its own sake: one thread for PyTorch,
NumPy's BLAS and the environment its workers start from
(``bench.threads.limit_threads``), hypothesis's active settings profile, the
tolerance overrides, the import path its workers inherit (``PYTHONPATH``), this
process's import path (pytest puts the suite's root folder in front of it), and
the working folder a run must not leave changed. ``preserved()`` restores all of
them, so a notebook does not end up with torch on one thread.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from ..bench.threads import ENV_VARS

_ENV = (*ENV_VARS, "PYTHONPATH")


@contextlib.contextmanager
def preserved() -> Iterator[None]:
    """Run the body, then restore thread counts, environment, hypothesis profile, tolerance overrides,
    ``sys.path`` and working folder."""
    import torch  # the suite imports it anyway; imported first, its own default pool is known
    from hypothesis import settings

    from ..bench.threads import blas_threads, set_blas_threads
    from ..spec import tolerance

    env = {k: os.environ.get(k) for k in _ENV}
    torch_threads = torch.get_num_threads()
    blas, _ = blas_threads()
    profile = settings.get_current_profile_name()
    overrides = tolerance.active_overrides()
    cwd = os.getcwd()
    path = list(sys.path)  # pytest puts the suite's root folder in front of it
    try:
        yield
    finally:
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if torch.get_num_threads() != torch_threads:
            torch.set_num_threads(torch_threads)
        if blas is not None:
            set_blas_threads(blas)
        settings.load_profile(profile)
        tolerance.use_overrides(overrides)
        if os.getcwd() != cwd:
            os.chdir(cwd)
        sys.path[:] = path


def with_import_path(paths: list[str]) -> None:
    """Put ``paths`` in front of ``PYTHONPATH`` (the isolated worker's import path), in place; the
    caller restores it (``preserved``)."""
    current = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    wanted = [p for p in paths if p not in current]
    if wanted:
        os.environ["PYTHONPATH"] = os.pathsep.join([*wanted, *current])


__all__ = ["preserved", "with_import_path"]

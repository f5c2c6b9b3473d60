"""Per-call limits on an implementation running in a sandbox worker."""

from __future__ import annotations

import resource
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """What one call of the code under test may use.

    ``timeout_s`` is wall-clock time per call (the parent kills the worker after
    it); ``memory_mb`` caps the worker's address space (``RLIMIT_AS``), so a huge
    allocation raises ``MemoryError`` there instead of swapping the machine;
    ``cpu_s`` caps CPU time per call (``RLIMIT_CPU``: the kernel stops the worker).
    ``startup_s`` bounds importing the module.
    """

    timeout_s: float = 10.0
    memory_mb: int = 4096
    cpu_s: int = 60
    startup_s: float = 60.0

    def check(self) -> None:
        """Raise ``ValueError`` naming the bad limit."""
        for name in ("timeout_s", "memory_mb", "cpu_s", "startup_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be positive")


def apply_memory_cap(memory_mb: int) -> None:
    """Cap this process's address space (called in the worker before anything is imported)."""
    cap = memory_mb << 20
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(
        resource.RLIMIT_AS, (cap, hard if hard != resource.RLIM_INFINITY and hard < cap else cap)
    )


def arm_cpu_cap(cpu_s: int) -> None:
    """Let this process use at most ``cpu_s`` more seconds of CPU from now (``SIGXCPU`` after)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = int(usage.ru_utime + usage.ru_stime) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = used + cpu_s
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))

"""The timing loop: warm-up, calibration to a minimum measuring time, gc off, synchronisation.

For each target (a function of no arguments, plus an optional synchronisation
hook):

1. **Warm-up.** Call it until ``warmup_time`` has passed (at least once), so
   that first-call costs (allocations, caches, lazy initialisation, thread
   pools waking up) stay out of the samples. The fastest warm-up call
   estimates one call (an interrupted call must not inflate the estimate).
2. **Calibration.** A *block* is ``number`` back-to-back calls, with
   ``number`` the smallest count that lasts at least ``block_time`` (1 for
   anything slower than that), so the clock's resolution never dominates.
   ``runs = ceil(min_time / block)`` blocks are measured, clamped to
   ``[min_runs, max_runs]``.
3. **Measurement.** Each block is timed with ``time.perf_counter`` and gives
   one sample, the block's time over ``number``. Several targets (an
   implementation and PyTorch) are measured *interleaved*, one block of each
   in turn, so a machine that slows down for a while slows both down alike and
   their ratio survives it.

The garbage collector is disabled for the whole measurement (after one
``gc.collect()``) and re-enabled afterwards if it was on; reference counting
still frees every temporary array.

**Synchronisation.** Work on an accelerator (CUDA, CuPy) is queued and the
call returns before it is done, so a clock read right after the call measures
the queueing, not the work. The target's ``synchronize`` hook (an
implementation declares it as ``"synchronize"`` in ``CONVCHECK_CAPABILITIES``,
e.g. ``"torch.cuda.synchronize"``) is called before the clock starts (so
earlier work is not billed to this block) and after the block's last call,
before the clock is read (so all of the block's work is). On the CPU no hook is
needed and none is called.
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Optional

from .stats import Stats, summarize

Clock = Callable[[], float]

MIN_CALL = 1e-7
"""Seconds assumed for a call the clock saw take no time (coarse clocks): caps calls per block at 10**4."""
Sync = Optional[Callable[[], object]]


@dataclass(frozen=True)
class Policy:
    """How long and how often to measure (seconds; see the module docstring)."""

    min_time: float = 0.2
    min_runs: int = 5
    max_runs: int = 1000
    warmup_time: float = 0.05
    block_time: float = 1e-3

    def __post_init__(self) -> None:
        if self.min_time < 0 or self.warmup_time < 0 or self.block_time <= 0:
            raise ValueError(
                f"min_time={self.min_time!r}, warmup_time={self.warmup_time!r} must be >= 0 and "
                f"block_time={self.block_time!r} > 0"
            )
        if not 1 <= self.min_runs <= self.max_runs:
            raise ValueError(f"need 1 <= min_runs={self.min_runs} <= max_runs={self.max_runs}")


@dataclass(frozen=True)
class Target:
    """A function to time and the hook that waits for its work (``None`` on the CPU).

    ``block``, when given, times a block elsewhere: ``block(number)`` returns the seconds of
    ``number`` calls measured where the code runs (``--python``: inside the isolated worker, by
    ``time_block`` there), and ``fn`` is not called here."""

    fn: Callable[[], object]
    synchronize: Sync = None
    block: Callable[[int], float] | None = None


@contextlib.contextmanager
def gc_disabled() -> Iterator[None]:
    """Collect once, then keep the cyclic garbage collector off; restore its state afterwards."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def time_block(target: Target, number: int, clock: Clock = time.perf_counter) -> float:
    """Seconds for ``number`` calls, synchronised before the clock starts and before it stops."""
    if target.block is not None:
        return target.block(number)
    fn, sync = target.fn, target.synchronize
    if sync is not None:
        sync()
    start = clock()
    for _ in range(number):
        fn()
    if sync is not None:
        sync()
    return clock() - start


def calibrate(target: Target, policy: Policy, clock: Clock = time.perf_counter) -> tuple[int, int]:
    """Warm up, then ``(number, runs)``: calls per block and blocks to measure (module docstring)."""
    deadline = clock() + policy.warmup_time
    one = time_block(target, 1, clock)
    while clock() < deadline:
        one = min(one, time_block(target, 1, clock))
    number = 1 if one >= policy.block_time else math.ceil(policy.block_time / max(one, MIN_CALL))
    block = one * number
    runs = math.ceil(policy.min_time / block) if block > 0 else policy.max_runs
    return number, min(max(runs, policy.min_runs), policy.max_runs)


def measure_interleaved(
    targets: Mapping[str, Target], policy: Policy = Policy(), clock: Clock = time.perf_counter
) -> dict[str, Stats]:
    """Warm up and calibrate each target, then time them one block each in turn; ``Stats`` by name."""
    with gc_disabled():
        plan = {name: calibrate(t, policy, clock) for name, t in targets.items()}
        samples: dict[str, list[float]] = {name: [] for name in targets}
        for round_ in range(max(runs for _, runs in plan.values())):
            for name, target in targets.items():
                number, runs = plan[name]
                if round_ < runs:
                    samples[name].append(time_block(target, number, clock) / number)
    return {name: summarize(samples[name], plan[name][0]) for name in targets}


def measure(
    fn: Callable[[], object],
    synchronize: Sync = None,
    policy: Policy = Policy(),
    clock: Clock = time.perf_counter,
) -> Stats:
    """Time one function (see the module docstring); ``synchronize`` waits for its device work."""
    return measure_interleaved({"fn": Target(fn, synchronize)}, policy, clock)["fn"]


__all__ = ["Policy", "Target", "calibrate", "gc_disabled", "measure", "measure_interleaved", "time_block"]

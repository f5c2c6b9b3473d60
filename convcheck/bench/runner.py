"""One benchmark run: plan the entries, guard memory, then per entry check, and time against PyTorch.

Per entry, at its batch and the run's dtype:

1. the inputs are built once (``tests.values.make_case``: standard normal
   values, a seed derived from the entry's key), and shared by every step;
2. every function the implementation provides is checked against the oracle
   (``correctness``); a function that fails or raises is not timed, so a fast
   wrong answer is never reported as fast;
3. each checked function is timed interleaved with PyTorch's own
   (``baseline``) on the same inputs (``timing``), with the implementation's
   ``synchronize`` hook on its side.

Entries the implementation declares unsupported (a feature narrowed in its
capabilities) are skipped with the reason. The memory guard runs over the whole
plan before anything is built (``too_large``).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from convcheck.impls.registry import Implementation
from convcheck.spec import OPERATIONS
from convcheck.spec.case import Case
from convcheck.tests.values import make_case

from . import baseline, correctness, flops, memory
from .corpus import Corpus, Entry
from .stats import Stats
from .timing import Policy, Target, measure_interleaved

Phase = Callable[[str], None]

WORKER_BLOCK_TIME = 0.02
"""Seconds per timed block, at least, when the implementation runs in a worker (``--python``): a
block starts with the worker waking up on its message (tens of microseconds, caches cold), which
would add several percent to a block of 1 ms; at 20 ms it stays under the harness's tolerance."""


@dataclass(frozen=True)
class Settings:
    """What every entry of a run shares."""

    dtype: str = "float32"
    batch: int | None = None
    policy: Policy = field(default_factory=Policy)
    seed: int = 0
    threads: int | None = None


@dataclass(frozen=True)
class Planned:
    """An entry at the batch it will run, and its memory estimate in bytes."""

    entry: Entry
    batch: int
    bytes: int


@dataclass
class FunctionResult:
    """One contract function on one entry: its check, both timings and the derived figures.

    ``status``: ``ok`` (checked and timed), ``wrong`` (the check failed: not
    timed), ``error`` (it raised: not timed), ``no-baseline`` (timed, but
    PyTorch has no equivalent, so no ratio).
    """

    function: str
    kind: str
    flops: int
    status: str
    verdict: correctness.Verdict | None = None
    impl: Stats | None = None
    torch: Stats | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """Median implementation time over median PyTorch time (> 1: slower than PyTorch)."""
        if self.impl is None or self.torch is None or self.torch.median <= 0:
            return None
        return self.impl.median / self.torch.median

    def gflops(self, stats: Stats | None) -> float | None:
        """FLOPs over the median time, in GFLOP/s."""
        if stats is None or stats.median <= 0:
            return None
        return self.flops / stats.median / 1e9


@dataclass
class EntryResult:
    """Everything measured for one entry; ``skipped`` holds the reason when nothing was."""

    entry: Entry
    batch: int
    dtype: str
    memory_estimate: int
    functions: list[FunctionResult] = field(default_factory=list)
    skipped: str = ""


# --------------------------------------------------------------------------- planning


def plan(
    corpora: Sequence[Corpus], settings: Settings, match: Callable[[Entry], bool] | None = None
) -> list[Planned]:
    """Every entry of ``corpora`` (those ``match`` accepts) at its batch, with its memory estimate."""
    out = []
    for corpus in corpora:
        for entry in corpus.entries:
            if match is not None and not match(entry):
                continue
            batch = entry.batch_for(settings.batch)
            out.append(Planned(entry, batch, memory.estimate(entry, batch, settings.dtype)))
    return out


def too_large(planned: Sequence[Planned], limit: memory.Limit) -> list[Planned]:
    """The planned entries whose estimate exceeds ``limit``."""
    return [p for p in planned if p.bytes > limit.bytes]


def refusal(over: Sequence[Planned], limit: memory.Limit) -> str:
    """The message for entries over the memory limit: which, how much, and what to do."""
    lines = [
        f"{len(over)} entr{'y' if len(over) == 1 else 'ies'} would not fit in the memory limit of "
        f"{memory.format_bytes(limit.bytes)} ({limit.why}):"
    ]
    for p in over[:10]:
        lines.append(f"  {p.entry.key} at batch {p.batch} needs about {memory.format_bytes(p.bytes)}")
    if len(over) > 10:
        lines.append(f"  ... and {len(over) - 10} more")
    lines.append(
        "lower --batch, raise --memory-limit if the machine really has the memory, or pass "
        "--skip-too-large to leave these entries out"
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------- one entry


def entry_seed(entry: Entry, seed: int) -> int:
    """A reproducible seed per entry: the run's seed mixed with a checksum of ``corpus/id``."""
    return (zlib.crc32(entry.key.encode()) ^ seed) & 0x7FFFFFFF


def unsupported_reason(impl: Implementation, entry: Entry, dtype: str) -> str:
    """Why the implementation's declaration rules the entry out, or ``""``."""
    caps = impl.capabilities
    if dtype not in caps.dtypes:
        return f"dtype {dtype} not declared (declared: {', '.join(caps.dtypes)})"
    op = OPERATIONS[entry.op]
    if not any(impl.provides(f) for f in op.functions):
        return f"{impl.name} provides no {entry.op} function"
    for feature in op.features:
        if feature.kind != "support" or feature.required is None:
            continue
        level = feature.required(entry.params)
        if not caps.supports(op, feature.name, level):
            return f"needs {entry.op} {feature.name}={level!r}, declared {caps.value(op, feature.name)!r}"
    return ""


def build_case(entry: Entry, batch: int, settings: Settings) -> Case:
    """The entry's inputs and ``dy`` at ``batch`` (standard normal values, entry-specific seed)."""
    return make_case(
        entry.op,
        entry.params,
        entry.shapes(batch),
        settings.dtype,
        "normal",
        entry_seed(entry, settings.seed),
    )


def _restore_threads(torch_threads: int) -> None:
    """Put PyTorch's thread count back (the torch oracle pins it to one thread on first use)."""
    import torch

    if torch.get_num_threads() != torch_threads:
        torch.set_num_threads(torch_threads)


def _time_function(
    impl: Implementation, case: Case, fn_name: str, torch_call: Callable[[], object] | None, policy: Policy
) -> tuple[Stats, Stats | None]:
    """Time the implementation's ``fn_name`` (and PyTorch's, interleaved) on ``case``'s arrays."""
    fn = impl.functions[fn_name]
    arrays = case.forward_args() if fn_name == case.op.forward else case.backward_args()
    args = [None if a is None else a.copy() for a in arrays]  # its own copies: torch reads the originals
    kwargs = case.kwargs()
    sandbox = impl.extras.get("sandbox")
    if sandbox is not None:  # --python: each block is timed inside the worker, on arrays sent once
        sandbox.stage(fn_name, tuple(args), kwargs)
        targets = {"impl": Target(fn, None, block=sandbox.time_block)}
        policy = replace(policy, block_time=max(policy.block_time, WORKER_BLOCK_TIME))
    else:
        targets = {"impl": Target(lambda: fn(*args, **kwargs), impl.capabilities.synchronize)}
    if torch_call is not None:
        targets["torch"] = Target(torch_call, None)
    stats = measure_interleaved(targets, policy)
    return stats["impl"], stats.get("torch")


def run_entry(
    impl: Implementation, planned: Planned, settings: Settings, torch_threads: int, phase: Phase | None = None
) -> EntryResult:
    """Check and time every function ``impl`` provides on one entry (module docstring)."""
    entry, batch = planned.entry, planned.batch
    result = EntryResult(entry, batch, settings.dtype, planned.bytes)
    reason = unsupported_reason(impl, entry, settings.dtype)
    if reason:
        result.skipped = f"unsupported: {reason}"
        return result
    say = phase or (lambda _: None)
    case = build_case(entry, batch, settings)
    op = case.op
    try:
        torch_calls: dict[str, Callable[[], object]] = baseline.calls(case)
        no_baseline = ""
    except baseline.NoBaseline as e:
        torch_calls, no_baseline = {}, str(e)
    shapes = entry.shapes(batch)
    for fn_name in op.functions:
        if not impl.provides(fn_name):
            continue
        kind = "forward" if fn_name == op.forward else "backward"
        fr = FunctionResult(fn_name, kind, flops.count(fn_name, shapes, entry.params), "ok")
        say(f"{entry.key}: checking {kind}")
        fr.verdict = correctness.check(impl, fn_name, case)
        _restore_threads(torch_threads)
        if not fr.verdict.passed:
            fr.status = "wrong" if fr.verdict.status == "fail" else "error"
            fr.note = fr.verdict.message
            result.functions.append(fr)
            continue
        say(f"{entry.key}: timing {kind}")
        fr.impl, fr.torch = _time_function(impl, case, fn_name, torch_calls.get(fn_name), settings.policy)
        if no_baseline:
            fr.status, fr.note = "no-baseline", no_baseline
        result.functions.append(fr)
    return result


def prime_oracle() -> None:
    """Make the torch oracle's one-time thread setting happen now, on a tiny case, not mid-run."""
    from convcheck import oracles
    from convcheck.spec.params import Conv2dParams

    one = np.ones((1, 1, 2, 2))
    oracles.call("torch", "conv2d_forward", one, one, None, **Conv2dParams().kwargs())


def run(
    impl: Implementation,
    planned: Sequence[Planned],
    settings: Settings,
    phase: Phase | None = None,
    done: Callable[[EntryResult], Any] | None = None,
) -> list[EntryResult]:
    """Run every planned entry in order; ``phase`` hears what is happening, ``done`` gets each result."""
    import torch

    torch_threads = torch.get_num_threads()
    prime_oracle()
    _restore_threads(torch_threads)
    results = []
    for p in planned:
        r = run_entry(impl, p, settings, torch_threads, phase)
        results.append(r)
        if done is not None:
            done(r)
    return results


__all__ = [
    "EntryResult",
    "FunctionResult",
    "Planned",
    "Settings",
    "build_case",
    "entry_seed",
    "plan",
    "prime_oracle",
    "refusal",
    "run",
    "run_entry",
    "too_large",
    "unsupported_reason",
]

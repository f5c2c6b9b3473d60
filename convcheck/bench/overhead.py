"""Does the harness add measurable overhead? convcheck's timing loop against ``torch.utils.benchmark.Timer``.

For each conv2d entry, PyTorch's own conv2d (forward under ``no_grad``, and
the backward ``autograd.grad`` on a retained graph) is timed on the same
tensors in two ways:

* through convcheck: ``timing.time_block`` on the ``baseline`` call, which
  adds the closure, the ``no_grad`` context and convcheck's Python loop;
* through ``torch.utils.benchmark.Timer(stmt).timeit(number)`` on the bare
  statement (``F.conv2d(x, w, b, ...)``), Timer's compiled loop, with the same
  thread count.

Both use the calls per block that convcheck's calibration picks, and their
blocks alternate (ours, Timer's, Timer's, ours, ...: who goes first alternates
too; at least ``MIN_ROUNDS`` pairs and the run's ``min_time`` per side), so
that a busy machine slows both alike: on a shared machine, timing one after
the other compares the machine's moods, not the two loops. Each side's figure
is the median of its blocks' per-call times. ``paired`` is the median over the
rounds of ``ours / Timer's - 1`` for the two blocks of one round, taken back to
back: the estimate of the harness's own cost that a busy machine disturbs
least.

The harness adds no measurable overhead when the two medians agree within
``TOLERANCE`` (5%) on every entry. Run it with
``convcheck bench --harness-check --corpus resnet50 [--batch 8] [--threads N]``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import baseline, timing
from .runner import Planned, Settings, build_case

TOLERANCE = 0.05

MIN_ROUNDS = 10
"""At least this many block pairs per entry and pass."""


@dataclass(frozen=True)
class Comparison:
    """Median seconds per call of one entry and pass, through convcheck and through ``Timer``."""

    key: str
    kind: str
    convcheck: float
    timer: float
    paired: float = 0.0

    @property
    def difference(self) -> float:
        """``convcheck / timer - 1``: positive when convcheck measured more time."""
        return self.convcheck / self.timer - 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "convcheck": self.convcheck,
            "timer": self.timer,
            "difference": self.difference,
            "paired_difference": self.paired,
        }


def _timer_statement(case: Any, kind: str) -> tuple[str, dict[str, Any]]:
    """The bare statement ``Timer`` runs, and its globals, for PyTorch's conv2d on ``case``."""
    import torch
    import torch.nn.functional as F

    p = case.params
    t, b_, l, r = p.padding
    if not (t == b_ and l == r):
        raise ValueError(f"{case.describe()}: the harness check takes symmetric padding only")
    x, w, b = (None if a is None else torch.from_numpy(a) for a in case.forward_args())
    env: dict[str, Any] = {
        "F": F,
        "torch": torch,
        "x": x,
        "w": w,
        "b": b,
        "stride": p.stride,
        "padding": (t, l),
        "dilation": p.dilation,
        "groups": p.groups,
    }
    if kind == "forward":
        return "F.conv2d(x, w, b, stride, padding, dilation, groups)", env
    leaves = [a.requires_grad_(True) for a in (x, w, b) if a is not None]
    assert x is not None and w is not None
    env["y"] = F.conv2d(x, w, b, p.stride, (t, l), p.dilation, p.groups)
    env["leaves"], env["dy"] = leaves, torch.from_numpy(case.dy)
    return "torch.autograd.grad(y, leaves, dy, retain_graph=True)", env


def compare_entry(planned: Planned, settings: Settings) -> list[Comparison]:
    """Forward and backward of one conv2d entry, through convcheck and through ``Timer``, interleaved."""
    import torch
    from torch.utils.benchmark import Timer

    case = build_case(planned.entry, planned.batch, settings)
    policy = settings.policy
    out = []
    for kind in ("forward", "backward"):
        target = timing.Target(baseline.forward(case) if kind == "forward" else baseline.backward(case))
        stmt, env = _timer_statement(case, kind)
        timer = Timer(stmt=stmt, globals=env, num_threads=torch.get_num_threads())
        with timing.gc_disabled():
            number, runs = timing.calibrate(target, policy)
            timer.timeit(number)  # Timer's own warm-up
            ours, theirs = [], []
            for r in range(max(runs, MIN_ROUNDS, policy.min_runs)):
                if r % 2:  # alternate who goes first, so neither always follows the other
                    theirs.append(float(timer.timeit(number).median))
                    ours.append(timing.time_block(target, number) / number)
                else:
                    ours.append(timing.time_block(target, number) / number)
                    theirs.append(float(timer.timeit(number).median))
        paired = statistics.median(a / b for a, b in zip(ours, theirs, strict=True)) - 1
        out.append(
            Comparison(planned.entry.key, kind, statistics.median(ours), statistics.median(theirs), paired)
        )
    return out


def summary(comparisons: Sequence[Comparison]) -> dict[str, Any]:
    """How far apart the two medians are over all comparisons, and whether all are within ``TOLERANCE``.

    ``median_difference`` keeps the sign: overhead in convcheck's loop would
    show as a consistently positive difference, a busy machine as differences
    of both signs around zero.
    """
    diffs = [abs(c.difference) for c in comparisons]
    signed = [c.difference for c in comparisons]
    return {
        "compared": len(diffs),
        "median_difference": statistics.median(signed) if signed else None,
        "median_paired_difference": statistics.median(c.paired for c in comparisons) if comparisons else None,
        "median_abs_difference": statistics.median(diffs) if diffs else None,
        "max_abs_difference": max(diffs) if diffs else None,
        "within_tolerance": sum(d <= TOLERANCE for d in diffs),
        "tolerance": TOLERANCE,
        "passed": all(d <= TOLERANCE for d in diffs),
    }


__all__ = ["TOLERANCE", "Comparison", "compare_entry", "summary"]

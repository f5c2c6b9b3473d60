"""Does the harness add measurable overhead? convcheck's timing loop against ``torch.utils.benchmark.Timer``.

For each conv2d entry, PyTorch's own conv2d (forward under ``no_grad``, and
the backward ``autograd.grad`` on a retained graph) is timed twice on the
same tensors: through convcheck (``timing.measure`` on the ``baseline``
call, closure, ``no_grad`` context and Python loop included) and through
``torch.utils.benchmark.Timer(...).blocked_autorange`` on the bare statement
(``F.conv2d(x, w, b, ...)``), with the same thread count. The two are
alternated over ``rounds`` (A B, then B A, ...) so that drift of the machine
hits both alike; each side's figure is the median of its per-round medians.

The harness adds no measurable overhead when the two medians agree within
``TOLERANCE`` (5%) on every entry. Run it with
``convcheck bench --harness-check --corpus resnet50 [--threads N]``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import baseline, timing
from .runner import Planned, Settings, build_case

TOLERANCE = 0.05


@dataclass(frozen=True)
class Comparison:
    """Median seconds per call of one entry and pass, through convcheck and through ``Timer``."""

    key: str
    kind: str
    convcheck: float
    timer: float

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
    env["y"] = F.conv2d(x, w, b, p.stride, (t, l), p.dilation, p.groups)
    env["leaves"], env["dy"] = leaves, torch.from_numpy(case.dy)
    return "torch.autograd.grad(y, leaves, dy, retain_graph=True)", env


def _timer_median(stmt: str, env: dict[str, Any], min_time: float) -> float:
    import torch
    from torch.utils.benchmark import Timer

    timer = Timer(stmt=stmt, globals=env, num_threads=torch.get_num_threads())
    return float(timer.blocked_autorange(min_run_time=min_time).median)


def compare_entry(planned: Planned, settings: Settings, rounds: int = 2) -> list[Comparison]:
    """Forward and backward of one conv2d entry, through convcheck and through ``Timer``."""
    case = build_case(planned.entry, planned.batch, settings)
    out = []
    for kind in ("forward", "backward"):
        call = baseline.forward(case) if kind == "forward" else baseline.backward(case)
        stmt, env = _timer_statement(case, kind)
        ours, theirs = [], []
        for r in range(rounds):
            for side in ("convcheck", "timer") if r % 2 == 0 else ("timer", "convcheck"):
                if side == "convcheck":
                    ours.append(timing.measure(call, policy=settings.policy).median)
                else:
                    theirs.append(_timer_median(stmt, env, settings.policy.min_time))
        out.append(Comparison(planned.entry.key, kind, statistics.median(ours), statistics.median(theirs)))
    return out


def summary(comparisons: Sequence[Comparison]) -> dict[str, Any]:
    """How far apart the two medians are over all comparisons, and whether all are within ``TOLERANCE``."""
    diffs = [abs(c.difference) for c in comparisons]
    return {
        "compared": len(diffs),
        "median_abs_difference": statistics.median(diffs) if diffs else None,
        "max_abs_difference": max(diffs) if diffs else None,
        "within_tolerance": sum(d <= TOLERANCE for d in diffs),
        "tolerance": TOLERANCE,
        "passed": all(d <= TOLERANCE for d in diffs),
    }


__all__ = ["TOLERANCE", "Comparison", "compare_entry", "summary"]

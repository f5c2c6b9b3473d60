"""Pairs of feature values a run reached, so that a hole in the draws is visible.

A window operation's case has four coarse features that bugs hide behind: the batch
(``N``: one sample or several), the input channels (``C``), the stride (every axis 1, one
axis 1 and another above it, or every axis above 1) and the output extent (one cell on
some spatial axis, or more on every axis). The recorder notes every pair of feature
values each example reaches (``pairs``) and every pair the declared capabilities make
reachable (``pairs_possible``); the summary and the report list the pairs never drawn, e.g.
``N=>=2 & stride=(1, >=2)``.
"""

from __future__ import annotations

from itertools import combinations, product
from typing import Any

from .spec import OPERATIONS, Capabilities

ONE, MANY = "1", ">=2"
MIXED = "(1, >=2)"
"""A stride of 1 on some axis and at least 2 on another (2-D and 3-D only)."""
FEATURES = ("N", "C", "stride", "output")


def applies(op_name: str) -> bool:
    """Whether the pairs are recorded for an operation: those with spatial axes (windows)."""
    op = OPERATIONS.get(op_name)
    return op is not None and op.ndim > 0 and "stride" in op.hyperparameters


def _count(n: int) -> str:
    return ONE if n == 1 else MANY


def _stride(stride: tuple[int, ...]) -> str:
    if all(s == 1 for s in stride):
        return ONE
    return MIXED if any(s == 1 for s in stride) else MANY


def values_of(case: Any) -> dict[str, str]:
    """The four feature values of a window operation's case."""
    out = case.output_shape()[2:]
    return {
        "N": _count(case.x.shape[0]),
        "C": _count(case.x.shape[1]),
        "stride": _stride(tuple(case.params.stride)),
        "output": ONE if any(e == 1 for e in out) else MANY,
    }


def label(a: str, va: str, b: str, vb: str) -> str:
    """How a pair reads in the summary and report.json: ``N=>=2 & stride=(1, >=2)``."""
    return f"{a}={va} & {b}={vb}"


def reached(values: dict[str, str]) -> list[str]:
    """Every pair of one case's feature values."""
    return [label(a, values[a], b, values[b]) for a, b in combinations(FEATURES, 2)]


def possible(op_name: str, caps: Capabilities, limits: dict[str, str] | None = None) -> list[str]:
    """Every pair the declaration lets the draws reach for ``op_name``; ``limits`` fixes the value of
    a feature the property restricts (``{"N": ">=2"}``)."""
    op = OPERATIONS[op_name]
    strides = [ONE]
    if caps.supports(op, "stride", "uniform"):
        strides.append(MANY)
    if op.ndim > 1 and caps.supports(op, "stride", "any"):
        strides.append(MIXED)
    choices = {"N": [ONE, MANY], "C": [ONE, MANY], "stride": strides, "output": [ONE, MANY]}
    choices.update({k: [v] for k, v in (limits or {}).items()})
    return [
        label(a, va, b, vb)
        for a, b in combinations(FEATURES, 2)
        for va, vb in product(choices[a], choices[b])
    ]


def missing(coverage: dict[str, list[str]]) -> list[str]:
    """The possible pairs an operation's coverage never reached, sorted."""
    return sorted(set(coverage.get("pairs_possible", [])) - set(coverage.get("pairs", [])))


def readable(coverage: dict[str, list[str]]) -> dict[str, list[str]]:
    """An operation's coverage for a table: the two pair keys replaced by the pairs never drawn."""
    out = {k: v for k, v in coverage.items() if k not in ("pairs", "pairs_possible")}
    if coverage.get("pairs_possible"):
        out["feature pairs never drawn"] = missing(coverage) or ["none"]
    return out

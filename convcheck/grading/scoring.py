"""From a run's results to a score: the verdict of every graded item, then the weighted sum.

A *group* is one (operation, property) of the suite, written ``"op:property"``;
its status is ``convcheck.summary``'s (``passed``, ``failed``, ``error``,
``unsupported``, ``skipped``), except that a group skipped because a contract
function is missing (skip kind ``missing``) is ``missing``, and a group with no
result at all is ``not_run``. A *feature* item (``"op.feature"``) is
``unsupported`` when the submission declared the feature unsupported or
different (the results' ``declared_unsupported``), ``passed`` when it
did not and some check of the operation ran, and otherwise what the
operation's groups are (``missing`` for an operation not implemented). The
rubric's credits turn statuses into a score (see ``convcheck.grading.rubric``).
"""

from __future__ import annotations

from typing import Any

from ..summary import declared_features, rows
from .rubric import Rubric

__all__ = ["declared_features", "group_statuses", "item_statuses", "score"]

_RAN = ("passed", "failed", "error")
_NOT_CHECKED_ORDER = ("missing", "unsupported", "skipped", "not_run")


def group_statuses(results: list[dict[str, Any]]) -> dict[str, str]:
    """``"op:property" -> status`` for every group with at least one finished check."""
    out = {}
    for row in rows(results):
        status = row["status"]
        if status == "unsupported" and "missing" in row["skip_kinds"]:
            status = "missing"
        out[f"{row['op']}:{row['property']}"] = status
    return out


def _feature_status(key: str, groups: dict[str, str], declared: set[str]) -> str:
    """The status of a feature item (see the module docstring)."""
    if key in declared:
        return "unsupported"
    op = key.split(".")[0]
    statuses = {s for k, s in groups.items() if k.split(":")[0] == op}
    if statuses & set(_RAN):
        return "passed"
    return next((s for s in _NOT_CHECKED_ORDER if s in statuses), "not_run")


def item_statuses(
    rubric: Rubric, groups: dict[str, str], declared: set[str], ops: list[str] | None = None
) -> dict[str, str]:
    """The status of every item the rubric grades for ``ops``, in the rubric's order."""
    out = {}
    for key in rubric.items(ops):
        out[key] = _feature_status(key, groups, declared) if "." in key else groups.get(key, "not_run")
    return out


def score(rubric: Rubric, statuses: dict[str, str], ops: list[str] | None = None) -> float:
    """``100 * sum(weight * credit) / total weight`` over the rubric's items for ``ops``, to 2 decimals."""
    items = rubric.items(ops)
    earned = sum(weight * rubric.credit[statuses.get(key, "not_run")] for key, weight in items.items())
    return round(100.0 * earned / rubric.total(ops), 2)

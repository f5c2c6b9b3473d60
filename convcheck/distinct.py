"""A check's distinct failures, one view each, shaped as a check with a single failure.

A failed check may have failed in several distinct ways (``convcheck.failure_keys``); its result
lists them under ``failures`` (``convcheck.recording``), and so does each failed record of
report.json (``convcheck.report.model``). Every reader that shows a failure (the terminal's
blocks, report.md and report.html, the grading feedback, the Python API, the expected-failures
matching) goes through ``views``: a check with one failure is its own only view, unchanged, and a
check with several gives one view per failure, a copy of the check whose failure fields are that
failure's. Each view is then grouped, shown and matched as a check with one failure would be.
"""

from __future__ import annotations

from typing import Any


def failures_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The distinct failures a result or report record lists (none for an older one)."""
    return list(record.get("failures") or [])


def views(record: dict[str, Any]) -> list[dict[str, Any]]:
    """``[record]`` unless it lists several failures; then one view of it per failure, each with
    ``distinct`` (its number, from 1) and ``distinct_of`` (how many) added. A result whose one
    failure hypothesis raised as a group (one key met at two places) is shown as that failure."""
    found = failures_of(record)
    if len(found) == 1 and _grouped(record) and not _is_report_record(record):
        return [{**record, **_result_fields(found[0])}]  # hypothesis told apart what convcheck did not
    if len(found) <= 1:
        return [record]
    out = []
    for i, failure in enumerate(found):
        view = {**record, "failures": [failure], "distinct": i + 1, "distinct_of": len(found)}
        view.update(_report_fields(record, failure) if _is_report_record(record) else _result_fields(failure))
        out.append(view)
    return out


def expand(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every record's views, in order."""
    return [v for r in records for v in views(r)]


def _grouped(record: dict[str, Any]) -> bool:
    """Whether the check raised hypothesis's group of distinct failures (not a flaky replay)."""
    return (record.get("exception") or {}).get("type") in ("ExceptionGroup", "BaseExceptionGroup")


def _is_report_record(record: dict[str, Any]) -> bool:
    """A report.json record (failure fields at its top level), not a collector's result."""
    return "id" in record and "counterexample" in record


def _result_fields(failure: dict[str, Any]) -> dict[str, Any]:
    """A result's failure fields for one failure: a raised one, as a result whose code under test
    raised (no ``failure``, its case as ``last_case``); a noted one as the result's ``failure``."""
    raised = failure.get("raised")
    fields: dict[str, Any] = {
        "failure": None if raised else failure,
        "exception": {"type": _type_name(failure), "text": failure.get("message") or ""},
    }
    if failure.get("counterexample"):
        fields["last_case"] = failure["counterexample"]
    if failure.get("dtype"):
        fields["failed_dtypes"] = [failure["dtype"]]
    return fields


def _report_fields(record: dict[str, Any], failure: dict[str, Any]) -> dict[str, Any]:
    """A report record's failure fields for one failure."""
    return {
        "id": f"{record['id']}/{failure_number(record, failure)}",
        "message": failure.get("message"),
        "diagnosis": failure.get("diagnosis"),
        "counterexample": failure.get("counterexample"),
        "failing_output": failure.get("output"),
        "reproduction": failure.get("reproduction") or record.get("reproduction"),
    }


def failure_number(record: dict[str, Any], failure: dict[str, Any]) -> int:
    """The failure's number among the record's (from 1)."""
    return next(i for i, f in enumerate(failures_of(record), 1) if f is failure)


def _type_name(failure: dict[str, Any]) -> str:
    """The failure's exception class, as its key names it."""
    key = failure.get("key") or ["AssertionError"]
    return str(key[0])


def heading(failure: dict[str, Any]) -> str:
    """How one failure is named in a list of a check's failures: its key in words, and the outputs
    one diagnosed mistake broke (``dx, dw``)."""
    from .failure_keys import describe

    text = describe(failure.get("key")) or "failure"
    outputs = failure.get("outputs") or []
    if len(outputs) > 1:
        text += f" (outputs {', '.join(outputs)})"
    return text

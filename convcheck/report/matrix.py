"""The conformance matrix: operations x features, each cell passed / failed / unsupported.

A feature column is a part of the contract a reader wants to know about
(strides above 1, each padding kind, dilation, groups, ceil_mode,
count_include_pad=False, tied max-pool windows, each dtype, the conv
convention). A cell is

* ``n/a`` when the operation has no such feature;
* ``unsupported`` when the implementation declared it does not do it;
* ``failed`` when a failing check's shrunk counterexample uses the feature
  (shrinking removes whatever a failure does not need, so a feature left in
  the minimal example is implicated) or, for a dtype, a check failed in it;
* ``xfail`` when every such failing check is one the run's expected-failures
  file expects (``convcheck.xfails``);
* ``passed`` when the run exercised the feature and no failure implicates it;
* ``untested`` when the feature is supported but no example exercised it.

A whole network (``convcheck.networks``) is a row of its own after the
operations: only the dtype columns apply to it, each ``failed`` (its note
naming the first bad layer), ``passed``, ``unsupported`` (a function the
network needs is missing, or the dtype is not declared) or ``untested``.

The tables are derived from report.json (records, coverage, capabilities),
so they can be rebuilt from any saved report.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..spec import DTYPES, OPERATIONS, params
from ..summary import row_status

CELL_STATUSES = ("passed", "failed", "xfail", "unsupported", "untested", "n/a")


def _pairs(value: Any) -> tuple[int, ...]:
    """A hyper-parameter value from a counterexample (list) or from coverage (its JSON text,
    ``recording.value_text``)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return ()
    if isinstance(value, list | tuple):
        return tuple(int(v) for v in value)
    return (value,)


def padding_kind(padding: Any) -> str:
    """The padding kind of a recorded ``padding`` (any number of spatial axes; ``spec.params``)."""
    p = _pairs(padding)
    if not p or len(p) % 2:
        return "none"
    return params.padding_kind(p)


@dataclass(frozen=True)
class Column:
    """One feature column: where it applies, what uses it, how the capabilities declare it."""

    key: str
    label: str
    ops: tuple[str, ...]
    uses: Callable[[dict[str, Any]], bool]
    """Whether a counterexample's hyper-parameters (``params`` dict, plus ``ties``) use the feature."""
    covered: Callable[[dict[str, list[str]]], bool]
    """Whether an operation's coverage (hyper-parameter -> values seen) shows the feature exercised."""
    supported: Callable[[dict[str, Any], str], bool]
    """Whether the declared capabilities (``to_dict`` form) allow the feature for the operation."""


def _level(caps: dict[str, Any], op: str, feature: str) -> Any:
    return (caps.get(op) or {}).get(feature, OPERATIONS[op].feature(feature).full)


def _at_least(feature: str, level: Any) -> Callable[[dict[str, Any], str], bool]:
    def supported(caps: dict[str, Any], op: str) -> bool:
        choices = OPERATIONS[op].feature(feature).choices
        return choices.index(_level(caps, op, feature)) >= choices.index(level)

    return supported


def _always(caps: dict[str, Any], op: str) -> bool:
    return True


def _with(feature: str) -> tuple[str, ...]:
    """The operations whose spec has ``feature``: the rows where its column applies."""
    return tuple(name for name, op in OPERATIONS.items() if any(f.name == feature for f in op.features))


def _padding_column(kind: str) -> Column:
    return Column(
        f"padding_{kind}",
        f"padding: {kind}",
        _with("padding"),
        lambda p: padding_kind(p.get("padding")) == kind,
        lambda cov: kind in cov.get("padding_kind", []),
        _at_least("padding", kind),
    )


def _dtype_column(dtype: str) -> Column:
    return Column(
        dtype,
        dtype,
        tuple(OPERATIONS),
        lambda p: p.get("dtype") == dtype,
        lambda cov: dtype in cov.get("dtype", []),
        lambda caps, op: dtype in caps.get("dtypes", [dtype]),
    )


COLUMNS: tuple[Column, ...] = (
    Column(
        "stride",
        "stride > 1",
        _with("stride"),
        lambda p: any(s != 1 for s in _pairs(p.get("stride", (1, 1)))),
        lambda cov: any(any(s != 1 for s in _pairs(v)) for v in cov.get("stride", [])),
        _at_least("stride", "uniform"),
    ),
    _padding_column("uniform"),
    _padding_column("symmetric"),
    _padding_column("asymmetric"),
    Column(
        "dilation",
        "dilation > 1",
        _with("dilation"),
        lambda p: any(d != 1 for d in _pairs(p.get("dilation", (1, 1)))),
        lambda cov: any(any(d != 1 for d in _pairs(v)) for v in cov.get("dilation", [])),
        _at_least("dilation", True),
    ),
    Column(
        "groups",
        "groups > 1",
        _with("groups"),
        lambda p: int(p.get("groups", 1)) > 1,
        lambda cov: any(v not in ("1",) for v in cov.get("groups", [])),
        _at_least("groups", True),
    ),
    Column(
        "ceil_mode",
        "ceil_mode",
        _with("ceil_mode"),
        lambda p: bool(p.get("ceil_mode")),
        lambda cov: any(v != "false" for v in cov.get("ceil_mode", [])),  # JSON texts: true, "cover_all"
        _at_least("ceil_mode", True),
    ),
    Column(
        "count_include_pad",
        "count_include_pad=False",
        _with("exclude_pad"),
        lambda p: p.get("count_include_pad") is False,
        lambda cov: "false" in cov.get("count_include_pad", []),  # JSON text (recording.value_text)
        _at_least("exclude_pad", True),
    ),
    Column(
        "ties",
        "tied windows",
        _with("ties"),
        lambda p: bool(p.get("ties")),
        lambda cov: "tied" in cov.get("ties", []),
        _always,
    ),
    *(_dtype_column(dtype) for dtype in DTYPES),
    Column("convention", "convention", _with("convention"), lambda p: False, lambda cov: True, _always),
)


def directional(caps: dict[str, Any], direction: str) -> dict[str, Any]:
    """The declared capabilities (``to_dict`` form) as seen from ``direction``: per-direction values
    (``spec.capabilities.by_direction``) replaced by that direction's level."""
    from ..spec.capabilities import by_direction

    return {
        k: {f: by_direction(v, direction) for f, v in section.items()} if k in OPERATIONS else section
        for k, section in caps.items()
    }


def _semantic_note(column: Column, caps: dict[str, Any], op: str) -> str:
    if column.key == "ties":
        return f"rule: {_level(caps, op, 'ties')}"
    if column.key == "convention":
        return str(_level(caps, op, "convention"))
    return _declared_pool_note(column, caps, op)


def _declared_pool_note(column: Column, caps: dict[str, Any], op: str) -> str:
    """A max-pool's declared semantics where they change a column's meaning: Chainer's ceil rule in
    the ``ceil_mode`` column, a padding value other than ``-inf`` in the padding columns."""
    if OPERATIONS[op].family != "max_pool":
        return ""
    if column.key == "ceil_mode" and _level(caps, op, "ceil_rule") != "pytorch":
        return f"rule: {_level(caps, op, 'ceil_rule')}"
    pad_value = _level(caps, op, "pad_value")
    if column.key.startswith("padding") and pad_value != float("-inf"):
        return f"pad value: {pad_value:g}"
    return ""


def _uses(record: dict[str, Any], column: Column) -> bool:
    spec = record.get("counterexample") or {}
    if not spec or not spec.get("shrunk", True):
        return False  # only a shrunk example implicates what it uses
    return column.uses({**spec.get("params", {}), "ties": spec.get("ties"), "dtype": record.get("dtype")})


def cell(document: dict[str, Any], op: str, column: Column) -> dict[str, Any]:
    """One cell: ``status``, how many failing checks implicate the feature, a note."""
    caps = document.get("implementation", {}).get("capabilities", {})
    if op not in column.ops:
        return {"status": "n/a", "failures": 0, "note": ""}
    note = _semantic_note(column, caps, op)
    if not column.supported(directional(caps, "forward"), op):
        return {"status": "unsupported", "failures": 0, "note": "declared unsupported"}
    if not column.supported(directional(caps, "backward"), op):
        note = "forward only" + (f"; {note}" if note else "")  # the backward is declared without it
    records = [r for r in document.get("records", []) if r["op"] == op]
    failing = [r for r in records if r["status"] in ("failed", "error")]
    if column.key == "convention":
        forward = [r for r in records if r["property"] in ("forward", "backward")]
        status = row_status(forward) if forward else "untested"
        bad = [r for r in forward if r["status"] in ("failed", "error")]
        return {
            "status": _cell_status(status),
            "failures": len(bad),
            "note": note,
        }
    if column.key in DTYPES:
        failing_here = [r for r in failing if r.get("dtype") == column.key]
    else:
        failing_here = [r for r in failing if _uses(r, column)]
    if failing_here:
        status = "xfail" if all(r.get("expected") for r in failing_here) else "failed"
        return {"status": status, "failures": len(failing_here), "note": note}
    covered = column.covered(document.get("coverage", {}).get(op, {}))
    return {"status": "passed" if covered else "untested", "failures": 0, "note": note}


def _cell_status(status: str) -> str:
    return {"error": "failed", "skipped": "untested"}.get(status, status)


def network_cell(document: dict[str, Any], network: str, column: Column) -> dict[str, Any]:
    """One cell of a network's row: its checks in the column's dtype (other columns are ``n/a``)."""
    if column.key not in DTYPES:
        return {"status": "n/a", "failures": 0, "note": ""}
    caps = document.get("implementation", {}).get("capabilities", {})
    if column.key not in caps.get("dtypes", [column.key]):
        return {"status": "unsupported", "failures": 0, "note": "declared unsupported"}
    records = [r for r in document.get("records", []) if r["op"] == network and r.get("dtype") == column.key]
    if not records:
        return {"status": "untested", "failures": 0, "note": ""}
    failing = [r for r in records if r["status"] in ("failed", "error")]
    bad = next((b for r in failing if (b := (r.get("network") or {}).get("first_bad"))), None)
    note = f"{bad['label']}: {bad['quantity']}" if bad else ""
    return {
        "status": _cell_status(row_status(records)),
        "failures": len(failing),
        "note": note,
    }


def _row(
    document: dict[str, Any], op: str, kind: str, cell_of: Callable[..., dict[str, Any]]
) -> dict[str, Any]:
    """A row of the matrix: an ``operation`` (cells by ``cell``) or a ``network`` (by ``network_cell``)."""
    records = [r for r in document["records"] if r["op"] == op]
    return {
        "op": op,
        "kind": kind,
        "label": op if kind == "operation" else f"network: {op}",
        "overall": _cell_status(row_status(records)),
        "cells": [cell_of(document, op, c) | {"column": c.key} for c in COLUMNS],
    }


def matrix(document: dict[str, Any]) -> dict[str, Any]:
    """The whole matrix: column labels and, per operation then per network, its overall status and cells."""
    from .model import networks_in, operations_in

    rows = [_row(document, op, "operation", cell) for op in operations_in(document)]
    rows += [_row(document, name, "network", network_cell) for name in networks_in(document)]
    return {"columns": [{"key": c.key, "label": c.label} for c in COLUMNS], "rows": rows}

"""One block per mistake: failing checks grouped by root cause, and absent operations in one line.

A single mistake usually fails many properties at once (a wrong ``dx`` breaks
backward, adjoint, finite differences, linearity, ...). The terminal, the
reports and the grading feedback all show it once, through this module:

* ``failure_groups(results)`` puts every failed check of an implementation and
  operation in the group of its *root cause*, tried in this order: the named
  mistake (the diagnosis recorded with the failure), an environment problem
  read from the exception (``convcheck.diagnosis.environment_cause``), the same
  exception type raised at the same place of the implementation, then the same
  failure message once its numbers and case are taken out. Each group keeps its
  smallest counterexample as the one to show, and names the other checks that
  failed the same way.
* A check that failed in several distinct ways (``convcheck.distinct``) stands in the groups as one
  view per way, so that each has its own group (or joins the group of the same mistake elsewhere),
  with its own counterexample and reproduction.
* ``absent_operations(results)`` lists the operations (and networks) whose
  every check was unsupported because the module lacks their functions: one
  line instead of a row per property.
* ``block_lines(group)`` renders a group for a terminal: the cause, the
  smallest case with expected against got, the reproduce snippet, then one
  line naming the other properties.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

BLOCK_LIMIT = 22
"""Most lines of one failure's text shown in a block (the full text is in the report)."""


@dataclass
class FailureGroup:
    """Failed checks of one implementation and operation that share a root cause."""

    impl: str
    op: str
    key: tuple[str, ...]
    title: str
    cause: str | None
    members: list[dict[str, Any]] = field(default_factory=list)

    @property
    def first(self) -> dict[str, Any]:
        """The member to show: the smallest counterexample (then forward before backward, by name)."""
        return min(self.members, key=_smallness)

    def properties(self) -> list[str]:
        """Every property of the group, in order of first appearance."""
        return list(dict.fromkeys(m["property"] for m in self.members))

    def span(self) -> str:
        """``"14 checks in 9 properties"``."""
        n, p = len(self.members), len(self.properties())
        return f"{n} check{'s' if n > 1 else ''} in {p} propert{'ies' if p > 1 else 'y'}"

    def also_line(self) -> str | None:
        """``also failed the same way: ...`` naming the other properties, or ``None``."""
        others = self.others()
        return f"also failed the same way: {', '.join(others)}" if others else None

    def others(self) -> list[str]:
        """``op:property (n checks)`` for every property but the shown one's check."""
        counts = Counter(m["property"] for m in self.members if m is not self.first)
        return [f"{self.op}:{p}" + (f" ({n} checks)" if n > 1 else "") for p, n in counts.items()]

    def smallest_case(self) -> dict[str, Any] | None:
        """The shown check's failing case (its ``description``, ``shapes``, ``params``...), if recorded."""
        return _case(self.first)

    def to_dict(self) -> dict[str, Any]:
        return {
            "impl": self.impl,
            "op": self.op,
            "title": self.title,
            "cause": self.cause,
            "shown": _test(self.first),
            "checks": [_test(m) for m in self.members],
            "properties": self.properties(),
        }


def _failure(record: dict[str, Any]) -> dict[str, Any]:
    """The recorded failure: a result's ``failure``, or a report record itself (which holds
    ``diagnosis``, ``counterexample`` and ``message`` at its top level)."""
    return record.get("failure") or record


def _test(record: dict[str, Any]) -> str:
    """The check's pytest id (a result's ``test``; a report record's ``test`` or ``id``)."""
    return record.get("test") or record.get("id") or ""


def _case(record: dict[str, Any]) -> dict[str, Any] | None:
    """The failing case's description: the recorded counterexample or, when the implementation raised
    (no comparison recorded one), the last case the check ran, which is hypothesis's shrunk one."""
    return _failure(record).get("counterexample") or record.get("last_case")


def _smallness(record: dict[str, Any]) -> tuple[int, int, str]:
    spec = _case(record) or {}
    size = 0
    for shape in (spec.get("shapes") or {}).values():
        n = 1
        for s in shape or ():
            n *= int(s)
        size += n
    return (size if spec else 1 << 60, 0 if record.get("property") == "forward" else 1, _test(record))


def _diagnosis(record: dict[str, Any]) -> dict[str, Any] | None:
    diag = _failure(record).get("diagnosis")
    return diag if diag and diag.get("slug") else None


_PLACE = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')
_RAISED = re.compile(r"\braised (\w+)|^\s*(\w+(?:Error|Exception))\b", re.MULTILINE)


def _raised_at(message: str) -> tuple[str, str] | None:
    """``(exception type, file:line in function)`` of an exception the implementation raised."""
    places = _PLACE.findall(message)
    kinds = [a or b for a, b in _RAISED.findall(message)]
    kinds = [k for k in kinds if k not in ("AssertionError", "ContractViolation")]
    if not places or not kinds:
        return None
    own = [p for p in places if not _not_theirs(p[0])]  # the implementation's line, not NumPy's
    path, line, function = (own or places)[-1]
    return kinds[-1], f"{path.rsplit('/', 1)[-1]}:{line} in {function}"


def failure_text(record: dict[str, Any], limit: int = 60) -> str:
    """What a failed check's exception says: the assertion message and hypothesis's falsifying
    example, from the result's ``exception`` field (its text whatever pytest's ``--tb``). A report
    record holds that text as its ``message``; for a failure no exception reached (a crashed xdist
    worker), the last lines of pytest's text stand in."""
    text = (record.get("exception") or {}).get("text")
    fallback = (record.get("message") or "").strip().splitlines()[-limit:]
    lines = fallback if text is None else text.splitlines()
    if len(lines) > limit:
        lines = [*lines[:limit], f"... ({len(lines) - limit} more lines)"]
    return "\n".join(lines)


def _first_line(text: str) -> str:
    """The failure's first line as the terminal shows it, never a traceback's header."""
    lines = [ln.strip(" +|") for ln in text.splitlines()]
    for line in lines:
        if _EXCEPTION_LINE.match(line):
            return line
    for line in lines:
        if (
            line
            and not line.startswith(("File ", "^", "~"))
            and "Traceback (most recent call last)" not in line
        ):
            return line
    return ""


_EXCEPTION_LINE = re.compile(r"^[\w.]*(Error|Exception|Failure|Violation|Exit)\b[^:]*: ")
"""A line stating an exception: ``SandboxFailure: ...``, ``AssertionError: ...``."""


def _normalised(line: str) -> str:
    """A failure's first line without its case description and numbers: equal for the same mistake."""
    line = re.sub(r"\[[^\]]*\]", "", line)
    return re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "#", line).strip()


def root_cause(record: dict[str, Any]) -> tuple[tuple[str, ...], str, str | None]:
    """``(key, title, cause line)`` of one failed check (see the module's docstring for the order)."""
    from .diagnosis import environment_cause, line_of

    diag = _diagnosis(record)
    if diag is not None:
        return ("cause", diag["slug"]), diag["slug"], line_of(diag)
    text = failure_text(record, limit=1 << 30)
    env = environment_cause(text)
    if env is not None:
        slug = env.slug or ""  # an environment cause always has one
        return ("cause", slug), slug, env.line()
    raised = _raised_at(text)
    if raised is not None:
        kind, place = raised
        return ("raised", kind, place), f"{kind} raised at {place}", None
    first = _first_line(text)
    return ("message", _normalised(first)), first[:100], None


def failure_groups(results: list[dict[str, Any]]) -> list[FailureGroup]:
    """Failed and errored checks grouped by implementation, operation and root cause, largest first."""
    from .distinct import expand

    groups: dict[tuple[str, ...], FailureGroup] = {}
    failed = [r for r in results if r.get("status") in ("failed", "error")]
    for r in sorted(expand(failed), key=lambda r: (r.get("impl", ""), r["op"], r["property"], _test(r))):
        key, title, cause = root_cause(r)
        full = (r.get("impl", ""), r["op"], *key)
        if full not in groups:
            groups[full] = FailureGroup(r.get("impl", ""), r["op"], key, title, cause)
        groups[full].members.append(r)
    return sorted(groups.values(), key=lambda g: (g.impl, g.op, -len(g.members), g.title))


def group_of(results: list[dict[str, Any]]) -> dict[str, FailureGroup]:
    """The group of every failed check, by its test id (a check that failed in several distinct
    ways: the group of its first)."""
    out: dict[str, FailureGroup] = {}
    for g in failure_groups(results):
        for m in g.members:
            if m.get("distinct", 1) == 1 or _test(m) not in out:
                out[_test(m)] = g
    return out


def absent_operations(results: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Per implementation, the operations (and networks) none of whose checks could run because the
    implementation lacks their functions."""
    by_op: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        by_op.setdefault((r["impl"], r["op"]), []).append(r)
    out: dict[str, list[str]] = {}
    for (impl, op), items in sorted(by_op.items()):
        if items and all(r.get("skip_kind") == "missing" for r in items):
            out.setdefault(impl, []).append(op)
    return out


def _not_theirs(path: str) -> bool:
    """A traceback frame outside the implementation's code: convcheck's adapters (the wrappers around
    a CS231n or autodiff module), or an installed library (NumPy's internals)."""
    from .impls import adapters

    return path == adapters.__file__ or "site-packages" in path or "/lib/python3" in path


def _own_frames_dropped(lines: list[str]) -> list[str]:
    """A traceback with only the implementation's own frames (see ``_not_theirs``); the exception
    line stays."""
    out, skip_indent = [], None
    for line in lines:
        indent = len(line) - len(line.lstrip())
        if skip_indent is not None and indent > skip_indent:
            continue
        skip_indent = None
        match = _PLACE.search(line)
        if match and _not_theirs(match.group(1)):
            skip_indent = indent
            continue
        out.append(line)
    return out


def _from_last_exception(lines: list[str]) -> list[str]:
    """A raw traceback (an exception group's, with ``|`` margins) from its last exception line on:
    what was raised, without the frames of pytest, hypothesis and convcheck that led there."""
    plain = [ln.lstrip(" |+").rstrip() for ln in lines]
    starts = [i for i, ln in enumerate(plain) if _EXCEPTION_LINE.match(ln)]
    if not starts:
        return lines
    return [ln for ln in plain[starts[-1] :] if ln and not set(ln) <= set("-+")]


def _trimmed(record: dict[str, Any]) -> list[str]:
    """A failure's text without hypothesis's falsifying-example dump and decorator hint."""
    text = failure_text(record).splitlines()
    if "exception" not in record:  # pytest's whole text: from its last exception line on
        text = _from_last_exception(text)
    lines, skipping = [], False
    for line in _own_frames_dropped(text):
        if line.startswith("Falsifying example:"):
            skipping = True
            continue
        if skipping:
            if line.startswith(")"):
                skipping = False
            continue
        if "@reproduce_failure(" in line or not line.strip():
            continue
        lines.append(line)
    if len(lines) > BLOCK_LIMIT:
        lines = [*lines[:BLOCK_LIMIT], f"... ({len(lines) - BLOCK_LIMIT} more lines in the report)"]
    return lines


def reproduce_snippet(record: dict[str, Any], impl_source: str) -> list[str]:
    """A snippet rebuilding the group's smallest case and calling the implementation on it (for a
    failure whose text has none)."""
    spec = _case(record)
    if not spec:
        return []
    params = ", ".join(f"{k}={tuple(v) if isinstance(v, list) else v!r}" for k, v in spec["params"].items())
    shapes = {k: (None if v is None else tuple(v)) for k, v in spec["shapes"].items()}
    return [
        "  reproduce:",
        "    from convcheck.impls.registry import load",
        f"    from convcheck.spec.params import {spec['params_type']}",
        "    from convcheck.tests.values import make_case",
        f"    case = make_case({spec['op']!r}, {spec['params_type']}({params}), {shapes!r}, {spec['dtype']!r}, "
        f"{spec['family']!r}, seed={spec['seed']}, layout={spec['layout']!r})",
        f"    impl = load({impl_source!r})",
        f"    print({_call(spec['op'], _failure(record).get('output'))})",
    ]


def _call(op_name: str, output: str | None) -> str:
    """The call of the function whose output failed (the backward unless it was ``y``)."""
    from .spec import OPERATIONS

    op = OPERATIONS[op_name]
    if op.is_loss:
        return f"impl.functions[{op.forward!r}](*case.forward_args())"
    if output == "y" or op.backward is None:
        return f"impl.functions[{op.forward!r}](*case.forward_args(), **case.kwargs())"
    return f"impl.functions[{op.backward!r}](*case.backward_args(), **case.kwargs())"


def block_lines(group: FailureGroup, impl_source: str | None = None) -> list[str]:
    """A group as terminal lines: header, the smallest failure, its cause, reproduce, the others."""
    first = group.first
    shown = _test(first).split("::")[-1]
    lines = [f"--- {group.op}: {group.title} ({group.span()}; shown: {first['property']}, {shown})"]
    if first.get("distinct_of"):
        lines.append(f"  {distinct_line(first)}")
    body = _trimmed(first)
    if group.cause and not any("likely cause:" in line for line in body):
        body.insert(min(len(body), 1), f"  {group.cause}")
    if impl_source and not any("reproduce:" in line for line in body):
        body += reproduce_snippet(first, impl_source)
    lines += body
    if group.also_line():
        lines.append(f"  {group.also_line()}")
    return lines


def distinct_line(view: dict[str, Any]) -> str:
    """``distinct failure 2 of 2 of this check: raised IndexError at ...`` for one view of a check
    that failed in several distinct ways (``convcheck.distinct``)."""
    from .distinct import heading

    return (
        f"distinct failure {view['distinct']} of {view['distinct_of']} of this check: "
        f"{heading(view['failures'][0])}"
    )


def absent_line(impl: str, ops: list[str]) -> str:
    """The one line that stands for every row of the operations an implementation does not have."""
    return f"{impl}: not provided, so not checked ({len(ops)}): {', '.join(ops)}"

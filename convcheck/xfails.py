"""Expected failures: a library's known defects, listed in a TOML file (``--xfails FILE``).

The file holds ``[[xfail]]`` entries, each with glob patterns (``fnmatch``) over
what a failed check's result record carries, and a ``reason`` (an optional
``link`` too)::

    [[xfail]]
    op = "max_pool2d"
    property = "backward"        # or "*", "max_routing", "b*"
    dtype = "float32"            # the failing dtype(s)
    feature = "ties=true"        # NAME=VALUE over the failing example's hyper-parameters
    reason = "ties route the gradient to the last maximum"
    link = "https://example.org/mylib/issues/12"

Every selector (``op``, ``property``, ``dtype``, ``feature``) is optional, but
an entry names at least one. ``feature`` is ``NAME=VALUE``: ``NAME`` is one of
the failing counterexample's hyper-parameters (``stride``, ``dilation``,
``ceil_mode``, ...) or one of its labels (``family``, ``layout``, ``ties``),
and ``VALUE`` a glob over its value as JSON text (``true``, ``[2, 2]``,
``[2, *]``; ``*`` and ``?`` are the wildcards, brackets are literal), as the
coverage listing shows values.

A failed record that every selector of an entry matches is *expected*: it keeps
``status: failed`` and gains ``expected: {entry, reason, link}``; a summary row
whose failures are all expected shows ``xfail`` and the run exits 0. An entry
that matched no failure although checks it selects ran and passed is *now
passing* (delete it); one whose checks did not run is *not run* (``--ops``
left them out, or the implementation declares them unsupported).

A check that failed in several distinct ways (``convcheck.distinct``) is matched one failure at a
time: it is expected only when an entry expects each of its failures, so a known failure listed
here and a new one under the same property still fail the run.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

SELECTORS = ("op", "property", "dtype", "feature")
KEYS = frozenset({*SELECTORS, "reason", "link"})
CASE_LABELS = ("family", "layout", "ties")
"""Fields of a counterexample (``recording.case_spec``) that ``feature`` matches besides its parameters."""


@dataclass(frozen=True)
class Entry:
    """One ``[[xfail]]`` entry; ``index`` counts from 1 in file order."""

    index: int
    reason: str
    op: str | None = None
    property: str | None = None
    dtype: str | None = None
    feature: str | None = None
    link: str | None = None

    def label(self) -> str:
        """``#2 (op=max_pool2d, property=backward)``: how messages name the entry."""
        picked = ", ".join(f"{k}={getattr(self, k)}" for k in SELECTORS if getattr(self, k) is not None)
        return f"#{self.index} ({picked})"

    def to_dict(self) -> dict[str, Any]:
        return {"entry": self.index, "reason": self.reason, "link": self.link, "selects": self.selects()}

    def selects(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in SELECTORS if getattr(self, k) is not None}


def load(path: str | Path) -> list[Entry]:
    """The entries of an expected-failures file. ``UsageError`` with one line naming the file and
    the entry for unreadable or invalid TOML, an unknown key, operation or property, a missing
    reason, or an entry that selects nothing."""
    from .spec import UsageError

    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"cannot read the expected-failures file {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path} is not valid TOML: {e}") from None
    extra = sorted(set(document) - {"xfail"})
    if extra:
        raise UsageError(f"{path}: unknown table(s) {', '.join(extra)}; write each entry as [[xfail]]")
    items = document.get("xfail", [])
    if not isinstance(items, list):
        raise UsageError(f"{path}: 'xfail' must be an array of tables; write each entry as [[xfail]]")
    return [_entry(path, i, item) for i, item in enumerate(items, start=1)]


def _entry(path: str | Path, index: int, item: Any) -> Entry:
    """One validated entry (see ``load``)."""
    from .spec import UsageError

    where = f"{path}: [[xfail]] #{index}"
    if not isinstance(item, dict):
        raise UsageError(f"{where} must be a table of keys ({', '.join(sorted(KEYS))})")
    unknown = sorted(set(item) - KEYS)
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)}; use {', '.join(sorted(KEYS))}")
    bad = [k for k, v in item.items() if not isinstance(v, str)]
    if bad:
        raise UsageError(f"{where}: {', '.join(bad)} must be a string (a glob pattern or text)")
    if not item.get("reason", "").strip():
        raise UsageError(f'{where} has no reason; say why the failure is expected (reason = "...")')
    if not any(k in item for k in SELECTORS):
        raise UsageError(f"{where} selects every check; name at least one of {', '.join(SELECTORS)}")
    _check_names(where, item)
    return Entry(index=index, **item)


def _check_names(where: str, item: dict[str, str]) -> None:
    """``UsageError`` unless ``op`` and ``property`` match some operation and property of the contract,
    and ``feature`` reads ``NAME=VALUE``."""
    from .spec import OPERATIONS, UsageError
    from .spec.networks import NETWORKS

    ops = [*OPERATIONS, *NETWORKS]
    op_pattern = item.get("op", "*")
    chosen = [o for o in ops if fnmatchcase(o, op_pattern)]
    if not chosen:
        raise UsageError(f"{where}: op {op_pattern!r} matches no operation; choose from {', '.join(ops)}")
    if "property" in item:
        props = sorted({p for o in chosen if o in OPERATIONS for p in OPERATIONS[o].properties})
        if not any(fnmatchcase(p, item["property"]) for p in props) and not set(chosen) & set(NETWORKS):
            raise UsageError(
                f"{where}: property {item['property']!r} matches no property of {op_pattern}; "
                f"choose from {', '.join(props)}"
            )
    if "feature" in item and "=" not in item["feature"]:
        raise UsageError(
            f'{where}: feature {item["feature"]!r} should read NAME=VALUE, e.g. "ceil_mode=true" or '
            '"dilation=[2, *]"'
        )


# --------------------------------------------------------------------------- matching


def failed_dtypes(record: dict[str, Any]) -> list[str]:
    """The dtypes a failed record failed in (its own dtype when it has no per-dtype record)."""
    found = record.get("failed_dtypes") or []
    if not found and (record.get("failure") or {}).get("dtype"):
        found = [record["failure"]["dtype"]]
    return list(found) or ([record["dtype"]] if record.get("dtype") else [])


def _case_values(case: dict[str, Any] | None) -> dict[str, str]:
    """A counterexample's hyper-parameters and labels as JSON texts."""
    if not case:
        return {}
    values = {k: json.dumps(v) for k, v in (case.get("params") or {}).items()}
    values.update({k: json.dumps(case[k]) for k in CASE_LABELS if case.get(k) is not None})
    return values


def value_glob(pattern: str) -> str:
    """A ``feature`` VALUE as an ``fnmatch`` pattern: ``*`` and ``?`` are wildcards, brackets literal
    (values such as ``[2, 2]`` are JSON lists)."""
    return "".join({"[": "[[]", "]": "[]]"}.get(c, c) for c in pattern.strip())


def _feature_matches(pattern: str, values: dict[str, str] | dict[str, list[str]]) -> bool:
    """``NAME=VALUE`` against one value (a counterexample's) or several (coverage) per name; a JSON
    string value matches with or without its quotes (``family=ties``)."""
    name, _, value = pattern.partition("=")
    found = values.get(name.strip())
    texts = [found] if isinstance(found, str) else list(found or [])
    glob = value_glob(value)
    return any(fnmatchcase(t, glob) or fnmatchcase(t.strip('"'), glob) for t in texts)


def matches_failure(entry: Entry, record: dict[str, Any]) -> bool:
    """Whether ``entry`` expects the failure of ``record`` (every selector it names matches)."""
    if entry.op is not None and not fnmatchcase(record.get("op", ""), entry.op):
        return False
    if entry.property is not None and not fnmatchcase(record.get("property", ""), entry.property):
        return False
    if entry.dtype is not None:
        dtypes = failed_dtypes(record)
        if not dtypes or not all(fnmatchcase(d, entry.dtype) for d in dtypes):
            return False
    if entry.feature is not None:
        case = (record.get("failure") or {}).get("counterexample") or _only_case(record)
        if not _feature_matches(entry.feature, _case_values(case)):
            return False
    return True


def _only_case(record: dict[str, Any]) -> dict[str, Any] | None:
    """The counterexample of a record's one distinct failure (the code under test raised on it)."""
    found = record.get("failures") or []
    return found[0].get("counterexample") if len(found) == 1 else None


def selects_run(entry: Entry, record: dict[str, Any]) -> bool:
    """Whether ``record`` is a check ``entry`` selects that ran (some example of a selected dtype,
    with the selected feature among the values it drew)."""
    if not record.get("examples"):
        return False
    if entry.op is not None and not fnmatchcase(record.get("op", ""), entry.op):
        return False
    if entry.property is not None and not fnmatchcase(record.get("property", ""), entry.property):
        return False
    if entry.dtype is not None:
        ran = [d for d, s in (record.get("by_dtype") or {}).items() if s.get("examples")]
        if not any(fnmatchcase(d, entry.dtype) for d in ran or [record.get("dtype", "")]):
            return False
    return entry.feature is None or _feature_matches(entry.feature, _coverage_values(record))


def _coverage_values(record: dict[str, Any]) -> dict[str, list[str]]:
    """The values a check drew (``recording.Recorder.values``), named as a counterexample names them:
    the value family as ``family``, tied windows as ``ties`` (``true``/``false``)."""
    values = dict(record.get("values") or {})
    values["family"] = list(values.get("values", []))
    ties = {"tied": "true", "no ties": "false"}
    values["ties"] = [ties.get(t, t) for t in values.get("ties", [])]
    return values


def expected(entries: list[Entry], record: dict[str, Any]) -> dict[str, Any] | None:
    """The ``expected`` field of a failed record: the first entry that expects it, else ``None``.

    A check that failed in several distinct ways (``convcheck.distinct``) is expected only when
    every one of its failures is: a known failure and a new one under one property stay a failure.
    """
    from .distinct import views

    if record.get("status") not in ("failed", "error"):
        return None
    found = []
    for view in views(record):
        entry = next((e for e in entries if matches_failure(e, view)), None)
        if entry is None:
            return None
        found.append(entry)
    return found[0].to_dict()


@dataclass
class Verdict:
    """The three kinds of a run under an expected-failures file: failures it expects (``expected``:
    the records), entries whose checks now pass (``now_passing``), failures it does not expect
    (``new``); and entries whose checks did not run (``not_run``)."""

    expected: list[dict[str, Any]] = field(default_factory=list)
    now_passing: list[Entry] = field(default_factory=list)
    new: list[dict[str, Any]] = field(default_factory=list)
    not_run: list[Entry] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The ``xfails`` section of report.json."""
        return {
            "expected": [
                {"test": r["test"], "op": r["op"], "property": r["property"], **r["expected"]}
                for r in self.expected
            ],
            "now_passing": [e.to_dict() for e in self.now_passing],
            "new": [{"test": r["test"], "op": r["op"], "property": r["property"]} for r in self.new],
            "not_run": [e.to_dict() for e in self.not_run],
        }


def classify(entries: list[Entry], results: list[dict[str, Any]]) -> Verdict:
    """Sort a finished run's results and the file's entries into a ``Verdict``."""
    verdict = Verdict()
    used: set[int] = set()
    for r in results:
        if r.get("status") not in ("failed", "error"):
            continue
        if r.get("expected"):
            verdict.expected.append(r)
            used.add(int(r["expected"]["entry"]))
            used.update(_entries_used(entries, r))
        else:
            verdict.new.append(r)
    for entry in entries:
        if entry.index in used:
            continue
        ran = [r for r in results if r.get("status") == "passed" and selects_run(entry, r)]
        (verdict.now_passing if ran else verdict.not_run).append(entry)
    return verdict


def _entries_used(entries: list[Entry], record: dict[str, Any]) -> set[int]:
    """The entries that expect some distinct failure of an expected record."""
    from .distinct import views

    return {e.index for v in views(record) for e in entries if matches_failure(e, v)}


def _link(item: dict[str, Any] | Entry) -> str:
    link = item.get("link") if isinstance(item, dict) else item.link
    return f" ({link})" if link else ""


def lines(verdict: Verdict, path: str | None = None) -> list[str]:
    """The terminal block: expected failures with their reasons, now-passing entries (a warning
    each, saying to delete it), new failures."""
    if not (verdict.expected or verdict.now_passing or verdict.new or verdict.not_run):
        return []
    out = ["", f"expected failures ({path or '--xfails'}):"]
    for r in verdict.expected:
        e = r["expected"]
        out.append(
            f"  xfail: {r['op']}:{r['property']} {r['check']} [entry #{e['entry']}: {e['reason']}]{_link(e)}"
        )
    for entry in verdict.now_passing:
        out.append(
            f"  warning: entry {entry.label()} now passes: its checks ran and none failed; delete it "
            f"from {path or 'the file'} ({entry.reason})"
        )
    for entry in verdict.not_run:
        out.append(f"  not run: entry {entry.label()}: none of its checks ran in this run")
    for r in verdict.new:
        out.append(f"  new failure: {r['op']}:{r['property']} {r['check']} (no entry expects it)")
    return out

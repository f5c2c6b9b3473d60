"""The report document: what report.json holds, built from the plug-in's per-test results.

The shape is fixed by ``convcheck/spec/report.schema.json`` (``SCHEMA_VERSION``).
A *check* is one pytest test (one property, operation, direction, oracle);
because the tests draw both dtypes inside one hypothesis test, the report
holds one *record* per (check, dtype), carrying that dtype's examples and
worst errors. Only the dtype of the failing (shrunk) example is marked
failed; the others are marked passed on the examples they ran.

JSON has no infinity: a non-finite number (an error ratio where exactness
was required) is written as the string ``"inf"`` (or ``"-inf"``, ``"nan"``).
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import math
import os
import platform
import sys
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from ..spec import OPERATIONS, contracts, tolerance

if TYPE_CHECKING:
    from ..impls.registry import Implementation

SCHEMA_VERSION = "1.1"
FORMAT = "convcheck-report"
STATUSES = ("passed", "failed", "error", "unsupported", "skipped")
"""Record statuses: ``skipped`` is a check that does not apply (an oracle that cannot
follow a declared semantics), ``unsupported`` one the implementation declared it does not do."""

DIRECTION_OF_PROPERTY = {
    "forward": "forward",
    "bias_gradient": "backward:db",
    "max_routing": "backward:dx",
    "avg_spreading": "backward:dx",
    "linearity": "backward",
}
"""The direction a property checks; ``backward`` gets the gradient's name (``backward:dx``),
every other property exercises both passes (``forward+backward``), unless its test's
``conformance`` marker names the one pass it checks (``direction=``, the result's ``test_direction``)."""


def now() -> str:
    """UTC time as ISO 8601 with a ``Z``."""
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def finite(value: Any) -> Any:
    """``value`` with non-finite floats as strings (``"inf"``), recursively, for strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def as_float(value: Any) -> float | None:
    """A ratio from a report (number, ``"inf"`` or ``None``) as a float or ``None``."""
    if value is None:
        return None
    return float(value)


# --------------------------------------------------------------------------- environment


def _version(module: str) -> str | None:
    try:
        return str(__import__(module).__version__)
    except Exception:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def threads() -> dict[str, Any]:
    """Thread counts: PyTorch's pools, NumPy's BLAS (when readable) and the usual variables."""
    out: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "environment": {
            k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
        },
    }
    try:
        import torch

        out["torch"] = torch.get_num_threads()
        out["torch_interop"] = torch.get_num_interop_threads()
    except Exception:
        out["torch"] = out["torch_interop"] = None
    try:  # the benchmark's reader of NumPy's BLAS threads, when it is there
        from ..bench.threads import blas_threads

        out["numpy_blas"], out["numpy_blas_source"] = blas_threads()
    except Exception:
        out["numpy_blas"], out["numpy_blas_source"] = None, "unknown"
    return out


def _package_of(impl: Implementation) -> dict[str, Any]:
    """The distribution that ships the implementation's functions, and its version."""
    modules = {getattr(fn, "__module__", None) or "" for fn in impl.functions.values()}
    top = sorted({m.split(".")[0] for m in modules if m})
    dists = importlib.metadata.packages_distributions()
    for name in top:
        for dist in dists.get(name, []):
            try:
                return {"name": dist, "version": importlib.metadata.version(dist), "modules": sorted(modules)}
            except importlib.metadata.PackageNotFoundError:
                continue
    return {"name": None, "version": impl.version, "modules": sorted(modules)}


def implementation_side(impl: Implementation | None) -> dict[str, Any] | None:
    """What the isolated worker reported of itself at start-up (Python, its executable, NumPy,
    platform): under ``--python``, the implementation's own environment; ``None`` in-process."""
    sandbox = getattr(impl, "extras", {}).get("sandbox") if impl is not None else None
    side = sandbox.info.get("environment") if sandbox is not None else None
    return dict(side) if side else None


def environment(impl: Implementation | None = None) -> dict[str, Any]:
    """Versions, CPU and threads of the machine that ran the checks; ``implementation_side`` is the
    worker's handshake (``implementation_side``)."""
    from .. import __version__

    return {
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "numpy": _version("numpy"),
        "scipy": _version("scipy"),
        "torch": _version("torch"),
        "hypothesis": _version("hypothesis"),
        "pytest": _version("pytest"),
        "convcheck": __version__,
        "threads": threads(),
        "implementation_side": implementation_side(impl),
    }


def implementation(impl: Implementation, strict: bool) -> dict[str, Any]:
    """What the implementation is and what it declared (capabilities as parsed)."""
    return {
        "name": impl.name,
        "source": impl.source,
        "version": impl.version,
        "package": _package_of(impl),
        "functions": sorted(impl.functions),
        "declared": bool(impl.capabilities.declared),
        "capabilities": impl.capabilities.to_dict(),
        "unsupported": [
            {"op": o, "feature": f, "value": v} for o, f, v in impl.capabilities.unsupported(impl.functions)
        ],
        "strict": strict,
        "contract": _contract(impl),
        "contract_summary": contracts.summary_line(_contract(impl)),
    }


def _contract(impl: Implementation) -> str:
    """The contract the run checked ``impl`` against (``spec.contracts``; set by the pytest plugin)."""
    return getattr(impl, "extras", {}).get("contract", contracts.LIBRARY)


def kinks(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The course contract's notes (conventions) and warnings (kink defects) over every record, once
    per (kind, operation, rule), with the properties that met them (``spec.contracts``)."""
    seen: dict[tuple[str, str, str], dict[str, Any]] = {}
    for rec in document.get("records", []):
        for k in rec.get("kinks") or []:
            entry = seen.setdefault((k["kind"], k["op"], k["rule"]), {**k, "properties": []})
            if rec["property"] not in entry["properties"]:
                entry["properties"].append(rec["property"])
    return [seen[key] for key in sorted(seen)]


def tolerance_section() -> dict[str, Any]:
    """The policy and the user's overrides of this run."""
    overrides = tolerance.active_overrides()
    return {
        "policy": tolerance.policy_summary(),
        "overrides": overrides.to_list(),
        "overridden": bool(overrides),
    }


def new_document(impl: Implementation, run: dict[str, Any], strict: bool) -> dict[str, Any]:
    """An empty report: no records yet, status ``running``."""
    from ..recording import RATIO_EDGES

    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "status": "running",
        "started": now(),
        "finished": None,
        "implementation": implementation(impl, strict),
        "environment": environment(impl),
        "run": run,
        "tolerance": tolerance_section(),
        "histogram_log10_edges": list(RATIO_EDGES),
        "summary": summary([]),
        "coverage": {},
        "records": [],
    }


# --------------------------------------------------------------------------- records


def direction(entry: dict[str, Any]) -> str:
    """``forward``, ``backward``, ``backward:dx`` ... or ``forward+backward`` for a test result."""
    prop = entry.get("property", "")
    if entry.get("test_direction"):
        return entry["test_direction"]
    if prop == "backward":
        return f"backward:{entry['direction']}" if entry.get("direction") else "backward"
    return DIRECTION_OF_PROPERTY.get(prop, "forward+backward")


def message_text(entry: dict[str, Any], limit: int = 80) -> str | None:
    """What a failed result's exception says (``grouping.failure_text``), or ``None`` without a failure."""
    import textwrap

    from ..grouping import failure_text

    if not entry.get("exception") and not entry.get("message"):
        return None
    return textwrap.dedent(failure_text(entry, limit))


def _outputs(stats: dict[str, Any]) -> dict[str, Any]:
    return {name: dict(o) for name, o in (stats.get("outputs") or {}).items()}


def _worst(outputs: dict[str, Any]) -> float | None:
    ratios = [r for r in (as_float(o.get("error_ratio")) for o in outputs.values()) if r is not None]
    return max(ratios) if ratios else None


def _failed_dtypes(entry: dict[str, Any]) -> set[str]:
    """Dtypes whose examples failed; when none was noted, the last example's dtype."""
    failed = set(entry.get("failed_dtypes") or [])
    failure = entry.get("failure") or {}
    if failure.get("dtype"):
        failed.add(failure["dtype"])
    if not failed and entry.get("last_case"):
        failed.add(entry["last_case"]["dtype"])
    return failed


def records_of(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The report records of one test result: one per dtype it ran (one with ``dtype: null`` if none)."""
    status = entry.get("status") or "error"
    by_dtype: dict[str, Any] = entry.get("by_dtype") or {}
    base = {
        "check": entry.get("check") or entry.get("test", ""),
        "test": entry.get("test", ""),
        "op": entry.get("op", ""),
        "property": entry.get("property", ""),
        "direction": direction(entry),
        "oracle": entry.get("oracle") or None,
        "duration": float(entry.get("duration") or 0.0),
        "kinks": entry.get("kinks") or [],
    }
    failing = status in ("failed", "error")
    failed_dtypes = _failed_dtypes(entry) if failing else set()
    dtypes: list[Any] = sorted(by_dtype) or [entry.get("dtype") or None]
    if failing and not by_dtype:
        dtypes = sorted(failed_dtypes) or dtypes
    failed_here = {d for d in dtypes if d in failed_dtypes} or set(dtypes) if failing else set()
    out = []
    for dtype in dtypes:
        stats = by_dtype.get(dtype) or {"examples": 0, "outputs": {}}
        outputs = _outputs(stats)
        this_failed = dtype in failed_here
        rec: dict[str, Any] = {
            "id": f"{base['check']}:{dtype or '-'}",
            **base,
            "dtype": dtype,
            "status": status if this_failed or not failing else "passed",
            "examples": int(stats.get("examples", 0)),
            "comparisons": sum(o.get("comparisons", 0) for o in outputs.values()),
            "mistrusted": sum(o.get("mistrusted", 0) for o in outputs.values()),
            "worst_error_ratio": _worst(outputs),
            "errors": outputs,
            "tolerance_override": sorted({d for o in outputs.values() for d in o.get("overrides", [])})
            or None,
            "message": None,
            "diagnosis": None,
            "failing_output": None,
            "counterexample": None,
            "reproduction": None,
        }
        if status in ("unsupported", "skipped"):
            rec["message"] = entry.get("message")
        if rec["status"] in ("failed", "error"):
            _attach_failure(rec, entry)
            rec["failures"] = failures_of_record(rec, entry)
            if entry.get("expected"):  # an --xfails entry expects it (convcheck.xfails)
                rec["expected"] = entry["expected"]
        if entry.get("not_implemented"):  # unsupported at some cases (convcheck.unsupported_calls)
            rec["not_implemented"] = entry["not_implemented"]
        out.append(rec)
    return out


def _attach_failure(rec: dict[str, Any], entry: dict[str, Any]) -> None:
    """The failure's message, diagnosis and counterexample, on the failed record.

    The dtype of hypothesis's final (shrunk) example gets the failure's message
    and diagnosis; another dtype whose examples failed during the search gets
    its most shrunk failing example and a pointer to the reported one.
    """
    failure = entry.get("failure") or {}
    if failure and failure.get("dtype") != rec["dtype"]:  # another distinct failure may be this dtype's
        failure = next(
            (
                f
                for f in entry.get("failures") or []
                if f.get("dtype") == rec["dtype"] and not f.get("raised")
            ),
            failure,
        )
    searched = (entry.get("failing_cases") or {}).get(rec["dtype"])
    if failure and (failure.get("dtype") == rec["dtype"] or rec["dtype"] is None):
        rec["message"] = message_text(entry) or failure.get("message")
        rec["diagnosis"] = failure.get("diagnosis")
        if failure.get("network"):  # a whole-network check: its comparisons and first bad layer
            rec["network"] = failure["network"]
        rec["counterexample"] = failure.get("counterexample")
        if rec["counterexample"]:
            rec["counterexample"]["shrunk"] = True
        rec["failing_output"] = failure.get("output")
    elif failure and searched:
        rec["message"] = (
            f"examples in {rec['dtype']} failed too while hypothesis searched; it reported (and diagnosed) "
            f"its shrunk counterexample in {failure.get('dtype')}: see record "
            f"{rec['check']}:{failure.get('dtype')}. The smallest {rec['dtype']} failure seen is given here."
        )
        rec["counterexample"] = {**searched, "shrunk": False}
    else:
        rec["message"] = message_text(entry)
        found = searched or entry.get("last_case")  # e.g. the implementation raised: no failure noted
        rec["counterexample"] = {**found, "shrunk": True} if found else None


def failures_of_record(rec: dict[str, Any], entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Every distinct failure of the check in the record's dtype (``convcheck.distinct``), each with
    its key, the outputs it broke, message, diagnosis and counterexample (its reproduction is added
    by the writer); a check that recorded none gets one made of the record's own fields."""
    found = [
        f
        for f in entry.get("failures") or []
        if rec["dtype"] is None or f.get("dtype") in (None, rec["dtype"])
    ]
    out = []
    for f in found:
        spec = f.get("counterexample")
        out.append(
            {
                "key": f.get("key"),
                "outputs": f.get("outputs") or ([f["output"]] if f.get("output") else []),
                "output": f.get("output"),
                "dtype": f.get("dtype"),
                "raised": f.get("raised"),
                "message": f.get("message") or "",
                "diagnosis": f.get("diagnosis"),
                "counterexample": {**spec, "shrunk": True} if spec else None,
                "reproduction": None,
            }
        )
    if not out:
        out.append(
            {
                "key": None,
                "outputs": [rec["failing_output"]] if rec.get("failing_output") else [],
                "output": rec.get("failing_output"),
                "dtype": rec.get("dtype"),
                "raised": None,
                "message": rec.get("message") or "",
                "diagnosis": rec.get("diagnosis"),
                "counterexample": rec.get("counterexample"),
                "reproduction": None,
            }
        )
    return out


# --------------------------------------------------------------------------- summary and coverage


def summary(records: list[dict[str, Any]], status: str = "running") -> dict[str, Any]:
    """Counts per record status and the verdict: ``failed`` if any record failed or errored that
    the expected-failures file does not expect, ``passed`` if the run completed and some record
    passed or failed as expected, ``incomplete`` otherwise."""
    counts = {s: 0 for s in STATUSES}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    expected = sum(1 for r in records if r["status"] in ("failed", "error") and r.get("expected"))
    if counts["failed"] + counts["error"] > expected:
        verdict = "failed"
    elif status == "complete" and (counts["passed"] or expected):
        verdict = "passed"
    else:
        verdict = "incomplete" if status != "complete" else "nothing checked"
    ratios = [x for x in (as_float(r.get("worst_error_ratio")) for r in records) if x is not None]
    return {
        "records": len(records),
        **counts,
        "checks": len({r["check"] for r in records}),
        "examples": sum(r.get("examples", 0) for r in records),
        "comparisons": sum(r.get("comparisons", 0) for r in records),
        "mistrusted": sum(r.get("mistrusted", 0) for r in records),
        "worst_error_ratio": max(ratios) if ratios else None,
        "verdict": verdict,
        "expected": expected,
    }


def merge_coverage(coverage: dict[str, dict[str, list[str]]], entry: dict[str, Any]) -> None:
    """Add a test result's exercised values to ``coverage[op][hyper-parameter]``."""
    op = entry.get("op") or ""
    if not op or not entry.get("values"):
        return
    per_op = coverage.setdefault(op, {})
    for key, values in entry["values"].items():
        per_op[key] = sorted(set(per_op.get(key, [])) | set(values))


def property_table(records: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """``table[op][property]``: the worst status, worst ratio and example count over its records."""
    from ..summary import group_status

    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[(r["op"], r["property"])].append(r)
    table: dict[str, dict[str, dict[str, Any]]] = {}
    order = {op: i for i, op in enumerate(OPERATIONS)}
    for (op, prop), items in sorted(groups.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0])):
        ratios = [x for x in (as_float(r.get("worst_error_ratio")) for r in items) if x is not None]
        table.setdefault(op, {})[prop] = {
            "status": group_status(r["status"] for r in items),
            "worst_error_ratio": max(ratios) if ratios else None,
            "examples": sum(r.get("examples", 0) for r in items),
            "records": len(items),
            "dtypes": sorted({r["dtype"] for r in items if r.get("dtype")}),
        }
    return table


def operations_in(document: dict[str, Any]) -> list[str]:
    """The operations a report has records for, in the spec's order."""
    seen = {r["op"] for r in document.get("records", [])}
    return [op for op in OPERATIONS if op in seen]


def networks_in(document: dict[str, Any]) -> list[str]:
    """The networks a report has whole-network records for (their ``op``), in the spec's order."""
    from ..spec.networks import NETWORKS

    seen = {r["op"] for r in document.get("records", [])}
    return [name for name in NETWORKS if name in seen]


def tolerance_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The tolerance table: per (operation, output, dtype), the worst errors over every check."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for rec in document.get("records", []):
        for name, st in (rec.get("errors") or {}).items():
            if not st.get("comparisons"):
                continue
            key = (rec["op"], name, rec.get("dtype") or "")
            row = rows.setdefault(
                key,
                {
                    "op": key[0],
                    "output": name,
                    "dtype": key[2],
                    "modes": set(),
                    "overrides": set(),
                    "k_max": 0,
                    "error_ratio": 0.0,
                    "max_abs": 0.0,
                    "max_rel": 0.0,
                    "max_ulp": 0,
                    "comparisons": 0,
                    "mistrusted": 0,
                    "failed": 0,
                    "worst_check": "",
                },
            )
            ratio = as_float(st.get("error_ratio")) or 0.0
            if ratio >= row["error_ratio"]:
                row["error_ratio"], row["worst_check"] = ratio, rec["check"]
            row["max_abs"] = max(row["max_abs"], as_float(st.get("max_abs")) or 0.0)
            row["max_rel"] = max(row["max_rel"], as_float(st.get("max_rel")) or 0.0)
            row["max_ulp"] = max(row["max_ulp"], int(st.get("max_ulp", 0)))
            row["k_max"] = max(row["k_max"], int(st.get("k_max", 0)))
            row["comparisons"] += int(st.get("comparisons", 0))
            row["mistrusted"] += int(st.get("mistrusted", 0))
            row["failed"] += int(st.get("failed", 0))
            row["modes"].update(st.get("modes", []))
            row["overrides"].update(st.get("overrides", []))
    order = {op: i for i, op in enumerate(OPERATIONS)}
    out = []
    for key in sorted(rows, key=lambda k: (order.get(k[0], 9), k[1], k[2])):
        row = rows[key]
        row["modes"], row["overrides"] = sorted(row["modes"]), sorted(row["overrides"])
        out.append(row)
    return out


def failures(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Failed and errored records, in the spec's operation order."""
    order = {op: i for i, op in enumerate(OPERATIONS)}
    bad = [r for r in document.get("records", []) if r["status"] in ("failed", "error")]
    return sorted(bad, key=lambda r: (order.get(r["op"], 9), r["property"], r["id"]))


def fmt_ratio(value: Any) -> str:
    """An error ratio for a table: ``0``, ``3.1e-03``, ``inf`` or empty."""
    r = as_float(value)
    if r is None:
        return ""
    if r == 0:
        return "0"
    if math.isinf(r):
        return "inf"
    return f"{r:.2g}" if r >= 0.01 else f"{r:.1e}"

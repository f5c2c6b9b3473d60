"""report.md: the report as Markdown, for pull requests and terminals.

Verdict first, then the conformance matrix, the properties, the tolerance
table with error ratios, every failure with its diagnosis and reproduction,
and what the run exercised. Built from report.json alone.
"""

from __future__ import annotations

from typing import Any

from ..diagnosis import ranking
from ..summary import PAIR_KEYS, pairs_line
from ..tables import markdown as table
from . import bench, matrix, model
from .model import fmt_ratio

MARK = {
    "passed": "pass",
    "failed": "FAIL",
    "error": "ERROR",
    "xfail": "xfail (expected)",
    "unsupported": "unsupported",
    "untested": "untested",
    "skipped": "skipped",
    "n/a": "",
    "incomplete": "incomplete",
}


def header(doc: dict[str, Any]) -> list[str]:
    impl, env, run, s = doc["implementation"], doc["environment"], doc["run"], doc["summary"]
    pkg = impl.get("package") or {}
    th = env.get("threads") or {}
    status = doc.get("status")
    partial = "" if status == "complete" else f" (run {status}: partial report)"
    lines = [
        f"# convcheck report: {impl['name']}",
        "",
        f"**Verdict: {s['verdict'].upper()}**{partial}. {s['records']} records from {s['checks']} checks: "
        f"{s['passed']} passed, {s['failed']} failed, {s['error']} errors, {s['unsupported']} unsupported, "
        f"{s['skipped']} not applicable. {s['examples']} examples, {s['comparisons']} comparisons with the "
        f"oracles, worst error ratio {fmt_ratio(s.get('worst_error_ratio')) or '-'}.",
        "",
        f"- implementation: `{impl['source']}` (package {pkg.get('name') or '-'} {pkg.get('version') or ''}), "
        f"functions: {', '.join(impl['functions'])}",
        f"- declared capabilities: {'yes' if impl['declared'] else 'none (full contract)'}"
        + (" - ignored (--strict)" if impl.get("strict") else "")
        + "; unsupported: "
        + (", ".join(f"{u['op']}.{u['feature']}={u['value']!r}" for u in impl["unsupported"]) or "nothing"),
        f"- {impl.get('contract_summary') or 'contract: library'}",
        f"- environment: Python {env['python']}, NumPy {env['numpy']}, SciPy {env['scipy']}, torch {env['torch']}, "
        f"hypothesis {env['hypothesis']}; {env['cpu']}; threads: torch {th.get('torch')}, "
        f"NumPy BLAS {th.get('numpy_blas')}, CPUs {th.get('cpu_count')}",
        *implementation_side_line(env),
        f"- run: profile {run['profile']}, {run['max_examples']} examples per property, seed "
        f"{run['seed'] if run['seed'] is not None else ('derandomized' if run['derandomize'] else 'random')}, "
        f"operations {', '.join(run['ops'] or ['all'])}, workers {run.get('workers') or 0}; `{run['command']}`",
        f"- started {doc['started']}, finished {doc.get('finished') or '-'}",
    ]
    return lines


def tolerance_section(doc: dict[str, Any]) -> list[str]:
    tol = doc["tolerance"]
    policy = tol["policy"]
    lines = [
        "## Tolerances and error ratios",
        "",
        f"Error ratio = max |got - expected| / bound; a correct implementation stays below 1. Bound: "
        f"{policy['elementwise']}, SAFETY = {policy['safety']:g} ({policy['safety_reason']}). "
        f"Aggregate checks (TOSA): {policy['aggregate']}. A comparison whose expected output is more than "
        f"{100 * policy['mistrust_zero_fraction']:.0f}% zeros is counted as *mistrusted* (it could hardly fail).",
        "",
    ]
    if tol.get("overridden"):
        lines += ["**Tolerance overrides were used in this run:**", ""]
        lines += [f"- {o['description']}" for o in tol["overrides"]]
        lines.append("")
    rows = [
        (
            r["op"],
            r["output"],
            r["dtype"],
            ", ".join(r["modes"]),
            r["k_max"],
            fmt_ratio(r["error_ratio"]),
            f"{r['max_abs']:.3g}",
            f"{r['max_rel']:.3g}",
            r["max_ulp"],
            r["comparisons"],
            r["mistrusted"],
            ", ".join(r["overrides"]) or "-",
        )
        for r in model.tolerance_rows(doc)
    ]
    head = (
        "operation",
        "output",
        "dtype",
        "bound",
        "K max",
        "worst ratio",
        "max abs",
        "max rel",
        "max ULP",
        "comparisons",
        "mistrusted",
        "override",
    )
    return lines + table(head, rows) + [""]


def matrix_section(doc: dict[str, Any]) -> list[str]:
    m = matrix.matrix(doc)
    head = ["operation", "overall", *(c["label"] for c in m["columns"])]
    rows = []
    for row in m["rows"]:
        cells = []
        for c in row["cells"]:
            text = MARK.get(c["status"], c["status"])
            if c["note"] and c["status"] != "n/a":
                text = f"{text} ({c['note']})" if c["status"] != "unsupported" else text
            cells.append(text)
        rows.append([row["label"], MARK.get(row["overall"], row["overall"]), *cells])
    return ["## Conformance matrix", "", *table(head, rows), ""]


def properties_section(doc: dict[str, Any]) -> list[str]:
    rows = []
    for op, props in model.property_table(doc["records"]).items():
        for prop, p in props.items():
            rows.append(
                (
                    op,
                    prop,
                    MARK.get(p["status"], p["status"]),
                    ", ".join(p["dtypes"]) or "-",
                    p["records"],
                    p["examples"],
                    fmt_ratio(p["worst_error_ratio"]) or "-",
                )
            )
    return [
        "## Properties",
        "",
        *table(("operation", "property", "status", "dtypes", "records", "examples", "worst ratio"), rows),
        "",
    ]


def failure_lines(rec: dict[str, Any]) -> list[str]:
    """One failure: what, likely cause, counterexample, how to reproduce, the message."""
    from ..distinct import heading

    diag = rec.get("diagnosis") or {}
    bad = (rec.get("network") or {}).get("first_bad")
    if bad:
        cause = f"**first bad layer** ({bad['stage']}): {bad['hint']}"
    elif diag.get("slug"):
        cause = f"**likely cause: `{diag['slug']}`**: {diag['explanation']}{ranking(diag)}"
    elif diag:
        cause = f"likely cause: no known mistake matches ({diag['explanation']})"
    elif rec.get("counterexample") and not rec["counterexample"].get("shrunk", True):
        cause = "not diagnosed here: see the record of the shrunk counterexample (another dtype)"
    else:
        cause = "not diagnosed: the failure did not come from a comparison on a generated case"
    lines = [
        f"### {rec['op']} / {rec['property']} / `{rec['check']}` ({rec.get('dtype') or '-'}): "
        f"{rec['status'].upper()}",
        "",
        f"- {cause}",
    ]
    if rec.get("distinct_of"):  # one of several distinct failures of the check (convcheck.distinct)
        lines.append(
            f"- distinct failure {rec['distinct']} of {rec['distinct_of']} of this check: "
            f"{heading(rec['failures'][0])}"
        )
    spec = rec.get("counterexample")
    if spec:
        kind = "counterexample" if spec.get("shrunk", True) else "smallest failing example seen (not shrunk)"
        lines.append(f"- {kind}: `{spec['description']}`")
    rep = rec.get("reproduction") or {}
    if rep.get("command"):
        lines.append(f"- reproduce: `{rep['command']}`")
    if rep.get("rerun"):
        lines.append(f"- rerun the check: `{rep['rerun']}`")
    if rec.get("message"):
        lines += ["", "```", *rec["message"].splitlines()[:40], "```"]
    return [*lines, ""]


def failures_section(doc: dict[str, Any]) -> list[str]:
    """One entry per mistake (``convcheck.grouping``): its smallest failure in full, then the other
    checks that failed the same way in one line."""
    from ..grouping import failure_groups

    lines = ["## Failures", ""]
    groups = failure_groups(model.failures(doc))
    if not groups:
        return [*lines, "None.", ""]
    for group in groups:
        lines += [f"### {group.op}: {group.title} ({group.span()})", ""]
        entry = failure_lines(group.first)
        entry[0] = f"#{entry[0]}"  # the shown check, under its mistake's heading
        also = group.also_line()
        if also:
            entry.insert(3, f"- {also}")
        lines += entry
    return lines


def coverage_section(doc: dict[str, Any], limit: int = 12) -> list[str]:
    lines = [
        "## What the run exercised",
        "",
        "Distinct values each hyper-parameter took over every example (a pass covers these, no more).",
        "",
    ]
    for op in model.operations_in(doc):
        params = doc.get("coverage", {}).get(op, {})
        if not params:
            continue
        rows = []
        for key in sorted(set(params) - PAIR_KEYS):
            values = params[key]
            shown = ", ".join(values[:limit]) + (", ..." if len(values) > limit else "")
            rows.append((key, len(values), shown))
        lines += [f"### {op}", "", *table(("hyper-parameter", "distinct", "values"), rows), ""]
        if params.get("pairs_possible"):
            lines += [f"- {pairs_line(params)}", ""]
    return lines


def kinks_section(doc: dict[str, Any]) -> list[str]:
    """The course contract's notes and warnings at kinks (``spec.contracts``), when there are any."""
    found = model.kinks(doc)
    if not found:
        return []
    lines = ["## Notes and warnings at kinks", "", "Not failures under the course contract:", ""]
    for k in found:
        label = "note" if k["kind"] == "convention" else "warning"
        lines.append(f"- **{label}**: {k['line']} ({', '.join(k['properties'])})")
    return [*lines, ""]


def xfails_section(doc: dict[str, Any]) -> list[str]:
    """The run under its expected-failures file (``convcheck.xfails``): expected failures with their
    reasons, entries whose checks now pass, new failures; and the checks that met
    ``NotImplementedError`` (``convcheck.unsupported_calls``)."""
    lines: list[str] = []
    found = doc.get("xfails")
    if found:
        lines += ["## Expected failures (--xfails)", ""]
        for e in found["expected"]:
            link = f" ({e['link']})" if e.get("link") else ""
            lines.append(
                f"- **expected**: {e['op']}:{e['property']} `{e['test']}`: entry #{e['entry']}: {e['reason']}{link}"
            )
        for e in found["now_passing"]:
            lines.append(
                f"- **now passing**: entry #{e['entry']} ({e['reason']}): its checks passed; delete it"
            )
        for e in found["not_run"]:
            lines.append(f"- **not run**: entry #{e['entry']} ({e['reason']}): none of its checks ran")
        for e in found["new"]:
            lines.append(f"- **new failure**: {e['op']}:{e['property']} `{e['test']}`: no entry expects it")
        lines.append("")
    noted = {r["check"]: r for r in doc["records"] if r.get("not_implemented")}
    if noted:
        lines += ["## Unsupported at some cases (NotImplementedError)", ""]
        for check, r in noted.items():
            n = r["not_implemented"]
            lines.append(
                f"- `{check}`: {n['function']} raised NotImplementedError on {n['examples']} examples, "
                f"first on {n['first_case']}: {n['message']} (--strict fails them)"
            )
        lines.append("")
    return lines


def render(doc: dict[str, Any]) -> str:
    """report.md for ``doc``."""
    lines = [*header(doc), "", *matrix_section(doc), *kinks_section(doc), *xfails_section(doc)]
    lines += properties_section(doc)
    lines += tolerance_section(doc)
    lines += failures_section(doc)
    lines += coverage_section(doc)
    if doc.get("benchmark"):
        lines += ["## Benchmark", "", bench.markdown(doc["benchmark"]), ""]
    return "\n".join(lines).rstrip() + "\n"


def implementation_side_line(env: dict[str, Any]) -> list[str]:
    """The line naming the interpreter the implementation ran under (the worker's handshake), if any."""
    side = env.get("implementation_side")
    if not side:
        return []
    return [
        f"- implementation side: Python {side['python']} (`{side['executable']}`), NumPy {side['numpy']}, "
        f"{side['platform']}"
        + ("; no ml_dtypes there, so bfloat16 is not checked" if side.get("ml_dtypes", "") is None else "")
    ]

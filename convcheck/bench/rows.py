"""The benchmark's tables as rows of text, from a ``"benchmark"`` section (``convcheck.bench.record``).

One set of rows for every medium: the terminal (``convcheck.bench.console``),
bench.md (``convcheck.bench.markdown``) and bench.html (``convcheck.bench.html``)
render the same headers and cells.
"""

from __future__ import annotations

from typing import Any


def fmt_time(seconds: float | None) -> str:
    """``0.00123 -> '1.23 ms'``, with a unit that keeps three significant figures readable."""
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_ratio(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def fmt_num(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def check_text(f: dict[str, Any]) -> str:
    """``pass`` / ``FAIL`` / ``ERROR`` for a function record."""
    c = f.get("correctness")
    if c is None:
        return "-"
    return {"pass": "pass", "fail": "FAIL", "error": "ERROR"}.get(c["status"], c["status"])


ROW_HEADER = (
    "entry",
    "layer",
    "batch",
    "function",
    "impl median",
    "impl IQR",
    "torch median",
    "ratio",
    "impl GFLOP/s",
    "torch GFLOP/s",
    "runs",
    "check",
)


def rows(sec: dict[str, Any], corpus: str) -> list[tuple[str, ...]]:
    """Table rows (``ROW_HEADER``) for one corpus, one per entry and function."""
    out: list[tuple[str, ...]] = []
    for e in sec["entries"]:
        if e["corpus"] != corpus:
            continue
        if e["skipped"]:
            out.append(
                (e["id"], e["layer"], str(e["batch"]), "-", "skipped", "", "", "", "", "", "", e["skipped"])
            )
            continue
        for f in e["functions"]:
            impl, torch_ = f["impl"] or {}, f["torch"] or {}
            runs = f"{impl['runs']}x{impl['number']}" if impl else "-"
            out.append(
                (
                    e["id"],
                    e["layer"],
                    str(e["batch"]),
                    f["kind"],
                    fmt_time(impl.get("median")),
                    fmt_time(impl.get("iqr")),
                    fmt_time(torch_.get("median")),
                    fmt_ratio(f["ratio"]),
                    fmt_num(f["gflops"]["impl"]),
                    fmt_num(f["gflops"]["torch"]),
                    runs,
                    check_text(f) + (f": {f['note']}" if f["status"] != "ok" and f["note"] else ""),
                )
            )
    return out


SUMMARY_HEADER = (
    "corpus",
    "forward median ratio",
    "backward median ratio",
    "forward total",
    "backward total",
    "measured",
)


def summary_rows(sec: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per corpus: median and total ratios for forward and backward."""
    out: list[tuple[str, ...]] = []
    for name, block in sec["summary"]["corpora"].items():
        fwd, bwd = block["forward"], block["backward"]
        out.append(
            (
                name,
                fmt_ratio(fwd["median_ratio"]),
                fmt_ratio(bwd["median_ratio"]),
                fmt_ratio(fwd["total_ratio"]),
                fmt_ratio(bwd["total_ratio"]),
                f"{fwd['measured']} + {bwd['measured']}",
            )
        )
    return out


def headline(sec: dict[str, Any]) -> list[str]:
    """The lines that say what was measured, against what, on what."""
    impl, env, s = sec["implementation"], sec["environment"], sec["settings"]
    th = env["threads"]
    load = env["load_average"]["start"]
    return [
        f"{impl['name']} ({impl['source']}) against torch {sec['baseline']['version']}, "
        f"{s['dtype']}, batch {s['batch'] if s['batch'] is not None else 'per entry'}",
        f"threads: torch {th['torch']}, NumPy BLAS {th['numpy_blas'] if th['numpy_blas'] is not None else '?'} "
        f"({th['numpy_blas_source']}), {th['cpu_count']} CPUs"
        + (f"; load average at start {load[0]:.2f}" if load else ""),
        f"ratio = implementation median / torch median (below 1: faster than torch); "
        f"at least {s['min_runs']} runs and {s['min_time']} s per side",
    ]


__all__ = [
    "ROW_HEADER",
    "SUMMARY_HEADER",
    "check_text",
    "fmt_num",
    "fmt_ratio",
    "fmt_time",
    "headline",
    "rows",
    "summary_rows",
]

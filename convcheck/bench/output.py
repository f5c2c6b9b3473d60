"""bench.json and bench.md: the benchmark's results as data and as a Markdown table.

``convcheck bench --report DIR`` writes ``bench.json``, ``bench.md``,
``bench_ratio.svg``, ``bench_scaling.svg`` and ``bench.html`` into ``DIR`` (``--harness-check``
writes ``bench_overhead.json`` instead: ``convcheck.bench.overhead``).
The conformance report (``report.json`` / ``report.html``, written by
``convcheck run``) embeds the ``"benchmark"`` section of ``bench.json`` when
the file is present; ``convcheck bench-diff`` and ``convcheck report diff``
compare two such sections by ratio to PyTorch.

bench.json, format ``convcheck-bench`` version 1 (times in seconds; a
number that could not be measured is ``null``; keys are only ever added in
later versions of the same format)::

    {"benchmark": {
      "format": "convcheck-bench", "version": 1,
      "created": "2025-01-31T12:00:00Z",          # UTC, when the run ended
      "command": "convcheck bench --impl numpy_fast --batch 8",
      "implementation": {"name", "source", "version", "capabilities"},   # capabilities as declared
      "baseline": {"name": "torch", "version": "2.13.0", "description"},
      "environment": {
        "python", "platform", "machine", "processor", "numpy", "torch",
        "threads": {"requested": 1 | null, "torch": 1, "numpy_blas": 1 | null,
                    "numpy_blas_source": "...", "cpu_count": 2,
                    "environment": {"OMP_NUM_THREADS": null, ...}},
        "load_average": {"start": [1, 5, 15 min], "end": [...]}   # null off Unix
      },
      "settings": {"dtype": "float32", "batch": 8 | null (each entry's own),
                   "min_time", "min_runs", "max_runs", "warmup_time", "block_time",
                   "seed", "memory_limit_bytes", "memory_limit_why"},
      "corpora": [{"name", "version", "title", "description", "source", "file", "entries"}],
      "entries": [{
        "corpus": "resnet50", "id": "conv2.b", "key": "resnet50/conv2.b",
        "op": "conv2d", "layer": "conv2d 64x56x56 -> 64, 3x3 s1 p1",
        "source": "...", "count": 3,               # layers of the network with this shape
        "batch": 8, "input_shape": [8, 64, 56, 56], "output_shape": [8, 64, 56, 56],
        "weight_shape": [64, 64, 3, 3] | null, "bias": false,
        "params": {"stride": [1, 1], "padding": [1, 1, 1, 1], ...},   # the contract's keywords
        "series": {"name", "dimension", "value"} | null,
        "memory_estimate_bytes": 123456789,
        "skipped": "" | "unsupported: ..." | "too large: ...",
        "functions": [{
          "function": "conv2d_forward", "kind": "forward" | "backward",
          "flops": 3699376128,                      # convcheck.bench.flops
          "status": "ok" | "wrong" | "error" | "no-baseline",
          "note": "",                               # why, when status is not ok
          "correctness": {"status": "pass" | "fail" | "error", "oracle": "torch",
                          "message": "", "outputs": [{"name": "y", "passed", "error_ratio",
                                                      "max_abs", "max_ulp", "mismatches", "size"}]},
          "impl":  {"runs", "number", "min", "q1", "median", "q3", "max", "mean", "iqr", "calls"} | null,
          "torch": {... the same ...} | null,
          "ratio": 1.7 | null,                      # impl median / torch median
          "gflops": {"impl": 12.3 | null, "torch": 20.1 | null}
        }]
      }],
      "summary": {
        "corpora": {"resnet50": {
          "forward":  {"median_ratio": 1.8 | null, "total_ratio": 1.6 | null, "measured": 20},
          "backward": {...}}},
        "wrong": 0, "errors": 0, "skipped": 0
      }
    }}

``median_ratio`` is the median over the corpus's entries of the per-entry
ratio; ``total_ratio`` is the network's time ratio, ``sum(count * impl median)
/ sum(count * torch median)``, over the entries with a ratio.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .corpus import Corpus
from .memory import Limit
from .runner import EntryResult, FunctionResult, Settings

if TYPE_CHECKING:
    from ..impls.registry import Implementation

KEY = "benchmark"
FORMAT = "convcheck-bench"
VERSION = 1
KINDS = ("forward", "backward")

FILES = {
    "json": "bench.json",
    "markdown": "bench.md",
    "ratio": "bench_ratio.svg",
    "scaling": "bench_scaling.svg",
    "html": "bench.html",
}


# --------------------------------------------------------------------------- JSON


def _finite(x: float | None) -> float | None:
    """JSON has no inf or NaN: such a number becomes ``null``."""
    return x if x is None or math.isfinite(x) else None


def _clean(value: Any) -> Any:
    """``value`` with tuples as lists and non-finite floats as ``None``, recursively."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float):
        return _finite(value)
    return value


def function_record(fr: FunctionResult) -> dict[str, Any]:
    """The JSON record of one function on one entry."""
    return {
        "function": fr.function,
        "kind": fr.kind,
        "flops": fr.flops,
        "status": fr.status,
        "note": fr.note,
        "correctness": None if fr.verdict is None else fr.verdict.to_dict(),
        "impl": None if fr.impl is None else fr.impl.to_dict(),
        "torch": None if fr.torch is None else fr.torch.to_dict(),
        "ratio": fr.ratio,
        "gflops": {"impl": fr.gflops(fr.impl), "torch": fr.gflops(fr.torch)},
    }


def entry_record(r: EntryResult) -> dict[str, Any]:
    """The JSON record of one entry."""
    e = r.entry
    shapes = e.shapes(r.batch)
    return {
        "corpus": e.corpus,
        "id": e.id,
        "key": e.key,
        "op": e.op,
        "layer": e.describe(),
        "source": e.source,
        "count": e.count,
        "batch": r.batch,
        "input_shape": list(shapes["x"] or ()),
        "output_shape": list(e.output_shape(r.batch)),
        "weight_shape": None if shapes.get("w") is None else list(shapes["w"] or ()),
        "bias": e.bias,
        "params": e.params.kwargs(),
        "series": None if e.series is None else vars(e.series).copy(),
        "memory_estimate_bytes": r.memory_estimate,
        "skipped": r.skipped,
        "functions": [function_record(f) for f in r.functions],
    }


def summarize(entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ``summary`` block from entry records (module docstring)."""
    corpora: dict[str, Any] = {}
    for name in dict.fromkeys(e["corpus"] for e in entries):
        block = {}
        for kind in KINDS:
            pairs = [
                (e["count"], f)
                for e in entries
                if e["corpus"] == name
                for f in e["functions"]
                if f["kind"] == kind and f["ratio"] is not None
            ]
            ratios = [f["ratio"] for _, f in pairs]
            impl_total = sum(c * f["impl"]["median"] for c, f in pairs)
            torch_total = sum(c * f["torch"]["median"] for c, f in pairs)
            block[kind] = {
                "median_ratio": statistics.median(ratios) if ratios else None,
                "total_ratio": impl_total / torch_total if torch_total > 0 else None,
                "measured": len(ratios),
            }
        corpora[name] = block
    statuses = [f["status"] for e in entries for f in e["functions"]]
    return {
        "corpora": corpora,
        "wrong": statuses.count("wrong"),
        "errors": statuses.count("error"),
        "skipped": sum(1 for e in entries if e["skipped"]),
    }


def environment(threads: dict[str, Any], load_start: Sequence[float] | None) -> dict[str, Any]:
    """Versions, platform, thread counts and load averages for the report."""
    import numpy
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "threads": threads,
        "load_average": {"start": None if load_start is None else list(load_start), "end": load_average()},
    }


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or ``None`` where the system has none."""
    try:
        return list(os.getloadavg())
    except (OSError, AttributeError):
        return None


def section(
    impl: Implementation,
    corpora: Sequence[Corpus],
    results: Iterable[EntryResult],
    settings: Settings,
    limit: Limit,
    env: dict[str, Any],
    command: str,
) -> dict[str, Any]:
    """The ``"benchmark"`` section of bench.json (module docstring)."""
    import torch

    entries = [entry_record(r) for r in results]
    policy = settings.policy
    return _clean(
        {
            "format": FORMAT,
            "version": VERSION,
            "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": command,
            "implementation": {
                "name": impl.name,
                "source": impl.source,
                "version": impl.version,
                "capabilities": impl.capabilities.to_dict(),
            },
            "baseline": {
                "name": "torch",
                "version": torch.__version__,
                "description": "torch.nn.functional forward under no_grad; backward by autograd.grad on a "
                "retained graph; same inputs, same dtype, same threads",
            },
            "environment": env,
            "settings": {
                "dtype": settings.dtype,
                "batch": settings.batch,
                "min_time": policy.min_time,
                "min_runs": policy.min_runs,
                "max_runs": policy.max_runs,
                "warmup_time": policy.warmup_time,
                "block_time": policy.block_time,
                "seed": settings.seed,
                "memory_limit_bytes": limit.bytes,
                "memory_limit_why": limit.why,
            },
            "corpora": [c.info() for c in corpora],
            "entries": entries,
            "summary": summarize(entries),
        }
    )


def read_section(path: str | Path) -> dict[str, Any]:
    """The ``"benchmark"`` section of a bench.json (or of a report that embeds one); ``ValueError`` if none."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ValueError(f"{path}: cannot be read: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
    sec = doc.get(KEY) if isinstance(doc, dict) else None
    if not isinstance(sec, dict) or sec.get("format") != FORMAT:
        raise ValueError(
            f"{path}: no {KEY!r} section of format {FORMAT!r}; give a bench.json written by `convcheck bench "
            "--report DIR` (or a report that embeds one)"
        )
    if sec.get("version") != VERSION:
        raise ValueError(
            f"{path}: {FORMAT} version {sec.get('version')!r}; this convcheck reads version {VERSION}"
        )
    return sec


# --------------------------------------------------------------------------- Markdown


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


def _md_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    def cell(s: str) -> str:
        return s.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in body]
    return lines


def markdown(sec: dict[str, Any]) -> str:
    """bench.md: the headline, the per-corpus summary and a table per corpus."""
    lines = [f"# convcheck bench: {sec['implementation']['name']} against torch", ""]
    lines += [f"- {h}" for h in headline(sec)]
    lines += ["", "## Summary", "", *_md_table(SUMMARY_HEADER, summary_rows(sec))]
    for c in sec["corpora"]:
        lines += [
            "",
            f"## {c['title']} (`{c['name']}`)",
            "",
            c["description"],
            "",
            f"Source: {c['source']}",
            "",
        ]
        lines += _md_table(ROW_HEADER, rows(sec, c["name"]))
    return "\n".join(lines) + "\n"


def write(sec: dict[str, Any], directory: str | Path) -> dict[str, Path]:
    """Write bench.json, bench.md, both figures and bench.html into ``directory``; the paths by kind."""
    from . import html, plots

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {kind: out / name for kind, name in FILES.items()}
    paths["json"].write_text(json.dumps({KEY: sec}, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    paths["markdown"].write_text(markdown(sec), encoding="utf-8")
    figures = plots.figures(sec)
    paths["ratio"].write_text(figures["ratio"], encoding="utf-8")
    paths["scaling"].write_text(figures["scaling"], encoding="utf-8")
    paths["html"].write_text(html.page(sec, figures), encoding="utf-8")
    return paths


__all__ = [
    "FILES",
    "FORMAT",
    "KEY",
    "VERSION",
    "entry_record",
    "function_record",
    "markdown",
    "read_section",
    "rows",
    "section",
    "summarize",
    "summary_rows",
    "write",
]

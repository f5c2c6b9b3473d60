"""A benchmark run found in the report folder, embedded in the conformance report.

``convcheck bench --report DIR`` (``convcheck.bench``) writes ``bench.json``
(top-level key ``"benchmark"``) and its figures ``bench_ratio.svg`` and
``bench_scaling.svg`` into the same folder. When they are there, report.json
carries the ``"benchmark"`` section and report.html shows its table and the
two figures inline. The benchmark's own modules render it when they are
installed; otherwise a plain fallback shows the section's headline numbers and
the figures.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

BENCH_JSON = "bench.json"
FIGURES = {"ratio": "bench_ratio.svg", "scaling": "bench_scaling.svg"}
KEY = "benchmark"


def read(folder: str | Path) -> dict[str, Any] | None:
    """The ``"benchmark"`` section of ``folder/bench.json``, or ``None`` when there is none (or it is unusable)."""
    path = Path(folder) / BENCH_JSON
    if not path.is_file():
        return None
    try:
        from ..bench.output import read_section
    except ImportError:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        section = doc.get(KEY) if isinstance(doc, dict) else None
        return section if isinstance(section, dict) else None
    try:
        return read_section(path)
    except ValueError:
        return None


def svg_files(folder: str | Path) -> dict[str, str]:
    """The benchmark's figures found in ``folder``, as inline SVG markup, by name."""
    out = {}
    for name, filename in FIGURES.items():
        path = Path(folder) / filename
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            out[name] = re.sub(r"^\s*(<\?xml[^>]*\?>)?\s*(<!DOCTYPE[^>]*>)?", "", text, flags=re.S)
    return out


def html_fragment(section: dict[str, Any], folder: str | Path) -> str:
    """The benchmark section as HTML: the benchmark's own fragment, or the fallback."""
    figures = svg_files(folder)
    try:
        from ..bench.html import fragment
    except ImportError:
        return _fallback_html(section, figures)
    try:
        return fragment(section, figures if len(figures) == len(FIGURES) else None)
    except Exception as e:  # a newer or older section than the renderer knows: show what we can
        return _fallback_html(
            section, figures, note=f"the benchmark renderer failed: {type(e).__name__}: {e}"
        )


def markdown(section: dict[str, Any]) -> str:
    """The benchmark section as Markdown: the benchmark's own table, or headline numbers."""
    try:
        from ..bench.output import markdown as bench_markdown

        return bench_markdown(section)
    except Exception:
        return "\n".join(f"- {k}: {v}" for k, v in _headline(section))


def _headline(section: dict[str, Any]) -> list[tuple[str, str]]:
    impl = section.get("implementation") or {}
    settings = section.get("settings") or {}
    summary = section.get("summary") or {}
    return [
        ("implementation", str(impl.get("name", "?"))),
        ("dtype", str(settings.get("dtype", "?"))),
        ("entries", str(len(section.get("entries") or []))),
        ("summary", json.dumps(summary.get("corpora", summary))[:500]),
    ]


def _fallback_html(section: dict[str, Any], figures: dict[str, str], note: str = "") -> str:
    items = "".join(f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in _headline(section))
    figs = "".join(f"<figure>{svg}</figure>" for svg in figures.values())
    extra = f"<p>{html.escape(note)}</p>" if note else ""
    return f'<section class="convcheck-bench"><h2>Benchmark</h2>{extra}<ul>{items}</ul>{figs}</section>'

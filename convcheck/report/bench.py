"""A benchmark run found in the report folder, embedded in the conformance report.

``convcheck bench --report DIR`` (``convcheck.bench``) writes ``bench.json``
(top-level key ``"benchmark"``) and its figures ``bench_ratio.svg`` and
``bench_scaling.svg`` into the same folder. When they are there, report.json
carries the ``"benchmark"`` section and report.html shows its table and the
two figures inline, rendered by the benchmark's own renderers
(``convcheck.bench.html`` and ``convcheck.bench.markdown``); a section they
cannot render is an error, not a silently shortened page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..bench import html as bench_html
from ..bench import markdown as bench_markdown
from ..bench.record import read_section
from .templating import inline_svg

BENCH_JSON = "bench.json"
FIGURES = {"ratio": "bench_ratio.svg", "scaling": "bench_scaling.svg"}


def read(folder: str | Path) -> dict[str, Any] | None:
    """The ``"benchmark"`` section of ``folder/bench.json``; ``None`` when there is no such file or it
    holds no usable section (``convcheck.bench.record.read_section``), so that nothing is embedded."""
    path = Path(folder) / BENCH_JSON
    if not path.is_file():
        return None
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
            out[name] = inline_svg(path.read_text(encoding="utf-8"))
    return out


def html_fragment(section: dict[str, Any], folder: str | Path) -> str:
    """The benchmark section as HTML, with the figures found in ``folder`` (drawn anew if either is missing)."""
    figures = svg_files(folder)
    return bench_html.fragment(section, figures if len(figures) == len(FIGURES) else None)


def markdown(section: dict[str, Any]) -> str:
    """The benchmark section as Markdown (bench.md's text)."""
    return bench_markdown.markdown(section)

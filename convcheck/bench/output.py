"""The files of ``convcheck bench --report DIR``: bench.json, bench.md, the two figures and bench.html.

``convcheck bench --report DIR`` writes ``bench.json`` (``convcheck.bench.record``),
``bench.md`` (``convcheck.bench.markdown``), ``bench_ratio.svg`` and
``bench_scaling.svg`` (``convcheck.bench.plots``) and ``bench.html``
(``convcheck.bench.html``) into ``DIR`` (``--harness-check`` writes
``bench_overhead.json`` instead: ``convcheck.bench.overhead``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import html, plots
from .markdown import markdown
from .record import KEY

FILES = {
    "json": "bench.json",
    "markdown": "bench.md",
    "ratio": "bench_ratio.svg",
    "scaling": "bench_scaling.svg",
    "html": "bench.html",
}


def write(sec: dict[str, Any], directory: str | Path) -> dict[str, Path]:
    """Write bench.json, bench.md, both figures and bench.html into ``directory``; the paths by kind."""
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


__all__ = ["FILES", "write"]

"""report.html: one self-contained page (inline CSS and SVG, no scripts, no network).

Rendered with jinja2 from ``templates/report.html.j2`` (autoescaped; only the
SVG figures, drawn here by matplotlib, and the benchmark's own fragment are
inserted as markup). It shows the conformance matrix, the properties, the
tolerance table with error ratios, the plots, each failure with its
counterexample, diagnosis and copy-pasteable reproduction (the script inline),
what the run exercised, the environment, and a benchmark found in the folder.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..diagnosis import ranking
from ..pairs import readable
from . import bench, matrix, model, plots, templating


def environment() -> Any:
    """The jinja2 environment of convcheck's templates (``templating``), with the report's helpers."""
    env = templating.environment()
    env.globals.update(fmt_ratio=model.fmt_ratio, bar_width=bar_width, diagnosis_ranking=ranking)
    return env


def bar_width(ratio: Any) -> float:
    """Width (percent) of a ratio's bar: log10 from 1e-8 (0%) to 1 (100%), capped at 100."""
    r = model.as_float(ratio)
    if not r or r <= 0:
        return 0.0
    if math.isinf(r):
        return 100.0
    return max(0.0, min(100.0, (math.log10(r) + 8.0) / 8.0 * 100.0))


def _scripts(document: dict[str, Any], folder: Path | None) -> dict[str, str]:
    """The reproduction scripts of failed records, read from the report folder."""
    out: dict[str, str] = {}
    if folder is None:
        return out
    from ..distinct import expand

    for rec in expand(model.failures(document)):  # a check that failed in several ways: each one's
        script = (rec.get("reproduction") or {}).get("script")
        if script and (folder / script).is_file():
            out[rec["id"]] = (folder / script).read_text(encoding="utf-8")
    return out


def render(document: dict[str, Any], folder: str | Path | None = None) -> str:
    """report.html for ``document``; ``folder`` holds its scripts and any benchmark files."""
    from ..distinct import heading
    from ..grouping import failure_groups

    folder = None if folder is None else Path(folder)
    benchmark = document.get("benchmark")
    benchmark_html = bench.html_fragment(benchmark, folder or Path(".")) if benchmark else ""
    template = environment().get_template("report.html.j2")
    groups = failure_groups(model.failures(document))  # one article per mistake
    return template.render(
        doc=document,
        impl=document["implementation"],
        env=document["environment"],
        run=document["run"],
        summary=document["summary"],
        tolerance=document["tolerance"],
        policy=document["tolerance"]["policy"],
        matrix=matrix.matrix(document),
        properties=model.property_table(document["records"]),
        tolerance_rows=model.tolerance_rows(document),
        figures=plots.figures(document),
        failures=[g.first for g in groups],
        groups={g.first["id"]: g for g in groups},
        scripts=_scripts(document, folder),
        coverage={
            op: readable(document["coverage"][op])
            for op in model.operations_in(document)
            if op in document["coverage"]
        },
        benchmark_html=benchmark_html,
        kinks=model.kinks(document),
        distinct_heading=heading,
    )

"""The report's figures, drawn at build time with matplotlib as inline SVG text (no JavaScript).

* ``ratio_distribution``: per operation, how the error ratios of every
  comparison the run made are distributed (log scale, float32 and float64
  stacked), with the bound (ratio 1) marked: a correct implementation piles
  up well to its left, a wrong one has a tail past it.
* ``worst_ratios``: the worst error ratio per operation, output and dtype,
  against the bound.

Figures use matplotlib's object API (no pyplot state) and write text as text
(``svg.fonttype: none``), with a fixed hash salt and no date, so the same
report renders to the same SVG.
"""

from __future__ import annotations

import io
import re
from collections import defaultdict
from typing import Any

from .model import as_float, operations_in

DTYPE_COLOURS = {"float16": "#55a868", "bfloat16": "#8172b3", "float32": "#4c72b0", "float64": "#dd8452"}
BOUND_COLOUR = "#c44e52"
FLOOR = 1e-10
"""Worst ratios of exactly zero are drawn at this floor on log axes."""


def _svg(fig: Any) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "convcheck"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = buf.getvalue()
    return re.sub(r"^\s*(<\?xml[^>]*\?>)?\s*(<!DOCTYPE[^>]*>)?", "", svg, flags=re.S)


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def histograms(document: dict[str, Any]) -> dict[str, dict[str, tuple[int, list[int]]]]:
    """``[op][dtype] = (zeros, counts)``: every comparison's error ratio, binned (see ``RATIO_EDGES``)."""
    n_bins = len(document.get("histogram_log10_edges", [])) + 1
    out: dict[str, dict[str, tuple[int, list[int]]]] = defaultdict(dict)
    for rec in document.get("records", []):
        for stats in (rec.get("errors") or {}).values():
            hist = stats.get("histogram") or []
            if len(hist) != n_bins:
                continue
            zeros, counts = out[rec["op"]].get(rec["dtype"], (0, [0] * n_bins))
            out[rec["op"]][rec["dtype"]] = (
                zeros + int(stats.get("zeros", 0)),
                [a + b for a, b in zip(counts, hist, strict=True)],
            )
    return out


def ratio_distribution(document: dict[str, Any]) -> str | None:
    """Stacked histograms of log10(error ratio), one panel per operation; ``None`` without data."""
    data = histograms(document)
    ops = [op for op in operations_in(document) if op in data]
    edges = list(document.get("histogram_log10_edges", []))
    if not ops or not edges:
        return None
    fig = _figure(8.0, 1.9 * len(ops) + 0.6)
    axes = fig.subplots(len(ops), 1, sharex=True, squeeze=False)[:, 0]
    step = edges[1] - edges[0]
    lefts = [edges[0] - step, *edges]  # bin 0: below the first edge; the last: at or above the last edge
    zero_x = lefts[0] - 2 * step
    for ax, op in zip(axes, ops, strict=True):
        bottom_zero, bottoms = 0, [0] * len(lefts)
        for dtype in sorted(data[op]):
            zeros, counts = data[op][dtype]
            colour = DTYPE_COLOURS.get(dtype, "#888888")
            ax.bar(lefts, counts, width=step, bottom=bottoms, align="edge", color=colour, label=dtype)
            ax.bar(
                [zero_x], [zeros], width=step, bottom=[bottom_zero], align="edge", color=colour, hatch="//"
            )
            bottoms = [a + b for a, b in zip(bottoms, counts, strict=True)]
            bottom_zero += zeros
        ax.axvline(0.0, color=BOUND_COLOUR, linestyle="--", linewidth=1.2)
        ax.text(
            0.05, 0.92, "bound (ratio 1)", color=BOUND_COLOUR, transform=ax.get_xaxis_transform(), va="top"
        )
        ax.set_ylabel("comparisons")
        ax.set_title(op, loc="left", fontsize=10)
        ax.legend(loc="upper center", fontsize=8, frameon=False, ncols=2)
    ticks = [zero_x + step / 2, *range(int(edges[0]), int(edges[-1]) + 1)]
    labels = ["=0", *(f"1e{t}" if t else "1" for t in range(int(edges[0]), int(edges[-1]) + 1))]
    axes[-1].set_xticks(ticks, labels, fontsize=8)
    axes[-1].set_xlabel("error ratio = |got - expected| / bound (log scale; '=0': bitwise equal)")
    fig.suptitle("Distribution of error ratios over every comparison", fontsize=11)
    return _svg(fig)


def worst_ratios(document: dict[str, Any]) -> str | None:
    """Horizontal bars: the worst error ratio per (operation, output, dtype), log scale."""
    worst: dict[tuple[str, str, str], float] = {}
    for rec in document.get("records", []):
        for name, stats in (rec.get("errors") or {}).items():
            r = as_float(stats.get("error_ratio"))
            if r is None or not stats.get("comparisons"):
                continue
            key = (rec["op"], name, rec["dtype"] or "")
            worst[key] = max(worst.get(key, 0.0), r)
    if not worst:
        return None
    keys = sorted(
        worst,
        key=lambda k: (operations_in(document).index(k[0]) if k[0] in operations_in(document) else 9, k),
    )
    values = [min(max(worst[k], FLOOR), 1e6) for k in keys]
    fig = _figure(8.0, 0.28 * len(keys) + 1.2)
    ax = fig.subplots()
    colours = [BOUND_COLOUR if worst[k] > 1 else DTYPE_COLOURS.get(k[2], "#888888") for k in keys]
    ax.barh(range(len(keys)), values, color=colours, left=FLOOR)
    ax.set_xscale("log")
    ax.set_xlim(FLOOR, max(10.0, max(values) * 3))
    ax.axvline(1.0, color=BOUND_COLOUR, linestyle="--", linewidth=1.2)
    ax.set_yticks(range(len(keys)), [f"{op} {name} {dtype}" for op, name, dtype in keys], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("worst error ratio (bars past the dashed line fail the bound)")
    ax.set_title("Worst error ratio per operation, output and dtype", fontsize=11)
    return _svg(fig)


def figures(document: dict[str, Any]) -> dict[str, str]:
    """Every figure that has data, by name."""
    out = {}
    for name, fn in (("ratio_distribution", ratio_distribution), ("worst_ratios", worst_ratios)):
        svg = fn(document)
        if svg:
            out[name] = svg
    return out

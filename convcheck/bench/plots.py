"""The benchmark's two figures, as SVG text, drawn from a bench.json ``"benchmark"`` section.

* ``ratio``: a horizontal bar per layer and pass (forward, backward), the
  implementation's median time over PyTorch's on a log axis, with lines at 1
  (as fast as PyTorch) and 2 (the target).
* ``scaling``: median time against FLOPs on log-log axes, one curve per
  ``series`` of the scaling sweep and pass, with the least-squares slope in
  the legend (slope 1: time proportional to the work), PyTorch dashed in the
  same colour. Without sweep entries the conv2d layers are plotted as points,
  one set per corpus and pass, each with its fitted slope.

Drawn with matplotlib's object API (no pyplot, no global state, the Agg
canvas), with a fixed hash salt and no date so that the same data give the
same file.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

from .stats import loglog_slope

TARGET = 2.0
"""The ratio the project aims to stay under on the big networks."""

KIND_COLOURS = {"forward": "#1f77b4", "backward": "#d62728"}


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _svg(fig: Any) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "convcheck", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    return buf.getvalue()


def _empty(message: str) -> str:
    fig = _new_figure(6, 1.2)
    fig.text(0.5, 0.5, message, ha="center", va="center")
    return _svg(fig)


def ratio_bars(sec: dict[str, Any]) -> list[tuple[str, str, float]]:
    """``(label, kind, ratio)`` for every measured function, in report order."""
    return [
        (f"{e['key']} {'fwd' if f['kind'] == 'forward' else 'bwd'}", f["kind"], f["ratio"])
        for e in sec["entries"]
        for f in e["functions"]
        if f["ratio"] is not None
    ]


def ratio_chart(sec: dict[str, Any]) -> str:
    """SVG: implementation / torch median time per layer and pass (module docstring)."""
    bars = ratio_bars(sec)
    if not bars:
        return _empty("no ratio to plot: nothing was both checked and timed against torch")
    fig = _new_figure(8, 1.0 + 0.22 * len(bars))
    ax = fig.add_subplot()
    ys = list(range(len(bars)))[::-1]
    ax.barh(ys, [b[2] for b in bars], color=[KIND_COLOURS[b[1]] for b in bars], height=0.7)
    ax.set_yticks(ys, [b[0] for b in bars], fontsize=7)
    ax.set_ylim(-0.6, len(bars) - 0.4)
    ax.set_xscale("log")
    lo = min(min(b[2] for b in bars), 0.5)
    hi = max(max(b[2] for b in bars), TARGET * 1.5)
    ax.set_xlim(lo / 1.3, hi * 1.3)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.axvline(TARGET, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("median time / torch median time (log scale; 1 = as fast as torch, dashed = 2x)")
    impl = sec["implementation"]["name"]
    ax.set_title(f"{impl} against torch, {sec['settings']['dtype']} (blue forward, red backward)")
    ax.grid(axis="x", which="both", alpha=0.3)
    return _svg(fig)


def scaling_series(
    sec: dict[str, Any],
) -> tuple[str, dict[tuple[str, str], list[tuple[float, float, float]]]]:
    """Curves ``{(name, kind): [(flops, impl median, torch median or nan)]}`` sorted by FLOPs, and their grouping.

    The grouping is ``"series"`` (the sweep's curves) when any entry has a
    series, else ``"corpus"``: the conv2d entries of each corpus (pooling's
    window counts are not comparable with conv FLOPs).
    """
    has_series = any(e["series"] for e in sec["entries"])
    curves: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for e in sec["entries"]:
        if (has_series and not e["series"]) or (not has_series and e["op"] != "conv2d"):
            continue
        name = e["series"]["name"] if has_series else e["corpus"]
        for f in e["functions"]:
            if f["impl"] is None or f["flops"] <= 0:
                continue
            torch_median = f["torch"]["median"] if f["torch"] else math.nan
            curves.setdefault((name, f["kind"]), []).append((f["flops"], f["impl"]["median"], torch_median))
    return ("series" if has_series else "corpus"), {k: sorted(v) for k, v in curves.items()}


def _slope_text(points: Sequence[tuple[float, float]]) -> str:
    try:
        slope, _ = loglog_slope([p[0] for p in points], [p[1] for p in points])
    except ValueError:
        return "slope n/a"
    return f"slope {slope:.2f}"


def scaling_chart(sec: dict[str, Any]) -> str:
    """SVG: median time against FLOPs, log-log, with fitted slopes (module docstring)."""
    import matplotlib

    grouping, curves = scaling_series(sec)
    if not curves:
        return _empty("no timings to plot")
    fig = _new_figure(8, 5.5)
    ax = fig.add_subplot()
    colours = matplotlib.colormaps["tab10"]
    names = list(dict.fromkeys(name for name, _ in curves))
    style = "-" if grouping == "series" else "none"  # a sweep is a curve; a network's layers are a cloud
    for (name, kind), pts in curves.items():
        colour = colours(names.index(name) % 10)
        marker = "o" if kind == "forward" else "s"
        xs, impl_t = [p[0] for p in pts], [p[1] for p in pts]
        label = f"{name} {kind}: {_slope_text(list(zip(xs, impl_t, strict=True)))}"
        ax.plot(xs, impl_t, marker=marker, linestyle=style, color=colour, label=label)
        torch_pts = [(p[0], p[2]) for p in pts if not math.isnan(p[2])]
        if torch_pts:
            ax.plot(
                [p[0] for p in torch_pts],
                [p[1] for p in torch_pts],
                linestyle="--" if grouping == "series" else "none",
                marker=marker,
                markerfacecolor="none",
                color=colour,
                alpha=0.6,
                label=f"  torch {kind}: {_slope_text(torch_pts)}",
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("FLOPs per call")
    ax.set_ylabel("median time per call (s)")
    what = "scaling sweep" if grouping == "series" else "conv2d layers, by corpus"
    ax.set_title(f"{sec['implementation']['name']} (solid) and torch (dashed): time against work, {what}")
    ax.grid(which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return _svg(fig)


def figures(sec: dict[str, Any]) -> dict[str, str]:
    """Both figures as SVG text: ``{"ratio": ..., "scaling": ...}``."""
    return {"ratio": ratio_chart(sec), "scaling": scaling_chart(sec)}


__all__ = ["TARGET", "figures", "ratio_bars", "ratio_chart", "scaling_chart", "scaling_series"]

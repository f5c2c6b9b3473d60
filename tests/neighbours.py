"""The smaller valid neighbours of a convolution or pooling case, in the natural order.

A neighbour differs from its case in one number, decreased by one or straight to its least
value: the batch ``N``, the input channels ``C``, the output channels ``K`` (a convolution's,
one per group at a time), each spatial length, each kernel length, each stride, each side's
padding, each dilation, the groups; last, one side's padding traded for one more input cell on
that axis (the same window span, with no padding). They come in that order, the order in which
a counterexample is called smaller. A neighbour is a candidate only when the spec calls it valid
(``Operation.check``) and the capabilities declare it: the support levels its hyper-parameters
need (``Capabilities.admits``), the exact-fit geometry of a ``geometry = "exact"`` declaration,
and the per-case ``supports`` predicate.

A neighbour keeps the case's arrays, cut to the new shapes (the values at the remaining
positions are kept). Each cut is tried from both ends: first keeping the leading cells of every
axis that shrinks, then the trailing ones, so that a failure which needs only the last channel,
sample or column (a negative value in channel 1, say) still shrinks to one. An array that must grow (``dy`` when a smaller stride gives more outputs,
``w`` when fewer groups give each more input channels) takes the case's values where it had
some and values of the case's family elsewhere, drawn from the case's seed. The other
operations (dense layers, activations, losses) have no neighbours here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from convcheck.spec import Capabilities, InvalidConfiguration
from convcheck.spec.case import Case
from convcheck.spec.errors import CapabilityError
from convcheck.spec.ops import geometry_of
from convcheck.spec.shapes import effective_kernel

from .values import fill, window_has_ties

WINDOW_FAMILIES = ("conv", "max_pool", "avg_pool")
"""The operation families whose cases have neighbours."""
CUT = "cut"
"""The note a neighbour carries: its arrays are cut from another case's, not what ``make_case`` draws
(``checks.reproduction`` then spells them out)."""


@dataclass(frozen=True)
class Geometry:
    """The numbers of a window case that a neighbour may decrease, in the natural order.

    ``c_out`` is a convolution's (a pooling layer's equals ``c_in``); ``groups`` is 1 for pooling.
    """

    batch: int
    c_in: int
    c_out: int
    spatial: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int


def geometry(case: Case) -> Geometry | None:
    """The case's ``Geometry``, or ``None`` for an operation without neighbours."""
    op = case.op
    if op.family not in WINDOW_FAMILIES:
        return None
    p = case.params
    x = case.x.shape
    conv = op.family == "conv"
    kernel = tuple(case.array("w").shape[2:]) if conv else tuple(p.kernel_size)
    return Geometry(
        batch=x[0],
        c_in=x[1],
        c_out=case.array("w").shape[0] if conv else x[1],
        spatial=tuple(x[2:]),
        kernel=kernel,
        stride=tuple(p.stride),
        padding=tuple(p.padding),
        dilation=tuple(p.dilation),
        groups=p.groups if conv else 1,
    )


def _lower(value: int, least: int, step: int = 1, *more: int) -> list[int]:
    """The values below ``value`` a neighbour tries, smallest first: ``least`` (and ``more``) and
    ``value - step``, each at least ``least``."""
    tried = {v for v in (least, *more, value - step) if least <= v < value}
    return sorted(tried)


def _set(t: tuple[int, ...], i: int, v: int) -> tuple[int, ...]:
    return (*t[:i], v, *t[i + 1 :])


def smaller(g: Geometry, conv: bool) -> Iterator[Geometry]:
    """Every geometry one decrease away from ``g``, in the natural order (valid or not)."""
    for v in _lower(g.batch, 1):
        yield replace(g, batch=v)
    for v in _lower(g.c_in, g.groups, g.groups):
        yield replace(g, c_in=v, c_out=g.c_out if conv else v)
    if conv:
        for v in _lower(g.c_out, g.groups, g.groups):
            yield replace(g, c_out=v)
    for a, n in enumerate(g.spatial):
        fit = effective_kernel(g.kernel[a], g.dilation[a]) - g.padding[2 * a] - g.padding[2 * a + 1]
        for v in _lower(n, 1, 1, fit):
            yield replace(g, spatial=_set(g.spatial, a, v))
    for a, k in enumerate(g.kernel):
        for v in _lower(k, 1):
            yield replace(g, kernel=_set(g.kernel, a, v))
    for a, s in enumerate(g.stride):
        for v in _lower(s, 1):
            yield replace(g, stride=_set(g.stride, a, v))
    for side, pad in enumerate(g.padding):
        for v in _lower(pad, 0):
            yield replace(g, padding=_set(g.padding, side, v))
    for a, d in enumerate(g.dilation):
        for v in _lower(d, 1):
            yield replace(g, dilation=_set(g.dilation, a, v))
    for v in _lower(g.groups, 1):
        yield replace(g, groups=v)
    for side, pad in enumerate(g.padding):  # the same span with one cell of input for one of padding
        if pad:
            a = side // 2
            yield replace(
                g, padding=_set(g.padding, side, pad - 1), spatial=_set(g.spatial, a, g.spatial[a] + 1)
            )


def params_of(case: Case, g: Geometry) -> Any:
    """The case's hyper-parameter record with ``g``'s values (``None`` when the record refuses them)."""
    names = {f.name for f in fields(case.params)}
    values: dict[str, Any] = {"stride": g.stride, "padding": g.padding}
    if "dilation" in names:
        values["dilation"] = g.dilation
    if "groups" in names:
        values["groups"] = g.groups
    if "kernel_size" in names:
        values["kernel_size"] = g.kernel
    try:
        return replace(case.params, **values)
    except InvalidConfiguration:
        return None


def shapes_of(case: Case, g: Geometry) -> dict[str, tuple[int, ...] | None]:
    """The input shapes of ``g`` (a convolution keeps the presence or absence of its bias)."""
    shapes: dict[str, tuple[int, ...] | None] = {"x": (g.batch, g.c_in, *g.spatial)}
    if case.op.family == "conv":
        shapes["w"] = (g.c_out, g.c_in // g.groups, *g.kernel)
        shapes["b"] = None if case.inputs.get("b") is None else (g.c_out,)
    return shapes


def admitted(case: Case, params: Any, shapes: dict[str, tuple[int, ...] | None], caps: Capabilities) -> bool:
    """Whether a case of ``params`` and ``shapes`` is valid by the spec and declared by ``caps``."""
    op = case.op
    try:
        op.check(shapes, params)
        if caps.excluded(op, params) is not None:
            return False
    except (InvalidConfiguration, CapabilityError):
        return False
    if not caps.admits(op, params):
        return False
    exact_only = not caps.supports(op, "geometry", "any")
    return not exact_only or geometry_of(op, shapes, params) == "exact"


def resized(
    a: np.ndarray, shape: tuple[int, ...], case: Case, role: str, from_end: bool = False
) -> np.ndarray:
    """``a`` cut (or grown) to ``shape``: its values where both have cells (an axis that shrinks
    keeps its leading cells, or its trailing ones ``from_end``), elsewhere values of the case's
    family for ``role`` drawn from the case's seed."""
    if a.shape == tuple(shape):
        return a
    pairs = list(zip(a.shape, shape, strict=True))
    kept = tuple(slice(n - m, n) if from_end and m < n else slice(0, min(n, m)) for n, m in pairs)
    if all(m <= n for n, m in pairs):
        return a[kept].copy()
    out = fill(case.family, role, tuple(shape), np.random.default_rng(case.seed), case.dtype).astype(a.dtype)
    out[tuple(slice(0, min(n, m)) for n, m in pairs)] = a[kept]
    return out


def _cuts(case: Case, shapes: dict[str, tuple[int, ...] | None]) -> bool:
    """Whether some input array of ``case`` loses cells on an axis under ``shapes``."""
    return any(
        a is not None
        and shapes.get(name) is not None
        and any(m < n for n, m in zip(a.shape, shapes[name] or (), strict=True))
        for name, a in case.inputs.items()
    )


def rebuilt(
    case: Case, params: Any, shapes: dict[str, tuple[int, ...] | None], from_end: bool = False
) -> Case:
    """``case`` with ``params`` and its arrays resized to ``shapes`` (``dy`` to the new output),
    cut from the trailing end ``from_end`` (``resized``)."""
    inputs: dict[str, np.ndarray | None] = {}
    for name, a in case.inputs.items():
        shape = shapes.get(name)
        inputs[name] = None if a is None or shape is None else resized(a, shape, case, name, from_end)
    dy = None
    if case.dy is not None:
        dy = resized(case.dy, case.op.output_shape(shapes, params), case, "dy", from_end)
    notes = {**case.notes, CUT: True}
    x = inputs["x"]
    if case.op.family == "max_pool" and x is not None:
        notes["ties"] = window_has_ties(x, params)
    return Case(case.op_name, params, inputs, dy, case.dtype, case.family, case.seed, case.layout, notes)


def neighbours(case: Case, caps: Capabilities) -> Iterator[Case]:
    """The valid, declared neighbours of ``case`` (see the module's docstring), in the natural order."""
    g = geometry(case)
    if g is None:
        return
    conv = case.op.family == "conv"
    for h in smaller(g, conv):
        params = params_of(case, h)
        if params is None:
            continue
        shapes = shapes_of(case, h)
        if admitted(case, params, shapes, caps):
            yield rebuilt(case, params, shapes)
            if _cuts(case, shapes):
                yield rebuilt(case, params, shapes, from_end=True)

"""Every hypothesis strategy of the suite, built from small composable pieces.

The pieces read the spec (``convcheck.spec``): which hyper-parameters an
operation has, which configurations are valid, and which features an
implementation declared. ``cases(op_name, caps)`` is the one most tests use.
Draws are arranged so that valid configurations are built directly rather than
filtered: sizes are drawn after the kernel, large enough for the kernel to fit.
Everything shrinks towards the smallest, simplest case: batch 1, one channel,
1x1 kernels, stride 1, no padding, ``normal`` values, contiguous layout.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from convcheck.spec import OPERATIONS, Capabilities, InvalidConfiguration
from convcheck.spec.case import Case
from convcheck.spec.params import AvgPool2dParams, Conv2dParams, MaxPool2dParams, Params
from convcheck.spec.shapes import effective_kernel

from .values import FAMILIES, LAYOUTS, make_case, window_has_ties

MAX_BATCH = 3
MAX_CHANNELS = 3
MAX_KERNEL = 5
MAX_STRIDE = 4
MAX_DILATION = 3
MAX_PAD = 2
MAX_EXTRA = 5
"""Input side = (what the kernel needs) + up to MAX_EXTRA: small enough for fast
oracles and readable counterexamples, large enough for every edge case."""


def levels(caps: Capabilities, op_name: str, feature: str) -> list[Any]:
    """The levels of a support feature that ``caps`` allows, simplest first."""
    f = OPERATIONS[op_name].feature(feature)
    return [c for c in f.choices if caps.supports(op_name, feature, c)]


@st.composite
def pairs(draw: st.DrawFn, lo: int, hi: int, kind: str) -> tuple[int, int]:
    """An ``(h, w)`` pair: ``unit`` gives (1, 1), ``uniform`` h == w, ``any`` independent."""
    if kind == "unit":
        return (1, 1)
    h = draw(st.integers(lo, hi))
    if kind == "uniform":
        return (h, h)
    return (h, draw(st.integers(lo, hi)))


def strides(caps: Capabilities, op_name: str) -> st.SearchStrategy[tuple[int, int]]:
    """Strides up to ``MAX_STRIDE`` (larger than small kernels, so some cells get no gradient)."""
    return st.sampled_from(levels(caps, op_name, "stride")).flatmap(lambda k: pairs(1, MAX_STRIDE, k))


def dilations(caps: Capabilities, op_name: str) -> st.SearchStrategy[tuple[int, int]]:
    if not caps.supports(op_name, "dilation", True):
        return st.just((1, 1))
    return pairs(1, MAX_DILATION, "any")


@st.composite
def paddings(
    draw: st.DrawFn, caps: Capabilities, op_name: str, limit_h: int = MAX_PAD, limit_w: int = MAX_PAD
) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` of a kind the capabilities allow, each side within its limit."""
    kind = draw(st.sampled_from(levels(caps, op_name, "padding")))
    if kind == "none":
        return (0, 0, 0, 0)
    ph = st.integers(0, limit_h)
    pw = st.integers(0, limit_w)
    if kind == "uniform":
        p = draw(st.integers(0, min(limit_h, limit_w)))
        return (p, p, p, p)
    if kind == "symmetric":
        t, l = draw(ph), draw(pw)
        return (t, t, l, l)
    return (draw(ph), draw(ph), draw(pw), draw(pw))


def sizes_for(kernel_extent: int, pad_total: int) -> st.SearchStrategy[int]:
    """Input lengths in which a window of ``kernel_extent`` fits (up to the whole input)."""
    least = max(1, kernel_extent - pad_total)
    return st.integers(least, least + MAX_EXTRA)


def dtypes(caps: Capabilities) -> st.SearchStrategy[str]:
    return st.sampled_from(caps.dtypes)


def families(allowed: tuple[str, ...] = FAMILIES) -> st.SearchStrategy[str]:
    return st.sampled_from(allowed)


def layouts(allowed: tuple[str, ...] = LAYOUTS) -> st.SearchStrategy[str]:
    return st.sampled_from(allowed)


seeds = st.integers(0, 2**32 - 1)


@st.composite
def conv2d_configs(
    draw: st.DrawFn, caps: Capabilities, bias: bool | None = None
) -> tuple[Conv2dParams, dict[str, tuple[int, ...] | None]]:
    """Valid conv2d hyper-parameters and shapes: groups divide both channel counts,
    the dilated kernel fits the padded input, bias present or ``None`` (drawn
    unless ``bias`` fixes it)."""
    groups = draw(st.integers(1, 3)) if caps.supports("conv2d", "groups", True) else 1
    c_in = groups * draw(st.integers(1, MAX_CHANNELS))
    c_out = groups * draw(st.integers(1, MAX_CHANNELS))
    n = draw(st.integers(1, MAX_BATCH))
    kh, kw = draw(pairs(1, MAX_KERNEL, "any"))
    stride = draw(strides(caps, "conv2d"))
    dilation = draw(dilations(caps, "conv2d"))
    padding = draw(paddings(caps, "conv2d"))
    h = draw(sizes_for(effective_kernel(kh, dilation[0]), padding[0] + padding[1]))
    w = draw(sizes_for(effective_kernel(kw, dilation[1]), padding[2] + padding[3]))
    has_bias = draw(st.booleans()) if bias is None else bias
    params = Conv2dParams(stride=stride, padding=padding, dilation=dilation, groups=groups)
    shapes = {"x": (n, c_in, h, w), "w": (c_out, c_in // groups, kh, kw), "b": (c_out,) if has_bias else None}
    return params, shapes


@st.composite
def pool2d_configs(
    draw: st.DrawFn, caps: Capabilities, op_name: str
) -> tuple[Params, dict[str, tuple[int, ...] | None]]:
    """Valid pooling hyper-parameters and shapes: padding at most half the
    effective kernel, and every window reading at least one input cell."""
    n = draw(st.integers(1, MAX_BATCH))
    c = draw(st.integers(1, MAX_CHANNELS))
    kh, kw = draw(pairs(1, 4, "any"))
    stride = draw(strides(caps, op_name))
    dilation = draw(dilations(caps, op_name)) if op_name == "max_pool2d" else (1, 1)
    eh, ew = effective_kernel(kh, dilation[0]), effective_kernel(kw, dilation[1])
    padding = draw(paddings(caps, op_name, eh // 2, ew // 2))
    ceil_mode = draw(st.booleans()) if caps.supports(op_name, "ceil_mode", True) else False
    h = draw(sizes_for(eh, padding[0] + padding[1]))
    w = draw(sizes_for(ew, padding[2] + padding[3]))
    params: Params
    if op_name == "max_pool2d":
        params = MaxPool2dParams((kh, kw), stride, padding, dilation, ceil_mode)
    else:
        include = not draw(st.booleans()) if caps.supports(op_name, "exclude_pad", True) else True
        params = AvgPool2dParams((kh, kw), stride, padding, ceil_mode, include)
    shapes: dict[str, tuple[int, ...] | None] = {"x": (n, c, h, w)}
    try:
        OPERATIONS[op_name].check(shapes, params)
    except InvalidConfiguration:
        from hypothesis import reject

        reject()  # rare: a dilated window wholly in padding; spec.pool.check is the rule
    return params, shapes


def configs(
    op_name: str, caps: Capabilities, bias: bool | None = None
) -> st.SearchStrategy[tuple[Params, dict]]:
    """Valid ``(params, shapes)`` for any operation in the spec."""
    if op_name == "conv2d":
        return conv2d_configs(caps, bias)
    return pool2d_configs(caps, op_name)


@st.composite
def cases(
    draw: st.DrawFn,
    op_name: str,
    caps: Capabilities,
    *,
    dtypes_: tuple[str, ...] | None = None,
    families_: tuple[str, ...] = FAMILIES,
    layouts_: tuple[str, ...] = ("contiguous",),
    bias: bool | None = None,
) -> Case:
    """A whole example: a valid configuration, dtype, value family, seed and layout.

    ``dtypes_``, ``families_`` and ``layouts_`` narrow the draws (a property
    that needs float64, say); ``bias`` fixes whether conv2d has a bias.
    """
    params, shapes = draw(configs(op_name, caps, bias), label="config")
    allowed = tuple(d for d in (dtypes_ or caps.dtypes) if d in caps.dtypes) or caps.dtypes
    dtype = draw(st.sampled_from(allowed), label="dtype")
    family = draw(families(families_), label="values")
    seed = draw(seeds, label="seed")
    layout = draw(layouts(layouts_), label="layout")
    case = make_case(op_name, params, shapes, dtype, family, seed, layout)
    if op_name == "max_pool2d":
        case.notes["ties"] = window_has_ties(case.x, case.params)
    return case

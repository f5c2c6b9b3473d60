"""Every hypothesis strategy of the suite, built from small composable pieces.

The pieces read the spec (``convcheck.spec``): which hyper-parameters an
operation has, which configurations are valid, and which features an
implementation declared. ``cases(op_name, caps)`` is the one most tests use.
Draws are arranged so that valid configurations are built directly rather than
filtered: sizes are drawn after the kernel, large enough for the kernel to fit.
Everything shrinks towards the smallest, simplest case: batch 1, one channel,
1x1 kernels, stride 1, no padding, ``normal`` values, contiguous layout. The
same pieces serve 1-, 2- and 3-D windows (one entry per spatial axis), and the
dense layers and losses have their own small shape strategies.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from hypothesis import strategies as st

from convcheck.spec import OPERATIONS, Capabilities, InvalidConfiguration
from convcheck.spec.case import Case, with_inputs
from convcheck.spec.loss import LARGE_LOGIT
from convcheck.spec.params import NoParams, Params
from convcheck.spec.shapes import COVER_ALL, effective_kernel

from .values import EDGE_FAMILIES, EDGE_OPERATIONS, FAMILIES, LAYOUTS, for_dtype, make_case, window_has_ties

MAX_BATCH = 3
MAX_CHANNELS = 3
MAX_STRIDE = 4
MAX_DILATION = 3
MAX_PAD = 2
MAX_KERNEL = {1: 5, 2: 5, 3: 3}
"""Largest kernel per spatial axis, by number of spatial axes: 3-D cases stay small."""
MAX_EXTRA = {1: 8, 2: 5, 3: 3}
"""Input side = (what the kernel needs) + up to MAX_EXTRA: small enough for fast
oracles and readable counterexamples, large enough for every edge case."""
MAX_FEATURES = 6
"""Widest dense layer (inputs or outputs) and most classes of a loss."""


@cache
def ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    """``st.integers(lo, hi)``, built once per range: a strategy built afresh inside every draw is
    validated afresh, about a fifth of the CPU time spent drawing configurations."""
    return st.integers(lo, hi)


def levels(caps: Capabilities, op_name: str, feature: str) -> list[Any]:
    """The levels of a support feature that ``caps`` allows, simplest first."""
    f = OPERATIONS[op_name].feature(feature)
    return [c for c in f.choices if caps.supports(op_name, feature, c)]


@cache
@st.composite
def per_axis(draw: st.DrawFn, lo: int, hi: int, kind: str, ndim: int = 2) -> tuple[int, ...]:
    """One int per spatial axis: ``unit`` gives all 1, ``uniform`` one value for every axis,
    ``any`` independent values."""
    if kind == "unit":
        return (1,) * ndim
    first = draw(ints(lo, hi))
    if kind == "uniform":
        return (first,) * ndim
    return (first, *(draw(ints(lo, hi)) for _ in range(ndim - 1)))


@st.composite
def one_unit_axis(draw: st.DrawFn, hi: int, ndim: int) -> tuple[int, ...]:
    """One axis at 1 and every other above it, e.g. stride ``(1, 2)``: the asymmetric case that
    code swapping or sharing the axes' strides gets wrong."""
    unit = draw(ints(0, ndim - 1))
    return tuple(1 if a == unit else draw(ints(2, hi)) for a in range(ndim))


def strides(caps: Capabilities, op_name: str) -> st.SearchStrategy[tuple[int, ...]]:
    """Strides up to ``MAX_STRIDE`` (larger than small kernels, so some cells get no gradient);
    where the declaration allows any strides, half of them have one unit axis."""
    ndim = OPERATIONS[op_name].ndim

    def of_level(kind: str) -> st.SearchStrategy[tuple[int, ...]]:
        drawn = per_axis(1, MAX_STRIDE, kind, ndim)
        if kind != "any" or ndim == 1:
            return drawn
        return st.one_of(drawn, one_unit_axis(MAX_STRIDE, ndim))

    return st.sampled_from(levels(caps, op_name, "stride")).flatmap(of_level)


def dilations(caps: Capabilities, op_name: str) -> st.SearchStrategy[tuple[int, ...]]:
    """Dilations up to ``MAX_DILATION``: all 1 without dilation, one value for every axis under a
    ``uniform`` (square) declaration, independent values otherwise."""
    ndim = OPERATIONS[op_name].ndim
    if not caps.supports(op_name, "dilation", True):
        if caps.supports(op_name, "dilation", "uniform"):
            return per_axis(1, MAX_DILATION, "uniform", ndim)
        return st.just((1,) * ndim)
    return per_axis(1, MAX_DILATION, "any", ndim)


@st.composite
def paddings(
    draw: st.DrawFn, caps: Capabilities, op_name: str, limits: tuple[int, ...] | None = None
) -> tuple[int, ...]:
    """``(low, high)`` per spatial axis, flattened, of a kind the capabilities allow, each side
    within its axis's limit (``MAX_PAD`` by default)."""
    ndim = OPERATIONS[op_name].ndim
    limits = limits or (MAX_PAD,) * ndim
    kind = draw(st.sampled_from(levels(caps, op_name, "padding")))
    if kind == "none":
        return (0,) * (2 * ndim)
    if kind == "uniform":
        p = draw(ints(0, min(limits)))
        return (p,) * (2 * ndim)
    out: list[int] = []
    for limit in limits:
        lo = draw(ints(0, limit))
        out += [lo, lo] if kind == "symmetric" else [lo, draw(ints(0, limit))]
    return tuple(out)


@cache
def sizes_for(
    kernel_extent: int, pad_total: int, ndim: int = 2, stride: int = 1, exact: bool = False
) -> st.SearchStrategy[int]:
    """Input lengths in which a window of ``kernel_extent`` fits (up to the whole input); with
    ``exact`` (a ``geometry = "exact"`` declaration) only those the windows tile exactly at ``stride``
    (``spec.shapes.divides_exactly``).

    A length is drawn as what the window needs plus an extra: when the kernel shrinks, the input
    shrinks with it, so that hypothesis's shrinker need not shrink both in one step."""
    least = max(1, kernel_extent - pad_total)
    if not exact:  # a third give one output cell on this axis (from the least size, stride - 1 more)
        extra = ints(0, MAX_EXTRA[ndim])
        return st.one_of(extra, extra, ints(0, stride - 1)).map(lambda e: least + e)
    first = least + (kernel_extent - pad_total - least) % stride  # the smallest tiled length
    return st.integers(0, MAX_EXTRA[ndim] // stride).map(lambda m: first + m * stride)


def exact_geometry(caps: Capabilities, op_name: str) -> bool:
    """Whether ``caps`` declares the ``exact`` geometry only (the CS231n assignment's)."""
    return not caps.supports(op_name, "geometry", "any")


def dtypes(caps: Capabilities) -> st.SearchStrategy[str]:
    return st.sampled_from(caps.dtypes)


EDGE_ONE_IN = 5
"""One draw in this many takes an extreme family (when ``allowed`` holds both kinds): most of a
property's examples stay on the ordinary families, where most mistakes show, and the extreme ones
are still drawn often enough under every profile (their values are a blind spot for many
mistakes: a wrong divisor on signed zeros or subnormals below the floor is not seen)."""


def families(allowed: tuple[str, ...] = FAMILIES) -> st.SearchStrategy[str]:
    """A value family from ``allowed``: ordinary ones four draws in five, extreme ones
    (``EDGE_FAMILIES``) the fifth, each kind uniformly; shrinking goes to an ordinary one."""
    ordinary = tuple(f for f in allowed if f not in EDGE_FAMILIES)
    edge = tuple(f for f in allowed if f in EDGE_FAMILIES)
    if not ordinary or not edge:
        return st.sampled_from(allowed)
    return st.integers(0, EDGE_ONE_IN - 1).flatmap(
        lambda i: st.sampled_from(edge if i == EDGE_ONE_IN - 1 else ordinary)
    )


def layouts(allowed: tuple[str, ...] = LAYOUTS) -> st.SearchStrategy[str]:
    return st.sampled_from(allowed)


seeds = st.integers(0, 2**32 - 1)

Shapes = dict[str, tuple[int, ...] | None]


@st.composite
def conv_configs(
    draw: st.DrawFn, caps: Capabilities, op_name: str = "conv2d", bias: bool | None = None
) -> tuple[Params, Shapes]:
    """Valid convolution hyper-parameters and shapes: groups divide both channel counts,
    the dilated kernel fits the padded input, bias present or ``None`` (drawn
    unless ``bias`` fixes it)."""
    op = OPERATIONS[op_name]
    ndim = op.ndim
    groups = draw(ints(1, 3)) if caps.supports(op_name, "groups", True) else 1
    c_in = groups * draw(ints(1, MAX_CHANNELS))
    c_out = groups * draw(ints(1, MAX_CHANNELS))
    n = draw(ints(1, MAX_BATCH))
    kernel = draw(per_axis(1, MAX_KERNEL[ndim], "any", ndim))
    stride = draw(strides(caps, op_name))
    dilation = draw(dilations(caps, op_name))
    padding = draw(paddings(caps, op_name))
    exact = exact_geometry(caps, op_name)
    spatial = tuple(
        draw(sizes_for(effective_kernel(k, d), padding[2 * a] + padding[2 * a + 1], ndim, stride[a], exact))
        for a, (k, d) in enumerate(zip(kernel, dilation, strict=True))
    )
    has_bias = draw(st.booleans()) if bias is None else bias
    params = op.params_type(stride=stride, padding=padding, dilation=dilation, groups=groups)
    shapes = {
        "x": (n, c_in, *spatial),
        "w": (c_out, c_in // groups, *kernel),
        "b": (c_out,) if has_bias else None,
    }
    return params, shapes


@st.composite
def pool_configs(draw: st.DrawFn, caps: Capabilities, op_name: str) -> tuple[Params, Shapes]:
    """Valid pooling hyper-parameters and shapes: padding at most half the
    effective kernel, and every window reading at least one input cell."""
    op = OPERATIONS[op_name]
    ndim = op.ndim
    n = draw(ints(1, MAX_BATCH))
    c = draw(ints(1, MAX_CHANNELS))
    square = not caps.supports(op_name, "kernel_size", "any")  # a declaration of square windows only
    kernel = draw(per_axis(1, min(4, MAX_KERNEL[ndim]), "uniform" if square else "any", ndim))
    stride = draw(strides(caps, op_name))
    dilation = draw(dilations(caps, op_name)) if op.family == "max_pool" else (1,) * ndim
    extents = tuple(effective_kernel(k, d) for k, d in zip(kernel, dilation, strict=True))
    padding = draw(paddings(caps, op_name, tuple(e // 2 for e in extents)))
    ceil_mode = draw(st.booleans()) if caps.supports(op_name, "ceil_mode", True) else False
    exact = exact_geometry(caps, op_name)
    spatial = tuple(
        draw(sizes_for(e, padding[2 * a] + padding[2 * a + 1], ndim, stride[a], exact))
        for a, e in enumerate(extents)
    )
    if ceil_mode and not exact and draw(st.booleans(), label="overhang"):
        spatial = tuple(
            overhanging(n, e, s, padding[2 * a] + padding[2 * a + 1])
            for a, (n, e, s) in enumerate(zip(spatial, extents, stride, strict=True))
        )
    params: Params
    if op.family == "max_pool":
        params = op.params_type(kernel, stride, padding, dilation, ceil_rule(caps, op_name, ceil_mode))
    else:
        include = not draw(st.booleans()) if caps.supports(op_name, "exclude_pad", True) else True
        params = op.params_type(kernel, stride, padding, ceil_mode, include)
    shapes: Shapes = {"x": (n, c, *spatial)}
    try:
        op.check(shapes, params)
    except InvalidConfiguration:
        from hypothesis import reject

        reject()  # rare: a dilated window wholly in padding; spec.pool.check is the rule
    return params, shapes


def ceil_rule(caps: Capabilities, op_name: str, ceil_mode: bool) -> bool | str:
    """A max-pool record's ``ceil_mode``: ``spec.shapes.COVER_ALL`` for a ``ceil_mode=True`` case of an
    implementation declaring Chainer's ``ceil_rule``, else ``ceil_mode`` itself."""
    return COVER_ALL if ceil_mode and caps.value(op_name, "ceil_rule") == COVER_ALL else ceil_mode


def overhanging(n: int, extent: int, stride: int, pad_total: int) -> int:
    """An input length whose ``ceil_mode`` output gets a last window hanging past the padded end
    (where PyTorch's divisor clips the window): one more than ``n`` when the windows tile exactly."""
    return n + 1 if stride > 1 and (n + pad_total - extent) % stride == 0 else n


@st.composite
def feature_maps(draw: st.DrawFn, min_rank: int = 2, max_rank: int = 4) -> tuple[int, ...]:
    """Activation-like shapes: ``(N, F)`` from a dense layer or ``(N, C, ...)`` from a conv layer."""
    rank = draw(ints(min_rank, max_rank))
    n = draw(ints(1, MAX_BATCH))
    if rank == 2:
        return (n, draw(ints(1, MAX_FEATURES)))
    return (n, draw(ints(1, MAX_CHANNELS)), *(draw(ints(1, 5)) for _ in range(rank - 2)))


@st.composite
def elementwise_configs(draw: st.DrawFn) -> tuple[Params, Shapes]:
    """An activation's input, shaped like a dense or a conv layer's output."""
    return NoParams(), {"x": draw(feature_maps())}


@st.composite
def flatten_configs(draw: st.DrawFn) -> tuple[Params, Shapes]:
    """``(N, C, ...)`` with up to three spatial axes (and the trivial ``(N, F)``)."""
    return NoParams(), {"x": draw(feature_maps(2, 5))}


@st.composite
def linear_configs(draw: st.DrawFn, bias: bool | None = None) -> tuple[Params, Shapes]:
    """``x: (N, in)``, ``w: (out, in)``, ``b: (out,)`` or ``None``."""
    n = draw(ints(1, MAX_BATCH))
    n_in = draw(ints(1, MAX_FEATURES))
    n_out = draw(ints(1, MAX_FEATURES))
    has_bias = draw(st.booleans()) if bias is None else bias
    return NoParams(), {"x": (n, n_in), "w": (n_out, n_in), "b": (n_out,) if has_bias else None}


@st.composite
def softmax_configs(draw: st.DrawFn) -> tuple[Params, Shapes]:
    """Logits ``(N, C)`` and labels ``(N,)``; one class is allowed (loss 0, gradient 0)."""
    n = draw(ints(1, MAX_BATCH + 1))
    c = draw(ints(1, MAX_FEATURES))
    return NoParams(), {"z": (n, c), "labels": (n,)}


@st.composite
def bce_configs(draw: st.DrawFn) -> tuple[Params, Shapes]:
    """Logits and targets of shape ``(N,)`` or ``(N, K)``."""
    n = draw(ints(1, MAX_BATCH + 1))
    shape = draw(st.sampled_from([(n,), (n, 1), (n, draw(ints(2, 3)))]))
    return NoParams(), {"z": shape, "y": shape}


def configs(
    op_name: str, caps: Capabilities, bias: bool | None = None
) -> st.SearchStrategy[tuple[Params, dict]]:
    """Valid ``(params, shapes)`` for any operation in the spec."""
    family = OPERATIONS[op_name].family
    if family == "conv":
        return conv_configs(caps, op_name, bias)
    if family in ("max_pool", "avg_pool"):
        return pool_configs(caps, op_name)
    if family == "linear":
        return linear_configs(bias)
    if family == "flatten":
        return flatten_configs()
    if family == "softmax_cross_entropy":
        return softmax_configs()
    if family == "sigmoid_binary_cross_entropy":
        return bce_configs()
    return elementwise_configs()


def families_for(op_name: str, caps: Capabilities, allowed: tuple[str, ...] = FAMILIES) -> tuple[str, ...]:
    """The value families ``op_name`` is drawn from, narrowed to ``allowed``: soft targets only
    for the binary cross-entropy of an implementation that supports them; the extreme and
    non-finite families only for convolution and pooling (``below_sentinel`` for max-pooling);
    ``allowed`` itself when nothing in it applies (a property asking for one family only)."""
    soft = op_name == "sigmoid_binary_cross_entropy" and caps.supports(op_name, "soft_targets", True)
    if soft and allowed == FAMILIES:
        return (*allowed, "soft")
    family = OPERATIONS[op_name].family
    kept = tuple(f for f in allowed if edge_family_applies(f, family))
    return kept or tuple(allowed)


def edge_family_applies(value_family: str, op_family: str) -> bool:
    """Whether ``value_family`` is drawn for operations of ``op_family`` (every ordinary family is)."""
    from .values import NONFINITE_FAMILIES

    if value_family not in EDGE_FAMILIES and value_family not in NONFINITE_FAMILIES:
        return True
    if value_family == "below_sentinel":
        return op_family == "max_pool"
    return op_family in EDGE_OPERATIONS


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
    that needs float64, say); ``bias`` fixes whether a conv or linear layer has a bias.
    """
    params, shapes = draw(configs(op_name, caps, bias), label="config")
    if caps.predicate is not None:
        leave_out_if_declared(op_name, caps, params, shapes)
    allowed = tuple(d for d in (dtypes_ or caps.dtypes) if d in caps.dtypes) or caps.dtypes
    dtype = draw(st.sampled_from(allowed), label="dtype")
    family = draw(families(for_dtype(families_for(op_name, caps, families_), dtype, op_name)), label="values")
    seed = draw(seeds, label="seed")
    layout = draw(layouts(layouts_), label="layout")
    case = make_case(op_name, params, shapes, dtype, family, seed, layout)
    if OPERATIONS[op_name].family == "max_pool":
        case.notes["ties"] = window_has_ties(case.x, case.params)
    return case


def leave_out_if_declared(op_name: str, caps: Capabilities, params: Params, shapes: Shapes) -> None:
    """Reject (``hypothesis.reject``) a configuration that the declared ``supports`` predicate leaves
    out, noting it in the running check's record; nothing when the predicate admits it."""
    reason = caps.excluded(op_name, params)
    if reason is None:
        return
    from hypothesis import reject

    from convcheck import recording

    rec = recording.current()
    if rec is not None:
        rec.exclude(f"{op_name}(x={shapes.get('x') or shapes.get('z')}, {params})", reason)
    reject()


# --------------------------------------------------------------------------- property-specific twists


probes = st.lists(st.integers(0, 2**20), min_size=1, max_size=3)
"""Flat indices (taken modulo ``dy.size``) of the windows a pooling-routing example probes."""


@st.composite
def large_logits(draw: st.DrawFn, case: Case) -> Case:
    """The case with logits spread over ``[-LARGE_LOGIT, LARGE_LOGIT]``, the extremes included."""
    rng = np.random.default_rng(draw(seeds))
    z = rng.uniform(-1.0, 1.0, size=case.x.shape) * LARGE_LOGIT
    z.flat[0] = LARGE_LOGIT
    z.flat[-1] = -LARGE_LOGIT
    return with_inputs(case, z=z.astype(case.dtype))


@st.composite
def kink_zeros(draw: st.DrawFn, case: Case) -> Case:
    """``case`` with about a third of ``x`` set to ``+0.0`` or ``-0.0`` (at least one of each when it fits)."""
    rng = np.random.default_rng(draw(seeds))
    x = case.x.astype(np.float64)
    mask = rng.random(x.shape) < 1 / 3
    mask.flat[0] = True
    x[mask] = 0.0
    x.flat[-1] = -0.0 if x.size > 1 else x.flat[-1]
    return with_inputs(case, x=x.astype(case.dtype))

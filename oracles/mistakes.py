"""A catalogue of known mistakes, each one computed: what an implementation making it would output.

Every entry is a *hypothesis about a wrong implementation*, written with the
oracle's own building blocks (the scipy/NumPy oracle with changed arguments,
its window helpers, the spec's divisor rule), so that it can be tested against
a failing case: if an implementation's output on that case equals what the
mistake computes (within the tolerance policy) and differs from the right
answer, the mistake explains the failure. ``convcheck.diagnosis`` does the
matching; this module only computes.

``Mistake.predict(case, semantics)`` yields *variants*: dicts from output name
(``y``, ``dx``, ``dw``, ``db``; a loss's ``loss`` and ``dz``) to the float64
array the mistaken implementation would return, for the outputs the mistake
changes. A mistake with several plausible forms (which side the symmetric
padding copies; a forward-only or a backward-only slip) yields one variant per
form; one that cannot show on the case (a stride mistake with stride 1) yields
none. A mistake about numerical stability evaluates the unstable formula in
the case's dtype (and in float64), so that its prediction holds the NaN and
inf the implementation would return (the matching expects them exactly there).
``semantics`` holds the declared ``convention`` and ``ties`` the right answer
follows. Mistakes that are about *behaviour* rather than values (inputs
modified in place, dtypes, aliasing, non-determinism, memory layout) are
observed on the implementation itself, in ``convcheck.diagnosis``.

Two mistakes made at once are computed where the catalogue can compose them
(``composed``): a mistake that amounts to the right computation under other
semantics (``Mistake.semantics``: max-pool padding with zeros is the oracle
with ``pad_value = 0``) is made on top of one whose prediction the oracle
computes under the semantics it is given (``Mistake.composes``: a geometry
mistake), or next to any mistake when the two change different outputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.signal import convolve2d, correlate2d

from convcheck.spec import dtypes, pool
from convcheck.spec.case import Case
from convcheck.spec.errors import InvalidConfiguration
from convcheck.spec.shapes import avg_divisor, effective_kernel

from . import call
from .numpy_pool import _windows, _winners
from .scipy_oracle import _channel_pairs, _upsample

ORACLE = "scipy"
"""The oracle the predictions are built on: it follows every declared semantics."""

Outputs = dict[str, np.ndarray]
Predict = Callable[[Case, Mapping[str, Any]], Iterator[Outputs]]


@dataclass(frozen=True)
class Mistake:
    """One known mistake: a slug, the operations it concerns, a one-line explanation, its computation."""

    slug: str
    ops: tuple[str, ...]
    explanation: str
    predict: Predict
    semantics: Mapping[str, Any] | None = None
    """The semantics under which the right computation *is* this mistake, when there are such."""
    composes: bool = False
    """Whether ``predict`` runs the oracle under the semantics it is given (so that a mistake with
    ``semantics`` can be made on top of it)."""

    def variants(self, case: Case, semantics: Mapping[str, Any]) -> list[Outputs]:
        """The outputs the mistake would give on ``case`` (empty when it cannot apply)."""
        if case.op_name not in self.ops:
            return []
        try:
            return list(self.predict(case, semantics))
        except (InvalidConfiguration, ValueError):
            return []  # the mistaken configuration is outside the spec, or cannot be computed


# --------------------------------------------------------------------------- oracle building blocks


def forward(case: Case, semantics: Mapping[str, Any], params: Any = None, **arrays: Any) -> np.ndarray:
    """The oracle's ``y`` on ``case``, with hyper-parameters and arrays optionally replaced."""
    p = params or case.params
    inputs = {**case.inputs, **arrays}
    args = [inputs[name] for name in case.op.inputs]
    y: np.ndarray = call(ORACLE, case.op.forward, *args, semantics=semantics, **p.kwargs())
    return y


def backward(
    case: Case, semantics: Mapping[str, Any], params: Any = None, dy: Any = None, **arrays: Any
) -> dict[str, Any]:
    """The oracle's gradients on ``case``, with hyper-parameters, ``dy`` and arrays optionally replaced."""
    p = params or case.params
    inputs = {**case.inputs, **arrays}
    args = [case.dy if dy is None else dy, *(inputs[name] for name in case.op.inputs)]
    if case.op.backward is None:
        raise TypeError(f"{case.op_name} is a loss: it has no backward function")
    out = call(ORACLE, case.op.backward, *args, semantics=semantics, **p.kwargs())
    values = out if len(case.op.grads) > 1 else (out,)
    return dict(zip(case.op.grads, values, strict=True))


def loss_outputs(case: Case) -> Outputs:
    """The oracle's ``loss`` (0-d) and ``dz`` on a loss case."""
    loss, dz = call(ORACLE, case.op.forward, *case.forward_args())
    return {"loss": np.asarray(loss, dtype=np.float64).reshape(()), "dz": np.asarray(dz, dtype=np.float64)}


def outputs(case: Case, semantics: Mapping[str, Any]) -> Outputs:
    """Every right output of ``case``: a layer's ``y`` and gradients, a loss's ``loss`` and ``dz``."""
    if case.op.is_loss:
        return loss_outputs(case)
    return {"y": forward(case, semantics), **grads_only(backward(case, semantics))}


def replaced(case: Case, **changes: Any) -> Any:
    """``case.params`` with some hyper-parameters changed (validated against the spec)."""
    params = dataclasses.replace(case.params, **changes)
    case.op.check(case.shapes(), params)
    return params


def output_shape(case: Case, params: Any) -> tuple[int, ...]:
    return case.op.output_shape(case.shapes(), params)


def fit(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``a`` placed at the top-left of a zero array of ``shape`` (cropped where ``shape`` is smaller)."""
    out = np.zeros(shape, dtype=np.float64)
    region = tuple(slice(0, min(s, t)) for s, t in zip(a.shape, shape, strict=True))
    out[region] = a[region]
    return out


def grads_only(grads: Mapping[str, np.ndarray | None], *names: str) -> Outputs:
    """The named gradients that exist (``db`` is ``None`` without a bias)."""
    return {k: v for k, v in grads.items() if v is not None and (not names or k in names)}


def with_split_variants(full: Outputs) -> Iterator[Outputs]:
    """A mistake made in both passes, then in the forward pass only, then in the backward only."""
    yield full
    if "y" in full and len(full) > 1:
        yield {"y": full["y"]}
        yield {k: v for k, v in full.items() if k != "y"}


def mistaken_everywhere(case: Case, semantics: Mapping[str, Any], params: Any) -> Outputs:
    """Forward and backward computed with the wrong ``params``; ``dy`` fitted to the wrong output shape."""
    out: Outputs = {"y": forward(case, semantics, params)}
    dy = fit(np.asarray(case.dy, dtype=np.float64), output_shape(case, params))
    out.update(grads_only(backward(case, semantics, params, dy=dy)))
    return out


# --------------------------------------------------------------------------- conv2d


def _dx_kernel_not_flipped(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """``dx`` with the kernel as it is: the right formula applied to the 180-degree rotated kernel."""
    w = case.array("w")
    yield {"dx": backward(case, sem, w=w[:, :, ::-1, ::-1])["dx"]}


def _dx_valid_not_full(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """``dx`` as the *valid* (not full) convolution of the stride-dilated ``dy`` with the dilated kernel."""
    p = case.params
    x, w = case.x, case.array("w")
    dy = np.asarray(case.dy, dtype=np.float64)
    conv = convolve2d if sem.get("convention", "cross-correlation") == "cross-correlation" else correlate2d
    parts: dict[tuple[int, int], np.ndarray] = {}
    for n in range(x.shape[0]):
        for co, c, ci in _channel_pairs(w.shape, p.groups):
            part = conv(
                _upsample(dy[n, co], p.stride), _upsample(np.asarray(w[co, c], float), p.dilation), "valid"
            )
            parts[(n, ci)] = parts[(n, ci)] + part if (n, ci) in parts else part
    hv, wv = next(iter(parts.values())).shape
    dx = np.zeros((x.shape[0], x.shape[1], hv, wv))
    for (n, ci), part in parts.items():
        dx[n, ci] = part
    yield {"dx": dx}


def _dw_batch_averaged(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """``dw`` divided by the batch size ``N``."""
    if case.x.shape[0] > 1:
        yield {"dw": backward(case, sem)["dw"] / case.x.shape[0]}


def _db_batch_averaged(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """``db`` divided by the batch size ``N`` (summed over positions, averaged over the batch)."""
    if case.inputs.get("b") is not None and case.x.shape[0] > 1:
        yield {"db": backward(case, sem)["db"] / case.x.shape[0]}


def _dw_kernel_axes_swapped(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """``dw``'s kernel taps gathered column by column and read back row by row (a transpose if square)."""
    dw = backward(case, sem)["dw"]
    yield {"dw": np.swapaxes(dw, -1, -2).reshape(dw.shape)}


def _dw_channel_axes_swapped(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """``dw`` laid out (C_in/G, C_out) and reshaped to (C_out, C_in/G): channel axes swapped."""
    dw = backward(case, sem)["dw"]
    yield {"dw": np.swapaxes(dw, 0, 1).reshape(dw.shape)}


def _dx_crop_ignores_padding(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """The padded input's gradient cut at ``[:H, :W]`` instead of ``[top:top+H, left:left+W]``."""
    t, b, l, r = case.params.padding
    if not (t or l):
        return
    xp = np.pad(case.x, ((0, 0), (0, 0), (t, b), (l, r)))
    dxp = backward(case, sem, dataclasses.replace(case.params, padding=(0, 0, 0, 0)), x=xp)["dx"]
    yield {"dx": dxp[:, :, : case.x.shape[2], : case.x.shape[3]]}


def _padded_dx(case: Case, sem: Mapping[str, Any]) -> np.ndarray:
    """The gradient of the zero-padded input: the right ``dx`` before the padding is cropped off."""
    t, b, l, r = case.params.padding
    xp = np.pad(case.x, ((0, 0), (0, 0), (t, b), (l, r)))
    dxp: np.ndarray = backward(case, sem, dataclasses.replace(case.params, padding=(0, 0, 0, 0)), x=xp)["dx"]
    return dxp


def _dx_crop_at_zero_padding(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """The padded gradient cropped as ``dx_pad[:, :, t:-b, l:-r]``: empty on an axis whose padding is 0."""
    t, b, l, r = case.params.padding
    if b and r:
        return
    yield {"dx": _padded_dx(case, sem)[:, :, t:-b, l:-r]}


def _dx_crop_hard_coded(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """The padded gradient cropped by a constant (0, 1 or 2 cells a side) whatever the padding."""
    dxp = _padded_dx(case, sem)
    hp, wp = dxp.shape[2:]
    for c in (1, 0, 2):
        if (c, c, c, c) != tuple(case.params.padding):
            yield {"dx": dxp[:, :, c : hp - c, c : wp - c]}


def _dx_overlap_overwritten(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """``dx`` scattered window by window with assignment instead of addition.

    A loop over output positions writes ``dx_pad[:, :, window] = dy[:, :, i, j] . w``: where windows
    overlap (a stride smaller than the dilated kernel), each cell keeps the contribution of the last
    window (row-major) that covers it, not their sum. Cannot show when windows do not overlap.
    """
    p = case.params
    kernel = case.array("w").shape[2:]
    extents = [effective_kernel(k, d) for k, d in zip(kernel, p.dilation, strict=True)]
    if all(s >= e for s, e in zip(p.stride, extents, strict=True)):
        return
    w = np.asarray(case.array("w"), dtype=np.float64)
    if sem.get("convention", "cross-correlation") != "cross-correlation":
        w = w[:, :, ::-1, ::-1]
    dy = np.asarray(case.dy, dtype=np.float64)
    n, c, h, wd = case.x.shape
    t, b, l, r = p.padding
    groups, (f, cg, kh, kw) = p.groups, w.shape
    fg = f // groups
    dxp = np.zeros((n, c, h + t + b, wd + l + r))
    for i in range(dy.shape[2]):
        rows = i * p.stride[0] + p.dilation[0] * np.arange(kh)
        for j in range(dy.shape[3]):
            cols = j * p.stride[1] + p.dilation[1] * np.arange(kw)
            for g in range(groups):
                part = np.tensordot(
                    dy[:, g * fg : (g + 1) * fg, i, j], w[g * fg : (g + 1) * fg], axes=([1], [0])
                )
                dxp[:, g * cg : (g + 1) * cg, rows[:, None], cols[None, :]] = part
    yield {"dx": dxp[:, :, t : t + h, l : l + wd]}


def _ignored(case: Case, sem: Mapping[str, Any], name: str) -> Iterator[Outputs]:
    """The backward pass run as if hyper-parameter ``name`` were ``(1, 1)``, on ``dy`` as it came."""
    if tuple(getattr(case.params, name)) == (1, 1):
        return
    params = replaced(case, **{name: (1, 1)})
    dy = fit(np.asarray(case.dy, dtype=np.float64), output_shape(case, params))
    yield grads_only(backward(case, sem, params, dy=dy), "dx", "dw")


def _backward_ignores_stride(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """Backward taps read consecutive cells: stride treated as 1."""
    yield from _ignored(case, sem, "stride")


def _backward_ignores_dilation(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """Backward taps at ``(a, e)`` instead of ``(a*dh, e*dw)``: dilation treated as 1."""
    yield from _ignored(case, sem, "dilation")


def _dw_groups_ignored(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """``dw`` computed as if ``groups`` were 1, then its first ``C_in/G`` input channels kept."""
    p = case.params
    if p.groups == 1:
        return
    c_out, cg, kh, kw = case.array("w").shape
    w_all = np.zeros((c_out, case.x.shape[1], kh, kw))
    params = dataclasses.replace(p, groups=1)
    yield {"dw": backward(case, sem, params, w=w_all)["dw"][:, :cg]}


def _convention_flipped(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """The other convention throughout: the kernel rotated by 180 degrees in both passes."""
    choices = case.op.feature("convention").choices
    other = {**sem, "convention": next(c for c in choices if c != sem.get("convention", choices[0]))}
    yield {"y": forward(case, other), **grads_only(backward(case, other), "dx", "dw")}


# --------------------------------------------------------------------------- every operation


def _first_sample_everywhere(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """Every sample of the batch given sample 0's answer (a batch stride of zero), forward only."""
    x = np.asarray(case.x, dtype=np.float64)
    if x.shape[0] < 2:
        return
    yield {"y": forward(case, sem, x=np.repeat(x[:1], x.shape[0], axis=0))}


def _hw_swapped(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """Every ``(h, w)`` hyper-parameter read the other way round (and padding as left/right/top/bottom)."""
    p = case.params
    changes: dict[str, Any] = {}
    for name in ("stride", "dilation", "kernel_size"):
        if name in p.kwargs():
            changes[name] = tuple(reversed(getattr(p, name)))
    t, b, l, r = p.padding
    changes["padding"] = (l, r, t, b)
    params = replaced(case, **changes)
    if params == p:
        return
    yield from with_split_variants(mistaken_everywhere(case, sem, params))


def _symmetric_paddings(padding: tuple[int, int, int, int]) -> list[tuple[int, int, int, int]]:
    """Symmetric readings of an asymmetric padding: the larger side, the smaller, top/left, bottom/right."""
    t, b, l, r = padding
    if t == b and l == r:
        return []
    options = [
        (max(t, b), max(t, b), max(l, r), max(l, r)),
        (min(t, b), min(t, b), min(l, r), min(l, r)),
        (t, t, l, l),
        (b, b, r, r),
    ]
    return list(dict.fromkeys(options))


def _padding_as_symmetric(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """An asymmetric padding applied as a symmetric one, in both passes or in one of them."""
    for padding in _symmetric_paddings(case.params.padding):
        try:
            params = replaced(case, padding=padding)
        except InvalidConfiguration:
            continue
        yield from with_split_variants(mistaken_everywhere(case, sem, params))


def _output_ceil(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """Output size rounded up (pooling's ``ceil_mode``) where the contract floors; forward pass."""
    p = case.params
    if case.op_name == "conv2d":
        _, _, h, w = case.x.shape
        _, _, kh, kw = case.array("w").shape
        t, b, l, r = p.padding
        extra = []
        for n, k, s, lo, hi, d in (
            (h, kh, p.stride[0], t, b, p.dilation[0]),
            (w, kw, p.stride[1], l, r, p.dilation[1]),
        ):
            span = n + lo + hi - effective_kernel(k, d)
            out_ceil = -(-span // s) + 1
            extra.append(max(0, (out_ceil - 1) * s + effective_kernel(k, d) - (n + lo + hi)))
        if not any(extra):
            return
        params = replaced(case, padding=(t, b + extra[0], l, r + extra[1]))
    else:
        if p.ceil_mode:
            return
        params = replaced(case, ceil_mode=True)
        if output_shape(case, params) == output_shape(case, p):
            return
    yield {"y": forward(case, sem, params)}


def _ceil_mode_ignored(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """Pooling that always floors the output size: ``ceil_mode=True`` is ignored, so the window a
    rounded-up size adds at the far edge is missing from ``y``; forward pass."""
    p = case.params
    if not getattr(p, "ceil_mode", False):
        return
    params = replaced(case, ceil_mode=False)
    if output_shape(case, params) == output_shape(case, p):
        return
    yield {"y": forward(case, sem, params)}


def _square_outputs(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """Code that assumes square outputs (``H_out`` used for both axes, or ``W_out``): the windows
    past the smaller extent are never visited (zeros in ``y``, no gradient from them), or the
    output itself is allocated square."""
    right = outputs(case, sem)
    oh, ow = right["y"].shape[2:]
    if oh == ow:
        return
    m = min(oh, ow)
    mask = np.zeros(right["y"].shape)
    mask[:, :, :m, :m] = 1.0
    dy = np.asarray(case.dy, dtype=np.float64) * mask
    visited = {"y": right["y"] * mask, **grads_only(backward(case, sem, dy=dy), "dx", "dw")}
    yield from with_split_variants(visited)
    yield {"y": right["y"][:, :, :m, :m]}


def _pool_by_slices(case: Case, sizes: list[int], kernel: tuple[int, int]) -> Outputs:
    """Pooling written with slices ``x[..., i*s:i*s + k0, j*s:j*s + k1]`` for ``sizes`` outputs (NumPy
    clips a slice at the edge): ``y`` and ``dx`` (first maximum, or an even share of the window)."""
    x = np.asarray(case.x, dtype=np.float64)
    s0, s1 = case.params.stride
    y = np.zeros((*x.shape[:2], *sizes))
    dx = np.zeros(x.shape)
    dy = np.asarray(case.dy, dtype=np.float64)
    for i in range(sizes[0]):
        for j in range(sizes[1]):
            rows, cols = slice(i * s0, i * s0 + kernel[0]), slice(j * s1, j * s1 + kernel[1])
            window = x[:, :, rows, cols]
            if window.size == 0:
                raise ValueError("an empty window")
            flat = window.reshape(*x.shape[:2], -1)
            g = dy[:, :, i, j, None] if i < dy.shape[2] and j < dy.shape[3] else np.zeros((*x.shape[:2], 1))
            if case.op.family == "max_pool":
                y[:, :, i, j] = flat.max(axis=-1)
                share = _first(_winners(flat)) * g
            else:
                y[:, :, i, j] = flat.mean(axis=-1)
                share = np.ones(flat.shape) / flat.shape[-1] * g
            dx[:, :, rows, cols] += share.reshape(window.shape)
    return {"y": y, "dx": dx}


def _plain_pooling(case: Case) -> bool:
    """A CS231n-style pooling case: no padding, no dilation, no ``ceil_mode``."""
    p = case.params
    return not (p.ceil_mode or any(p.padding) or any(d != 1 for d in getattr(p, "dilation", (1, 1))))


def _window_from_wrong_axis(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """A pooling window's extents taken from one axis for both (``pool_height`` for the width, or
    ``pool_width`` for the height): square windows, cut by the edge, where rectangular ones were asked."""
    kh, kw = case.params.kernel_size
    if kh == kw or not _plain_pooling(case):
        return
    sizes = list(output_shape(case, case.params)[2:])
    for k in (kh, kw):
        yield from with_split_variants(_pool_by_slices(case, sizes, (k, k)))


def _output_rounded(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """Output size by ``round()`` where the contract floors (pooling): the last window, cut by the
    edge, still makes an output."""
    p = case.params
    if not _plain_pooling(case):
        return
    shape = case.x.shape[2:]
    sizes = [1 + round((n - k) / s) for n, k, s in zip(shape, p.kernel_size, p.stride, strict=True)]
    if sizes == list(output_shape(case, p)[2:]):
        return
    yield {"y": _pool_by_slices(case, sizes, tuple(p.kernel_size))["y"]}


# --------------------------------------------------------------------------- max_pool2d


def _route(case: Case, weights: Callable[[np.ndarray], np.ndarray], accumulate: bool = True) -> np.ndarray:
    """``dx`` of max pooling with each window's gradient shared by ``weights(window values)``.

    ``weights`` maps a ``(N, C, L)`` array of a window's real cells to the
    share of ``dy`` each cell receives. Without ``accumulate``, a cell keeps
    the last window's share written to it (assignment, not addition).
    """
    x = np.asarray(case.x, dtype=np.float64)
    dy = np.asarray(case.dy, dtype=np.float64)
    n, c = x.shape[:2]
    dx = np.zeros(x.shape)
    for i, j, rows, cols in _windows(x.shape, case.params):
        window = x[:, :, rows[:, None], cols[None, :]]
        weight = weights(window.reshape(n, c, -1)).reshape(window.shape)
        share = weight * dy[:, :, i, j, None, None]
        if accumulate:
            dx[:, :, rows[:, None], cols[None, :]] += share
        else:
            region = dx[:, :, rows[:, None], cols[None, :]]
            dx[:, :, rows[:, None], cols[None, :]] = np.where(weight != 0, share, region)
    return dx


def _first(winners: np.ndarray) -> np.ndarray:
    first: np.ndarray = (np.arange(winners.shape[-1]) == np.argmax(winners, axis=-1)[..., None]).astype(float)
    return first


def _last(winners: np.ndarray) -> np.ndarray:
    m = winners.shape[-1]
    last: np.ndarray = (np.arange(m) == (m - 1 - np.argmax(winners[..., ::-1], axis=-1))[..., None]).astype(
        float
    )
    return last


def _ties_to_every_max(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """Every tied maximum of a window receives the window's whole gradient."""
    yield {"dx": _route(case, lambda v: _winners(v).astype(float))}


def _ties_to_last(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """A tied window's gradient goes to the last maximum in row-major window order."""
    if sem.get("ties", "first") != "last":
        yield {"dx": _route(case, lambda v: _last(_winners(v)))}


def _overlap_overwritten(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """Scattered with assignment: a cell winning in several windows keeps one ``dy``, not their sum.

    Two variants: the last write wins (NumPy fancy-index assignment, windows in
    row-major order) or the first one does.
    """
    rule = sem.get("ties", "first")
    if rule == "split":
        return
    pick = _first if rule == "first" else _last
    yield {"dx": _route(case, lambda v: pick(_winners(v)), accumulate=False)}
    reversed_case = _reverse_windows(case)
    if reversed_case is not None:
        yield {"dx": reversed_case}


def _reverse_windows(case: Case) -> np.ndarray | None:
    """Overwrite-scatter where the *first* window written to a cell keeps it."""
    x = np.asarray(case.x, dtype=np.float64)
    dy = np.asarray(case.dy, dtype=np.float64)
    n, c = x.shape[:2]
    dx = np.zeros(x.shape)
    written = np.zeros(x.shape, dtype=bool)
    for i, j, rows, cols in _windows(x.shape, case.params):
        window = x[:, :, rows[:, None], cols[None, :]]
        share = _first(_winners(window.reshape(n, c, -1))).reshape(window.shape)
        hit = (share != 0) & ~written[:, :, rows[:, None], cols[None, :]]
        region = dx[:, :, rows[:, None], cols[None, :]]
        dx[:, :, rows[:, None], cols[None, :]] = np.where(hit, dy[:, :, i, j, None, None], region)
        written[:, :, rows[:, None], cols[None, :]] |= share != 0
    return dx


def _zero_padding(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """Padding (and the ``ceil_mode`` overhang) filled with zeros, which can win, instead of ``-inf``:
    no mistake where the implementation declares that padding value (``pad_value``)."""
    if sem.get("pad_value", float("-inf")) != float("-inf"):
        return
    p = case.params
    x = np.asarray(case.x, dtype=np.float64)
    h, w = x.shape[2:]
    oh, ow = pool.output_spatial(x.shape, p)
    t, b, l, r = p.padding
    need_h = (oh - 1) * p.stride[0] + effective_kernel(p.kernel_size[0], p.dilation[0])
    need_w = (ow - 1) * p.stride[1] + effective_kernel(p.kernel_size[1], p.dilation[1])
    full = (t, max(b, need_h - h - t), l, max(r, need_w - w - l))
    if not any(full):
        return
    xz = np.pad(x, ((0, 0), (0, 0), full[:2], full[2:]))
    params = dataclasses.replace(p, padding=(0, 0, 0, 0), ceil_mode=False)
    y = forward(case, sem, params, x=xz)
    if y.shape[2:] != (oh, ow):
        return
    dxz = backward(case, sem, params, x=xz)["dx"]
    assert dxz is not None
    yield from with_split_variants({"y": y, "dx": dxz[:, :, t : t + h, l : l + w]})


# --------------------------------------------------------------------------- avg_pool2d


def _divisors(case: Case, count_include_pad: bool) -> np.ndarray:
    """The spec's ``(OH, OW)`` divisor grid of ``case`` under the given ``count_include_pad``."""
    p = case.params
    _, _, h, w = case.x.shape
    oh, ow = pool.output_spatial(case.x.shape, p)
    (kh, kw), (sh, sw) = p.kernel_size, p.stride
    t, b, l, r = p.padding
    dh = [avg_divisor(o, h, kh, sh, t, b, count_include_pad) for o in range(oh)]
    dw = [avg_divisor(o, w, kw, sw, l, r, count_include_pad) for o in range(ow)]
    return np.outer(dh, dw).astype(np.float64)


def _kernel_area(case: Case, sem: Mapping[str, Any]) -> Outputs:
    """Average pooling divided by ``KH * KW`` for every window (forward and backward)."""
    p = case.params
    area = float(p.kernel_size[0] * p.kernel_size[1])
    counted = dataclasses.replace(p, count_include_pad=True)
    ratio = _divisors(case, True) / area  # the padded-extent divisor the oracle uses, over the area
    y = forward(case, sem, counted) * ratio
    dx = backward(case, sem, counted, dy=np.asarray(case.dy, dtype=np.float64) * ratio)["dx"]
    assert dx is not None
    return {"y": y, "dx": dx}


def _always_kernel_area(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """Every window divided by ``KH * KW``, whatever ``count_include_pad`` and the overhang say."""
    yield from with_split_variants(_kernel_area(case, sem))


def _ceil_overhang_counted(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """With ``count_include_pad``, the ``ceil_mode`` overhang past the padding counted in the divisor."""
    if case.params.count_include_pad and case.params.ceil_mode:
        yield from with_split_variants(_kernel_area(case, sem))


def _count_include_pad_ignored(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """The divisor computed with the opposite ``count_include_pad`` (the flag ignored)."""
    params = replaced(case, count_include_pad=not case.params.count_include_pad)
    yield from with_split_variants(
        {"y": forward(case, sem, params), **grads_only(backward(case, sem, params))}
    )


def _avg_backward_ignores_padding(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """Backward windows placed at ``(i*sh, j*sw)`` in ``x``, forgetting the top/left padding."""
    p = case.params
    if not (p.padding[0] or p.padding[2]):
        return
    dy = np.asarray(case.dy, dtype=np.float64)
    share = dy / _divisors(case, p.count_include_pad)
    dx = np.zeros(case.x.shape)
    (kh, kw), (sh, sw) = p.kernel_size, p.stride
    for i in range(dy.shape[2]):
        for j in range(dy.shape[3]):
            dx[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] += share[:, :, i : i + 1, j : j + 1]
    yield {"dx": dx}


# --------------------------------------------------------------------------- conv3d


def _dx_kernel_depth_not_flipped(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """``dx`` with the kernel reversed on its last two axes only (the 2-D rotation ``w[..., ::-1, ::-1]``
    on a 3-D kernel): the right formula applied to the kernel reversed along depth."""
    w = case.array("w")
    yield {"dx": backward(case, sem, w=w[:, :, ::-1])["dx"]}


# --------------------------------------------------------------------------- activations


def _relu_derivative_one_at_zero(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """``dx = dy`` where ``x >= 0``: the gradient passes at the kink ``x == 0`` too."""
    x = np.asarray(case.x, dtype=np.float64)
    yield {"dx": np.where(x >= 0, np.asarray(case.dy, dtype=np.float64), 0.0)}


def _derivative_of_output_applied_to_input(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """The derivative written in terms of the output, ``y (1 - y)`` for sigmoid and ``1 - y**2`` for
    tanh, evaluated at the input ``x`` instead of ``y = f(x)``."""
    x = np.asarray(case.x, dtype=np.float64)
    slope = x * (1.0 - x) if case.op_name == "sigmoid" else 1.0 - x * x
    yield {"dx": np.asarray(case.dy, dtype=np.float64) * slope}


# --------------------------------------------------------------------------- linear, flatten


def _linear_batch_averaged_twice(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """``dw`` and ``db`` divided by the batch size ``N`` (both, or only one of them)."""
    n = case.x.shape[0]
    if n < 2:
        return
    averaged = {k: v / n for k, v in grads_only(backward(case, sem), "dw", "db").items()}
    yield averaged
    if len(averaged) > 1:
        yield from ({k: v} for k, v in averaged.items())


def _flatten_channels_last(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """Each sample flattened channels last (``x`` moved to ``(N, *spatial, C)`` before reshaping) and
    ``dx`` the inverse of that, in both passes or in one of them."""
    x = np.asarray(case.x, dtype=np.float64)
    if x.ndim < 3:
        return
    n, c, *spatial = x.shape
    y = np.moveaxis(x, 1, -1).reshape(n, -1)
    dx = np.moveaxis(np.asarray(case.dy, dtype=np.float64).reshape(n, *spatial, c), -1, 1)
    yield from with_split_variants({"y": y, "dx": dx})


# --------------------------------------------------------------------------- losses


def _dz_missing_batch_mean(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """``dz`` without the mean's ``1/N`` (``1/z.size`` for the binary loss, which averages every element)."""
    z = case.array("z")
    count = z.shape[0] if case.op_name == "softmax_cross_entropy" else z.size
    if count > 1:
        yield {"dz": loss_outputs(case)["dz"] * count}


def _precisions(case: Case) -> list[str]:
    """The dtypes an unstable formula may be evaluated in, where it overflows: the case's own, and
    float64 (a student who casts first overflows later, at ``exp(710)`` instead of ``exp(89)``)."""
    return list(dict.fromkeys((case.dtype, "float64")))


def _logsumexp_not_max_shifted(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """The softmax cross-entropy as written, ``exp(z)`` without the row maximum subtracted: ``inf`` once
    a logit passes the dtype's ``log(max)``, a row of zeros when all of them are very negative.

    Two forms of the loss: ``log(sum exp z) - z_label`` and ``-log(softmax(z)_label)``.
    """
    n = case.array("z").shape[0]
    rows, labels = np.arange(n), np.asarray(case.inputs["labels"]).astype(np.intp)
    variants = []
    with np.errstate(all="ignore"):  # the overflow is the point
        for dtype in _precisions(case):
            z = np.asarray(case.inputs["z"], dtype=dtype)
            e = np.exp(z)
            total = e.sum(axis=1)
            p = e / total[:, None]
            dz = p.copy()
            dz[rows, labels] -= 1
            dz /= n
            for loss in (np.mean(np.log(total) - z[rows, labels]), -np.mean(np.log(p[rows, labels]))):
                variants.append({"loss": np.asarray(loss, dtype=np.float64), "dz": dz.astype(np.float64)})
    yield from variants


def _bce_log_of_sigmoid(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """The binary cross-entropy as written, ``-y log s - (1 - y) log(1 - s)``: ``s`` rounds to 0 or 1
    for large ``|z|`` and a log sees 0.

    ``s`` as ``1 / (1 + exp(-z))`` (its gradient ``(s - y) / z.size`` stays right), or as
    ``exp(z) / (1 + exp(z))``, which is NaN for large ``z`` (in ``dz`` too).
    """
    variants = []
    with np.errstate(all="ignore"):  # the overflow is the point
        for dtype in _precisions(case):
            z, y = (np.asarray(case.inputs[k], dtype=dtype) for k in ("z", "y"))
            for s, changes_dz in ((1 / (1 + np.exp(-z)), False), (np.exp(z) / (1 + np.exp(z)), True)):
                loss = np.mean(-y * np.log(s) - (1 - y) * np.log(1 - s))
                out = {"loss": np.asarray(loss, dtype=np.float64)}
                if changes_dz:
                    out["dz"] = ((s - y) / z.size).astype(np.float64)
                variants.append(out)
    yield from variants


# --------------------------------------------------------------------------- extreme and non-finite values


FINITE_SENTINELS = (-1e30, -1e38, -1e9)
"""Finite stand-ins for ``-inf`` that code pads max-pooling with (beside the dtype's own ``min`` and
``min / 2``, ``_sentinels``)."""


def _sentinels(dtype: str) -> list[float]:
    """The finite padding values tried for ``dtype``: the usual constants that fit it, ``min``, ``min/2``."""
    low = float(np.finfo(np.dtype(dtype)).min)
    return [s for s in (*FINITE_SENTINELS, low, low / 2) if s >= low]


def _finite_padding_sentinel(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """Padding (and the ``ceil_mode`` overhang) filled with a large finite negative number instead of
    ``-inf``: it wins every window whose real cells all lie below it. One variant per sentinel."""
    if sem.get("pad_value", float("-inf")) != float("-inf"):
        return
    for sentinel in _sentinels(case.dtype):
        at = {**sem, "pad_value": sentinel}
        yield {"y": forward(case, at), "dx": backward(case, at)["dx"]}


def _nan_not_propagated(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """A max-pool taking the maximum by comparisons that NaN loses: a window's NaN cells are passed
    over (a window of NaN only gives ``-inf``), and the gradient goes to the largest other cell."""
    x = np.asarray(case.x, dtype=np.float64)
    if not np.isnan(x).any():
        return
    kept = np.where(np.isnan(x), -np.inf, x)
    yield {"y": forward(case, sem, x=kept), "dx": backward(case, sem, x=kept)["dx"]}


def _flushed(a: np.ndarray | None, dtype: str) -> np.ndarray | None:
    """``a`` with every value below the smallest normal number of ``dtype`` set to zero."""
    if a is None:
        return None
    a = np.asarray(a, dtype=np.float64)
    return np.where(np.abs(a) < float(np.finfo(np.dtype(dtype)).tiny), 0.0, a)


def _subnormals_flushed(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """A forward pass in flush-to-zero mode: subnormal inputs read as zero, subnormal results set to zero
    (and, as a second form, the inputs only)."""
    arrays = {k: _flushed(v, case.dtype) for k, v in case.inputs.items()}
    y = forward(case, sem, **arrays)
    yield {"y": _flushed(y, case.dtype)}  # type: ignore[dict-item]
    yield {"y": y}


def _window_divisors(case: Case) -> np.ndarray:
    """The spec's divisor of every average-pool window (shape: the output's spatial shape), any dimension."""
    p = case.params
    out = case.output_shape()[2:]
    div = np.ones(())
    for a, m in enumerate(out):
        n, k, s, (lo, hi) = case.x.shape[2 + a], p.kernel_size[a], p.stride[a], p.pads(a)
        div = np.multiply.outer(div, [avg_divisor(o, n, k, s, lo, hi, p.count_include_pad) for o in range(m)])
    return div


def _sum_overflows(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
    """An average that adds a window's cells in the half-precision input dtype before dividing: the
    sum becomes ``+-inf`` where it passes the dtype's largest value, though the mean is finite.
    (In float32 and float64 the storage dtype is the accumulation dtype, and such an overflow is
    allowed: ``spec.tolerance``, Overflow.)"""
    if not dtypes.is_half(case.dtype):
        return
    div = _window_divisors(case)
    with np.errstate(over="ignore"):
        sums = (forward(case, sem) * div).astype(case.dtype).astype(np.float64)
    if np.isfinite(sums).all():
        return
    yield {"y": sums / div}


# --------------------------------------------------------------------------- the catalogue

CONV = ("conv2d",)
MAX = ("max_pool2d",)
AVG = ("avg_pool2d",)
ALL = ("conv2d", "max_pool2d", "avg_pool2d")
WINDOWS = tuple(f"{family}{ndim}d" for ndim in (1, 2, 3) for family in ("conv", "max_pool", "avg_pool"))
LOSSES = ("softmax_cross_entropy", "sigmoid_binary_cross_entropy")

MAX_ALL = tuple(f"max_pool{ndim}d" for ndim in (1, 2, 3))
AVG_ALL = tuple(f"avg_pool{ndim}d" for ndim in (1, 2, 3))
CONV_ALL = tuple(f"conv{ndim}d" for ndim in (1, 2, 3))

CATALOGUE: tuple[Mistake, ...] = (
    Mistake(
        "maxpool_finite_padding_sentinel",
        MAX_ALL,
        "padding sentinel is finite: the padding holds a large negative number (-1e30, finfo.min/2, ...) "
        "instead of -inf, and wins every window whose real cells all lie below it",
        _finite_padding_sentinel,
    ),
    Mistake(
        "maxpool_nan_not_propagated",
        MAX_ALL,
        "NaN not propagated: the window maximum is taken by comparisons (v > best, nanmax) that NaN always "
        "loses, so a window holding NaN returns its largest other value; NaN must win its window",
        _nan_not_propagated,
    ),
    Mistake(
        "subnormals_flushed_to_zero",
        CONV_ALL,
        "subnormal numbers are flushed to zero (flush-to-zero / denormals-are-zero mode, fast-math): "
        "inputs and results below the smallest normal number become 0",
        _subnormals_flushed,
    ),
    Mistake(
        "avgpool_sum_overflows",
        AVG_ALL,
        "the window is added up in the half-precision storage dtype before dividing, though float32 "
        "accumulation is declared: the sum overflows to inf where the mean is finite; accumulate in "
        'float32 (or declare "accumulate": "storage")',
        _sum_overflows,
    ),
    Mistake(
        "dx_kernel_not_flipped",
        CONV,
        "dx matches the kernel not rotated by 180 degrees (or rotated twice) in the full correlation",
        _dx_kernel_not_flipped,
    ),
    Mistake(
        "dx_valid_not_full",
        CONV,
        "dx matches a 'valid' instead of a 'full' convolution of the stride-dilated dy with the kernel",
        _dx_valid_not_full,
    ),
    Mistake(
        "dx_crop_ignores_padding",
        CONV,
        "dx matches the padded input's gradient cut at [:H, :W] instead of [top:top+H, left:left+W]",
        _dx_crop_ignores_padding,
    ),
    Mistake(
        "dx_crop_at_zero_padding",
        CONV,
        "dx matches the padded gradient cropped as dx_pad[:, :, p:-p, p:-p], which is empty when p = 0 "
        "(-0 is 0); crop with dx_pad[:, :, p:p + H, p:p + W]",
        _dx_crop_at_zero_padding,
    ),
    Mistake(
        "dx_crop_hard_coded",
        CONV,
        "dx matches the padded gradient cropped by a fixed number of cells (e.g. [1:-1, 1:-1], or not at "
        "all) whatever the padding; crop the padding actually used, dx_pad[:, :, p:p + H, p:p + W]",
        _dx_crop_hard_coded,
    ),
    Mistake(
        "dx_overlap_overwritten",
        CONV,
        "dx matches window contributions assigned instead of added (dx_pad[..., window] = ... where "
        "it must be +=): where windows overlap, a cell keeps only the last window's share",
        _dx_overlap_overwritten,
    ),
    Mistake(
        "dw_batch_averaged",
        CONV,
        "dw equals the right dw divided by N (averaged over the batch)",
        _dw_batch_averaged,
    ),
    Mistake(
        "db_batch_averaged",
        CONV,
        "db equals the right db divided by N (the batch averaged, not summed)",
        _db_batch_averaged,
    ),
    Mistake(
        "dw_kernel_axes_swapped",
        CONV,
        "dw matches the right dw with its kernel-height and kernel-width axes swapped",
        _dw_kernel_axes_swapped,
    ),
    Mistake(
        "dw_channel_axes_swapped",
        CONV,
        "dw matches the right dw with its output- and input-channel axes swapped",
        _dw_channel_axes_swapped,
    ),
    Mistake(
        "backward_ignores_stride",
        CONV,
        "the gradients match a backward pass that treats the stride as 1 (taps read consecutive cells)",
        _backward_ignores_stride,
    ),
    Mistake(
        "backward_ignores_dilation",
        CONV,
        "the gradients match a backward pass that treats the dilation as 1",
        _backward_ignores_dilation,
    ),
    Mistake(
        "dw_groups_ignored",
        CONV,
        "dw matches a groups=1 weight gradient cut to C_in/groups channels (every group reads group 0)",
        _dw_groups_ignored,
    ),
    Mistake(
        "convolution_convention_undeclared",
        CONV,
        "the outputs match the other convention (kernel rotated by 180 degrees: convolution vs "
        "cross-correlation); declare it in CONVCHECK_CAPABILITIES or flip the kernel",
        _convention_flipped,
        composes=True,
    ),
    Mistake(
        "maxpool_ties_to_every_max",
        MAX,
        "every tied maximum of a window receives the window's whole gradient (a mask, not one winner)",
        _ties_to_every_max,
    ),
    Mistake(
        "maxpool_ties_to_last",
        MAX,
        "a tied window's gradient goes to the last maximum in row-major order, not the first",
        _ties_to_last,
    ),
    Mistake(
        "maxpool_overlap_overwritten",
        MAX,
        "a cell that wins in overlapping windows keeps one window's gradient: assigned, not accumulated",
        _overlap_overwritten,
    ),
    Mistake(
        "maxpool_zero_padding",
        MAX,
        "the outputs match padding filled with zeros (which can win) instead of -inf",
        _zero_padding,
        semantics={"pad_value": 0.0},
    ),
    Mistake(
        "avgpool_divisor_counts_ceil_overhang",
        AVG,
        "with count_include_pad, the divisor counts the ceil_mode overhang past the padding (KH*KW)",
        _ceil_overhang_counted,
    ),
    Mistake(
        "avgpool_divisor_always_kernel_area",
        AVG,
        "every window is divided by KH*KW, ignoring count_include_pad and the ceil_mode overhang",
        _always_kernel_area,
    ),
    Mistake(
        "avgpool_count_include_pad_ignored",
        AVG,
        "the divisor follows the opposite count_include_pad setting (the flag is ignored)",
        _count_include_pad_ignored,
        composes=True,
    ),
    Mistake(
        "avgpool_backward_ignores_padding",
        AVG,
        "dx matches backward windows placed at (i*stride, j*stride), forgetting the top/left padding",
        _avg_backward_ignores_padding,
    ),
    Mistake(
        "output_size_ceil_not_floor",
        ALL,
        "the output size is rounded up (ceil, or round() of a fraction of at least 1/2) where the contract "
        "rounds down (floor)",
        _output_ceil,
        composes=True,
    ),
    Mistake(
        "output_size_rounded_not_floored",
        ("max_pool2d", "avg_pool2d"),
        "the output size is round((H - K) / S) + 1 where the contract floors: a window cut by the edge "
        "still makes an output; use (H - K) // S + 1",
        _output_rounded,
    ),
    Mistake(
        "asymmetric_padding_treated_as_symmetric",
        ALL,
        "the outputs match a symmetric padding (one value per axis) where an asymmetric one was asked",
        _padding_as_symmetric,
        composes=True,
    ),
    Mistake(
        "batch_reads_first_sample",
        WINDOWS,
        "every sample of the batch gets sample 0's output: the batch is stepped through with a stride of 0",
        _first_sample_everywhere,
        composes=True,
    ),
    Mistake(
        "h_w_swapped",
        ALL,
        "the outputs match the (h, w) hyper-parameters read as (w, h): height and width swapped",
        _hw_swapped,
        composes=True,
    ),
    Mistake(
        "pool_ceil_mode_ignored",
        MAX + AVG,
        "the output size is always rounded down: ceil_mode=True is ignored, so the window that rounding "
        "up adds at the far edge is missing",
        _ceil_mode_ignored,
        composes=True,
    ),
    Mistake(
        "square_outputs_assumed",
        ALL,
        "the outputs match code that assumes a square output (H_out used for both axes, or W_out): "
        "windows past the smaller extent are skipped, or the output is allocated square",
        _square_outputs,
        composes=True,
    ),
    Mistake(
        "window_extent_from_wrong_axis",
        ("max_pool2d", "avg_pool2d"),
        "the outputs match a square pooling window: one axis's extent used for both (pool_height for "
        "the width, or pool_width for the height)",
        _window_from_wrong_axis,
    ),
    Mistake(
        "dx_kernel_depth_not_flipped",
        ("conv3d",),
        "dx matches the kernel reversed on its last two axes only (the 2-D rotation w[..., ::-1, ::-1]): "
        "the depth axis is not flipped in the full correlation",
        _dx_kernel_depth_not_flipped,
    ),
    Mistake(
        "relu_derivative_one_at_zero",
        ("relu",),
        "dx passes dy where x == 0 (a mask x >= 0): the contract's derivative at the kink is 0, "
        "pass the gradient only where x > 0 (PyTorch's choice)",
        _relu_derivative_one_at_zero,
    ),
    Mistake(
        "derivative_of_output_applied_to_input",
        ("sigmoid", "tanh"),
        "dx matches the derivative written in terms of the output (y(1 - y), 1 - y**2) evaluated at the "
        "input x; backward receives x, so compute y = f(x) first",
        _derivative_of_output_applied_to_input,
    ),
    Mistake(
        "linear_batch_averaged_twice",
        ("linear",),
        "dw (and db) equal the right ones divided by N: the layer averages over the batch although the "
        "loss gradient already carries the 1/N; sum over the batch",
        _linear_batch_averaged_twice,
    ),
    Mistake(
        "flatten_channels_last",
        ("flatten",),
        "the outputs match a channels-last flatten (x transposed to N, H, W, C before reshaping); the "
        "contract flattens each sample in C order, y[n] = x[n].ravel()",
        _flatten_channels_last,
    ),
    Mistake(
        "dz_missing_batch_mean",
        LOSSES,
        "dz equals the right dz times N (times z.size for the binary loss): the loss is a mean but dz "
        "lacks the mean's 1/N",
        _dz_missing_batch_mean,
    ),
    Mistake(
        "logsumexp_not_max_shifted",
        ("softmax_cross_entropy",),
        "the outputs match log(sum(exp(z))) and exp(z) / sum(exp(z)) evaluated without subtracting each "
        "row's maximum: exp overflows for large logits (inf, NaN)",
        _logsumexp_not_max_shifted,
    ),
    Mistake(
        "bce_log_of_sigmoid",
        ("sigmoid_binary_cross_entropy",),
        "the loss matches -y log(s) - (1 - y) log(1 - s) evaluated as written: s = sigmoid(z) rounds to "
        "0 or 1 for large |z| and a log sees 0; use max(z, 0) - z y + log1p(exp(-|z|))",
        _bce_log_of_sigmoid,
    ),
)
"""Every value mistake, most specific first (the first match is named)."""


def composed(first: Mistake, second: Mistake) -> Mistake | None:
    """Both mistakes made at once, or ``None`` where the catalogue cannot compute that.

    ``first`` must be a mistake of semantics (``Mistake.semantics``). Each form
    of ``first`` (both passes, forward only, backward only) is combined with each
    form of ``second``: an output both change is ``second``'s computed under
    ``first``'s semantics, which needs ``second.composes``; an output only one of
    them changes is that one's prediction. Without ``second.composes`` only forms
    changing different outputs are combined.
    """
    if first.semantics is None or first.slug == second.slug:
        return None
    ops = tuple(op for op in second.ops if op in first.ops)
    if not ops:
        return None
    changes = dict(first.semantics)

    def predict(case: Case, sem: Mapping[str, Any]) -> Iterator[Outputs]:
        plain = second.variants(case, sem)
        if not plain:
            return  # ``second`` cannot show here: the pair is ``first`` alone, tested on its own
        own = first.variants(case, sem)
        under = second.variants(case, {**sem, **changes}) if second.composes else plain
        if len(under) != len(plain):
            return
        for form in own:
            for alone, shifted in zip(plain, under, strict=True):
                shared = set(form) & set(alone)
                if shared and not second.composes:
                    continue
                out = {k: (shifted[k] if k in form else v) for k, v in alone.items()}
                out.update({k: v for k, v in form.items() if k not in alone})
                yield out

    return Mistake(
        f"{first.slug}+{second.slug}",
        ops,
        f"{first.explanation}; and {second.explanation}",
        predict,
    )


def for_operation(op_name: str) -> list[Mistake]:
    """The catalogue entries that concern ``op_name``."""
    return [m for m in CATALOGUE if op_name in m.ops]


__all__ = ["CATALOGUE", "Mistake", "composed", "for_operation"]

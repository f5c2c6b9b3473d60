"""The non-finite contract: what convolution and pooling return when an input holds NaN or +-inf.

The contract follows PyTorch (``torch.nn.functional``, CPU, float32 and float64), established by
experiment and checked against it by the meta-tests (``meta_tests/test_nonfinite.py``). Every
output element is one of four classes, ``finite``, ``nan``, ``+inf``, ``-inf``; the contract says
which, position by position. Values of the finite elements are not the contract's business.

Convolution (forward)
    ``y[o] = b + sum over taps of w[tap] * xp[o*stride + tap*dilation]`` in IEEE arithmetic, where
    ``xp`` is ``x`` padded with zeros. Whether the padding's zeros are multiplied is left open,
    as PyTorch's kernels differ: its float64 kernels and its float32 ``conv1d`` multiply them (an
    infinite weight or ``dy`` meeting a padding cell gives NaN, ``0 * inf``), its float32 ``conv2d``
    skips them; either is accepted. A NaN term makes NaN; ``+inf`` and
    ``-inf`` terms together make NaN; otherwise an infinite term decides the sign.
Convolution (backward)
    ``dx[i] = sum of dy[o] * w[tap]`` over the ``(o, tap)`` that read ``x[i]`` (nothing lands on the
    padding; a cell no window reads gets 0); ``dw[tap] = sum of dy[o] * xp[o*stride + tap*dilation]``,
    the padding's zeros included (``0 * inf = NaN`` for an infinite ``dy`` at a padded border), while
    a cell that a stride skips takes no part; ``db = sum of dy``. IEEE rules as above.
Average pooling
    Forward: the sum of a window's real cells (padding adds zeros, the ``ceil_mode`` overhang
    nothing), divided by a finite divisor: NaN in, NaN out; ``+inf`` and ``-inf`` together give NaN.
    Backward: ``dx[i]`` sums ``dy[o] / divisor`` over the windows reading ``x[i]``.
Max pooling (forward)
    A window holding a NaN gives NaN (NaN wins over everything, ``+inf`` included); otherwise a
    ``+inf`` cell gives ``+inf``; ``-inf`` only when every real cell of the window is ``-inf``
    (padding and the ceil-mode overhang are ``-inf`` and never win over a real cell).
Max pooling (backward)
    ``dy[o]`` goes whole to one winner of window ``o``: a NaN cell when the window holds NaN (with
    several NaN cells PyTorch picks the last in window order, the NumPy references the first: a
    tie, like equal maxima), else a maximal cell, else (every real cell ``-inf``) the first real
    cell. ``dx[i]`` sums what its windows route to it: with a finite ``dy`` it is finite, and an
    infinite ``dy`` reaches ``dx`` at the winner only.

The value families ``nonfinite`` (NaN and +-inf among the inputs' values) and ``nonfinite_dy``
(in ``dy`` only, finite inputs) exercise it; ``expected_classes`` computes the contract's classes
for a case by exact class arithmetic (finite values replaced by their signs, so no finite sum
can overflow and the classes do not depend on summation order).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .case import Case

FINITE, NAN, POS_INF, NEG_INF = 0, 1, 2, 3
"""Class codes of an element."""
CLASS_NAMES = {FINITE: "finite", NAN: "nan", POS_INF: "+inf", NEG_INF: "-inf"}

FAMILIES = ("conv", "max_pool", "avg_pool")
"""Operation families the contract covers."""


def covers(op_family: str) -> bool:
    """Whether the non-finite contract speaks about operations of ``op_family``."""
    return op_family in FAMILIES


def classify(a: np.ndarray) -> np.ndarray:
    """Class code (``FINITE``, ``NAN``, ``POS_INF``, ``NEG_INF``) of every element of ``a``."""
    a = np.asarray(a, dtype=np.float64)
    codes = np.full(a.shape, FINITE, dtype=np.int8)
    codes[np.isnan(a)] = NAN
    codes[a == np.inf] = POS_INF
    codes[a == -np.inf] = NEG_INF
    return codes


def _coded(a: np.ndarray | None) -> np.ndarray | None:
    """``a`` in float64 with every finite value replaced by its sign (``-1``, ``0``, ``1``)."""
    if a is None:
        return None
    a = np.asarray(a, dtype=np.float64)
    return np.where(np.isfinite(a), np.sign(a), a)


def _taps(
    x_shape: tuple[int, ...], out: tuple[int, ...], p: object
) -> Iterator[tuple[tuple[int, ...], tuple[np.ndarray, ...], np.ndarray]]:
    """For every tap of the window: the input index read by each output cell, per axis (clipped into
    range), and the mask of output cells whose read lands on a real cell (not padding or overhang)."""
    kernel = p.kernel_size if hasattr(p, "kernel_size") else None  # pooling records carry the kernel
    assert kernel is not None
    spatial = x_shape[2:]
    for tap in np.ndindex(*kernel):
        index, valid = [], []
        for a, t in enumerate(tap):
            lo = p.pads(a)[0]  # type: ignore[attr-defined]
            i = np.arange(out[a]) * p.stride[a] + t * p.dilation[a] - lo  # type: ignore[attr-defined]
            valid.append((i >= 0) & (i < spatial[a]))
            index.append(np.clip(i, 0, spatial[a] - 1))
        grid = np.ix_(*index)
        mask = np.ones(out, dtype=bool)
        for a, v in enumerate(valid):
            mask &= v.reshape([-1 if b == a else 1 for b in range(len(out))])
        yield tap, grid, mask


def _windows(x: np.ndarray, out: tuple[int, ...], p: object, pad: float) -> np.ndarray:
    """Every window of ``x`` as ``(N, C, *out, taps)``, cells outside the input read as ``pad``."""
    every: tuple[Any, ...] = (...,)
    cells = [np.where(mask, x[(*every, *grid)], pad) for _, grid, mask in _taps(x.shape, out, p)]
    return np.stack(cells, axis=-1)


def _scatter(x_shape: tuple[int, ...], out: tuple[int, ...], p: object, parts: np.ndarray) -> np.ndarray:
    """``dx``: ``parts[..., tap]`` (``(N, C, *out, taps)``) added to the real cell each tap reads."""
    dx = np.zeros(x_shape)
    n, c = x_shape[:2]
    for k, (_, grid, mask) in enumerate(_taps(x_shape, out, p)):
        full = np.broadcast_arrays(*grid)
        where = np.nonzero(mask)
        for b in range(n):
            for ch in range(c):
                np.add.at(dx[b, ch], tuple(g[where] for g in full), parts[(b, ch, *where, k)])
    return dx


class _ConvWindow:
    """A convolution record seen as a window (its kernel from ``w``), for ``_taps``."""

    def __init__(self, p: object, kernel: tuple[int, ...]) -> None:
        self.kernel_size = kernel
        self.stride = p.stride  # type: ignore[attr-defined]
        self.dilation = p.dilation  # type: ignore[attr-defined]
        self._p = p

    def pads(self, axis: int) -> tuple[int, int]:
        pads: tuple[int, int] = self._p.pads(axis)  # type: ignore[attr-defined]
        return pads


def _conv(case: Case, forward: bool, padding_terms: bool, flipped: bool) -> dict[str, np.ndarray]:
    """Class arithmetic of convolution (module docstring), on sign-coded arrays; ``padding_terms``
    says whether the padding's zeros are multiplied (``0 * inf = NaN``) or form no terms at all,
    ``flipped`` that the declared convention is a true convolution (the kernel flipped)."""
    x, w, b = (_coded(case.inputs[k]) for k in ("x", "w", "b"))
    assert x is not None and w is not None
    spatial_axes = tuple(range(2, w.ndim))
    if flipped:
        w = np.flip(w, axis=spatial_axes)
    p, g = case.params, case.params.groups
    out = case.output_shape()[2:]
    win = _ConvWindow(p, tuple(w.shape[2:]))
    n, c_in = x.shape[:2]
    c_out = w.shape[0]
    sp = "pqr"[: len(out)]  # the spatial axes' subscripts
    every: tuple[Any, ...] = (...,)
    dy = _coded(case.dy)
    y = np.zeros((n, g, c_out // g, *out))
    dw = np.zeros((g, c_out // g, c_in // g, *w.shape[2:]))
    parts = []
    for tap, grid, mask in _taps(x.shape, out, win):
        cols = np.where(mask, x[(*every, *grid)], 0.0).reshape(n, g, c_in // g, *out)  # padding reads 0
        wt = w[(*every, *tap)].reshape(g, c_out // g, c_in // g)
        if forward:
            term = np.einsum(f"ngi{sp},goi->ngo{sp}", cols, wt)
            y += term if padding_terms else np.where(mask, term, 0.0)
            continue
        assert dy is not None
        dyg = dy.reshape(n, g, c_out // g, *out)
        dyt = dyg if padding_terms else np.where(mask, dyg, 0.0)
        dw[(*every, *tap)] = np.einsum(f"ngo{sp},ngi{sp}->goi", dyt, cols)
        parts.append(np.einsum(f"ngo{sp},goi->ngi{sp}", dyg, wt).reshape(n, c_in, *out))
    if forward:
        yf = y.reshape(n, c_out, *out)
        if b is not None:
            yf = yf + b.reshape(1, -1, *([1] * len(out)))
        return {"y": classify(yf)}
    assert dy is not None
    dx = _scatter(x.shape, out, win, np.stack(parts, axis=-1))
    db = dy.sum(axis=(0, *range(2, dy.ndim)))
    dw = dw.reshape(w.shape)
    if flipped:
        dw = np.flip(dw, axis=spatial_axes)
    return {"dx": classify(dx), "dw": classify(dw), "db": classify(db)}


def _max_winner(win: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """One-hot ``(..., taps)`` of each window's winner (module docstring): the first NaN cell, else
    the first maximal real cell (every real cell ``-inf``: the first real cell)."""
    nan = np.isnan(win) & valid
    keyed = np.where(valid & ~nan, win, -np.inf)
    top = keyed.max(axis=-1, keepdims=True)
    winners = np.where(nan.any(axis=-1, keepdims=True), nan, valid & (keyed == top))
    first = np.argmax(winners, axis=-1)
    one_hot: np.ndarray = np.arange(win.shape[-1]) == first[..., None]
    return one_hot


def _pool(case: Case, forward: bool, pad_value: float) -> dict[str, np.ndarray]:
    """Class arithmetic of max and average pooling (module docstring); ``pad_value`` is a max-pool's
    declared padding (``-inf`` by contract; a finite one competes like a real cell)."""
    x = np.asarray(case.x, dtype=np.float64)
    p = case.params
    out = case.output_shape()[2:]
    valid = np.stack([m for _, _, m in _taps(x.shape, out, p)], axis=-1)
    if case.op.family == "max_pool":
        win = _windows(x, out, p, pad_value)
        if forward:
            return {"y": classify(np.max(win, axis=-1))}  # np.max propagates NaN
        competing = valid if pad_value == -np.inf else np.ones_like(valid)
        parts = _max_winner(win, competing) * valid  # a padded winner's gradient is dropped
    else:
        win = _windows(_coded(x), out, p, 0.0)  # type: ignore[arg-type]
        if forward:
            return {"y": classify(win.sum(axis=-1))}
        parts = valid * 1.0
    dy = _coded(case.dy)
    assert dy is not None
    routed = np.where(parts != 0, dy[..., None] * parts, 0.0)  # a finite 0 never meets an infinite dy
    return {"dx": classify(_scatter(x.shape, out, p, routed))}


def expected_classes(
    case: Case, forward: bool, padding_terms: bool = True, semantics: Mapping[str, Any] | None = None
) -> dict[str, np.ndarray]:
    """The contract's class of every element of each output (``y``; or ``dx``, ``dw``, ``db``) of a
    convolution or pooling ``case``: codes ``FINITE``, ``NAN``, ``POS_INF``, ``NEG_INF``. For a
    convolution, ``padding_terms=False`` gives the other reading the contract allows, where the
    padding forms no terms (``allowed_classes`` accepts either). ``semantics`` holds the declared
    ``convention`` and ``pad_value`` where they are not the contract's."""
    family = case.op.family
    if not covers(family):
        raise ValueError(f"the non-finite contract covers {', '.join(FAMILIES)}, not {family}")
    sem = semantics or {}
    with np.errstate(invalid="ignore", over="ignore"):  # inf * 0 and inf - inf are the point here
        if family == "conv":
            return _conv(case, forward, padding_terms, sem.get("convention") == "convolution")
        return _pool(case, forward, float(sem.get("pad_value", -np.inf)))


def allowed_classes(
    case: Case, forward: bool, semantics: Mapping[str, Any] | None = None
) -> dict[str, tuple[np.ndarray, ...]]:
    """For each output, the class arrays the contract accepts element by element: one for pooling,
    for convolution the padding's zeros multiplied or left out (PyTorch does both, by kernel: the
    module docstring)."""
    strict = expected_classes(case, forward, semantics=semantics)
    if case.op.family != "conv":
        return {k: (v,) for k, v in strict.items()}
    loose = expected_classes(case, forward, padding_terms=False, semantics=semantics)
    return {k: (v, loose[k]) for k, v in strict.items()}


def breaks(got: np.ndarray, allowed: tuple[np.ndarray, ...]) -> np.ndarray:
    """Mask of the elements of ``got`` whose class none of the ``allowed`` class arrays gives."""
    codes = classify(got)
    bad = np.ones(codes.shape, dtype=bool)
    for classes in allowed:
        bad &= codes != classes
    return bad


def mismatches(got: np.ndarray, allowed: tuple[np.ndarray, ...]) -> list[str]:
    """Human-readable disagreements between ``got``'s classes and the contract's (first few)."""
    wrong = np.argwhere(breaks(got, allowed))
    lines = [
        f"at {tuple(int(i) for i in idx)}: expected "
        + " or ".join(dict.fromkeys(CLASS_NAMES[int(c[tuple(idx)])] for c in allowed))
        + f", got {got[tuple(idx)]!r}"
        for idx in wrong[:5]
    ]
    if len(wrong) > 5:
        lines.append(f"... {len(wrong) - 5} more of {got.size} elements")
    return lines

"""Max and average pooling in 1, 2 and 3 spatial dimensions in plain NumPy, one explicit window at a time.

The definitions are those of ``convcheck.spec.pool``; window positions, output
sizes and divisors come from ``convcheck.spec.shapes``, one spatial axis at a
time. Loops run over output positions only (every window is vectorised over
batch and channels), so the code reads like the definition and is meant for
small arrays. One generic function per direction serves every dimension; the
contract functions (``max_pool1d_forward`` ... ``avg_pool3d_backward``), made
per dimension by ``contract.oracle_functions``, only
build the dimension's hyper-parameter record.

Window ``o = (o_0, ..., o_{D-1})`` reads, on spatial axis ``a``, the input
coordinates ``window_cells(o_a, K_a, S_a, low_a, D_a)``; only those inside the
input are *real* cells, the others are padding. The window is the Cartesian
product of its axes' real coordinates, flattened in row-major (C) order.

* Max pooling pads with ``-inf``. A ``-inf`` padding cell can never be a strict
  maximum and the spec guarantees every window has a real cell, so the padding is
  kept implicit: the maximum and its winning cell(s) are taken over the real
  cells in row-major window order. On a window whose real cells are all ``-inf``
  the winner is thus a real cell, as in PyTorch. NaN counts as larger than any
  number (it propagates); tied NaNs follow the tie rule like tied numbers.
* A declared finite ``pad_value`` (``spec.pool.MAX_PAD_VALUES``: a library padding with 0)
  makes the padding explicit: the input is padded with that value (past the high
  padding too, where a ``ceil_mode`` window overhangs) and each window is taken whole,
  padded cells included, in row-major window order. A padded cell that wins takes
  its window's gradient, which is then dropped (it has no input cell).
* A declared ``ceil_rule="cover_all"`` (Chainer's) turns a ``ceil_mode=True`` record into a
  ``cover_all`` one: the output size of ``spec.shapes.pool_out_size``, the windows past the
  padded end reading the padding value there (never winning at ``-inf``).
* Average pooling divides the sum of the real cells by the product over the
  axes of ``avg_divisor(o_a, ...)`` (zero padding adds nothing).

Every function computes in float64, returns float64 and leaves its inputs alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from math import prod

import numpy as np

from convcheck.spec import pool
from convcheck.spec.errors import InvalidConfiguration
from convcheck.spec.ops import bind_contract as _bind_contract
from convcheck.spec.params import AvgPool2dParams, AvgPoolParams, MaxPool2dParams, MaxPoolParams
from convcheck.spec.shapes import COVER_ALL, avg_divisor, window_cells
from convcheck.spec.shapes import at as _at

from .contract import oracle_functions as _oracle_functions

Ints = tuple[int, ...]
PoolParams = MaxPoolParams | AvgPoolParams
Index = tuple[int | slice | np.ndarray, ...]


# --------------------------------------------------------------------------- helpers


def _as_f64(a: np.ndarray) -> np.ndarray:
    """A float64 view or copy of ``a`` (never written to)."""
    return np.asarray(a, dtype=np.float64)


def _checked(x: np.ndarray, p: PoolParams) -> np.ndarray:
    """``x`` as float64 after the spec's validity check (raises ``InvalidConfiguration``)."""
    x = _as_f64(x)
    pool.check(tuple(x.shape), p)
    return x


def _checked_dy(dy: np.ndarray, x: np.ndarray, p: PoolParams) -> np.ndarray:
    """``dy`` as float64, after checking it has the output's shape."""
    dy = _as_f64(dy)
    expected = pool.output_shape(tuple(x.shape), p)
    if tuple(dy.shape) != expected:
        raise InvalidConfiguration(f"dy.shape={tuple(dy.shape)}, but the output shape is {expected}")
    return dy


def _real(cells: list[int], n: int) -> np.ndarray:
    """The coordinates among ``cells`` that lie inside an axis of length ``n``, in order."""
    return np.array([c for c in cells if 0 <= c < n], dtype=np.intp)


def _windows_nd(x_shape: Ints, p: PoolParams) -> Iterator[tuple[Ints, Index]]:
    """Yield ``(o, window)``: each output position (row-major) and the index of its window's real part.

    ``x[window]`` has shape ``(N, C, r_0, ..., r_{D-1})`` (``r_a`` real cells on
    axis ``a``), in row-major window order; ``dy[(..., *o)]`` is the window's
    output gradient, shape ``(N, C)``.
    """
    out = pool.output_spatial(x_shape, p)
    # Real coordinates of every window position, axis by axis.
    per_axis = [
        [
            _real(window_cells(o, p.kernel_size[a], p.stride[a], p.pads(a)[0], p.dilation[a]), n)
            for o in range(m)
        ]
        for a, (n, m) in enumerate(zip(x_shape[2:], out, strict=True))
    ]
    for o in itertools.product(*(range(m) for m in out)):
        cells = [per_axis[a][o_a] for a, o_a in enumerate(o)]
        yield o, (slice(None), slice(None), *np.ix_(*cells))


def _windows(
    x_shape: Ints, p: MaxPool2dParams | AvgPool2dParams
) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """The 2-D windows as ``(i, j, rows, cols)`` (the catalogue in ``oracles.mistakes`` reads them).

    ``x[:, :, rows[:, None], cols[None, :]]`` is window ``(i, j)``'s real part.
    """
    for (i, j), index in _windows_nd(x_shape, p):
        rows, cols = index[2], index[3]  # np.ix_ arrays
        assert isinstance(rows, np.ndarray) and isinstance(cols, np.ndarray)
        yield i, j, rows[:, 0], cols[0, :]


NEG_INF = float("-inf")
"""The contract's max-pool padding value (kept implicit: it never wins)."""


def _padded(x: np.ndarray, p: MaxPoolParams, pad_value: float) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """``x`` padded with ``pad_value`` so that every cell of every window lies inside it, and the
    ``(low, high)`` widths used per spatial axis (low: the declared low padding; high: up to the
    last cell the last window reads, overhang included)."""
    out = pool.output_spatial(tuple(x.shape), p)
    widths = []
    for a, (n, m) in enumerate(zip(x.shape[2:], out, strict=True)):
        lo = p.pads(a)[0]
        last = window_cells(m - 1, p.kernel_size[a], p.stride[a], lo, p.dilation[a])[-1]
        widths.append((lo, max(0, last + 1 - n)))
    return np.pad(x, [(0, 0), (0, 0), *widths], constant_values=pad_value), widths


def _padded_windows(x_shape: Ints, p: MaxPoolParams) -> Iterator[tuple[Ints, Index]]:
    """Like ``_windows_nd`` but over the padded input of ``_padded``: every cell of the window,
    padded ones included, in row-major window order."""
    for o in itertools.product(*(range(m) for m in pool.output_spatial(x_shape, p))):
        cells = [
            np.array(window_cells(o_a, p.kernel_size[a], p.stride[a], 0, p.dilation[a]), dtype=np.intp)
            for a, o_a in enumerate(o)
        ]
        yield o, (slice(None), slice(None), *np.ix_(*cells))


def _unpadded(dx: np.ndarray, widths: list[tuple[int, int]]) -> np.ndarray:
    """The real cells of a gradient over the padded input: the padded cells' shares are dropped."""
    index = (
        slice(None),
        slice(None),
        *(slice(lo, dx.shape[2 + a] - hi) for a, (lo, hi) in enumerate(widths)),
    )
    out: np.ndarray = dx[index].copy()
    return out


def _spread(values: np.ndarray, ndim: int) -> np.ndarray:
    """``values`` of shape ``(N, C)`` with ``ndim`` trailing unit axes, to broadcast over a window."""
    return values[(..., *([None] * ndim))]


def _winners(v: np.ndarray) -> np.ndarray:
    """Boolean mask of the maxima along the last axis of ``v``.

    ``v[..., m]`` is a flattened window. Without NaN the winners are the cells
    equal to the maximum; with NaN they are the NaN cells.
    """
    nan = np.isnan(v)
    top = np.max(v, axis=-1, keepdims=True)
    winners: np.ndarray = np.where(nan.any(axis=-1, keepdims=True), nan, v == top)
    return winners


def _check_ties(ties: str) -> None:
    if ties not in pool.TIE_RULES:
        raise ValueError(f"ties={ties!r} must be one of {list(pool.TIE_RULES)}")


def _tie_weights(winners: np.ndarray, ties: str) -> np.ndarray:
    """Share of a window's gradient that each cell receives under the tie rule.

    ``"first"``/``"last"``: 1 for the first/last winner in window order, 0
    elsewhere; ``"split"``: ``1 / #winners`` for every winner; ``"all"``: 1 for every winner.
    """
    if ties == "split":
        split: np.ndarray = winners / winners.sum(axis=-1, keepdims=True)
        return split
    if ties == "all":  # each tied maximum the whole gradient (a kink defect, spec.contracts)
        return winners.astype(np.float64)
    m = winners.shape[-1]
    if ties == "first":
        index = np.argmax(winners, axis=-1)
    elif ties == "last":
        index = m - 1 - np.argmax(winners[..., ::-1], axis=-1)
    else:
        raise ValueError(f"ties={ties!r} must be one of {list(pool.TIE_RULES)}")
    one_hot: np.ndarray = (np.arange(m) == index[..., None]).astype(np.float64)
    return one_hot


def _divisor(o: Ints, x_shape: Ints, p: AvgPoolParams) -> int:
    """``prod_a avg_divisor(o_a, ...)``: the divisor of window ``o``."""
    return prod(
        avg_divisor(o_a, x_shape[2 + a], p.kernel_size[a], p.stride[a], *p.pads(a), p.count_include_pad)
        for a, o_a in enumerate(o)
    )


# --------------------------------------------------------------------------- generic definitions


def _ruled(p: MaxPoolParams, ceil_rule: str) -> MaxPoolParams:
    """The record under the declared ``ceil_rule``: ``ceil_mode=True`` becomes Chainer's
    ``cover_all`` (``spec.shapes.pool_out_size``) when that rule is declared."""
    if ceil_rule not in ("pytorch", COVER_ALL):
        raise ValueError(f"ceil_rule={ceil_rule!r} must be 'pytorch' or {COVER_ALL!r}")
    return replace(p, ceil_mode=COVER_ALL) if ceil_rule == COVER_ALL and p.ceil_mode else p


def max_pool_forward(
    x: np.ndarray, p: MaxPoolParams, pad_value: float = NEG_INF, ceil_rule: str = "pytorch"
) -> np.ndarray:
    """``y[n, c, o] = max over window o`` of ``x[n, c]`` padded with ``pad_value``, any dimension
    (the output size by the declared ``ceil_rule``)."""
    p = _ruled(p, ceil_rule)
    x = _checked(x, p)
    y = np.empty(pool.output_shape(x.shape, p), dtype=np.float64)
    reduce_axes = tuple(range(2, 2 + p.NDIM))
    windows = _windows_nd(x.shape, p)
    if pad_value != NEG_INF:
        windows = _padded_windows(x.shape, p)
        x = _padded(x, p, pad_value)[0]
    for o, window in windows:
        y[_at(..., *o)] = x[window].max(axis=reduce_axes)
    return y


def max_pool_backward(
    dy: np.ndarray,
    x: np.ndarray,
    p: MaxPoolParams,
    ties: str = "first",
    pad_value: float = NEG_INF,
    ceil_rule: str = "pytorch",
) -> np.ndarray:
    """``dx = sum over windows o of dy[n, c, o] * share(cell)``, share by the tie rule, any dimension.

    Each window's gradient goes to its winning cell: the first maximum in
    row-major window order (``ties="first"``, the contract), the last one
    (``"last"``), or ``1/k`` to each of ``k`` tied maxima (``"split"``).
    Overlapping windows accumulate. With a finite ``pad_value`` the padded cells compete too
    (in window order); what a padded winner receives is dropped.
    """
    _check_ties(ties)
    p = _ruled(p, ceil_rule)
    x = _checked(x, p)
    dy = _checked_dy(dy, x, p)
    n, c = x.shape[:2]
    windows, widths = _windows_nd(x.shape, p), [(0, 0)] * p.NDIM
    if pad_value != NEG_INF:
        windows = _padded_windows(x.shape, p)
        x, widths = _padded(x, p, pad_value)
    dx = np.zeros(x.shape, dtype=np.float64)
    for o, window in windows:
        cells = x[window]
        share = _tie_weights(_winners(cells.reshape(n, c, -1)), ties).reshape(cells.shape)
        dx[window] += share * _spread(dy[_at(..., *o)], p.NDIM)
    return _unpadded(dx, widths) if pad_value != NEG_INF else dx


def avg_pool_forward(x: np.ndarray, p: AvgPoolParams) -> np.ndarray:
    """``y[n, c, o] = (sum of the real cells of window o) / prod_a avg_divisor(o_a)``, any dimension."""
    x = _checked(x, p)
    y = np.empty(pool.output_shape(x.shape, p), dtype=np.float64)
    reduce_axes = tuple(range(2, 2 + p.NDIM))
    for o, window in _windows_nd(x.shape, p):
        y[_at(..., *o)] = x[window].sum(axis=reduce_axes) / _divisor(o, x.shape, p)
    return y


def avg_pool_backward(dy: np.ndarray, x: np.ndarray, p: AvgPoolParams) -> np.ndarray:
    """``dx[n, c, r] = sum over windows o reading cell r of dy[n, c, o] / divisor(o)``, any dimension."""
    x = _checked(x, p)
    dy = _checked_dy(dy, x, p)
    dx = np.zeros(x.shape, dtype=np.float64)
    for o, window in _windows_nd(x.shape, p):
        dx[window] += _spread(dy[_at(..., *o)] / _divisor(o, x.shape, p), p.NDIM)
    return dx


# --------------------------------------------------------------------------- contract functions


__all__ = sorted(
    [
        "avg_pool_backward",
        "avg_pool_forward",
        "max_pool_backward",
        "max_pool_forward",
        *_bind_contract(
            globals(),
            per_dimension=_oracle_functions(lambda op: "explicit NumPy windows"),
        ),
    ]
)

"""JAX's own primitives as a JAX user calls them: ``jax.lax`` convolution and windowed reductions.

* ``conv``: ``lax.conv_general_dilated`` (NCH.../OIH... layouts, the contract's
  ``(lo, hi)`` padding pairs as they are, ``rhs_dilation`` for the dilation,
  ``feature_group_count`` for the groups), plus the bias.
* ``max_pool``: ``lax.reduce_window`` with ``lax.max`` from ``-inf`` (padding is the
  initial value, so ``-inf``), ``window_dilation`` for the dilation.
* ``avg_pool``: ``lax.reduce_window`` with ``lax.add`` from 0, divided by the count of
  cells each window reads, itself a ``reduce_window`` sum of a mask: ones over the
  input and its padding (``count_include_pad=True``, PyTorch's default) or over the
  input alone.

JAX has no ``ceil_mode``: as a JAX user ports a PyTorch layer, the output size is
PyTorch's (``ceil`` of the window count, the last window dropped when it would start in
the high padding) and the high padding grows by the overhang of the last window.
That overhang reads as ``-inf`` for max pooling and counts in no average's divisor.

Every backward is ``jax.vjp`` of the forward, evaluated at ``dy``; JAX has no VJP for a dilated
max window, which ``CONVCHECK_CAPABILITIES`` declares (dilation: forward only). Importing this module
turns on ``jax_enable_x64`` (float64 arrays stay float64; float32 stays float32), for
the whole process. JAX runs on its default device: set ``JAX_PLATFORMS=cuda`` (or
``cpu``) to choose. Inputs are copied onto it and the results copied back to NumPy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax import lax

from convcheck.spec.ops import bind_contract as _bind_contract

jax.config.update("jax_enable_x64", True)

Sizes = tuple[int, ...]
Pads = list[tuple[int, int]]

CONVCHECK_CAPABILITIES: dict[str, Any] = {
    # The window contract: asymmetric padding, dilation and groups are lax's own parameters;
    # ceil_mode and count_include_pad are expressed through padding and masks. One exception:
    # jax.vjp of a max reduce_window with window dilation raises NotImplementedError ("VJP not
    # implemented for select_and_gather (MaxPool) with window dilation"): dilated max pooling
    # is forward only.
    "dtypes": ["float32", "float64"],
    **{f"max_pool{n}d": {"dilation": "forward"} for n in (1, 2, 3)},
}


# --------------------------------------------------------------------------- conversions

CLEAR_EVERY = 64
"""JAX keeps every executable it compiles, one per new shape, and a conformance run draws thousands of
shapes: past the worker's memory cap (``--memory``) that ends in ``std::bad_alloc``. The caches are
cleared after this many calls; a shape seen again then compiles again, which costs less than the growth."""

_calls = 0


def _counted() -> None:
    """Count one call; clear JAX's compilation caches every ``CLEAR_EVERY`` calls."""
    global _calls
    _calls += 1
    if _calls % CLEAR_EVERY == 0:
        jax.clear_caches()


def _device_array(a: np.ndarray, dtype: np.dtype) -> jax.Array:
    """A copy of ``a`` in ``dtype`` on JAX's default device."""
    return jax.device_put(np.array(a, dtype=dtype, order="C", copy=True))


def _array(a: jax.Array) -> np.ndarray:
    """A new, writable NumPy array holding a result brought back from the device."""
    return np.array(a, copy=True)


def _pairs(padding: Sizes) -> Pads:
    """``[(lo, hi), ...]`` per spatial axis from the contract's flattened ``padding``."""
    return [(padding[2 * a], padding[2 * a + 1]) for a in range(len(padding) // 2)]


def _forward(fn: Callable[..., jax.Array], x: np.ndarray, *rest: np.ndarray | None) -> np.ndarray:
    """``fn`` of device copies of ``x`` and ``rest`` (in ``x``'s dtype)."""
    _counted()
    return _array(fn(*(None if a is None else _device_array(a, x.dtype) for a in (x, *rest))))


def _vjp(
    fn: Callable[..., jax.Array], dy: np.ndarray, x: np.ndarray, *rest: np.ndarray | None
) -> list[np.ndarray | None]:
    """The gradients of ``sum(fn(x, *rest) * dy)`` by ``jax.vjp``, one per array (``None`` for an
    absent one)."""
    _counted()
    given = [(i, _device_array(a, x.dtype)) for i, a in enumerate((x, *rest)) if a is not None]

    def of_given(*arrays: jax.Array) -> jax.Array:
        args: list[jax.Array | None] = [None] * (1 + len(rest))
        for (i, _), a in zip(given, arrays, strict=True):
            args[i] = a
        return fn(*args)

    _, pullback = jax.vjp(of_given, *(a for _, a in given))
    grads = dict(zip((i for i, _ in given), pullback(_device_array(dy, x.dtype)), strict=True))
    return [None if grads.get(i) is None else _array(grads[i]) for i in range(1 + len(rest))]


def _given(grad: np.ndarray | None) -> np.ndarray:
    """The gradient of an array that was given (only an absent bias has none)."""
    if grad is None:
        raise TypeError("no gradient: the array was None")
    return grad


# --------------------------------------------------------------------------- conv


def _conv(stride: Sizes, padding: Sizes, dilation: Sizes, groups: int) -> Callable[..., jax.Array]:
    """``lax.conv_general_dilated`` plus the bias, as a function of ``(x, w, b)``."""

    def conv(x: jax.Array, w: jax.Array, b: jax.Array | None) -> jax.Array:
        y = lax.conv_general_dilated(
            x, w, stride, _pairs(padding), rhs_dilation=dilation, feature_group_count=groups
        )
        return y if b is None else y + b.reshape((1, -1) + (1,) * (x.ndim - 2))

    return conv


def conv_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    *,
    stride: Sizes,
    padding: Sizes,
    dilation: Sizes,
    groups: int,
) -> np.ndarray:
    """``y = conv_general_dilated(x, w) + b``."""
    return _forward(_conv(stride, padding, dilation, groups), x, w, b)


def conv_backward(
    dy: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    *,
    stride: Sizes,
    padding: Sizes,
    dilation: Sizes,
    groups: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(dx, dw, db)`` of ``sum(conv(x, w, b) * dy)`` by ``jax.vjp``."""
    dx, dw, db = _vjp(_conv(stride, padding, dilation, groups), dy, x, w, b)
    return _given(dx), _given(dw), db


# --------------------------------------------------------------------------- pooling


def _ceil_pads(
    spatial: Sizes, kernel: Sizes, stride: Sizes, padding: Sizes, dilation: Sizes, ceil_mode: bool
) -> Pads:
    """Per axis ``(lo, hi + overhang)``: the padding under which a plain window count gives PyTorch's
    output size, ``ceil_mode`` included (the last window must start before the high padding)."""
    pads = []
    for n, k, s, (lo, hi), d in zip(spatial, kernel, stride, _pairs(padding), dilation, strict=True):
        span = n + lo + hi - d * (k - 1) - 1
        out = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (out - 1) * s >= n + lo:
            out -= 1
        pads.append((lo, hi + max(0, (out - 1) * s + d * (k - 1) + 1 - (n + lo + hi))))
    return pads


def _reduce(x: jax.Array, init: float, op: Callable[..., jax.Array], kernel: Sizes, stride: Sizes,
            pads: Pads, dilation: Sizes) -> jax.Array:  # fmt: skip
    """``lax.reduce_window`` over the spatial axes of ``x`` (padding reads as ``init``)."""
    return lax.reduce_window(
        x,
        np.array(init, dtype=x.dtype),
        op,
        (1, 1, *kernel),
        (1, 1, *stride),
        [(0, 0), (0, 0), *pads],
        window_dilation=(1, 1, *dilation),
    )


def _max_pool(
    kernel: Sizes, stride: Sizes, padding: Sizes, dilation: Sizes, ceil_mode: bool
) -> Callable[[jax.Array], jax.Array]:
    """The max of each window, as a function of ``x``."""

    def pool(x: jax.Array) -> jax.Array:
        pads = _ceil_pads(tuple(x.shape[2:]), kernel, stride, padding, dilation, ceil_mode)
        return _reduce(x, -np.inf, lax.max, kernel, stride, pads, dilation)

    return pool


def max_pool_forward(
    x: np.ndarray, *, kernel_size: Sizes, stride: Sizes, padding: Sizes, dilation: Sizes, ceil_mode: bool
) -> np.ndarray:
    """``y = reduce_window(x, -inf, max)``."""
    return _forward(_max_pool(kernel_size, stride, padding, dilation, ceil_mode), x)


def max_pool_backward(
    dy: np.ndarray,
    x: np.ndarray,
    *,
    kernel_size: Sizes,
    stride: Sizes,
    padding: Sizes,
    dilation: Sizes,
    ceil_mode: bool,
) -> np.ndarray:
    """``dx`` of ``sum(reduce_window(x, -inf, max) * dy)`` by ``jax.vjp``."""
    return _given(_vjp(_max_pool(kernel_size, stride, padding, dilation, ceil_mode), dy, x)[0])


def _avg_pool(
    kernel: Sizes, stride: Sizes, padding: Sizes, ceil_mode: bool, count_include_pad: bool
) -> Callable[[jax.Array], jax.Array]:
    """Each window's sum over the number of cells it counts, as a function of ``x``."""

    def pool(x: jax.Array) -> jax.Array:
        spatial = tuple(x.shape[2:])
        unit = (1,) * len(spatial)
        pads = _ceil_pads(spatial, kernel, stride, padding, unit, ceil_mode)
        sums = _reduce(x, 0.0, lax.add, kernel, stride, pads, unit)
        # The cells a window counts: the input, and its padding when count_include_pad;
        # never the overhang that ceil_mode adds past the padding.
        mask = np.ones((1, 1, *spatial), dtype=x.dtype)
        if count_include_pad:
            mask = np.pad(mask, [(0, 0), (0, 0), *_pairs(padding)], constant_values=1)
            pads = [(0, high - hi) for (_, high), (_, hi) in zip(pads, _pairs(padding), strict=True)]
        counts = _reduce(jax.device_put(mask), 0.0, lax.add, kernel, stride, pads, unit)
        return sums / counts

    return pool


def avg_pool_forward(
    x: np.ndarray,
    *,
    kernel_size: Sizes,
    stride: Sizes,
    padding: Sizes,
    ceil_mode: bool,
    count_include_pad: bool,
) -> np.ndarray:
    """``y = reduce_window(x, 0, add) / reduce_window(mask, 0, add)``."""
    return _forward(_avg_pool(kernel_size, stride, padding, ceil_mode, count_include_pad), x)


def avg_pool_backward(
    dy: np.ndarray,
    x: np.ndarray,
    *,
    kernel_size: Sizes,
    stride: Sizes,
    padding: Sizes,
    ceil_mode: bool,
    count_include_pad: bool,
) -> np.ndarray:
    """``dx`` of ``sum(avg_pool(x) * dy)`` by ``jax.vjp``."""
    return _given(_vjp(_avg_pool(kernel_size, stride, padding, ceil_mode, count_include_pad), dy, x)[0])


# One N-d function per window operation and direction; the rank of ``x`` gives the dimension.
__all__ = ["CONVCHECK_CAPABILITIES", *_bind_contract(globals())]

"""Max and average pooling in 1, 2 and 3 spatial dimensions: definitions, validity rules, shapes, gradient semantics.

Max pooling: the input is padded with ``-inf`` by the ``(low, high)`` pairs of ``padding``
and each window (dilated by ``dilation``) yields its maximum. Backward routes
each window's ``dy`` to the window's winning cell; on ties the whole gradient
goes to the *first* maximum in row-major (C) window order (the contract's rule; an
implementation may declare ``"last"`` or ``"split"`` instead). Gradients of
overlapping windows accumulate. A declared ``pad_value`` (``MAX_PAD_VALUES``) pads with
that value instead, and a declared ``ceil_rule = "cover_all"`` sizes a ``ceil_mode`` output
by Chainer's rule (``spec.shapes.pool_out_size``).

Average pooling: each window yields the sum of its real input cells divided by
the divisor of ``spec.shapes.avg_divisor`` (PyTorch's rule, ``ceil_mode`` and
``count_include_pad`` included; the N-d divisor is the product of the
axes' divisors). Backward spreads ``dy / divisor`` uniformly
over the window's real cells, accumulating over overlapping windows.

Valid configurations (PyTorch's rules, with the padding explicit): each padding
at most half the effective kernel, output size at least one on each axis, and
every window reads at least one real input cell. The last rule is what keeps
oracles away from windows lying wholly in padding (torch 2.13 on CPU corrupts
its heap on such a max-pool backward).
"""

from __future__ import annotations

from math import prod
from typing import Union

from .errors import InvalidConfiguration
from .params import AXIS_NAMES, AvgPoolParams, MaxPoolParams
from .shapes import ceil_div, effective_kernel, pool_out_size, windows_all_touch_input

Shape = tuple[int, ...]
PoolParams = Union[MaxPoolParams, AvgPoolParams]

TIE_RULES = ("first", "last", "split", "any", "all")
"""Max-pool tie rules an implementation may declare; ``"first"`` is the contract's. ``"any"``
accepts any valid subgradient (a convex combination over the tied maxima); ``"all"`` (each tied
maximum gets the whole gradient) is not one, and is accepted only when declared (``spec.contracts``)."""

MAX_PAD_VALUES = (float("-inf"), 0.0)
"""Max-pool padding values: ``-inf`` (the contract's: padding never wins) and ``0.0`` (a library that
pads with zeros: a window touching the padding then yields ``max(real maximum, 0)``, and its gradient
goes to a padded cell, where it is dropped, when 0 wins). ``valid_pad_value`` accepts any other
finite number as well."""


def valid_pad_value(value: object) -> bool:
    """Whether a declaration may give ``value`` as the max-pool padding value: ``-inf`` or a finite
    number (an ``int`` or ``float``, not a ``bool``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return value == float("-inf") or abs(value) < float("inf")


def _axes(x_shape: Shape, p: PoolParams) -> list[tuple[str, int, int, int, int, int, int]]:
    """Per spatial axis: name, input length, kernel, stride, pad before, pad after, dilation."""
    return [
        (name, x_shape[2 + a], p.kernel_size[a], p.stride[a], *p.pads(a), p.dilation[a])
        for a, name in enumerate(AXIS_NAMES[p.NDIM])
    ]


def output_spatial(x_shape: Shape, p: PoolParams) -> tuple[int, ...]:
    """Output length on each spatial axis, by ``spec.shapes.pool_out_size``."""
    return tuple(
        pool_out_size(n, k, s, lo, hi, d, p.ceil_mode) for _, n, k, s, lo, hi, d in _axes(x_shape, p)
    )


def output_shape(x_shape: Shape, p: PoolParams) -> Shape:
    """``(N, C, *output_spatial)``."""
    return (x_shape[0], x_shape[1], *output_spatial(x_shape, p))


def check(x_shape: Shape, p: PoolParams) -> None:
    """Raise ``InvalidConfiguration`` unless ``x_shape`` and ``p`` are valid for pooling."""
    if len(x_shape) != 2 + p.NDIM or min(x_shape) < 1:
        layout = "".join(AXIS_NAMES[p.NDIM])
        raise InvalidConfiguration(f"x.shape={x_shape} must be {2 + p.NDIM}-D NC{layout} with positive sizes")
    for axis, n, k, s, lo, hi, d in _axes(x_shape, p):
        eff = effective_kernel(k, d)
        if 2 * max(lo, hi) > eff:
            raise InvalidConfiguration(
                f"padding {max(lo, hi)} on {axis} must be at most half the effective kernel "
                f"{eff} = dilation*(k-1)+1 with k={k}, dilation={d}"
            )
        out = pool_out_size(n, k, s, lo, hi, d, p.ceil_mode)
        if out < 1:
            raise InvalidConfiguration(
                f"output size on {axis} is {out}: the window {eff} does not fit in the "
                f"padded input {n}+{lo}+{hi}"
            )
        if not windows_all_touch_input(n, k, s, lo, d, out):
            raise InvalidConfiguration(
                f"a window on {axis} lies wholly in padding (n={n}, kernel={k}, stride={s}, "
                f"padding=({lo}, {hi}), dilation={d}, ceil_mode={p.ceil_mode}); every window "
                "must read at least one input cell"
            )


def windows_per_cell(p: PoolParams) -> int:
    """Most windows that can cover one input cell: ``prod ceil(k*d / s)`` bounds it."""
    return prod(ceil_div(effective_kernel(k, d), s) for k, d, s in zip(p.kernel_size, p.dilation, p.stride))


def reduction_lengths(x_shape: Shape, p: PoolParams) -> dict[str, int]:
    """``K`` of the error bound: max-pool forward selects (0), avg forward sums
    ``prod(kernel)`` cells and divides (+1); backward accumulates over the windows
    covering a cell (+1 for avg's division)."""
    per_cell = windows_per_cell(p)
    if isinstance(p, MaxPoolParams):
        return {"y": 0, "dx": per_cell}
    return {"y": prod(p.kernel_size) + 1, "dx": 2 * per_cell}

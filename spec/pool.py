"""max_pool2d and avg_pool2d: definitions, validity rules, shapes, gradient semantics.

Max pooling: the input is padded with ``-inf`` by ``(top, bottom, left, right)``
and each window (dilated by ``dilation``) yields its maximum. Backward routes
each window's ``dy`` to the window's winning cell; on ties the whole gradient
goes to the *first* maximum in row-major window order (the contract's rule; an
implementation may declare ``"last"`` or ``"split"`` instead). Gradients of
overlapping windows accumulate.

Average pooling: each window yields the sum of its real input cells divided by
the divisor of ``spec.shapes.avg_divisor`` (PyTorch's rule, ``ceil_mode`` and
``count_include_pad`` included). Backward spreads ``dy / divisor`` uniformly
over the window's real cells, accumulating over overlapping windows.

Valid configurations (PyTorch's rules, with the padding explicit): each padding
at most half the effective kernel, output size at least one on each axis, and
every window reads at least one real input cell. The last rule is what keeps
oracles away from windows lying wholly in padding (torch 2.13 on CPU corrupts
its heap on such a max-pool backward).
"""

from __future__ import annotations

from .errors import InvalidConfiguration
from .params import AvgPool2dParams, MaxPool2dParams
from .shapes import ceil_div, effective_kernel, pool_out_size, windows_all_touch_input

Shape = tuple[int, ...]
PoolParams = MaxPool2dParams | AvgPool2dParams

TIE_RULES = ("first", "last", "split")
"""Max-pool tie rules an implementation may declare; ``"first"`` is the contract's."""


def _axes(x_shape: Shape, p: PoolParams) -> list[tuple[str, int, int, int, int, int, int]]:
    """Per axis: name, input length, kernel, stride, pad before, pad after, dilation."""
    (_, _, h, w) = x_shape
    return [
        ("H", h, p.kernel_size[0], p.stride[0], p.padding[0], p.padding[1], p.dilation[0]),
        ("W", w, p.kernel_size[1], p.stride[1], p.padding[2], p.padding[3], p.dilation[1]),
    ]


def output_hw(x_shape: Shape, p: PoolParams) -> tuple[int, int]:
    """``(OH, OW)`` by ``spec.shapes.pool_out_size`` on each axis."""
    oh, ow = (pool_out_size(n, k, s, lo, hi, d, p.ceil_mode) for _, n, k, s, lo, hi, d in _axes(x_shape, p))
    return oh, ow


def output_shape(x_shape: Shape, p: PoolParams) -> Shape:
    """``(N, C, OH, OW)``."""
    oh, ow = output_hw(x_shape, p)
    return (x_shape[0], x_shape[1], oh, ow)


def check(x_shape: Shape, p: PoolParams) -> None:
    """Raise ``InvalidConfiguration`` unless ``x_shape`` and ``p`` are valid for pooling."""
    if len(x_shape) != 4 or min(x_shape) < 1:
        raise InvalidConfiguration(f"x.shape={x_shape} must be 4-D NCHW with positive sizes")
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
    kh, kw = p.kernel_size
    dh, dw = p.dilation
    sh, sw = p.stride
    return ceil_div(effective_kernel(kh, dh), sh) * ceil_div(effective_kernel(kw, dw), sw)


def reduction_lengths(x_shape: Shape, p: PoolParams) -> dict[str, int]:
    """``K`` of the error bound: max-pool forward selects (0), avg forward sums
    ``KH*KW`` cells and divides (+1); backward accumulates over the windows
    covering a cell (+1 for avg's division)."""
    kh, kw = p.kernel_size
    per_cell = windows_per_cell(p)
    if isinstance(p, MaxPool2dParams):
        return {"y": 0, "dx": per_cell}
    return {"y": kh * kw + 1, "dx": 2 * per_cell}

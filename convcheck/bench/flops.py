"""Operation counts of the contract functions, for GFLOP/s.

The counts are *nominal*: they follow the direct algorithm over the padded
input, padding taps included, as FLOP counts conventionally do (so a layer's
count does not depend on how an implementation skips zeros).

conv2d, with ``N`` batch, ``C_in`` input and ``C_out`` output channels,
``G`` groups, an ``OH x OW`` output and a ``KH x KW`` kernel. Each output
element is a sum of ``(C_in/G)*KH*KW`` products, one multiply and one add
each::

    forward  = 2 * N * C_out * OH * OW * (C_in/G) * KH * KW

The backward pass computes two products of the same size, ``dx`` (each
``dy`` element times each kernel tap, scattered into ``dx``) and ``dw``
(each ``dy`` element times the input cell under each tap, summed over the
batch and the positions)::

    backward = 2 * forward

The bias (one add per output element forward, one per ``dy`` element for
``db``) is left out of both, as in the usual formula: it is ``1 / (2 (C_in/G)
KH KW)`` of the count, and leaving it out keeps a layer's count the same with
or without a bias.

Pooling, with ``W = N * C * OH * OW`` windows of ``K = KH * KW`` cells (the
window size; a ``ceil_mode`` overhang and padding cells count as cells)::

    max_pool2d forward  = W * K          one comparison per window cell
    max_pool2d backward = W * K + W      the winner found again, then one add per window
    avg_pool2d forward  = W * K + W      one add per window cell, one divide per window
    avg_pool2d backward = W * K + W      one divide per window, one add per window cell

GFLOP/s is the count divided by the median time, over ``1e9``.
"""

from __future__ import annotations

from collections.abc import Mapping

from convcheck.spec import OPERATIONS, operation_of
from convcheck.spec.params import AvgPool2dParams, Conv2dParams, MaxPool2dParams, Params

Shape = tuple[int, ...]


def conv2d_forward(x_shape: Shape, w_shape: Shape, out_hw: tuple[int, int]) -> int:
    """``2 * N * C_out * OH * OW * (C_in/G) * KH * KW``.

    ``w_shape`` is ``(C_out, C_in/G, KH, KW)``, so ``C_in/G`` is read from it.
    """
    n = x_shape[0]
    c_out, c_per_group, kh, kw = w_shape
    return 2 * n * c_out * out_hw[0] * out_hw[1] * c_per_group * kh * kw


def conv2d_backward(x_shape: Shape, w_shape: Shape, out_hw: tuple[int, int]) -> int:
    """``dx`` and ``dw``, ``2 * N * C_out * OH * OW * (C_in/G) * KH * KW`` each: twice the forward count."""
    return 2 * conv2d_forward(x_shape, w_shape, out_hw)


def pool(function_name: str, x_shape: Shape, kernel_size: tuple[int, int], out_hw: tuple[int, int]) -> int:
    """Window-cell counts of a pooling function (module docstring): ``W * K`` plus ``W`` except max forward."""
    windows = x_shape[0] * x_shape[1] * out_hw[0] * out_hw[1]
    cells = windows * kernel_size[0] * kernel_size[1]
    return cells if function_name == "max_pool2d_forward" else cells + windows


def count(function_name: str, shapes: Mapping[str, Shape | None], params: Params) -> int:
    """FLOPs of one call of contract function ``function_name`` on arrays of ``shapes``.

    ``shapes`` maps ``x`` (and ``w``, ``b`` for conv2d; ``b`` may be ``None``)
    to shapes, as ``Entry.shapes`` returns them.
    """
    op = operation_of(function_name)
    out = OPERATIONS[op.name].output_shape(dict(shapes), params)
    out_hw = (out[2], out[3])
    x = shapes["x"]
    assert x is not None
    if op.name == "conv2d":
        assert isinstance(params, Conv2dParams)
        w = shapes["w"]
        assert w is not None
        fn = conv2d_forward if function_name == op.forward else conv2d_backward
        return fn(x, w, out_hw)
    assert isinstance(params, MaxPool2dParams | AvgPool2dParams)
    kh, kw = params.kernel_size
    return pool(function_name, x, (kh, kw), out_hw)


__all__ = ["conv2d_backward", "conv2d_forward", "count", "pool"]

"""Convolution in 1, 2 and 3 spatial dimensions: definition, validity rules, shapes, reduction lengths.

Definition (PyTorch's ``conv1d``/``conv2d``/``conv3d``, cross-correlation,
padding applied explicitly with zeros). In 2-D, with ``xp`` the input
zero-padded by ``(top, bottom, left, right)``, ``G = groups``, ``Cg = C_in / G``
and ``g(co)`` the group of output channel ``co``::

    y[n, co, i, j] = b[co] + sum_{c < Cg, a < KH, e < KW}
        xp[n, g(co)*Cg + c, i*sh + a*dh, j*sw + e*dw] * w[co, c, a, e]

and the same with one spatial index (``x: (N, C, L)``, ``w: (O, C/G, K)``) or
three (``x: (N, C, D, H, W)``, ``w: (O, C/G, KD, KH, KW)``).

Backward (vector-Jacobian products of ``L = sum(y * dy)``, batch summed):
``dx`` is the full convolution of ``dy`` (dilated by the stride) with the kernel
rotated by 180 degrees (reversed on every spatial axis), cropped by the padding;
``dw`` the valid correlation of the padded input with ``dy``;
``db[co] = sum over n and every spatial position of dy[n, co, ...]``.

An implementation that declares the *convolution* convention computes the same
with the kernel flipped on every spatial axis (``scipy.signal.convolve``'s
convention); its ``dw`` is flipped likewise.
"""

from __future__ import annotations

from math import prod

from .errors import InvalidConfiguration
from .params import AXIS_NAMES, ConvParams
from .shapes import conv_out_size, effective_kernel

Shape = tuple[int, ...]


def output_spatial(x_shape: Shape, w_shape: Shape, p: ConvParams) -> tuple[int, ...]:
    """Output length on each spatial axis, by ``spec.shapes.conv_out_size``."""
    return tuple(
        conv_out_size(n, k, p.stride[a], *p.pads(a), p.dilation[a])
        for a, (n, k) in enumerate(zip(x_shape[2:], w_shape[2:]))
    )


def check(x_shape: Shape, w_shape: Shape, b_shape: Shape | None, p: ConvParams) -> None:
    """Raise ``InvalidConfiguration`` unless the shapes and parameters are valid.

    Valid means: ``x`` and ``w`` with ``2 + NDIM`` axes; ``C_in`` and ``C_out``
    divisible by ``groups``; ``w.shape[1] == C_in // groups``; ``b`` of shape
    ``(C_out,)`` or absent; the dilated kernel fits in the padded input on every
    axis, so that every output length is at least 1; ``N >= 1``.
    """
    ndim = p.NDIM
    if len(x_shape) != 2 + ndim or len(w_shape) != 2 + ndim:
        layout = "".join(AXIS_NAMES[ndim])
        raise InvalidConfiguration(
            f"x.shape={x_shape} and w.shape={w_shape} must both be {2 + ndim}-D (NC{layout} and OI{layout})"
        )
    c_in = x_shape[1]
    c_out, c_per_group = w_shape[:2]
    g = p.groups
    if min(x_shape) < 1 or min(w_shape) < 1:
        raise InvalidConfiguration(f"x.shape={x_shape}, w.shape={w_shape} must have positive sizes")
    if c_in % g or c_out % g:
        raise InvalidConfiguration(f"groups={g} must divide C_in={c_in} and C_out={c_out}")
    if c_per_group != c_in // g:
        raise InvalidConfiguration(
            f"w.shape[1]={c_per_group}, but should be C_in // groups = {c_in} // {g} = {c_in // g}"
        )
    if b_shape is not None and tuple(b_shape) != (c_out,):
        raise InvalidConfiguration(f"b.shape={tuple(b_shape)}, but should be (C_out,) = ({c_out},)")
    for a, axis in enumerate(AXIS_NAMES[ndim]):
        size, k, d = x_shape[2 + a], w_shape[2 + a], p.dilation[a]
        lo, hi = p.pads(a)
        if effective_kernel(k, d) > size + lo + hi:
            raise InvalidConfiguration(
                f"dilated kernel {effective_kernel(k, d)} = dilation*(k-1)+1 with k={k}, "
                f"dilation={d} is longer than the padded {axis} = {size}+{lo}+{hi}"
            )


def output_shape(x_shape: Shape, w_shape: Shape, p: ConvParams) -> Shape:
    """``(N, C_out, *output_spatial)``."""
    return (x_shape[0], w_shape[0], *output_spatial(x_shape, w_shape, p))


def reduction_lengths(x_shape: Shape, w_shape: Shape, p: ConvParams) -> dict[str, int]:
    """How many products each output element sums (``K`` of the error bound).

    ``y``: ``C_in/G * prod(kernel)`` plus one for the bias; ``dx``: at most
    ``C_out/G * prod(kernel)`` (every output that a cell feeds, times the
    channels); ``dw`` and ``db``: ``N * prod(output_spatial)``.
    """
    n, c_in = x_shape[:2]
    c_out = w_shape[0]
    taps = prod(w_shape[2:])
    positions = n * prod(output_spatial(x_shape, w_shape, p))
    g = p.groups
    return {"y": c_in // g * taps + 1, "dx": c_out // g * taps, "dw": positions, "db": positions}

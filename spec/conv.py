"""conv2d: definition, validity rules, output shape and reduction lengths.

Definition (PyTorch's ``conv2d``, cross-correlation, padding applied explicitly
with zeros). With ``xp`` the input zero-padded by ``(top, bottom, left, right)``,
``G = groups``, ``Cg = C_in / G`` and ``g(co)`` the group of output channel ``co``::

    y[n, co, i, j] = b[co] + sum_{c < Cg, a < KH, e < KW}
        xp[n, g(co)*Cg + c, i*sh + a*dh, j*sw + e*dw] * w[co, c, a, e]

Backward (vector-Jacobian products of ``L = sum(y * dy)``, batch summed):
``dx`` is the full convolution of ``dy`` (dilated by the stride) with the kernel
rotated by 180 degrees, cropped by the padding; ``dw`` the valid correlation of
the padded input with ``dy``; ``db[co] = sum_{n,i,j} dy[n, co, i, j]``.

An implementation that declares the *convolution* convention computes the same
with the kernel flipped in both spatial axes (``scipy.signal.convolve2d``'s
convention); its ``dw`` is flipped likewise.
"""

from __future__ import annotations

from .errors import InvalidConfiguration
from .params import Conv2dParams
from .shapes import conv_out_size, effective_kernel

Shape = tuple[int, ...]


def output_hw(x_shape: Shape, w_shape: Shape, p: Conv2dParams) -> tuple[int, int]:
    """``(OH, OW)`` by ``spec.shapes.conv_out_size`` on each axis."""
    (_, _, h, w_), (_, _, kh, kw) = x_shape, w_shape
    oh = conv_out_size(h, kh, p.stride[0], p.padding[0], p.padding[1], p.dilation[0])
    ow = conv_out_size(w_, kw, p.stride[1], p.padding[2], p.padding[3], p.dilation[1])
    return oh, ow


def check(x_shape: Shape, w_shape: Shape, b_shape: Shape | None, p: Conv2dParams) -> None:
    """Raise ``InvalidConfiguration`` unless the shapes and parameters are valid.

    Valid means: 4-D ``x`` and ``w``; ``C_in`` and ``C_out`` divisible by
    ``groups``; ``w.shape[1] == C_in // groups``; ``b`` of shape ``(C_out,)``
    or absent; the dilated kernel fits in the padded input on both axes, so
    that ``OH, OW >= 1``; ``N >= 1``.
    """
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise InvalidConfiguration(
            f"x.shape={x_shape} and w.shape={w_shape} must both be 4-D (NCHW and OIHW)"
        )
    n, c_in, h, w_ = x_shape
    c_out, c_per_group, kh, kw = w_shape
    g = p.groups
    if n < 1 or c_in < 1 or c_out < 1 or kh < 1 or kw < 1:
        raise InvalidConfiguration(f"x.shape={x_shape}, w.shape={w_shape} must have positive sizes")
    if c_in % g or c_out % g:
        raise InvalidConfiguration(f"groups={g} must divide C_in={c_in} and C_out={c_out}")
    if c_per_group != c_in // g:
        raise InvalidConfiguration(
            f"w.shape[1]={c_per_group}, but should be C_in // groups = {c_in} // {g} = {c_in // g}"
        )
    if b_shape is not None and tuple(b_shape) != (c_out,):
        raise InvalidConfiguration(f"b.shape={tuple(b_shape)}, but should be (C_out,) = ({c_out},)")
    for axis, size, k, lo, hi, d in (
        ("H", h, kh, p.padding[0], p.padding[1], p.dilation[0]),
        ("W", w_, kw, p.padding[2], p.padding[3], p.dilation[1]),
    ):
        if effective_kernel(k, d) > size + lo + hi:
            raise InvalidConfiguration(
                f"dilated kernel {effective_kernel(k, d)} = dilation*(k-1)+1 with k={k}, "
                f"dilation={d} is longer than the padded {axis} = {size}+{lo}+{hi}"
            )


def output_shape(x_shape: Shape, w_shape: Shape, p: Conv2dParams) -> Shape:
    """``(N, C_out, OH, OW)``."""
    oh, ow = output_hw(x_shape, w_shape, p)
    return (x_shape[0], w_shape[0], oh, ow)


def reduction_lengths(x_shape: Shape, w_shape: Shape, p: Conv2dParams) -> dict[str, int]:
    """How many products each output element sums (``K`` of the error bound).

    ``y``: ``C_in/G * KH * KW`` plus one for the bias; ``dx``: at most
    ``C_out/G * KH * KW`` (every output that a cell feeds, times the channels);
    ``dw``: ``N * OH * OW``; ``db``: ``N * OH * OW``.
    """
    n, c_in, _, _ = x_shape
    c_out, _, kh, kw = w_shape
    oh, ow = output_hw(x_shape, w_shape, p)
    g = p.groups
    return {
        "y": c_in // g * kh * kw + 1,
        "dx": c_out // g * kh * kw,
        "dw": n * oh * ow,
        "db": n * oh * ow,
    }

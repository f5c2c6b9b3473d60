"""convcheck implementation backed by ``torch.nn.functional`` (CPU), with autograd for the backward pass.

Each call copies its NumPy inputs into fresh contiguous tensors of the input's
dtype (float32 stays float32), runs ``F.conv2d`` / ``F.max_pool2d`` /
``F.avg_pool2d`` and, for the backward functions, ``torch.autograd.grad`` of
``L = sum(y * dy)``. Results come back as NumPy arrays owned by the fresh
result tensors, so they never alias a caller's array.

Padding: symmetric padding is handed to torch; asymmetric padding is applied
explicitly with ``F.pad`` (zeros for conv, ``-inf`` for max pooling). For
pooling with asymmetric padding the ``ceil_mode`` output size follows
``spec.shapes.pool_out_size``: the input is padded further by the overhang of
the last window and pooled in floor mode, then cropped to that size. Average
pooling with asymmetric padding sums each window (``divisor_override=1`` on the
zero-padded input) and divides by ``spec.shapes.avg_divisor`` per axis.
(One corner that explicit ``-inf`` padding cannot express: a max-pool window
whose real cells are all ``-inf``, next to asymmetric padding, may route its
gradient to a padding cell, where it is dropped.)

``torch.set_num_threads`` is called only when the environment variable
``CONVCHECK_TORCH_THREADS`` is set.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F

from convcheck.spec.shapes import avg_divisor, effective_kernel, pool_out_size

CONVCHECK_CAPABILITIES: dict = {}

Pair = tuple[int, int]
Padding = tuple[int, int, int, int]

if os.environ.get("CONVCHECK_TORCH_THREADS"):
    torch.set_num_threads(int(os.environ["CONVCHECK_TORCH_THREADS"]))


# --------------------------------------------------------------------------- conversions


def _tensor(a: np.ndarray, dtype: np.dtype | None = None, grad: bool = False) -> torch.Tensor:
    """A fresh contiguous tensor holding a copy of ``a`` (cast to ``dtype`` if given)."""
    copy = np.array(a, dtype=dtype, order="C", copy=True)
    return torch.from_numpy(copy).requires_grad_(grad)


def _array(t: torch.Tensor) -> np.ndarray:
    """The NumPy array of a result tensor (contiguous; shares memory only with that fresh tensor)."""
    return t.detach().contiguous().numpy()


def _is_symmetric(padding: Padding) -> bool:
    """True when ``top == bottom`` and ``left == right``."""
    top, bottom, left, right = padding
    return top == bottom and left == right


# --------------------------------------------------------------------------- conv2d


def _conv(
    x: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor | None,
    stride: Pair,
    padding: Padding,
    dilation: Pair,
    groups: int,
) -> torch.Tensor:
    """``F.conv2d`` with ``padding = (top, bottom, left, right)`` applied as zeros."""
    top, bottom, left, right = padding
    if _is_symmetric(padding):
        return F.conv2d(x, w, b, stride=stride, padding=(top, left), dilation=dilation, groups=groups)
    x = F.pad(x, (left, right, top, bottom))
    return F.conv2d(x, w, b, stride=stride, padding=0, dilation=dilation, groups=groups)


def conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    *,
    stride: Pair,
    padding: Padding,
    dilation: Pair,
    groups: int,
) -> np.ndarray:
    """``y = conv2d(x, w, b)`` (cross-correlation, zero padding)."""
    xt, wt = _tensor(x), _tensor(w, x.dtype)
    bt = None if b is None else _tensor(b, x.dtype)
    with torch.no_grad():
        y = _conv(xt, wt, bt, stride, padding, dilation, groups)
    return _array(y)


def conv2d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    *,
    stride: Pair,
    padding: Padding,
    dilation: Pair,
    groups: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(dx, dw, db)``: gradients of ``sum(conv2d(x, w, b) * dy)`` by autograd."""
    xt, wt = _tensor(x, grad=True), _tensor(w, x.dtype, grad=True)
    bt = None if b is None else _tensor(b, x.dtype, grad=True)
    dyt = _tensor(dy, x.dtype)
    leaves = [t for t in (xt, wt, bt) if t is not None]
    with torch.enable_grad():
        y = _conv(xt, wt, bt, stride, padding, dilation, groups)
        grads = torch.autograd.grad(y, leaves, grad_outputs=dyt)
    dx, dw = _array(grads[0]), _array(grads[1])
    db = None if b is None else _array(grads[2])
    return dx, dw, db


# --------------------------------------------------------------------------- pooling


def _pool_geometry(
    hw: Pair, kernel: Pair, stride: Pair, padding: Padding, dilation: Pair, ceil_mode: bool
) -> tuple[Pair, tuple[int, int, int, int]]:
    """``(OH, OW)`` by ``spec.shapes.pool_out_size`` and the ``F.pad`` widths that make every
    window a plain floor-mode window: ``(left, right + overhang_w, top, bottom + overhang_h)``."""
    out, extra = [], []
    for axis in (0, 1):
        n, k, s, d = hw[axis], kernel[axis], stride[axis], dilation[axis]
        lo, hi = padding[2 * axis], padding[2 * axis + 1]
        o = pool_out_size(n, k, s, lo, hi, d, ceil_mode)
        out.append(o)
        extra.append(max(0, (o - 1) * s + effective_kernel(k, d) - (n + lo + hi)))
    top, bottom, left, right = padding
    return (out[0], out[1]), (left, right + extra[1], top, bottom + extra[0])


def _max_pool(
    x: torch.Tensor, kernel: Pair, stride: Pair, padding: Padding, dilation: Pair, ceil_mode: bool
) -> torch.Tensor:
    """``F.max_pool2d`` with explicit ``(top, bottom, left, right)`` padding of ``-inf``.

    Torch pads natively only up to half the *undilated* kernel; larger (dilated)
    or asymmetric padding goes through ``F.pad``.
    """
    top, _, left, _ = padding
    if _is_symmetric(padding) and 2 * top <= kernel[0] and 2 * left <= kernel[1]:
        return F.max_pool2d(x, kernel, stride, (top, left), dilation, ceil_mode)
    (oh, ow), pads = _pool_geometry(tuple(x.shape[2:]), kernel, stride, padding, dilation, ceil_mode)
    xp = F.pad(x, pads, value=float("-inf"))
    return F.max_pool2d(xp, kernel, stride, 0, dilation, False)[:, :, :oh, :ow]


def max_pool2d_forward(
    x: np.ndarray,
    *,
    kernel_size: Pair,
    stride: Pair,
    padding: Padding,
    dilation: Pair,
    ceil_mode: bool,
) -> np.ndarray:
    """``y`` = the maximum of each window (padding is ``-inf``)."""
    with torch.no_grad():
        y = _max_pool(_tensor(x), kernel_size, stride, padding, dilation, ceil_mode)
    return _array(y)


def max_pool2d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    *,
    kernel_size: Pair,
    stride: Pair,
    padding: Padding,
    dilation: Pair,
    ceil_mode: bool,
) -> np.ndarray:
    """``dx``: each window's ``dy`` routed to its (first) maximum, by autograd."""
    xt, dyt = _tensor(x, grad=True), _tensor(dy, x.dtype)
    with torch.enable_grad():
        y = _max_pool(xt, kernel_size, stride, padding, dilation, ceil_mode)
        (dx,) = torch.autograd.grad(y, [xt], grad_outputs=dyt)
    return _array(dx)


def _avg_divisors(
    hw: Pair, out_hw: Pair, kernel: Pair, stride: Pair, padding: Padding, count_include_pad: bool
) -> np.ndarray:
    """(OH, OW) divisors ``avg_divisor(i, axis H) * avg_divisor(j, axis W)``."""
    top, bottom, left, right = padding
    dh = [
        avg_divisor(i, hw[0], kernel[0], stride[0], top, bottom, count_include_pad) for i in range(out_hw[0])
    ]
    dw = [
        avg_divisor(j, hw[1], kernel[1], stride[1], left, right, count_include_pad) for j in range(out_hw[1])
    ]
    return np.multiply.outer(np.asarray(dh), np.asarray(dw))


def _avg_pool(
    x: torch.Tensor, kernel: Pair, stride: Pair, padding: Padding, ceil_mode: bool, count_include_pad: bool
) -> torch.Tensor:
    """``F.avg_pool2d`` with explicit ``(top, bottom, left, right)`` padding and PyTorch's divisor rule."""
    if _is_symmetric(padding):
        return F.avg_pool2d(x, kernel, stride, (padding[0], padding[2]), ceil_mode, count_include_pad)
    hw = tuple(x.shape[2:])
    (oh, ow), pads = _pool_geometry(hw, kernel, stride, padding, (1, 1), ceil_mode)
    sums = F.avg_pool2d(F.pad(x, pads), kernel, stride, 0, False, True, divisor_override=1)
    div = _avg_divisors(hw, (oh, ow), kernel, stride, padding, count_include_pad)
    return sums[:, :, :oh, :ow] / torch.from_numpy(div.astype(np.float64)).to(x.dtype)


def avg_pool2d_forward(
    x: np.ndarray,
    *,
    kernel_size: Pair,
    stride: Pair,
    padding: Padding,
    ceil_mode: bool,
    count_include_pad: bool,
) -> np.ndarray:
    """``y`` = the sum of each window's real cells over PyTorch's divisor."""
    with torch.no_grad():
        y = _avg_pool(_tensor(x), kernel_size, stride, padding, ceil_mode, count_include_pad)
    return _array(y)


def avg_pool2d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    *,
    kernel_size: Pair,
    stride: Pair,
    padding: Padding,
    ceil_mode: bool,
    count_include_pad: bool,
) -> np.ndarray:
    """``dx``: each window's ``dy / divisor`` spread over its real cells, by autograd."""
    xt, dyt = _tensor(x, grad=True), _tensor(dy, x.dtype)
    with torch.enable_grad():
        y = _avg_pool(xt, kernel_size, stride, padding, ceil_mode, count_include_pad)
        (dx,) = torch.autograd.grad(y, [xt], grad_outputs=dyt)
    return _array(dx)


__all__ = [
    "CONVCHECK_CAPABILITIES",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "conv2d_backward",
    "conv2d_forward",
    "max_pool2d_backward",
    "max_pool2d_forward",
]

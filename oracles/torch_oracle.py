"""The contract computed by ``torch.nn.functional`` in float64, gradients by autograd.

Forward functions build the PyTorch expression; backward functions rebuild it on
inputs that require grad and take ``torch.autograd.grad(y, inputs, grad_outputs=dy)``,
the vector-Jacobian products of ``L = sum(y * dy)``.

* conv2d: ``F.pad`` (zeros) applies the possibly asymmetric padding, then
  ``F.conv2d(stride, dilation, groups)``. Convention ``"convolution"`` flips
  ``w`` in both spatial axes inside the autograd graph, so ``dw`` comes back
  with respect to the declared ``w`` (i.e. the flipped ``dw`` of the flipped kernel).
* Pooling with symmetric padding that PyTorch accepts (``pad <= kernel // 2`` on
  each axis) uses the native ``padding`` argument: the most faithful route.
  Otherwise the padding is applied explicitly (``-inf`` for max, zeros for avg),
  pooled with ``padding=0`` and cropped to ``spec.pool.output_shape``: on the
  padded tensor PyTorch's ``ceil_mode`` rule can only add one last window
  (starting in the trailing padding), which the crop removes.
* avg_pool2d with explicit padding divides window sums by window counts, both
  from ``F.avg_pool2d(..., divisor_override=1)``: sums of the zero-padded input,
  counts of a mask that is 1 on the real cells (``count_include_pad=False``) or
  on the real and padding cells (``True``). A ``ceil_mode`` overhang beyond the
  padded tensor is never counted, as in ``spec.shapes.avg_divisor``.

PyTorch routes a tied max-pool window's gradient to the first maximum, so only
``ties="first"`` is supported. Limitations outside the tie rule: a window whose
real cells are all ``-inf`` may route its gradient to an explicit ``-inf``
padding cell on the explicit-padding path (lost by the crop), and among tied
NaNs PyTorch picks the last one.

Every function first runs the spec's validity check, so torch is never called
outside a valid configuration (torch 2.13 aborts the process on a max-pool
window lying wholly in padding). One intra-op thread is used: small calls run
far faster that way.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from convcheck.spec import conv, pool
from convcheck.spec.errors import InvalidConfiguration
from convcheck.spec.ops import OPERATIONS
from convcheck.spec.params import AvgPool2dParams, Conv2dParams, MaxPool2dParams

Pair = tuple[int, int]
Padding = tuple[int, int, int, int]

CONVENTIONS: tuple[str, ...] = OPERATIONS["conv2d"].feature("convention").choices
TIES: tuple[str, ...] = ("first",)
"""The tie rules this oracle can compute (PyTorch's own)."""

__all__ = [
    "TIES",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "conv2d_backward",
    "conv2d_forward",
    "max_pool2d_backward",
    "max_pool2d_forward",
]


# --------------------------------------------------------------------------- helpers


@functools.cache
def _threads() -> None:
    """Use one intra-op thread (once, on first use rather than at import)."""
    torch.set_num_threads(1)


def _tensor(a: np.ndarray | None, grad: bool = False) -> torch.Tensor | None:
    """A float64 tensor copy of ``a`` (``None`` stays ``None``); any memory layout, negative strides too."""
    if a is None:
        return None
    return torch.tensor(np.ascontiguousarray(a, dtype=np.float64), dtype=torch.float64, requires_grad=grad)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().astype(np.float64, copy=False)


def _check_dy(dy: np.ndarray, expected: tuple[int, ...]) -> None:
    if tuple(np.shape(dy)) != tuple(expected):
        raise InvalidConfiguration(f"dy.shape={tuple(np.shape(dy))}, but the output shape is {expected}")


def _torch_pad(padding: Padding) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` in ``F.pad``'s order ``(left, right, top, bottom)``."""
    t, b, l, r = padding
    return (l, r, t, b)


def _native_padding(p: MaxPool2dParams | AvgPool2dParams) -> tuple[int, int] | None:
    """``(ph, pw)`` when PyTorch's own ``padding`` argument can express ``p.padding``, else ``None``.

    That needs symmetric padding within PyTorch's limit ``pad <= kernel // 2``
    (the spec allows up to half the *dilated* kernel for max pooling).
    """
    t, b, l, r = p.padding
    kh, kw = p.kernel_size
    if t == b and l == r and t <= kh // 2 and l <= kw // 2:
        return (t, l)
    return None


def _crop(y: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    return y[:, :, : shape[2], : shape[3]]


# --------------------------------------------------------------------------- conv2d


def _conv_params(
    stride: Pair, padding: Padding, dilation: Pair, groups: int, convention: str
) -> Conv2dParams:
    if convention not in CONVENTIONS:
        raise ValueError(f"convention={convention!r} must be one of {list(CONVENTIONS)}")
    return Conv2dParams(stride=stride, padding=padding, dilation=dilation, groups=groups)


def _conv_expr(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, p: Conv2dParams, convention: str
) -> torch.Tensor:
    """``F.conv2d(F.pad(x), w or flip(w), b)`` with the spec's hyper-parameters."""
    kernel = torch.flip(w, dims=(2, 3)) if convention == "convolution" else w
    xp = F.pad(x, _torch_pad(p.padding))
    return F.conv2d(xp, kernel, b, stride=p.stride, padding=0, dilation=p.dilation, groups=p.groups)


def _conv_check(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, p: Conv2dParams) -> None:
    conv.check(tuple(np.shape(x)), tuple(np.shape(w)), None if b is None else tuple(np.shape(b)), p)


def conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    *,
    stride: Pair,
    padding: Padding,
    dilation: Pair,
    groups: int,
    convention: str = "cross-correlation",
) -> np.ndarray:
    """``y = F.conv2d(F.pad(x, padding), w, b, stride, dilation=dilation, groups=groups)``.

    ``w`` is replaced by ``flip(w)`` (180 degrees) with ``convention="convolution"``.
    """
    p = _conv_params(stride, padding, dilation, groups, convention)
    _conv_check(x, w, b, p)
    _threads()
    with torch.no_grad():
        y = _conv_expr(_tensor(x), _tensor(w), _tensor(b), p, convention)
    return _numpy(y)


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
    convention: str = "cross-correlation",
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(dx, dw, db) = autograd.grad(y, (x, w, b), grad_outputs=dy)``; ``db`` is ``None`` without ``b``."""
    p = _conv_params(stride, padding, dilation, groups, convention)
    _conv_check(x, w, b, p)
    _check_dy(dy, conv.output_shape(tuple(np.shape(x)), tuple(np.shape(w)), p))
    _threads()
    xt, wt, bt = _tensor(x, grad=True), _tensor(w, grad=True), _tensor(b, grad=True)
    inputs = [xt, wt] if bt is None else [xt, wt, bt]
    y = _conv_expr(xt, wt, bt, p, convention)
    grads = torch.autograd.grad(y, inputs, grad_outputs=_tensor(dy))
    db = None if bt is None else _numpy(grads[2])
    return _numpy(grads[0]), _numpy(grads[1]), db


# --------------------------------------------------------------------------- max_pool2d


def _max_expr(x: torch.Tensor, p: MaxPool2dParams) -> torch.Tensor:
    """Native ``F.max_pool2d`` when it can pad itself, else ``-inf`` padding, pooling and a crop."""
    native = _native_padding(p)
    kw = dict(kernel_size=p.kernel_size, stride=p.stride, dilation=p.dilation, ceil_mode=p.ceil_mode)
    if native is not None:
        return F.max_pool2d(x, padding=native, **kw)
    xp = F.pad(x, _torch_pad(p.padding), value=float("-inf"))
    return _crop(F.max_pool2d(xp, padding=0, **kw), pool.output_shape(tuple(x.shape), p))


def max_pool2d_forward(
    x: np.ndarray,
    *,
    kernel_size: Pair,
    stride: Pair,
    padding: Padding,
    dilation: Pair,
    ceil_mode: bool,
) -> np.ndarray:
    """``y = F.max_pool2d`` of ``x`` padded with ``-inf`` (see the module docstring)."""
    p = MaxPool2dParams(
        kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode
    )
    pool.check(tuple(np.shape(x)), p)
    _threads()
    with torch.no_grad():
        y = _max_expr(_tensor(x), p)
    return _numpy(y)


def max_pool2d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    *,
    kernel_size: Pair,
    stride: Pair,
    padding: Padding,
    dilation: Pair,
    ceil_mode: bool,
    ties: str = "first",
) -> np.ndarray:
    """``dx = autograd.grad(max_pool2d(x), x, grad_outputs=dy)``: each window's ``dy`` to its first maximum.

    Raises ``NotImplementedError`` for ``ties`` other than ``"first"``.
    """
    if ties not in TIES:
        raise NotImplementedError(f"the torch oracle computes ties={TIES[0]!r} only, not ties={ties!r}")
    p = MaxPool2dParams(
        kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode
    )
    pool.check(tuple(np.shape(x)), p)
    _check_dy(dy, pool.output_shape(tuple(np.shape(x)), p))
    _threads()
    xt = _tensor(x, grad=True)
    (dx,) = torch.autograd.grad(_max_expr(xt, p), [xt], grad_outputs=_tensor(dy))
    return _numpy(dx)


# --------------------------------------------------------------------------- avg_pool2d


def _avg_expr(x: torch.Tensor, p: AvgPool2dParams) -> torch.Tensor:
    """Native ``F.avg_pool2d`` when it can pad itself, else window sums over window counts."""
    native = _native_padding(p)
    kw = dict(kernel_size=p.kernel_size, stride=p.stride, ceil_mode=p.ceil_mode)
    if native is not None:
        return F.avg_pool2d(x, padding=native, count_include_pad=p.count_include_pad, **kw)
    shape = pool.output_shape(tuple(x.shape), p)
    pad = _torch_pad(p.padding)
    sums = F.avg_pool2d(F.pad(x, pad), padding=0, divisor_override=1, **kw)
    ones = torch.ones((1, 1, *x.shape[2:]), dtype=torch.float64)
    # Counted cells: the real ones, plus the padding ones with count_include_pad.
    mask = F.pad(ones, pad, value=1.0 if p.count_include_pad else 0.0)
    counts = F.avg_pool2d(mask, padding=0, divisor_override=1, **kw)
    return _crop(sums, shape) / _crop(counts, shape)


def _avg_params(
    kernel_size: Pair, stride: Pair, padding: Padding, ceil_mode: bool, count_include_pad: bool
) -> AvgPool2dParams:
    return AvgPool2dParams(
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        ceil_mode=ceil_mode,
        count_include_pad=count_include_pad,
    )


def avg_pool2d_forward(
    x: np.ndarray,
    *,
    kernel_size: Pair,
    stride: Pair,
    padding: Padding,
    ceil_mode: bool,
    count_include_pad: bool,
) -> np.ndarray:
    """``y = F.avg_pool2d`` with PyTorch's divisor rule (``spec.shapes.avg_divisor``)."""
    p = _avg_params(kernel_size, stride, padding, ceil_mode, count_include_pad)
    pool.check(tuple(np.shape(x)), p)
    _threads()
    with torch.no_grad():
        y = _avg_expr(_tensor(x), p)
    return _numpy(y)


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
    """``dx = autograd.grad(avg_pool2d(x), x, grad_outputs=dy)``."""
    p = _avg_params(kernel_size, stride, padding, ceil_mode, count_include_pad)
    pool.check(tuple(np.shape(x)), p)
    _check_dy(dy, pool.output_shape(tuple(np.shape(x)), p))
    _threads()
    xt = _tensor(x, grad=True)
    (dx,) = torch.autograd.grad(_avg_expr(xt, p), [xt], grad_outputs=_tensor(dy))
    return _numpy(dx)

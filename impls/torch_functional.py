"""PyTorch's own kernels as a library author checks them: ``torch.nn.functional`` called as it is.

Each window operation goes straight to torch's functional op (``F.conv1d/2d/3d``,
``F.max_pool1d/2d/3d``, ``F.avg_pool1d/2d/3d``) with the contract's hyper-parameters,
and its backward is ``torch.autograd.grad`` of ``L = sum(y * dy)``. Nothing is worked
around: what torch cannot express is declared in ``CONVCHECK_CAPABILITIES`` and
refused with ``NotImplementedError``, so every case that runs exercises torch's own
padding, output-size, divisor and tie rules. (``convcheck.impls.torch_backed``, the
shipped ``torch``, is the other use of torch: it completes the contract, padding
asymmetric cases itself.)

The device: ``CONVCHECK_TORCH_DEVICE`` (``cpu`` by default; ``cuda``, ``cuda:1``,
``mps``, any name ``torch.device`` takes). Inputs are copied into fresh tensors on it
and the results copied back to NumPy, so a GPU kernel is checked against the same
oracles. torch's defaults are left as they are: on CUDA, ``torch.backends.cudnn.allow_tf32``
(true by default) lets float32 convolutions round their inputs to TF32, and the
tolerance will say so.

What torch does not do, declared:

* padding is symmetric (one ``padding`` per axis; the contract's ``(lo, hi)`` pairs
  must be equal);
* max and average pooling pad by at most half the kernel, *undilated*
  (``kernel_size // 2``; torch's message says "effective kernel size", its check uses
  the kernel itself), a limit the per-case predicate ``supports`` states;
* ``F.avg_pool3d`` refuses an input shorter than the kernel on some axis, even when
  the padding makes every window fit: that case raises ``NotImplementedError`` naming it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from convcheck.spec.ops import bind_contract as _bind_contract

DEVICE_ENV = "CONVCHECK_TORCH_DEVICE"
"""The environment variable naming the torch device the kernels run on (``cpu`` by default)."""

Sizes = tuple[int, ...]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG_POOL: dict[int, Callable[..., torch.Tensor]] = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def _device(name: str) -> torch.device:
    """The torch device ``name``, checked to exist here: a usage error names what to do otherwise."""
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(
            f"{DEVICE_ENV}={name!r} is not a torch device ({e}); use cpu, cuda or cuda:N"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"{DEVICE_ENV}={name!r}, but this torch ({torch.__version__}) sees no CUDA device; "
            f"install a CUDA build of torch or unset {DEVICE_ENV} to check on the CPU"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{DEVICE_ENV}={name!r}, but MPS is not available; unset {DEVICE_ENV}")
    return device


DEVICE = _device(os.environ.get(DEVICE_ENV, "cpu"))


def supports(op_name: str, params: Any) -> bool | str:
    """torch pools with padding of at most half the undilated kernel on every axis."""
    if "pool" not in op_name:
        return True
    lows = params.padding[::2]
    if all(2 * p <= k for p, k in zip(lows, params.kernel_size, strict=True)):
        return True
    return "torch pads a pooling window by at most kernel_size // 2, whatever the dilation"


_SYMMETRIC = {"padding": "symmetric"}

CONVCHECK_CAPABILITIES: dict[str, Any] = {
    # MPS has no float64: on that device declare ["float32"] by hand.
    "dtypes": ["float32", "float64"],
    **{f"conv{n}d": dict(_SYMMETRIC) for n in (1, 2, 3)},
    **{f"max_pool{n}d": dict(_SYMMETRIC) for n in (1, 2, 3)},
    **{f"avg_pool{n}d": dict(_SYMMETRIC) for n in (1, 2, 3)},
    "supports": supports,
}


# --------------------------------------------------------------------------- conversions


def _tensor(a: np.ndarray, dtype: np.dtype, grad: bool = False) -> torch.Tensor:
    """A fresh contiguous tensor on ``DEVICE`` holding a copy of ``a`` in ``dtype``."""
    copy = np.array(a, dtype=dtype, order="C", copy=True)
    return torch.from_numpy(copy).to(DEVICE).requires_grad_(grad)


def _array(t: torch.Tensor) -> np.ndarray:
    """A new NumPy array holding the values of a result tensor, brought back from ``DEVICE``."""
    return t.detach().cpu().numpy().copy()


def _torch_padding(padding: Sizes) -> Sizes:
    """The per-axis padding torch takes, from the contract's ``(lo, hi)`` pairs.

    Raises ``NotImplementedError`` for unequal pairs: torch pads each axis symmetrically."""
    lows, highs = padding[::2], padding[1::2]
    if lows != highs:
        raise NotImplementedError(
            f"padding={padding}: torch.nn.functional pads each axis symmetrically (lo == hi); "
            "declared padding='symmetric'"
        )
    return tuple(lows)


def _forward(fn: Callable[..., torch.Tensor], x: np.ndarray, *rest: np.ndarray | None) -> np.ndarray:
    """``fn`` of fresh device tensors of ``x`` and ``rest`` (in ``x``'s dtype), without autograd."""
    tensors = [None if a is None else _tensor(a, x.dtype) for a in (x, *rest)]
    with torch.no_grad():
        return _array(fn(*tensors))


def _vjp(
    fn: Callable[..., torch.Tensor], dy: np.ndarray, x: np.ndarray, *rest: np.ndarray | None
) -> list[np.ndarray | None]:
    """The gradients of ``sum(fn(x, *rest) * dy)`` by autograd, one per array (``None`` for an absent one)."""
    tensors = [None if a is None else _tensor(a, x.dtype, grad=True) for a in (x, *rest)]
    leaves = [t for t in tensors if t is not None]
    with torch.enable_grad():
        y = fn(*tensors)
        grads = iter(torch.autograd.grad(y, leaves, grad_outputs=_tensor(dy, x.dtype)))
    return [None if t is None else _array(next(grads)) for t in tensors]


def _given(grad: np.ndarray | None) -> np.ndarray:
    """The gradient of an array that was given (only an absent bias has none)."""
    if grad is None:
        raise TypeError("no gradient: the array was None")
    return grad


# --------------------------------------------------------------------------- conv


def _conv(stride: Sizes, padding: Sizes, dilation: Sizes, groups: int) -> Callable[..., torch.Tensor]:
    """``F.conv{1,2,3}d`` with these hyper-parameters, as a function of ``(x, w, b)``."""
    pad = _torch_padding(padding)

    def conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        return _CONV[x.dim() - 2](x, w, b, stride=stride, padding=pad, dilation=dilation, groups=groups)

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
    """``y = F.conv{1,2,3}d(x, w, b, ...)``."""
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
    """``(dx, dw, db)`` of ``sum(F.conv{1,2,3}d(x, w, b, ...) * dy)`` by autograd."""
    dx, dw, db = _vjp(_conv(stride, padding, dilation, groups), dy, x, w, b)
    return _given(dx), _given(dw), db


# --------------------------------------------------------------------------- pooling


def _max_pool(
    kernel: Sizes, stride: Sizes, padding: Sizes, dilation: Sizes, ceil_mode: bool
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``F.max_pool{1,2,3}d`` with these hyper-parameters, as a function of ``x``."""
    pad = _torch_padding(padding)

    def pool(x: torch.Tensor) -> torch.Tensor:
        return _MAX_POOL[x.dim() - 2](x, kernel, stride, pad, dilation, ceil_mode)

    return pool


def max_pool_forward(
    x: np.ndarray, *, kernel_size: Sizes, stride: Sizes, padding: Sizes, dilation: Sizes, ceil_mode: bool
) -> np.ndarray:
    """``y = F.max_pool{1,2,3}d(x, ...)``."""
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
    """``dx`` of ``sum(F.max_pool{1,2,3}d(x, ...) * dy)`` by autograd."""
    return _given(_vjp(_max_pool(kernel_size, stride, padding, dilation, ceil_mode), dy, x)[0])


def _avg_pool(
    kernel: Sizes, stride: Sizes, padding: Sizes, ceil_mode: bool, count_include_pad: bool
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``F.avg_pool{1,2,3}d`` with these hyper-parameters, as a function of ``x``."""
    pad = _torch_padding(padding)

    def pool(x: torch.Tensor) -> torch.Tensor:
        spatial = tuple(x.shape[2:])
        if x.dim() == 5 and any(n < k for n, k in zip(spatial, kernel, strict=True)):
            raise NotImplementedError(
                f"F.avg_pool3d refuses an input {spatial} shorter than its kernel {kernel} on some axis, "
                f"even with padding={padding}"
            )
        return _AVG_POOL[x.dim() - 2](x, kernel, stride, pad, ceil_mode, count_include_pad)

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
    """``y = F.avg_pool{1,2,3}d(x, ...)``."""
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
    """``dx`` of ``sum(F.avg_pool{1,2,3}d(x, ...) * dy)`` by autograd."""
    return _given(_vjp(_avg_pool(kernel_size, stride, padding, ceil_mode, count_include_pad), dy, x)[0])


# One N-d function per window operation and direction; the rank of ``x`` selects torch's function.
__all__ = ["CONVCHECK_CAPABILITIES", "DEVICE", "DEVICE_ENV", "supports", *_bind_contract(globals())]

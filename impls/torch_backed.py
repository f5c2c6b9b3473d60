"""convcheck implementation backed by ``torch.nn.functional`` (CPU), with autograd for the backward pass.

Each call copies its NumPy inputs into fresh contiguous tensors of the input's
dtype (float32 stays float32; float16 and bfloat16 are computed in float32 and each result
rounded once, see ``_half``), runs the functional op (``F.conv1d/2d/3d``,
``F.max_pool1d/2d/3d``, ``F.avg_pool1d/2d/3d``, ``F.relu``, ``torch.sigmoid``,
``torch.tanh``, ``F.linear``, ``torch.flatten``, ``F.cross_entropy``,
``F.binary_cross_entropy_with_logits``) and, for the backward functions,
``torch.autograd.grad`` of ``L = sum(y * dy)`` (of the loss itself for the two
losses). Results come back as NumPy arrays owned by the fresh result tensors,
so they never alias a caller's array. The window functions are N-d: the rank
of ``x`` picks the 1-D, 2-D or 3-D torch function.

Padding: symmetric padding (``lo == hi`` on every axis) is handed to torch;
asymmetric padding is applied explicitly with ``F.pad`` (zeros for conv,
``-inf`` for max pooling). For pooling with asymmetric padding the
``ceil_mode`` output size follows ``spec.shapes.pool_out_size``: the input is
padded further by the overhang of the last window and pooled in floor mode,
then cropped to that size. Average pooling with asymmetric padding sums each
window (``divisor_override=1`` on the zero-padded input; a 1-D input is pooled
as 2-D with a unit axis, ``F.avg_pool1d`` having no ``divisor_override``) and
divides by the product over the axes of ``spec.shapes.avg_divisor``. (One
corner that explicit ``-inf`` padding cannot express: a max-pool window whose
real cells are all ``-inf``, next to asymmetric padding, may route its
gradient to a padding cell, where it is dropped.)

``torch.set_num_threads`` is called only when the environment variable
``CONVCHECK_TORCH_THREADS`` is set.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from convcheck.spec.dtypes import DTYPES as _DTYPES
from convcheck.spec.ops import bind_contract as _bind_contract
from convcheck.spec.shapes import at as _at
from convcheck.spec.shapes import avg_divisor, effective_kernel, pool_out_size

from ._half import widen_contract as _widen_contract

CONVCHECK_CAPABILITIES: dict = {"dtypes": list(_DTYPES), "accumulate": "float32"}

Sizes = tuple[int, ...]

if os.environ.get("CONVCHECK_TORCH_THREADS"):
    torch.set_num_threads(int(os.environ["CONVCHECK_TORCH_THREADS"]))

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG_POOL: dict[int, Callable[..., torch.Tensor]] = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


# --------------------------------------------------------------------------- conversions


def _tensor(
    a: np.ndarray, dtype: np.dtype | type[np.generic] | None = None, grad: bool = False
) -> torch.Tensor:
    """A fresh contiguous tensor holding a copy of ``a`` (cast to ``dtype`` if given)."""
    copy = np.array(a, dtype=dtype, order="C", copy=True)
    return torch.from_numpy(copy).requires_grad_(grad)


def _array(t: torch.Tensor) -> np.ndarray:
    """The NumPy array of a result tensor (contiguous; shares memory only with that fresh tensor)."""
    return t.detach().contiguous().numpy()


def _pairs(padding: Sizes) -> list[tuple[int, int]]:
    """``[(lo, hi), ...]`` per spatial axis from the flattened ``padding``."""
    return [(padding[2 * a], padding[2 * a + 1]) for a in range(len(padding) // 2)]


def _symmetric(padding: Sizes) -> tuple[int, ...] | None:
    """The per-axis padding torch takes, when ``lo == hi`` on every axis; else ``None``."""
    pairs = _pairs(padding)
    return tuple(lo for lo, _ in pairs) if all(lo == hi for lo, hi in pairs) else None


def _pad_widths(pairs: list[tuple[int, int]]) -> tuple[int, ...]:
    """``F.pad``'s widths: ``(lo, hi)`` per axis, the *last* spatial axis first."""
    return tuple(p for pair in reversed(pairs) for p in pair)


def _crop(t: torch.Tensor, out: Sizes) -> torch.Tensor:
    """The leading ``out`` cells of each spatial axis of ``t``."""
    return t[_at(..., *(slice(0, o) for o in out))]


def _forward(fn: Callable[..., torch.Tensor], x: np.ndarray, *rest: np.ndarray | None) -> np.ndarray:
    """``fn`` of fresh tensors of ``x`` and ``rest`` (in ``x``'s dtype), without autograd."""
    dtype = x.dtype
    tensors = [None if a is None else _tensor(a, dtype) for a in (x, *rest)]
    with torch.no_grad():
        return _array(fn(*tensors))


def _vjp(
    fn: Callable[..., torch.Tensor], dy: np.ndarray, x: np.ndarray, *rest: np.ndarray | None
) -> list[np.ndarray | None]:
    """Gradients of ``sum(fn(x, *rest) * dy)`` by autograd, one per array (``None`` for an absent one),
    in ``x``'s dtype."""
    dtype = x.dtype
    tensors = [None if a is None else _tensor(a, dtype, grad=True) for a in (x, *rest)]
    leaves = [t for t in tensors if t is not None]
    with torch.enable_grad():
        y = fn(*tensors)
        grads = iter(torch.autograd.grad(y, leaves, grad_outputs=_tensor(dy, dtype)))
    return [None if t is None else _array(next(grads)) for t in tensors]


def _present(grad: np.ndarray | None) -> np.ndarray:
    """The gradient of an array that was given (only an absent bias has none)."""
    if grad is None:
        raise TypeError("no gradient: the array was None")
    return grad


# --------------------------------------------------------------------------- conv


def _conv(
    x: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor | None,
    stride: Sizes,
    padding: Sizes,
    dilation: Sizes,
    groups: int,
) -> torch.Tensor:
    """``F.conv{1,2,3}d`` with the ``(lo, hi)`` pairs of ``padding`` applied as zeros."""
    conv = _CONV[x.dim() - 2]
    native = _symmetric(padding)
    if native is not None:
        return conv(x, w, b, stride=stride, padding=native, dilation=dilation, groups=groups)
    x = F.pad(x, _pad_widths(_pairs(padding)))
    return conv(x, w, b, stride=stride, padding=0, dilation=dilation, groups=groups)


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
    """``y = conv(x, w, b)`` (cross-correlation, zero padding)."""
    return _forward(lambda x_, w_, b_: _conv(x_, w_, b_, stride, padding, dilation, groups), x, w, b)


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
    """``(dx, dw, db)``: gradients of ``sum(conv(x, w, b) * dy)`` by autograd."""
    dx, dw, db = _vjp(lambda x_, w_, b_: _conv(x_, w_, b_, stride, padding, dilation, groups), dy, x, w, b)
    return _present(dx), _present(dw), db


# --------------------------------------------------------------------------- pooling


def _pool_geometry(
    spatial: Sizes, kernel: Sizes, stride: Sizes, padding: Sizes, dilation: Sizes, ceil_mode: bool
) -> tuple[Sizes, list[tuple[int, int]]]:
    """The output lengths by ``spec.shapes.pool_out_size`` and the ``(lo, hi + overhang)`` pads per
    axis that make every window a plain floor-mode window."""
    out, pads = [], []
    for n, k, s, (lo, hi), d in zip(spatial, kernel, stride, _pairs(padding), dilation, strict=True):
        o = pool_out_size(n, k, s, lo, hi, d, ceil_mode)
        out.append(o)
        pads.append((lo, hi + max(0, (o - 1) * s + effective_kernel(k, d) - (n + lo + hi))))
    return tuple(out), pads


def _max_pool(
    x: torch.Tensor, kernel: Sizes, stride: Sizes, padding: Sizes, dilation: Sizes, ceil_mode: bool
) -> torch.Tensor:
    """``F.max_pool{1,2,3}d`` with the ``(lo, hi)`` pairs of ``padding`` as ``-inf``.

    Torch pads natively only up to half the *undilated* kernel; larger (dilated)
    or asymmetric padding goes through ``F.pad``.
    """
    pool = _MAX_POOL[x.dim() - 2]
    native = _symmetric(padding)
    if native is not None and all(2 * p <= k for p, k in zip(native, kernel, strict=True)):
        return pool(x, kernel, stride, native, dilation, ceil_mode)
    out, pads = _pool_geometry(tuple(x.shape[2:]), kernel, stride, padding, dilation, ceil_mode)
    xp = F.pad(x, _pad_widths(pads), value=float("-inf"))
    return _crop(pool(xp, kernel, stride, 0, dilation, False), out)


def max_pool_forward(
    x: np.ndarray,
    *,
    kernel_size: Sizes,
    stride: Sizes,
    padding: Sizes,
    dilation: Sizes,
    ceil_mode: bool,
) -> np.ndarray:
    """``y`` = the maximum of each window (padding is ``-inf``)."""
    return _forward(lambda x_: _max_pool(x_, kernel_size, stride, padding, dilation, ceil_mode), x)


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
    """``dx``: each window's ``dy`` routed to its (first) maximum, by autograd."""
    return _present(
        _vjp(lambda x_: _max_pool(x_, kernel_size, stride, padding, dilation, ceil_mode), dy, x)[0]
    )


def _avg_divisors(
    spatial: Sizes, out: Sizes, kernel: Sizes, stride: Sizes, padding: Sizes, cip: bool
) -> np.ndarray:
    """The divisors (shape ``out``): the outer product over the axes of ``spec.shapes.avg_divisor``."""
    div = np.ones((), dtype=np.float64)
    for n, m, k, s, (lo, hi) in zip(spatial, out, kernel, stride, _pairs(padding), strict=True):
        div = np.multiply.outer(div, [avg_divisor(o, n, k, s, lo, hi, cip) for o in range(m)])
    return div


def _window_sums(x: torch.Tensor, kernel: Sizes, stride: Sizes) -> torch.Tensor:
    """The sum of each floor-mode window of an unpadded ``x`` (``divisor_override=1``)."""
    if x.dim() == 3:  # F.avg_pool1d has no divisor_override: pool (N, C, 1, L) in 2-D
        return F.avg_pool2d(x.unsqueeze(2), (1, *kernel), (1, *stride), divisor_override=1).squeeze(2)
    return _AVG_POOL[x.dim() - 2](x, kernel, stride, 0, False, True, divisor_override=1)


def _avg_pool(
    x: torch.Tensor, kernel: Sizes, stride: Sizes, padding: Sizes, ceil_mode: bool, count_include_pad: bool
) -> torch.Tensor:
    """``F.avg_pool{1,2,3}d`` with the ``(lo, hi)`` pairs of ``padding`` and PyTorch's divisor rule.

    ``F.avg_pool3d`` refuses an input shorter than the kernel on some axis even
    when the padding makes the window fit; such inputs take the explicit route too.
    """
    spatial = tuple(x.shape[2:])
    native = _symmetric(padding)
    if native is not None and (x.dim() < 5 or all(n >= k for n, k in zip(spatial, kernel, strict=True))):
        return _AVG_POOL[x.dim() - 2](x, kernel, stride, native, ceil_mode, count_include_pad)
    out, pads = _pool_geometry(spatial, kernel, stride, padding, (1,) * len(spatial), ceil_mode)
    sums = _crop(_window_sums(F.pad(x, _pad_widths(pads)), kernel, stride), out)
    div = _avg_divisors(spatial, out, kernel, stride, padding, count_include_pad)
    return sums / torch.from_numpy(div).to(x.dtype)


def _avg_pool_scaled(
    x: torch.Tensor, kernel: Sizes, stride: Sizes, padding: Sizes, ceil_mode: bool, count_include_pad: bool
) -> torch.Tensor:
    """``_avg_pool`` of ``x / prod(kernel)``, times ``prod(kernel)``: PyTorch adds a window's cells in
    the storage dtype before dividing, which overflows for cells near the largest finite value whose
    mean is finite; scaled first, no partial sum exceeds the largest ``|x|``."""
    k = math.prod(kernel)
    return _avg_pool(x / k, kernel, stride, padding, ceil_mode, count_include_pad) * k


def avg_pool_forward(
    x: np.ndarray,
    *,
    kernel_size: Sizes,
    stride: Sizes,
    padding: Sizes,
    ceil_mode: bool,
    count_include_pad: bool,
) -> np.ndarray:
    """``y`` = the sum of each window's real cells over PyTorch's divisor."""
    return _forward(
        lambda x_: _avg_pool_scaled(x_, kernel_size, stride, padding, ceil_mode, count_include_pad), x
    )


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
    """``dx``: each window's ``dy / divisor`` spread over its real cells, by autograd."""
    return _present(
        _vjp(
            lambda x_: _avg_pool_scaled(x_, kernel_size, stride, padding, ceil_mode, count_include_pad), dy, x
        )[0]
    )


# --------------------------------------------------------------------------- activations, linear, flatten


def relu_forward(x: np.ndarray) -> np.ndarray:
    """``y = F.relu(x)``."""
    return _forward(F.relu, x)


def relu_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``dx = dy * [x > 0]`` by autograd (``threshold_backward``: 0 at ``x == 0``)."""
    return _present(_vjp(F.relu, dy, x)[0])


def sigmoid_forward(x: np.ndarray) -> np.ndarray:
    """``y = torch.sigmoid(x)``."""
    return _forward(torch.sigmoid, x)


def sigmoid_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``dx = dy * s * (1 - s)`` by autograd."""
    return _present(_vjp(torch.sigmoid, dy, x)[0])


def tanh_forward(x: np.ndarray) -> np.ndarray:
    """``y = torch.tanh(x)``."""
    return _forward(torch.tanh, x)


def tanh_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``dx = dy * (1 - t**2)`` by autograd."""
    return _present(_vjp(torch.tanh, dy, x)[0])


def linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """``y = F.linear(x, w, b) = x w^T + b``."""
    return _forward(F.linear, x, w, b)


def linear_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(dx, dw, db)`` of ``sum(F.linear(x, w, b) * dy)`` by autograd (``dw``, ``db`` batch sums)."""
    dx, dw, db = _vjp(F.linear, dy, x, w, b)
    return _present(dx), _present(dw), db


def _flatten(x: torch.Tensor) -> torch.Tensor:
    return torch.flatten(x, 1)


def flatten_forward(x: np.ndarray) -> np.ndarray:
    """``y = torch.flatten(x, 1)``: ``(N, prod(x.shape[1:]))`` in C order."""
    return _forward(_flatten, x)


def flatten_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``dx = dy`` reshaped to ``x.shape``, by autograd."""
    return _present(_vjp(_flatten, dy, x)[0])


# --------------------------------------------------------------------------- losses


def _loss_and_grad(
    loss_fn: Callable[..., torch.Tensor], z: np.ndarray, target: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """``(loss, dz)``: the scalar ``loss_fn(z, target)`` (mean reduction) and its gradient in ``z``."""
    zt = _tensor(z, grad=True)
    with torch.enable_grad():
        loss = loss_fn(zt, target)
        (dz,) = torch.autograd.grad(loss, [zt])
    return _array(loss), _array(dz)


def softmax_cross_entropy(z: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``F.cross_entropy(z, labels)`` (the batch mean of ``logsumexp(z[n]) - z[n, label]``) and its ``dz``."""
    return _loss_and_grad(F.cross_entropy, z, _tensor(labels, np.int64))


def sigmoid_binary_cross_entropy(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``F.binary_cross_entropy_with_logits(z, y)`` (the mean over every element) and its ``dz``."""
    return _loss_and_grad(F.binary_cross_entropy_with_logits, z, _tensor(y, z.dtype))


# --------------------------------------------------------------------------- the contract's names
# One N-d function per window operation and direction; the rank of ``x`` selects the torch function.

__all__ = ["CONVCHECK_CAPABILITIES", *_bind_contract(globals())]
_widen_contract(globals())

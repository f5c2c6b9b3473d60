"""The contract computed by ``torch.nn.functional`` in float64, gradients by autograd, in 1, 2 and 3-D.

Forward functions build the PyTorch expression; backward functions rebuild it on
inputs that require grad and take ``torch.autograd.grad(y, inputs, grad_outputs=dy)``,
the vector-Jacobian products of ``L = sum(y * dy)``. The ``d``-dimensional
operations call ``F.conv{d}d``, ``F.max_pool{d}d`` and ``F.avg_pool{d}d``; one
expression per family serves every dimension. The contract functions
(``conv1d_forward`` ... ``avg_pool3d_backward``) are made per dimension by the
factories the SciPy/NumPy oracle uses for its own (``oracles.contract``): they only
build the dimension's hyper-parameter record and call the N-d functions here.

* Convolution: ``F.pad`` (zeros) applies the possibly asymmetric padding, then
  ``F.conv{d}d(stride, dilation, groups)``. Convention ``"convolution"`` flips
  ``w`` on every spatial axis inside the autograd graph, so ``dw`` comes back
  with respect to the declared ``w`` (i.e. the flipped ``dw`` of the flipped kernel).
* Pooling with symmetric padding that PyTorch accepts (``pad <= kernel // 2`` on
  each axis) uses the native ``padding`` argument: the most faithful route.
  Otherwise the padding is applied explicitly (``-inf`` for max, zeros for avg),
  pooled with ``padding=0`` and cropped to ``spec.pool.output_shape``: on the
  padded tensor PyTorch's ``ceil_mode`` rule can only add one last window per
  axis (starting in the trailing padding), which the crop removes.
* Average pooling with explicit padding divides window sums by window counts:
  sums of the zero-padded input, counts of a mask that is 1 on the real cells
  (``count_include_pad=False``) or on the real and padding cells (``True``), both
  pooled with ``divisor_override=1`` (2-D, 3-D). ``F.avg_pool1d`` has no
  ``divisor_override``; its divisor depends only on the window's position,
  so it is the same for sums and counts and cancels in the ratio. A ``ceil_mode``
  overhang beyond the padded tensor is never counted, as in ``spec.shapes.avg_divisor``.
* ``relu``, ``sigmoid``, ``tanh``: ``torch.relu`` (whose backward passes ``dy``
  only where ``x > 0``: ``relu'(0) = 0``, the contract), ``torch.sigmoid``
  (below 0 as ``exp(x) * torch.sigmoid(-x)``, see ``_sigmoid``), ``torch.tanh``;
  ``linear``: ``F.linear``; ``flatten``: ``torch.flatten(x, 1)``.
* Losses: ``F.cross_entropy`` and ``F.binary_cross_entropy_with_logits`` (mean
  reduction, both stable for large logits); ``dz`` by autograd.

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
from collections.abc import Callable
from typing import Any
from typing import overload as _overload

import numpy as np
import torch
import torch.nn.functional as F

from convcheck.spec import activation, conv, dense, loss, pool
from convcheck.spec.errors import InvalidConfiguration
from convcheck.spec.ops import OPERATIONS
from convcheck.spec.ops import bind_contract as _bind_contract
from convcheck.spec.params import AvgPoolParams, ConvParams, MaxPoolParams, WindowParams

from .contract import oracle_functions as _oracle_functions
from .layers import class_indices

Ints = tuple[int, ...]

CONVENTIONS: tuple[str, ...] = OPERATIONS["conv2d"].feature("convention").choices
TIES: tuple[str, ...] = ("first",)
"""The tie rules this oracle can compute (PyTorch's own)."""


# --------------------------------------------------------------------------- helpers


@functools.cache
def _threads() -> None:
    """Use one intra-op thread (once, on first use rather than at import)."""
    torch.set_num_threads(1)


@_overload
def _tensor(a: np.ndarray, grad: bool = False) -> torch.Tensor: ...
@_overload
def _tensor(a: None, grad: bool = False) -> None: ...
@_overload
def _tensor(a: np.ndarray | None, grad: bool = False) -> torch.Tensor | None: ...


def _tensor(a: np.ndarray | None, grad: bool = False) -> torch.Tensor | None:
    """A float64 tensor copy of ``a`` (``None`` stays ``None``); any memory layout, negative strides too."""
    if a is None:
        return None
    return torch.tensor(np.ascontiguousarray(a, dtype=np.float64), dtype=torch.float64, requires_grad=grad)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().astype(np.float64, copy=False)


def _check_dy(dy: np.ndarray, expected: tuple[int, ...]) -> None:
    if tuple(np.shape(dy)) != tuple(expected):
        raise InvalidConfiguration(
            f"dy.shape={tuple(np.shape(dy))}, but the output shape is {tuple(expected)}"
        )


def _forward(expr: Callable[..., torch.Tensor], *arrays: np.ndarray | None) -> np.ndarray:
    """``expr`` of the arrays as float64 tensors, without a graph."""
    _threads()
    with torch.no_grad():
        return _numpy(expr(*(_tensor(a) for a in arrays)))


def _vjp(
    expr: Callable[..., torch.Tensor], dy: np.ndarray, *arrays: np.ndarray | None
) -> tuple[np.ndarray | None, ...]:
    """``autograd.grad(expr(*arrays), arrays, grad_outputs=dy)``, ``None`` for an absent (``None``) array."""
    _threads()
    tensors = [_tensor(a, grad=True) for a in arrays]
    present = [t for t in tensors if t is not None]
    grads = iter(torch.autograd.grad(expr(*tensors), present, grad_outputs=_tensor(dy)))
    return tuple(None if t is None else _numpy(next(grads)) for t in tensors)


def _present(grad: np.ndarray | None) -> np.ndarray:
    """The gradient of an input that is present (only an absent bias has none)."""
    if grad is None:
        raise TypeError("no gradient: the input was None")
    return grad


def _vjp_one(expr: Callable[[torch.Tensor], torch.Tensor], dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``_vjp`` of a one-input expression: ``dx``."""
    (dx,) = _vjp(expr, dy, x)
    return _present(dx)


def _functional(family: str, ndim: int) -> Callable[..., torch.Tensor]:
    """``F.conv{ndim}d``, ``F.max_pool{ndim}d`` or ``F.avg_pool{ndim}d``, looked up at each call."""
    function: Callable[..., torch.Tensor] = getattr(F, f"{family}{ndim}d")
    return function


def _torch_pad(p: WindowParams) -> Ints:
    """The spec's padding, ``(low, high)`` per axis in axis order, in ``F.pad``'s order (last axis first)."""
    return tuple(side for a in reversed(range(p.NDIM)) for side in p.pads(a))


def _native_padding(p: MaxPoolParams | AvgPoolParams, x_shape: Ints) -> Ints | None:
    """The per-axis padding when PyTorch's own ``padding`` argument can express ``p.padding``, else ``None``.

    That needs symmetric padding within PyTorch's limit ``pad <= kernel // 2``
    (the spec allows up to half the *dilated* kernel for max pooling), and for
    ``F.avg_pool3d``, which alone checks it, an unpadded input at least as long
    as the kernel on every axis.
    """
    pairs = [p.pads(a) for a in range(p.NDIM)]
    if not all(lo == hi and lo <= k // 2 for (lo, hi), k in zip(pairs, p.kernel_size, strict=True)):
        return None
    if (
        isinstance(p, AvgPoolParams)
        and p.NDIM == 3
        and any(n < k for n, k in zip(x_shape[2:], p.kernel_size, strict=True))
    ):
        return None
    return tuple(lo for lo, _ in pairs)


def _crop(y: torch.Tensor, shape: Ints) -> torch.Tensor:
    """``y`` cut down to ``shape`` on the spatial axes (the leading cells kept)."""
    return y[(slice(None), slice(None), *(slice(n) for n in shape[2:]))]


# --------------------------------------------------------------------------- convolution


def _check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"convention={convention!r} must be one of {list(CONVENTIONS)}")


def _conv_expr(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, p: ConvParams, convention: str
) -> torch.Tensor:
    """``F.conv{d}d(F.pad(x), w or flip(w), b)`` with the spec's hyper-parameters."""
    spatial = tuple(range(2, 2 + p.NDIM))
    kernel = torch.flip(w, dims=spatial) if convention == "convolution" else w
    xp = F.pad(x, _torch_pad(p))
    return _functional("conv", p.NDIM)(
        xp, kernel, b, stride=p.stride, padding=0, dilation=p.dilation, groups=p.groups
    )


def _conv_check(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, p: ConvParams, convention: str) -> None:
    _check_convention(convention)
    conv.check(tuple(np.shape(x)), tuple(np.shape(w)), None if b is None else tuple(np.shape(b)), p)


def conv_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, p: ConvParams, convention: str = "cross-correlation"
) -> np.ndarray:
    """``y = F.conv{d}d(F.pad(x, padding), w, b, stride, dilation=dilation, groups=groups)``, ``d = p.NDIM``.

    ``w`` is replaced by ``flip(w)`` (every spatial axis) with ``convention="convolution"``.
    """
    _conv_check(x, w, b, p, convention)
    return _forward(lambda xt, wt, bt: _conv_expr(xt, wt, bt, p, convention), x, w, b)


def conv_backward(
    dy: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    p: ConvParams,
    convention: str = "cross-correlation",
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(dx, dw, db) = autograd.grad(y, (x, w, b), grad_outputs=dy)``; ``db`` is ``None`` without ``b``."""
    _conv_check(x, w, b, p, convention)
    _check_dy(dy, conv.output_shape(tuple(np.shape(x)), tuple(np.shape(w)), p))
    dx, dw, db = _vjp(lambda xt, wt, bt: _conv_expr(xt, wt, bt, p, convention), dy, x, w, b)
    return _present(dx), _present(dw), db


# --------------------------------------------------------------------------- max pooling


def _max_expr(x: torch.Tensor, p: MaxPoolParams) -> torch.Tensor:
    """Native ``F.max_pool{d}d`` when it can pad itself, else ``-inf`` padding, pooling and a crop."""
    native = _native_padding(p, tuple(x.shape))
    kw = dict(kernel_size=p.kernel_size, stride=p.stride, dilation=p.dilation, ceil_mode=p.ceil_mode)
    max_pool = _functional("max_pool", p.NDIM)
    if native is not None:
        return max_pool(x, padding=native, **kw)
    xp = F.pad(x, _torch_pad(p), value=float("-inf"))
    return _crop(max_pool(xp, padding=0, **kw), pool.output_shape(tuple(x.shape), p))


def max_pool_forward(x: np.ndarray, p: MaxPoolParams) -> np.ndarray:
    """``y = F.max_pool{d}d`` of ``x`` padded with ``-inf`` (see the module docstring)."""
    pool.check(tuple(np.shape(x)), p)
    return _forward(lambda xt: _max_expr(xt, p), x)


def max_pool_backward(dy: np.ndarray, x: np.ndarray, p: MaxPoolParams, ties: str = "first") -> np.ndarray:
    """``dx = autograd.grad(max_pool(x), x, grad_outputs=dy)``: each window's ``dy`` to its first maximum.

    Raises ``NotImplementedError`` for ``ties`` other than ``"first"``.
    """
    if ties not in TIES:
        raise NotImplementedError(f"the torch oracle computes ties={TIES[0]!r} only, not ties={ties!r}")
    pool.check(tuple(np.shape(x)), p)
    _check_dy(dy, pool.output_shape(tuple(np.shape(x)), p))
    return _vjp_one(lambda xt: _max_expr(xt, p), dy, x)


# --------------------------------------------------------------------------- average pooling


def _avg_expr(x: torch.Tensor, p: AvgPoolParams) -> torch.Tensor:
    """Native ``F.avg_pool{d}d`` when it can pad itself, else window sums over window counts."""
    native = _native_padding(p, tuple(x.shape))
    kw: dict[str, Any] = dict(kernel_size=p.kernel_size, stride=p.stride, ceil_mode=p.ceil_mode)
    avg_pool = _functional("avg_pool", p.NDIM)
    if native is not None:
        return avg_pool(x, padding=native, count_include_pad=p.count_include_pad, **kw)
    if p.NDIM > 1:  # avg_pool1d has no divisor_override (see the module docstring)
        kw["divisor_override"] = 1
    shape = pool.output_shape(tuple(x.shape), p)
    pad = _torch_pad(p)
    sums = avg_pool(F.pad(x, pad), padding=0, **kw)
    ones = torch.ones((1, 1, *x.shape[2:]), dtype=torch.float64)
    # Counted cells: the real ones, plus the padding ones with count_include_pad.
    mask = F.pad(ones, pad, value=1.0 if p.count_include_pad else 0.0)
    counts = avg_pool(mask, padding=0, **kw)
    return _crop(sums, shape) / _crop(counts, shape)


def avg_pool_forward(x: np.ndarray, p: AvgPoolParams) -> np.ndarray:
    """``y = F.avg_pool{d}d`` with PyTorch's divisor rule (``spec.shapes.avg_divisor``)."""
    pool.check(tuple(np.shape(x)), p)
    return _forward(lambda xt: _avg_expr(xt, p), x)


def avg_pool_backward(dy: np.ndarray, x: np.ndarray, p: AvgPoolParams) -> np.ndarray:
    """``dx = autograd.grad(avg_pool(x), x, grad_outputs=dy)``."""
    pool.check(tuple(np.shape(x)), p)
    _check_dy(dy, pool.output_shape(tuple(np.shape(x)), p))
    return _vjp_one(lambda xt: _avg_expr(xt, p), dy, x)


# --------------------------------------------------------------------------- activations


def _activation_check(x: np.ndarray, dy: np.ndarray | None = None) -> None:
    activation.check({"x": tuple(np.shape(x))})
    if dy is not None:
        _check_dy(dy, np.shape(x))


def relu_forward(x: np.ndarray) -> np.ndarray:
    """``y = torch.relu(x)``."""
    _activation_check(x)
    return _forward(torch.relu, x)


def relu_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``dx = autograd.grad(relu(x), x, dy)``: ``dy`` where ``x > 0``, 0 elsewhere (``x == 0`` included)."""
    _activation_check(x, dy)
    return _vjp_one(torch.relu, dy, x)


def _sigmoid(x: torch.Tensor) -> torch.Tensor:
    """``torch.sigmoid(x)`` for ``x >= 0``; ``exp(x) * torch.sigmoid(-x)`` (the same number) below.

    In float64 ``torch.sigmoid`` returns 0 wherever ``exp(-x)`` overflows
    (``x < -709.78``), where the answer is a subnormal up to ``5.5e-309``; its
    backward then loses ``dy * s``, which a large ``dy`` lifts far above the
    tolerance policy's bound. The product form is accurate down to the smallest
    subnormal. The clamp keeps the unused branch finite, so that no ``inf * 0``
    reaches autograd through ``torch.where``.
    """
    below = torch.exp(x.clamp(max=0.0)) * torch.sigmoid(-x)
    return torch.where(x < 0, below, torch.sigmoid(x))


def sigmoid_forward(x: np.ndarray) -> np.ndarray:
    """``y = sigmoid(x)`` by ``torch.sigmoid`` (see ``_sigmoid``)."""
    _activation_check(x)
    return _forward(_sigmoid, x)


def sigmoid_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``dx = autograd.grad(sigmoid(x), x, dy)`` (``torch.sigmoid``'s backward: ``dy * (1 - s) * s``)."""
    _activation_check(x, dy)
    return _vjp_one(_sigmoid, dy, x)


def tanh_forward(x: np.ndarray) -> np.ndarray:
    """``y = torch.tanh(x)``."""
    _activation_check(x)
    return _forward(torch.tanh, x)


def tanh_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``dx = autograd.grad(tanh(x), x, dy)`` (PyTorch: ``dy * (1 - t**2)``)."""
    _activation_check(x, dy)
    return _vjp_one(torch.tanh, dy, x)


# --------------------------------------------------------------------------- dense layers


def _linear_check(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> None:
    shapes = {
        "x": tuple(np.shape(x)),
        "w": tuple(np.shape(w)),
        "b": None if b is None else tuple(np.shape(b)),
    }
    dense.linear_check(shapes)


def linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """``y = F.linear(x, w, b) = x w^T + b``."""
    _linear_check(x, w, b)
    return _forward(F.linear, x, w, b)


def linear_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(dx, dw, db) = autograd.grad(F.linear(x, w, b), (x, w, b), dy)``; ``db`` is ``None`` without ``b``."""
    _linear_check(x, w, b)
    _check_dy(dy, (np.shape(x)[0], np.shape(w)[0]))
    dx, dw, db = _vjp(F.linear, dy, x, w, b)
    return _present(dx), _present(dw), db


def _flatten(x: torch.Tensor) -> torch.Tensor:
    return torch.flatten(x, 1)


def flatten_forward(x: np.ndarray) -> np.ndarray:
    """``y = torch.flatten(x, 1)``."""
    dense.flatten_check({"x": tuple(np.shape(x))})
    return _forward(_flatten, x)


def flatten_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``dx = autograd.grad(torch.flatten(x, 1), x, dy)``."""
    shapes = {"x": tuple(np.shape(x))}
    dense.flatten_check(shapes)
    _check_dy(dy, dense.flatten_output_shape(shapes))
    return _vjp_one(_flatten, dy, x)


# --------------------------------------------------------------------------- losses


def _loss_and_grad(
    expr: Callable[[torch.Tensor], torch.Tensor], z: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(expr(z), d expr / dz)``: the loss as a 0-d float64 array and its gradient by autograd."""
    _threads()
    zt = _tensor(z, grad=True)
    value = expr(zt)
    (dz,) = torch.autograd.grad(value, [zt])
    return np.asarray(_numpy(value), dtype=np.float64), _numpy(dz)


def softmax_cross_entropy(z: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(loss, dz)``: ``F.cross_entropy(z, labels)`` (batch mean) and its gradient by autograd."""
    loss.softmax_check({"z": tuple(np.shape(z)), "labels": tuple(np.shape(labels))})
    return _loss_and_grad(lambda zt: loss_expression("softmax_cross_entropy", zt, labels), z)


def sigmoid_binary_cross_entropy(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(loss, dz)``: ``F.binary_cross_entropy_with_logits(z, y)`` (mean over all elements), autograd ``dz``."""
    loss.bce_check({"z": tuple(np.shape(z)), "y": tuple(np.shape(y))})
    return _loss_and_grad(lambda zt: loss_expression("sigmoid_binary_cross_entropy", zt, y), z)


# --------------------------------------------------------------------------- expressions (whole networks)

_POINTWISE: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "sigmoid": _sigmoid,
    "tanh": torch.tanh,
    "flatten": _flatten,
}


def layer_expression(
    op_name: str,
    x: torch.Tensor,
    p: Any,
    w: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    convention: str = "cross-correlation",
) -> torch.Tensor:
    """Layer ``op_name``'s forward on tensors, autograd recording: the very expression this oracle's
    functions differentiate (``oracles.torch_network`` chains them into networks)."""
    family = OPERATIONS[op_name].family
    if family in ("conv", "linear"):
        if w is None:
            raise TypeError(f"{op_name} needs its weights w")
        return _conv_expr(x, w, b, p, convention) if family == "conv" else F.linear(x, w, b)
    if family == "max_pool":
        return _max_expr(x, p)
    if family == "avg_pool":
        return _avg_expr(x, p)
    return _POINTWISE[family](x)


def loss_expression(op_name: str, z: torch.Tensor, targets: np.ndarray) -> torch.Tensor:
    """Loss ``op_name`` of logits ``z``: ``F.cross_entropy`` against class labels (batch mean), or
    ``F.binary_cross_entropy_with_logits`` against 0/1 (or soft) targets (mean over every element)."""
    if op_name == "softmax_cross_entropy":
        return F.cross_entropy(z, torch.tensor(class_indices(targets, z.shape[1])))
    return F.binary_cross_entropy_with_logits(z, _tensor(targets))


# --------------------------------------------------------------------------- the contract's names

__all__ = [
    "TIES",
    *_bind_contract(
        globals(),
        per_dimension=_oracle_functions(lambda op: f"``F.{op.name}``"),
    ),
]

"""PyTorch's own functions on the same inputs and dtype: the baseline of every ratio.

Forward: ``F.conv2d`` / ``F.max_pool2d`` / ``F.avg_pool2d`` under
``torch.no_grad()``, on tensors that share memory with the arrays the
implementation receives (``torch.from_numpy``, no copy), so neither side pays
for a conversion.

Backward: the forward graph is built once, outside the clock; each timed
call is ``torch.autograd.grad(y, (x, w[, b]), dy, retain_graph=True)``: the
backward kernels PyTorch runs in training (for conv2d ``dx``, ``dw`` and
``db`` together; for max pooling the routing reads the indices saved by the
forward pass, where the contract's backward, which receives only ``x``, must
find each window's maximum again).

Padding: conv2d takes any padding (asymmetric padding through ``F.pad``, a
copy PyTorch users pay as well). Pooling takes what PyTorch's own ``padding``
argument expresses (symmetric, at most half the kernel); for other padding
there is no baseline and the entry's ratio is left out, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from convcheck.spec.case import Case
from convcheck.spec.params import AvgPool2dParams, Conv2dParams, MaxPool2dParams

Call = Callable[[], object]


class NoBaseline(Exception):
    """PyTorch has no direct equivalent of this configuration; the message says why."""


def _tensor(a: np.ndarray | None, grad: bool = False) -> torch.Tensor | None:
    """A tensor sharing ``a``'s memory (a contiguous copy only if ``a`` is not C-contiguous); a
    bfloat16 array (which ``torch.from_numpy`` does not take) through its 16-bit patterns."""
    if a is None:
        return None
    if str(a.dtype) == "bfloat16":
        bits = torch.from_numpy(np.ascontiguousarray(a).view(np.int16))
        t = bits.view(torch.bfloat16)
    else:
        t = torch.from_numpy(np.ascontiguousarray(a))
    return t.requires_grad_(True) if grad else t


def _native_pool_padding(p: MaxPool2dParams | AvgPool2dParams) -> tuple[int, int]:
    """``(ph, pw)`` for PyTorch's ``padding`` argument, or ``NoBaseline``."""
    t, b, l, r = p.padding
    kh, kw = p.kernel_size
    if t == b and l == r and 2 * t <= kh and 2 * l <= kw:
        return (t, l)
    raise NoBaseline(
        f"padding={p.padding} is not symmetric within half the kernel {p.kernel_size}, which is all "
        "torch's pooling padding expresses; no PyTorch baseline for this entry"
    )


def expression(case: Case) -> Callable[..., torch.Tensor]:
    """The PyTorch forward of ``case`` as a function of its input tensors (``x`` or ``x, w, b``)."""
    p = case.params
    if isinstance(p, Conv2dParams):
        t, b_, l, r = p.padding
        if t == b_ and l == r:
            return lambda x, w, b: F.conv2d(x, w, b, p.stride, (t, l), p.dilation, p.groups)
        return lambda x, w, b: F.conv2d(F.pad(x, (l, r, t, b_)), w, b, p.stride, 0, p.dilation, p.groups)
    if isinstance(p, MaxPool2dParams):
        pad = _native_pool_padding(p)
        return lambda x: F.max_pool2d(x, p.kernel_size, p.stride, pad, p.dilation, bool(p.ceil_mode))
    assert isinstance(p, AvgPool2dParams)
    pad = _native_pool_padding(p)
    return lambda x: F.avg_pool2d(x, p.kernel_size, p.stride, pad, p.ceil_mode, p.count_include_pad)


def forward(case: Case) -> Call:
    """A call of PyTorch's forward on ``case``'s inputs, without autograd."""
    expr = expression(case)
    args = [_tensor(a) for a in case.forward_args()]

    def call() -> object:
        with torch.no_grad():
            return expr(*args)

    return call


def backward(case: Case) -> Call:
    """A call of PyTorch's backward on ``case``'s inputs and ``dy`` (graph built once, retained)."""
    expr = expression(case)
    args = [_tensor(a, grad=True) for a in case.forward_args()]
    leaves = [a for a in args if a is not None]
    dy = _tensor(case.dy)
    with torch.enable_grad():
        y = expr(*args)

    def call() -> object:
        return torch.autograd.grad(y, leaves, dy, retain_graph=True)

    return call


def calls(case: Case) -> dict[str, Call]:
    """``{contract function name: PyTorch call}`` for ``case``'s operation; ``NoBaseline`` if none."""
    op = case.op
    return {op.forward: forward(case), str(op.backward): backward(case)}


__all__ = ["NoBaseline", "backward", "calls", "expression", "forward"]

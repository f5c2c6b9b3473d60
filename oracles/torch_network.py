"""A spec network (``spec.networks.Network``) built with ``torch.nn.functional`` in float64, trained by autograd.

This is the reference side of the whole-network check (``convcheck.networks``):
the same layers, weights and batch as the implementation gets, evaluated by
PyTorch in float64, with every intermediate activation kept (``retain_grad``)
so that the gradient arriving at each layer, ``dL/da_i``, can be compared, not
only the parameter gradients.

Layers map one to one onto ``torch.nn.functional`` (the spec's defaults are
PyTorch's: cross-correlation, zero padding, max-pool ties to the first maximum,
average pool counting padding cells)::

    conv2d       F.pad (zeros, low/high per axis) then F.conv2d(stride, dilation, groups)
    max_pool2d   F.max_pool2d(kernel_size, stride, padding, dilation, ceil_mode)
    avg_pool2d   F.avg_pool2d(kernel_size, stride, padding, ceil_mode, count_include_pad)
    relu, sigmoid, tanh, flatten (torch.flatten(x, 1)), linear (F.linear)
    softmax_cross_entropy         F.cross_entropy (batch mean)
    sigmoid_binary_cross_entropy  F.binary_cross_entropy_with_logits (mean over every element)

A declared ``convention="convolution"`` flips each conv kernel inside the
graph, so ``dw`` comes back with respect to the kernel as declared. Pooling
padding must be symmetric on each axis (what ``F.max_pool2d`` accepts); the
spec's networks use none.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from convcheck.spec.networks import Layer, Network

Weights = Mapping[str, Mapping[str, np.ndarray]]

__all__ = ["TorchPass", "forward_backward", "loss_value", "parameter_count"]


@dataclass(frozen=True)
class TorchPass:
    """One forward and backward pass, as float64 arrays.

    ``activations[0]`` is the batch and ``activations[i]`` the output of layer
    ``i`` (1-based), so the logits are ``activations[-1]``; ``activation_grads[i]``
    is ``dL/d activations[i]`` (``[-1]`` is ``dz``, ``[0]`` the gradient of the
    input); ``param_grads[label][name]`` is ``dL/dw`` or ``dL/db``.
    """

    loss: float
    activations: list[np.ndarray]
    activation_grads: list[np.ndarray]
    param_grads: dict[str, dict[str, np.ndarray]]


@functools.cache
def _threads() -> None:
    """One intra-op thread, as the torch oracle uses (small networks run faster that way)."""
    torch.set_num_threads(1)


def _tensor(a: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64, requires_grad=grad)


def _pool_padding(layer: Layer) -> tuple[int, int]:
    """``(pad_h, pad_w)`` of a pooling layer; PyTorch pads both sides of an axis alike."""
    t, b, l, r = layer.params.padding
    if t != b or l != r:
        raise NotImplementedError(
            f"{layer.label}: the torch network oracle pools with symmetric padding only, got "
            f"padding={layer.params.padding} (top, bottom, left, right)"
        )
    return t, l


def apply_layer(
    layer: Layer, a: torch.Tensor, params: Mapping[str, torch.Tensor], convention: str = "cross-correlation"
) -> torch.Tensor:
    """The output of ``layer`` on ``a`` (float64 tensors, autograd recording)."""
    op = layer.op
    if op == "conv2d":
        p = layer.params
        t, b, l, r = p.padding
        x = F.pad(a, (l, r, t, b)) if any(p.padding) else a
        w = params["w"].flip(-2, -1) if convention == "convolution" else params["w"]
        return F.conv2d(x, w, params.get("b"), stride=p.stride, dilation=p.dilation, groups=p.groups)
    if op == "max_pool2d":
        p = layer.params
        return F.max_pool2d(
            a, p.kernel_size, p.stride, _pool_padding(layer), p.dilation, ceil_mode=bool(p.ceil_mode)
        )
    if op == "avg_pool2d":
        p = layer.params
        return F.avg_pool2d(
            a,
            p.kernel_size,
            p.stride,
            _pool_padding(layer),
            ceil_mode=bool(p.ceil_mode),
            count_include_pad=bool(p.count_include_pad),
        )
    if op in ("relu", "sigmoid", "tanh"):
        return getattr(torch, op)(a)
    if op == "flatten":
        return torch.flatten(a, 1)
    if op == "linear":
        return F.linear(a, params["w"], params.get("b"))
    raise NotImplementedError(
        f"{layer.label}: the torch network oracle builds conv2d, max_pool2d, avg_pool2d, relu, sigmoid, tanh, "
        f"flatten and linear layers; {op!r} is not one of them"
    )


def apply_loss(loss: str, z: torch.Tensor, targets: np.ndarray) -> torch.Tensor:
    """The batch-mean loss of logits ``z`` against ``targets`` (integer labels, or 0/1 targets)."""
    if loss == "softmax_cross_entropy":
        return F.cross_entropy(z, torch.as_tensor(np.asarray(targets, dtype=np.int64)))
    if loss == "sigmoid_binary_cross_entropy":
        return F.binary_cross_entropy_with_logits(z, _tensor(targets))
    raise NotImplementedError(f"the torch network oracle has no loss {loss!r}")


def _parameters(net: Network, weights: Weights, grad: bool) -> dict[str, dict[str, torch.Tensor]]:
    return {
        layer.label: {name: _tensor(weights[layer.label][name], grad) for name in layer.weights}
        for layer in net.layers
        if layer.weights
    }


def forward_backward(
    net: Network,
    weights: Weights,
    x: np.ndarray,
    targets: np.ndarray,
    conventions: Mapping[str, str] | None = None,
) -> TorchPass:
    """Loss, every activation and every gradient of ``net`` on ``(x, targets)`` with ``weights``.

    ``weights[label][name]`` holds each layer's ``w`` and ``b``; ``conventions``
    maps an operation (``conv2d``) to its declared convention.
    """
    _threads()
    conventions = conventions or {}
    params = _parameters(net, weights, grad=True)
    a = _tensor(x, grad=True)
    activations = [a]
    for layer in net.layers:
        a = apply_layer(layer, a, params.get(layer.label, {}), conventions.get(layer.op, "cross-correlation"))
        a.retain_grad()
        activations.append(a)
    loss = apply_loss(net.loss, a, targets)
    loss.backward()
    return TorchPass(
        loss=float(loss.detach()),
        activations=[t.detach().numpy().copy() for t in activations],
        activation_grads=[_grad(t) for t in activations],
        param_grads={label: {n: _grad(t) for n, t in p.items()} for label, p in params.items()},
    )


def _grad(t: torch.Tensor) -> np.ndarray:
    """``t.grad`` as an array; zeros where autograd left none (an output the loss does not reach)."""
    return np.zeros(tuple(t.shape)) if t.grad is None else t.grad.detach().numpy().copy()


def loss_value(
    net: Network,
    weights: Weights,
    x: np.ndarray,
    targets: np.ndarray,
    conventions: Mapping[str, str] | None = None,
) -> tuple[float, list[np.ndarray]]:
    """The loss and every activation (``activations[0]`` the batch), without gradients."""
    _threads()
    conventions = conventions or {}
    params = _parameters(net, weights, grad=False)
    with torch.no_grad():
        a = _tensor(x)
        activations = [a]
        for layer in net.layers:
            a = apply_layer(
                layer, a, params.get(layer.label, {}), conventions.get(layer.op, "cross-correlation")
            )
            activations.append(a)
        loss = apply_loss(net.loss, a, targets)
    return float(loss), [t.numpy().copy() for t in activations]


def parameter_count(net: Network, weights: Weights) -> int:
    """Trainable elements as PyTorch counts them (``numel`` of every parameter tensor)."""
    return sum(t.numel() for p in _parameters(net, weights, grad=True).values() for t in p.values())

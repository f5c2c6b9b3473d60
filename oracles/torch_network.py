"""A spec network (``spec.networks.Network``) built with ``torch.nn.functional`` in float64, trained by autograd.

This is the reference side of the whole-network check (``convcheck.networks``):
the same layers, weights and batch as the implementation gets, evaluated by
PyTorch in float64, with every intermediate activation kept (``retain_grad``)
so that the gradient arriving at each layer, ``dL/da_i``, can be compared, not
only the parameter gradients.

Each layer and the loss is the torch oracle's own expression for its
operation (``torch_oracle.layer_expression`` and ``loss_expression``: the
``torch.nn.functional`` calls, explicit padding where torch cannot express the
spec's, the underflow-safe sigmoid), so a network is checked against exactly
what each of its operations is checked against. A declared
``convention="convolution"`` flips each conv kernel inside the graph, so ``dw``
comes back with respect to the kernel as declared.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from convcheck.spec.networks import Layer, Network

from . import torch_oracle

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


def apply_layer(
    layer: Layer, a: torch.Tensor, params: Mapping[str, torch.Tensor], convention: str = "cross-correlation"
) -> torch.Tensor:
    """The output of ``layer`` on ``a`` (float64 tensors, autograd recording): the torch oracle's own
    expression for the layer's operation."""
    return torch_oracle.layer_expression(
        layer.op, a, layer.params, params.get("w"), params.get("b"), convention
    )


def apply_loss(loss: str, z: torch.Tensor, targets: np.ndarray) -> torch.Tensor:
    """The batch-mean loss of logits ``z`` against ``targets`` (the torch oracle's expression)."""
    return torch_oracle.loss_expression(loss, z, targets)


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
    loss.backward()  # type: ignore[no-untyped-call]  # torch's Tensor.backward has no annotations
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

"""What a network check runs on: deterministic weights and batch, and whether an implementation can run it.

Weights follow PyTorch's default initialisation of ``nn.Conv2d`` and
``nn.Linear``: every element of ``w`` and ``b`` uniform in
``(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with ``fan_in = prod(w.shape[1:])``
(``C_in * KH * KW`` for a convolution, ``in`` for a dense layer), so each
pre-activation has a variance of about a third of its input's and sigmoid and
tanh stay in their responsive range. The batch is standard normal; labels
are uniform over the classes, binary targets uniform over ``{0, 1}``. Every
draw comes from ``numpy.random.default_rng([seed, stream])``: the same seed
gives the same arrays on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod, sqrt

import numpy as np

from ..impls.registry import Implementation
from ..spec import OPERATIONS, Capabilities
from ..spec.networks import Network, required_functions

Weights = dict[str, dict[str, np.ndarray]]
"""``weights[layer label][name]``: each layer's ``w`` and ``b`` (float64 unless cast)."""

_WEIGHT_STREAM, _BATCH_STREAM = 1, 2


@dataclass(frozen=True)
class Batch:
    """Inputs ``x: (N, *input_shape)`` and the loss's targets: ``(N,)`` int64 labels or ``z``-shaped 0/1."""

    x: np.ndarray
    targets: np.ndarray

    @property
    def size(self) -> int:
        return int(self.x.shape[0])


def init_weights(net: Network, seed: int) -> Weights:
    """PyTorch-like uniform ``(-1/sqrt(fan_in), 1/sqrt(fan_in))`` weights and biases, float64."""
    rng = np.random.default_rng([seed, _WEIGHT_STREAM])
    out: Weights = {}
    for layer in net.layers:
        if not layer.weights:
            continue
        limit = 1.0 / sqrt(prod(layer.weights["w"][1:]))
        out[layer.label] = {name: rng.uniform(-limit, limit, shape) for name, shape in layer.weights.items()}
    return out


def make_batch(net: Network, size: int, seed: int) -> Batch:
    """A standard normal batch of ``size`` samples with in-range targets for the network's loss."""
    rng = np.random.default_rng([seed, _BATCH_STREAM])
    x = rng.standard_normal((size, *net.input_shape))
    z_shape = net.activation_shapes(size)[-1]
    if net.loss == "softmax_cross_entropy":
        targets = rng.integers(0, net.classes, size=size).astype(np.int64)
    else:
        targets = rng.integers(0, 2, size=z_shape).astype(np.float64)
    return Batch(x, targets)


def kink_inputs(net: Network, weights: Weights, batch: Batch) -> tuple[Weights, Batch]:
    """The weights and batch with the first sample all zeros and the first layer's bias zero: every
    pre-activation of that sample after the first layer is then exactly 0 (a ReLU at its kink,
    max-pool windows tied at 0), the rest of the batch unchanged. New arrays."""
    first = next((layer.label for layer in net.layers if layer.weights), None)
    kinked = {label: {n: a.copy() for n, a in p.items()} for label, p in weights.items()}
    if first is not None and "b" in kinked.get(first, {}):
        kinked[first]["b"][:] = 0.0
    x = batch.x.copy()
    x[0] = 0.0
    return kinked, Batch(x, batch.targets)


def kink_conventions_declared(caps: Capabilities, net: Network) -> bool:
    """Whether ``caps`` declares the contract's own value of every semantic feature of ``net``'s layers
    (ReLU'(0) = 0, a tied max-pool window's gradient to its first maximum, ...): PyTorch, the network
    check's reference, follows the contract at the kinks, so another declared convention is not
    checked there."""
    for layer in net.layers:
        op = OPERATIONS[layer.op]
        for feature in op.features:
            own = feature.kind != "semantics" or feature.name == "convention"  # conventions go to PyTorch
            if not own and caps.value(op, feature.name) != feature.choices[0]:
                return False
    return True


def cast_weights(weights: Weights, dtype: str) -> Weights:
    """``weights`` rounded to ``dtype`` (new arrays)."""
    return {
        label: {n: np.asarray(a, dtype=dtype).copy() for n, a in p.items()} for label, p in weights.items()
    }


def cast_batch(batch: Batch, dtype: str) -> Batch:
    """The inputs rounded to ``dtype``; integer labels stay integers, 0/1 targets take the dtype."""
    targets = batch.targets if batch.targets.dtype.kind in "iu" else batch.targets.astype(dtype)
    return Batch(batch.x.astype(dtype), targets)


def missing_functions(impl: Implementation, net: Network) -> list[str]:
    """The contract functions ``net`` needs that ``impl`` lacks, in first-use order."""
    return [f for f in required_functions(net) if not impl.provides(f)]


def unsupported_features(caps: Capabilities, net: Network) -> list[str]:
    """Why ``caps`` rules a layer out, one line per (layer, feature): empty when every layer may run."""
    out = []
    for layer in net.layers:
        op = OPERATIONS[layer.op]
        for feature in op.features:
            if feature.kind != "support" or feature.required is None:
                continue
            level = feature.required(layer.params)
            if not caps.supports(op, feature.name, level):
                out.append(
                    f"{layer.label} needs {op.name}.{feature.name}={level!r}, declared "
                    f"{caps.value(op, feature.name)!r}"
                )
    return out

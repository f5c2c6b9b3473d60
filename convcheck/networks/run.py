"""An implementation's layer functions assembled into a network: forward, loss, backward, one SGD step.

The pass is the textbook one. Forward, ``a_0 = x`` and ``a_i = f_i(a_{i-1}, w_i, b_i)``
(``layer.params.kwargs()`` as keyword arguments), then ``(loss, dz) = loss_fn(a_L, targets)``.
Backward, ``g_L = dz`` and for ``i = L .. 1``::

    (g_{i-1}, dw_i, db_i) = f_i_backward(g_i, a_{i-1}, w_i, b_i)

so ``g_i = dL/da_i`` is the gradient arriving at layer ``i``'s output, computed by the
layers after it (``g_L`` by the loss). One SGD step then sets ``w <- w - lr * dw`` for every
parameter, in the run's dtype, as a training loop would.

Every call receives fresh copies of its arrays (an implementation that writes into its
inputs cannot corrupt the activations kept for the comparison, and behaves the same in a
sandbox worker and in-process), and every result is checked to be an array of the right
shape and dtype before it is used. A call that raises or returns something unusable stops
the pass with a ``CallProblem`` naming the layer; what was computed before it stays in the
``Trace``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..impls.registry import Implementation
from ..spec import OPERATIONS
from ..spec.networks import Layer, Network
from .build import Batch, Weights

LOSS_LABEL = "loss"
"""The label of the loss in traces, tables and localisations (a network's layers have their own)."""

Where = tuple[str, str, str]
"""``(label, op, function)``: a layer (or the loss) and the contract function called for it."""


class CallProblem(Exception):
    """An implementation's function could not be used for a layer: it raised, or returned a wrong value."""

    def __init__(self, where: Where, message: str) -> None:
        super().__init__(message)
        self.label, self.op, self.function = where


@dataclass
class Trace:
    """What one pass computed, filled as it goes.

    ``activations[0]`` is the batch, ``activations[i]`` layer ``i``'s output; ``dz``
    is the loss's gradient; ``grads[label]`` holds a layer's ``dx`` (the gradient it
    passes down) and its ``dw``, ``db``.
    """

    activations: list[np.ndarray] = field(default_factory=list)
    loss: float | None = None
    dz: np.ndarray | None = None
    grads: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def _call(impl: Implementation, where: Where, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """``where``'s function on fresh copies of ``args``; what it raises becomes a ``CallProblem``."""
    fresh = [None if a is None else np.array(a, copy=True) for a in args]
    try:
        return impl.functions[where[2]](*fresh, **kwargs)
    except Exception as e:  # the implementation's own error, reported against its layer
        first = (str(e).strip().splitlines() or [""])[0]
        raise CallProblem(where, f"{where[2]} raised {type(e).__name__}: {first}") from e


def _checked(value: Any, what: str, shape: tuple[int, ...], dtype: str, where: Where) -> np.ndarray:
    """``value`` if it is an array of ``shape`` and ``dtype``, else a ``CallProblem`` saying what came."""
    function = where[2]
    if not isinstance(value, np.ndarray):
        raise CallProblem(
            where,
            f"{function} returned a {type(value).__name__} for {what}, but should return a numpy.ndarray "
            f"of shape {shape} and dtype {dtype}",
        )
    if value.shape != shape:
        raise CallProblem(
            where, f"{function} returned {what} of shape {value.shape}, but should return shape {shape}"
        )
    if value.dtype != np.dtype(dtype):
        raise CallProblem(
            where,
            f"{function} returned {what} of dtype {value.dtype} for {dtype} inputs; the contract keeps the dtype",
        )
    return value


def _weight_args(layer: Layer, weights: Weights) -> list[np.ndarray | None]:
    """The operation's inputs after ``x`` (``w``, ``b``), ``None`` for an absent bias."""
    names = OPERATIONS[layer.op].inputs[1:]
    return [weights.get(layer.label, {}).get(n) for n in names]


def forward(
    impl: Implementation, net: Network, weights: Weights, batch: Batch, dtype: str, trace: Trace
) -> None:
    """Fill ``trace.activations``, ``trace.loss`` and ``trace.dz``."""
    shapes = net.activation_shapes(batch.size)
    a = batch.x
    trace.activations.append(a)
    for layer, shape in zip(net.layers, shapes[1:], strict=True):
        op = OPERATIONS[layer.op]
        where = (layer.label, op.name, op.forward)
        y = _call(impl, where, [a, *_weight_args(layer, weights)], layer.params.kwargs())
        a = _checked(y, "y", shape, dtype, where)
        trace.activations.append(a)
    loss_op = OPERATIONS[net.loss]
    where = (LOSS_LABEL, loss_op.name, loss_op.forward)
    out = _call(impl, where, [a, batch.targets], {})
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise CallProblem(
            where, f"{where[2]} returned a {type(out).__name__}, but should return a tuple (loss, dz)"
        )
    loss = np.asarray(out[0])
    if loss.size != 1 or loss.dtype.kind != "f":
        raise CallProblem(
            where,
            f"{where[2]} returned loss={out[0]!r}, but should return one float (a 0-d array or a scalar)",
        )
    trace.loss = float(loss.reshape(()))
    trace.dz = _checked(out[1], "dz", a.shape, dtype, where)


def backward(impl: Implementation, net: Network, weights: Weights, dtype: str, trace: Trace) -> None:
    """Fill ``trace.grads`` walking from the loss to the input (``forward`` must have run)."""
    g = trace.dz
    for i in reversed(range(len(net.layers))):
        layer = net.layers[i]
        op = OPERATIONS[layer.op]
        where = (layer.label, op.name, op.backward or "")
        x = trace.activations[i]
        w_args = _weight_args(layer, weights)
        out = _call(impl, where, [g, x, *w_args], layer.params.kwargs())
        values = (out,) if len(op.grads) == 1 else out
        if not isinstance(values, tuple | list) or len(values) != len(op.grads):
            raise CallProblem(
                where,
                f"{where[2]} returned a {type(out).__name__}, but should return a tuple ({', '.join(op.grads)})",
            )
        sources: dict[str, Any] = dict(zip(op.inputs, [x, *w_args], strict=True))
        grads = {
            name: _checked(value, name, sources[name[1:]].shape, dtype, where)
            for name, value in zip(op.grads, values, strict=True)
            if sources[name[1:]] is not None  # no bias, no db
        }
        trace.grads[layer.label] = grads
        g = grads["dx"]


def sgd_step(weights: Weights, grads: dict[str, dict[str, np.ndarray]], lr: float, dtype: str) -> Weights:
    """``w - lr * dw`` for every parameter, computed in ``dtype``."""
    step = np.dtype(dtype).type(lr)
    return {
        label: {name: (w - step * grads[label]["d" + name]).astype(dtype) for name, w in p.items()}
        for label, p in weights.items()
    }

"""The rows of a network check: each quantity the implementation computed, measured against PyTorch.

Rows come in walk order, the order localisation reads them in:

1. forward, from the input: each layer's output ``y``, then the loss value;
2. backward, from the loss: ``dz``, then for each layer from the last to the
   first its ``dw``, ``db`` and ``dx`` (the gradient it passes down, compared
   with PyTorch's ``dL/d`` of that layer's input);
3. the SGD step: each layer's updated ``w`` and ``b``, then the forward pass
   on the updated weights (each ``y``, then the loss).

A pass that stopped early (a call that raised) gives the rows it got to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..spec import OPERATIONS
from ..spec.networks import Network
from .build import Weights
from .result import Row
from .run import LOSS_LABEL, CallProblem, Trace, Where
from .tolerance import relative_error, scale_note

if TYPE_CHECKING:  # torch is imported when a check runs, not when the suite is collected
    from ..oracles.torch_network import TorchPass

Value = np.ndarray | float


class Measure:
    """Makes rows against one bound, naming the batch size in scale notes."""

    def __init__(self, bound: float, batch: int) -> None:
        self.bound, self.batch = bound, batch

    def row(self, where: Where, stage: str, quantity: str, got: Value, expected: Value) -> Row:
        """``got`` against ``expected``, for ``where = (label, op, function)``."""
        e = relative_error(got, expected)
        ok = e <= self.bound
        g = np.asarray(got, dtype=np.float64)
        x = np.asarray(expected, dtype=np.float64)
        max_abs = float(np.max(np.abs(g - x))) if g.shape == x.shape and g.size else float("inf")
        note = "" if ok else scale_note(got, expected, self.batch)
        return Row(*where, stage, quantity, e, e / self.bound, ok, max_abs, note)


def _layer_where(net: Network, i: int, backward: bool = False) -> Where:
    layer = net.layers[i]
    op = OPERATIONS[layer.op]
    return layer.label, op.name, (op.backward or "") if backward else op.forward


def _loss_where(net: Network) -> Where:
    return LOSS_LABEL, net.loss, OPERATIONS[net.loss].forward


def forward_rows(
    m: Measure, net: Network, got: Trace, activations: list[np.ndarray], loss: float, stage: str = "forward"
) -> list[Row]:
    """Each layer's output the implementation computed, then its loss value."""
    rows = [
        m.row(_layer_where(net, i), stage, "y", got.activations[i + 1], activations[i + 1])
        for i in range(min(len(net.layers), len(got.activations) - 1))
    ]
    if got.loss is not None:
        rows.append(m.row(_loss_where(net), stage, "loss", got.loss, loss))
    return rows


def backward_rows(m: Measure, net: Network, got: Trace, ref: TorchPass) -> list[Row]:
    """``dz``, then from the last layer to the first: ``dw``, ``db``, ``dx``."""
    rows: list[Row] = []
    if got.dz is None:
        return rows
    rows.append(m.row(_loss_where(net), "backward", "dz", got.dz, ref.activation_grads[-1]))
    for i in reversed(range(len(net.layers))):
        grads = got.grads.get(net.layers[i].label)
        if grads is None:
            break
        where = _layer_where(net, i, backward=True)
        for name in ("dw", "db"):
            if name in grads:
                rows.append(m.row(where, "backward", name, grads[name], ref.param_grads[where[0]][name[1:]]))
        rows.append(m.row(where, "backward", "dx", grads["dx"], ref.activation_grads[i]))
    return rows


def step_rows(
    m: Measure,
    net: Network,
    got_weights: Weights,
    ref_weights: Weights,
    after: Trace,
    ref_after: tuple[float, list[np.ndarray]],
) -> list[Row]:
    """The updated parameters, then the forward pass on them (outputs, then the loss)."""
    rows = []
    for i, layer in enumerate(net.layers):
        for name, w in got_weights.get(layer.label, {}).items():
            rows.append(m.row(_layer_where(net, i), "step", name, w, ref_weights[layer.label][name]))
    loss, activations = ref_after
    return rows + forward_rows(m, net, after, activations, loss, stage="step")


def problem_row(problem: CallProblem, stage: str) -> Row:
    """A call that raised or returned something unusable, as a row that disagrees."""
    quantity = {"forward": "y", "backward": "dx", "step": "y"}[stage]
    if problem.label == LOSS_LABEL:
        quantity = "loss" if stage != "backward" else "dz"
    inf = float("inf")
    where = (problem.label, problem.op, problem.function)
    return Row(
        *where, stage, quantity, rel_error=inf, ratio=inf, ok=False, max_abs=inf, note=f"error: {problem}"
    )

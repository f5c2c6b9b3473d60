"""A concrete example: one operation, its hyper-parameters, its input arrays and ``dy``.

Cases are built by the hypothesis strategies (``convcheck.tests.strategies``)
and by reproduction scripts; everything downstream (oracles, properties,
reports) reads them. The arrays of a case are never handed to an
implementation directly: ``fresh_inputs`` makes explicit copies each time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import dtypes
from .ops import OPERATIONS, Operation

SMALL = 64
"""Arrays with at most this many elements are printed in full in messages."""


@dataclass
class Case:
    """One generated example.

    ``inputs`` maps the operation's input names (``x``, ``w``, ``b``; a loss's
    ``z`` and ``labels`` or ``y``) to arrays (``b`` may be ``None``); ``dy`` has
    the output's shape, and is ``None`` for a loss (its gradient seed is 1). ``family`` names the
    value family the arrays were drawn from, ``seed`` the generator seed and
    ``layout`` the memory layout the implementation is handed.
    """

    op_name: str
    params: Any  # the operation's params_type record (ConvParams, MaxPoolParams, ...): op_name decides which
    inputs: dict[str, np.ndarray | None]
    dy: np.ndarray | None
    dtype: str
    family: str = "normal"
    seed: int = 0
    layout: str = "contiguous"
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def op(self) -> Operation:
        return OPERATIONS[self.op_name]

    @property
    def x(self) -> np.ndarray:
        """The first input: a layer's ``x``, a loss's logits ``z``."""
        x = self.inputs[self.op.inputs[0]]
        assert x is not None
        return x

    def array(self, name: str) -> np.ndarray:
        """Input ``name``, which this case has (not an absent bias)."""
        a = self.inputs[name]
        assert a is not None, f"{self.op_name} case without {name}"
        return a

    def shapes(self) -> dict[str, tuple[int, ...] | None]:
        return {k: (None if v is None else tuple(v.shape)) for k, v in self.inputs.items()}

    def output_shape(self) -> tuple[int, ...]:
        return self.op.output_shape(self.shapes(), self.params)

    def forward_args(self) -> list[np.ndarray | None]:
        """Positional arrays of the forward function, in contract order."""
        return [self.inputs[name] for name in self.op.inputs]

    def backward_args(self) -> list[np.ndarray | None]:
        """Positional arrays of the backward function: ``dy`` then the inputs."""
        if self.dy is None:
            raise TypeError(f"{self.op_name} is a loss: one function returns the loss and its gradient")
        return [self.dy, *self.forward_args()]

    def kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = self.params.kwargs()
        return kwargs

    def magnitude(self, output: str) -> np.ndarray:
        """The spec's ``S`` for ``output`` of an operation that defines one (``Operation.magnitude``),
        from the float64 inputs (class labels as they are), ``dy`` and the case's dtype."""
        op = self.op
        if op.magnitude is None:
            raise TypeError(f"{self.op_name} has no magnitude rule: its S is the oracle on absolute inputs")
        inputs = {
            k: (v if v is None or k == "labels" else np.asarray(v, np.float64))
            for k, v in self.inputs.items()
        }
        dy = None if self.dy is None else np.asarray(self.dy, np.float64)
        return np.asarray(op.magnitude(output, inputs, dy, self.dtype), dtype=np.float64)

    def describe(self) -> str:
        """One line: the operation, shapes and every hyper-parameter."""
        shapes = ", ".join(f"{k}={'None' if v is None else tuple(v.shape)}" for k, v in self.inputs.items())
        if self.dy is not None:
            shapes += f", dy={tuple(self.dy.shape)}"
        hp = "; " + ", ".join(f"{k}={v!r}" for k, v in self.kwargs().items()) if self.kwargs() else ""
        return (
            f"{self.op_name}({shapes}{hp}) "
            f"dtype={self.dtype} values={self.family} layout={self.layout} seed={self.seed}"
        )

    def __repr__(self) -> str:
        return f"Case<{self.describe()}>"


def with_inputs(case: Case, **arrays: np.ndarray | None) -> Case:
    """A copy of ``case`` with some arrays replaced (``dy`` included)."""
    inputs = dict(case.inputs)
    dy = arrays.pop("dy", case.dy)
    inputs.update(arrays)
    return Case(
        case.op_name,
        case.params,
        inputs,
        dy,
        case.dtype,
        case.family,
        case.seed,
        case.layout,
        dict(case.notes),
    )


def finite_inputs(case: Case) -> bool:
    """Whether every floating-point array of ``case`` (``dy`` included) is finite: otherwise the
    non-finite contract (``spec.nonfinite``), not the finite-output rule, says where NaN and inf belong."""
    arrays = [*case.inputs.values(), case.dy]
    return all(a is None or not dtypes.is_float(a.dtype) or bool(np.isfinite(a).all()) for a in arrays)

"""Element-wise activations: relu, sigmoid, tanh. Definitions, derivatives and error scales.

Forward, for an array ``x`` of any shape (``y`` has the same shape)::

    relu(x)    = max(x, 0)
    sigmoid(x) = 1 / (1 + exp(-x))
    tanh(x)    = (exp(x) - exp(-x)) / (exp(x) + exp(-x))

Backward, ``dx = dy * f'(x)``::

    relu'(x)    = 1 if x > 0 else 0      (at exactly x = 0 the derivative is 0: PyTorch's choice)
    sigmoid'(x) = s (1 - s),  s = sigmoid(x)
    tanh'(x)    = 1 - t**2,   t = tanh(x)

The ReLU derivative at the kink is a spec decision. ``max(x, 0)`` has no
derivative at 0; the contract follows PyTorch (``threshold_backward`` passes the
gradient only where ``x > 0``), so ``relu_backward(dy, 0) == 0``. The suite
generates exact zeros on purpose (the ``exact`` and ``zeros`` value families).

Error scales. These are not sums of products, so the tolerance policy's ``S``
is not the oracle on absolute inputs but the magnitude of the terms each
formula rounds (``magnitude``): ``|y|`` for the forward values (each a few
correctly rounded operations, so a relative error of a few ``u``), and for
the derivatives the sum of the absolute values of the terms that cancel, e.g.
``|dy| * s * (|1| * ... )``: ``1 - s`` computed from a rounded ``s`` has an
absolute error of ``u * s``, which for ``s`` near 1 is much larger than
``u * (1 - s)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import dtypes
from .errors import InvalidConfiguration

Shape = tuple[int, ...]

ACTIVATIONS = ("relu", "sigmoid", "tanh")


def valid_derivative_at_zero(value: Any) -> bool:
    """Whether ``value`` may be declared as relu's ``derivative_at_zero`` (``spec.contracts``): a
    number in ``[0, 1]`` or a ``[lo, hi]`` pair with ``0 <= lo <= hi <= 1``."""

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if number(value):
        return bool(0 <= value <= 1)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(number(v) for v in value):
        return bool(0 <= value[0] <= value[1] <= 1)
    return False


ROUNDINGS = {"relu": {"y": 0, "dx": 0}, "sigmoid": {"y": 4, "dx": 8}, "tanh": {"y": 4, "dx": 8}}
"""``K`` per output: the roundings a straightforward evaluation performs (an
``exp`` counted as two: its own error of about one ulp, and the rounding of its
result). ReLU selects and multiplies by 0 or 1: exact."""

THIRD_DERIVATIVE = {"relu": 0.0, "sigmoid": 1.0 / 8.0, "tanh": 2.0}
"""``max |f'''|`` over the reals: the truncation error of a central finite
difference with step ``h`` is at most ``h**2 / 6`` times it (per unit of ``|dy|``)."""


def check(shapes: dict[str, Shape | None]) -> None:
    """Any ``x`` with at least one axis and no empty axis is valid."""
    x = shapes["x"]
    if x is None or len(x) < 1 or min(x) < 1:
        raise InvalidConfiguration(f"x.shape={x} must have at least one axis, all of positive size")


def output_shape(shapes: dict[str, Shape | None]) -> Shape:
    """``y`` has ``x``'s shape."""
    return tuple(shapes["x"] or ())


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` evaluated without overflow (``exp`` of a non-positive argument only)."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    s: np.ndarray = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return s


def _abs_dy(dy: np.ndarray | None) -> np.ndarray:
    if dy is None:
        raise TypeError("the magnitude of dx needs dy")
    a: np.ndarray = np.abs(dy)
    return a


def magnitude(name: str, output: str, x: np.ndarray, dy: np.ndarray | None, dtype: str) -> np.ndarray:
    """``S`` of the tolerance policy for activation ``name``'s ``output`` (``y`` or ``dx``) in ``dtype``.

    ``y``: ``|f(x)|``. ``dx``: ``|dy| * |f'|`` with every subtraction's terms
    counted in absolute value: ``|dy| s (1 + s)`` for sigmoid, ``|dy| (1 + t**2)``
    for tanh, ``|dy| [x > 0]`` for relu. A sigmoid below the dtype's smallest
    normal number is computed with an absolute error of up to that number
    (gradual underflow), which ``dy`` then multiplies: the sigmoid's ``dx``
    carries ``|dy| * tiny / u`` as well.
    """
    x = np.asarray(x, dtype=np.float64)
    if name == "relu":
        f = np.maximum(x, 0.0)
        return np.abs(f) if output == "y" else _abs_dy(dy) * (x > 0)
    if name == "sigmoid":
        s = sigmoid(x)
        underflow = dtypes.tiny(dtype) / dtypes.unit_roundoff(dtype)
        return s if output == "y" else _abs_dy(dy) * (s * (1.0 + s) + underflow)
    t = np.tanh(x)
    out: np.ndarray = np.abs(t) if output == "y" else _abs_dy(dy) * (1.0 + t * t)
    return out

"""The dense end of a CNN: ``flatten`` and ``linear`` (fully connected).

flatten: ``x`` of shape ``(N, C, *spatial)`` becomes ``y`` of shape
``(N, C * prod(spatial))`` in C (row-major) order, so that ``y[n]`` is
``x[n].ravel()``: channel slowest, the last spatial axis fastest, which is
PyTorch's ``torch.flatten(x, 1)`` and what a dense layer's weights are trained
against. ``flatten_backward(dy, x)`` is the inverse reshape of ``dy`` to
``x.shape``: no arithmetic, so both directions must be exact.

linear: ``x`` of shape ``(N, in)``, ``w`` of shape ``(out, in)`` (PyTorch's
``nn.Linear`` layout), optional ``b`` of shape ``(out,)``::

    y  = x w^T + b            y[n, o] = b[o] + sum_i x[n, i] w[o, i]
    dx = dy w                 dx[n, i] = sum_o dy[n, o] w[o, i]
    dw = dy^T x               dw[o, i] = sum_n dy[n, o] x[n, i]
    db = sum_n dy[n, :]

``dw`` and ``db`` are *sums* over the batch: averaging over the batch belongs to
the loss (its gradient carries the ``1/N``), once and only once.
"""

from __future__ import annotations

from collections.abc import Mapping
from math import prod

from .errors import InvalidConfiguration
from .shapes import required

Shape = tuple[int, ...]


def flatten_check(shapes: Mapping[str, Shape | None]) -> None:
    """``x`` needs a batch axis and at least one more."""
    x = shapes["x"]
    if x is None or len(x) < 2 or min(x) < 1:
        raise InvalidConfiguration(f"x.shape={x} must be (N, C, ...) with at least 2 axes of positive size")


def flatten_output_shape(shapes: Mapping[str, Shape | None]) -> Shape:
    """``(N, prod(x.shape[1:]))``."""
    x = shapes["x"] or ()
    return (x[0], prod(x[1:]))


def linear_check(shapes: Mapping[str, Shape | None]) -> None:
    """``x: (N, in)``, ``w: (out, in)``, ``b: (out,)`` or absent."""
    x, w, b = shapes["x"], shapes["w"], shapes.get("b")
    if x is None or w is None or len(x) != 2 or len(w) != 2 or min(x) < 1 or min(w) < 1:
        raise InvalidConfiguration(f"x.shape={x} and w.shape={w} must be 2-D, (N, in) and (out, in)")
    if x[1] != w[1]:
        raise InvalidConfiguration(
            f"x.shape[1]={x[1]} must equal w.shape[1]={w[1]}: w is (out, in), PyTorch's nn.Linear layout"
        )
    if b is not None and tuple(b) != (w[0],):
        raise InvalidConfiguration(f"b.shape={tuple(b)}, but should be (out,) = ({w[0]},)")


def linear_output_shape(shapes: Mapping[str, Shape | None]) -> Shape:
    """``(N, out)``."""
    return (required(shapes, "x")[0], required(shapes, "w")[0])


def linear_reduction_lengths(shapes: Mapping[str, Shape | None]) -> dict[str, int]:
    """``y``: ``in + 1`` (bias); ``dx``: ``out``; ``dw`` and ``db``: ``N``."""
    (n, n_in), (n_out, _) = required(shapes, "x"), required(shapes, "w")
    return {"y": n_in + 1, "dx": n_out, "dw": n, "db": n}

"""The layers around the convolutions, in NumPy from the course's formulas: activations, linear, flatten, losses.

Each function is the formula of its ``convcheck.spec`` module (``activation``,
``dense``, ``loss``) evaluated in float64, rearranged only where the formula as
written would overflow or cancel:

* ``sigmoid(x)`` as ``1 / (1 + exp(-x))`` for ``x >= 0`` and ``exp(x) / (1 + exp(x))``
  below, so that ``exp`` only ever sees a non-positive argument; ``sigmoid'``
  as ``s * sigmoid(-x)`` (``1 - s`` exactly, without the cancellation).
* ``tanh'(x) = 1 - tanh(x)**2`` as ``4 e / (1 + e)**2`` with ``e = exp(-2|x|)``,
  the same number without cancellation or overflow.
* the softmax cross-entropy subtracts each row's maximum before exponentiating
  (``logsumexp(z) - z_label = log sum exp(z - m) - (z_label - m)``), and the
  binary cross-entropy is ``max(z, 0) - z y + log1p(exp(-|z|))``.

Logits as large as ``spec.loss.LARGE_LOGIT`` thus give finite, accurate
losses and gradients. ``relu_backward`` passes ``dy`` where ``x > 0`` and gives
0 elsewhere, at ``x == 0`` included (the contract's, and PyTorch's, choice).

Every function runs the spec's validity check first (``InvalidConfiguration``),
computes in float64, returns float64 (a loss as a 0-d array) and leaves its
inputs alone.
"""

from __future__ import annotations

import numpy as np

from convcheck.spec import activation, dense, loss
from convcheck.spec.errors import InvalidConfiguration

__all__ = [
    "class_indices",
    "flatten_backward",
    "flatten_forward",
    "linear_backward",
    "linear_forward",
    "relu_backward",
    "relu_forward",
    "sigmoid_backward",
    "sigmoid_binary_cross_entropy",
    "sigmoid_forward",
    "softmax_cross_entropy",
    "tanh_backward",
    "tanh_forward",
]


# --------------------------------------------------------------------------- helpers


def _f64(a: np.ndarray) -> np.ndarray:
    """A C-contiguous float64 view or copy of ``a`` (never written to).

    Contiguous so that the reductions run in the same order, and give the same
    bits, whatever the caller's memory layout.
    """
    return np.asarray(a, dtype=np.float64, order="C")


def _check_dy(dy: np.ndarray, expected: tuple[int, ...]) -> np.ndarray:
    """``dy`` as float64, after checking it has the output's shape."""
    dy = _f64(dy)
    if tuple(dy.shape) != tuple(expected):
        raise InvalidConfiguration(f"dy.shape={tuple(dy.shape)}, but the output shape is {tuple(expected)}")
    return dy


def _activation_input(x: np.ndarray) -> np.ndarray:
    x = _f64(x)
    activation.check({"x": tuple(x.shape)})
    return x


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` with ``exp`` of ``-|x|`` only: no overflow, a few ulps everywhere."""
    e = np.exp(-np.abs(x))
    s: np.ndarray = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return s


# --------------------------------------------------------------------------- activations


def relu_forward(x: np.ndarray) -> np.ndarray:
    """``y = max(x, 0)`` (NaN propagates)."""
    y: np.ndarray = np.maximum(_activation_input(x), 0.0)
    return y


def relu_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``dx = dy`` where ``x > 0``, else 0: ``relu'(0) = 0``.

    Selected rather than multiplied, so an infinite ``dy`` on the flat side
    gives 0 and not NaN; a NaN ``x`` passes ``dy`` as PyTorch's ``threshold_backward`` does.
    """
    x = _activation_input(x)
    dy = _check_dy(dy, x.shape)
    return np.where(x <= 0, 0.0, dy)


def sigmoid_forward(x: np.ndarray) -> np.ndarray:
    """``y = 1 / (1 + exp(-x))``, evaluated without overflow."""
    return _sigmoid(_activation_input(x))


def sigmoid_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``dx = dy * s * (1 - s)`` with ``s = sigmoid(x)`` and ``1 - s = sigmoid(-x)``."""
    x = _activation_input(x)
    dy = _check_dy(dy, x.shape)
    dx: np.ndarray = dy * (_sigmoid(x) * _sigmoid(-x))
    return dx


def tanh_forward(x: np.ndarray) -> np.ndarray:
    """``y = tanh(x)``."""
    y: np.ndarray = np.tanh(_activation_input(x))
    return y


def tanh_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``dx = dy * (1 - tanh(x)**2)``, with ``1 - tanh(x)**2 = 4 e / (1 + e)**2``, ``e = exp(-2|x|)``."""
    x = _activation_input(x)
    dy = _check_dy(dy, x.shape)
    e = np.exp(-2.0 * np.abs(x))
    dx: np.ndarray = dy * (4.0 * e / (1.0 + e) ** 2)
    return dx


# --------------------------------------------------------------------------- dense layers


def _linear_inputs(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    x, w = _f64(x), _f64(w)
    b = None if b is None else _f64(b)
    dense.linear_check({"x": tuple(x.shape), "w": tuple(w.shape), "b": None if b is None else tuple(b.shape)})
    return x, w, b


def linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """``y[n, o] = b[o] + sum_i x[n, i] w[o, i]`` (``y = x w^T + b``)."""
    x, w, b = _linear_inputs(x, w, b)
    y = np.einsum("ni,oi->no", x, w)
    out: np.ndarray = y if b is None else y + b
    return out


def linear_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``dx = dy w``, ``dw = dy^T x``, ``db = sum_n dy[n]`` (``None`` without ``b``): batch sums."""
    x, w, b = _linear_inputs(x, w, b)
    dy = _check_dy(dy, (x.shape[0], w.shape[0]))
    dx = np.einsum("no,oi->ni", dy, w)
    dw = np.einsum("no,ni->oi", dy, x)
    return dx, dw, None if b is None else dy.sum(axis=0)


def flatten_forward(x: np.ndarray) -> np.ndarray:
    """``y[n] = x[n].ravel()`` in C order: shape ``(N, prod(x.shape[1:]))``."""
    x = _f64(x)
    dense.flatten_check({"x": tuple(x.shape)})
    return x.reshape(x.shape[0], -1).copy()


def flatten_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``dx = dy`` reshaped to ``x.shape`` (the inverse reordering of the forward)."""
    x = _f64(x)
    dense.flatten_check({"x": tuple(x.shape)})
    dy = _check_dy(dy, dense.flatten_output_shape({"x": tuple(x.shape)}))
    return dy.reshape(x.shape).copy()


# --------------------------------------------------------------------------- losses


def class_indices(labels: np.ndarray, classes: int) -> np.ndarray:
    """``labels`` as ``int64`` class indices, after checking they are integers in ``[0, classes)``.

    Integer-valued floats are accepted; anything else raises ``InvalidConfiguration``.
    """
    raw = np.asarray(labels)
    if raw.dtype.kind not in "iuf" or (raw.dtype.kind == "f" and not np.all(raw == np.round(raw))):
        raise InvalidConfiguration(f"labels must be integer class indices, got dtype {raw.dtype}")
    if raw.size and (raw.min() < 0 or raw.max() >= classes):
        raise InvalidConfiguration(f"labels must lie in [0, {classes}), got [{raw.min()}, {raw.max()}]")
    return raw.astype(np.int64)


def softmax_cross_entropy(z: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``loss = mean_n [logsumexp(z[n]) - z[n, labels[n]]]``, ``dz = (softmax(z) - onehot) / N``.

    Each row is shifted by its maximum ``m`` first: ``logsumexp(z) - z_label =
    log(sum exp(z - m)) - (z_label - m)`` and ``softmax(z) = exp(z - m) / sum exp(z - m)``,
    where every exponent is at most 0 and the sum at least 1.
    """
    z = _f64(z)
    loss.softmax_check({"z": tuple(z.shape), "labels": tuple(np.shape(labels))})
    n, c = z.shape
    rows = np.arange(n)
    label = class_indices(labels, c)
    shifted = z - z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    total = e.sum(axis=1)
    per_sample = np.log(total) - shifted[rows, label]
    dz = e / total[:, None]
    dz[rows, label] -= 1.0
    return np.asarray(per_sample.mean(), dtype=np.float64), dz / n


def sigmoid_binary_cross_entropy(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``loss = mean(max(z, 0) - z y + log1p(exp(-|z|)))``, ``dz = (sigmoid(z) - y) / z.size``.

    The stable form of ``mean(-y log s(z) - (1 - y) log(1 - s(z)))``; the mean
    runs over every element.
    """
    z, y = _f64(z), _f64(y)
    loss.bce_check({"z": tuple(z.shape), "y": tuple(y.shape)})
    per_element = np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z)))
    dz = (_sigmoid(z) - y) / z.size
    return np.asarray(per_element.mean(), dtype=np.float64), dz

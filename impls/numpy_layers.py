"""The contract's layers without windows, in NumPy: activations, ``linear``, ``flatten`` and the losses.

Shared by ``numpy_reference`` and ``numpy_fast``: each is one or two
vectorised lines of its formula (``spec.activation``, ``spec.dense``,
``spec.loss``), so one copy serves as both the readable and the fast version.

activations (element-wise, ``y`` and ``dx`` of ``x``'s shape)::

    relu:    y = max(x, 0)                 dx = dy * [x > 0]      (0 at x == 0, PyTorch's choice)
    sigmoid: y = s = 1 / (1 + exp(-x))     dx = dy * s * (1 - s)
    tanh:    y = t = tanh(x)               dx = dy * (1 - t**2)

linear (``x: (N, in)``, ``w: (out, in)``, ``b: (out,)`` or ``None``)::

    y = x w^T + b      dx = dy w      dw = dy^T x      db = sum_n dy[n]

flatten: ``y = x.reshape(N, -1)`` in C order; ``dx = dy.reshape(x.shape)``.

losses (one function each, returning ``(loss, dz)``; ``loss`` a 0-d array)::

    softmax_cross_entropy:        loss = mean_n [logsumexp(z[n]) - z[n, label[n]]],
                                  dz = (softmax(z) - onehot(labels)) / N
    sigmoid_binary_cross_entropy: loss = mean(max(z, 0) - z y + log1p(exp(-|z|))),
                                  dz = (sigmoid(z) - y) / z.size

Stability: ``logsumexp`` subtracts each row's maximum before exponentiating,
and the sigmoid only ever exponentiates ``-|x|``, so logits of any finite size
give finite results (``exp(89)`` already overflows float32).

Everything is computed in the dtype of ``x`` (or ``z``); the other arrays are
cast to it. Outputs are fresh arrays; inputs are never modified and may have
any memory layout.
"""

from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------------- activations


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` without overflow: ``e / (1 + e)`` with ``e = exp(-|x|)`` for ``x < 0``."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def relu_forward(x: np.ndarray) -> np.ndarray:
    """``y = max(x, 0)``."""
    return np.maximum(x, x.dtype.type(0))


def relu_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``dx = dy`` where ``x > 0``, else ``0`` (also at ``x == 0``)."""
    return np.where(x > 0, np.asarray(dy, dtype=x.dtype), x.dtype.type(0))


def sigmoid_forward(x: np.ndarray) -> np.ndarray:
    """``y = 1 / (1 + exp(-x))``, evaluated stably."""
    return _sigmoid(x)


def sigmoid_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``dx = dy * s * (1 - s)`` with ``s = sigmoid(x)``."""
    s = _sigmoid(x)
    return np.asarray(dy, dtype=x.dtype) * s * (1 - s)


def tanh_forward(x: np.ndarray) -> np.ndarray:
    """``y = tanh(x)``."""
    return np.tanh(x)


def tanh_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``dx = dy * (1 - t**2)`` with ``t = tanh(x)``."""
    t = np.tanh(x)
    return np.asarray(dy, dtype=x.dtype) * (1 - t * t)


# --------------------------------------------------------------------------- linear, flatten


def linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """``y[n, o] = b[o] + sum_i x[n, i] w[o, i]``, i.e. ``y = x w^T + b``."""
    y = x @ np.asarray(w, dtype=x.dtype).T
    if b is not None:
        y += np.asarray(b, dtype=x.dtype)
    return y


def linear_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(dx, dw, db) = (dy w, dy^T x, sum_n dy[n])``: batch *sums*, never means."""
    dy = np.asarray(dy, dtype=x.dtype)
    dx = dy @ np.asarray(w, dtype=x.dtype)
    dw = dy.T @ x
    db = None if b is None else dy.sum(axis=0)
    return dx, dw, db


def flatten_forward(x: np.ndarray) -> np.ndarray:
    """``y[n] = x[n].ravel()`` (C order): shape ``(N, prod(x.shape[1:]))``."""
    return np.array(x, order="C", copy=True).reshape(x.shape[0], -1)


def flatten_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``dx = dy.reshape(x.shape)`` (C order)."""
    return np.array(dy, dtype=x.dtype, order="C", copy=True).reshape(x.shape)


# --------------------------------------------------------------------------- losses


def softmax_cross_entropy(z: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``loss = mean_n [logsumexp(z[n]) - z[n, labels[n]]]`` and ``dz = (softmax(z) - onehot) / N``.

    ``logsumexp(z[n]) = m + log(sum_j exp(z[n, j] - m))`` with ``m`` the row maximum,
    so every exponent is ``<= 0`` and the sum lies in ``[1, C]``.
    """
    n = z.shape[0]
    rows, labels = np.arange(n), np.asarray(labels).astype(np.intp)
    shifted = z - z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    total = e.sum(axis=1, keepdims=True)
    loss = np.mean(np.log(total[:, 0]) - shifted[rows, labels])
    dz = e / total
    dz[rows, labels] -= 1
    dz /= z.dtype.type(n)
    return np.asarray(loss, dtype=z.dtype), dz


def sigmoid_binary_cross_entropy(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``loss = mean(max(z, 0) - z y + log1p(exp(-|z|)))`` and ``dz = (sigmoid(z) - y) / z.size``."""
    y = np.asarray(y, dtype=z.dtype)
    terms = np.maximum(z, z.dtype.type(0)) - z * y + np.log1p(np.exp(-np.abs(z)))
    dz = (_sigmoid(z) - y) / z.dtype.type(z.size)
    return np.asarray(np.mean(terms), dtype=z.dtype), dz


__all__ = [
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

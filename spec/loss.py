"""Losses: softmax cross-entropy and sigmoid binary cross-entropy, each returning the batch-mean
loss and its gradient with respect to the logits.

softmax cross-entropy, logits ``z: (N, C)``, integer ``labels: (N,)`` in ``[0, C)``::

    loss = (1/N) sum_n [ logsumexp(z[n]) - z[n, labels[n]] ]
    dz   = (softmax(z) - onehot(labels)) / N

sigmoid binary cross-entropy, logits ``z: (N,)`` or ``(N, K)`` and targets ``y``
of the same shape, in ``{0, 1}`` (or, where declared, anywhere in ``[0, 1]``);
the mean runs over every element, which is the batch mean when each sample has
one logit (PyTorch's ``binary_cross_entropy_with_logits``)::

    loss = mean( -y log s(z) - (1 - y) log(1 - s(z)) )
         = mean( max(z, 0) - z y + log(1 + exp(-|z|)) )
    dz   = (s(z) - y) / z.size

Numerical stability is part of the contract: logits as large as
``|z| = LARGE_LOGIT`` must give finite, accurate results in both dtypes, which
rules out ``log(sum(exp(z)))`` and ``log(sigmoid(z))`` evaluated as written
(``exp(89)`` already overflows float32). The stable forms above subtract the
row maximum before exponentiating, and use ``log1p(exp(-|z|))``.

Error scales (``S`` of the tolerance policy, ``magnitude``): the magnitudes of
the terms each formula rounds, e.g. ``|max z| + |z_label| + log C`` per sample
for the softmax loss; for the softmax probabilities the exponent's own
rounding, ``u * |z_j - max z|``, is amplified by ``exp``, so ``S`` carries
``p_j * |z_j - max z|``.
"""

from __future__ import annotations

import numpy as np

from .activation import sigmoid
from .errors import InvalidConfiguration
from .shapes import required

Shape = tuple[int, ...]

LARGE_LOGIT = 1.0e4
"""Logits this large (in absolute value) must not give NaN or inf."""


def softmax_check(shapes: dict[str, Shape | None]) -> None:
    """``z: (N, C)`` with ``C >= 1``, ``labels: (N,)``."""
    z, labels = shapes["z"], shapes["labels"]
    if z is None or len(z) != 2 or min(z) < 1:
        raise InvalidConfiguration(f"z.shape={z} must be (N, C), logits for C classes")
    if labels is None or tuple(labels) != (z[0],):
        raise InvalidConfiguration(
            f"labels.shape={labels}, but should be (N,) = ({z[0]},), one class index each"
        )


def bce_check(shapes: dict[str, Shape | None]) -> None:
    """``z: (N,)`` or ``(N, K)``, ``y`` of the same shape."""
    z, y = shapes["z"], shapes["y"]
    if z is None or len(z) not in (1, 2) or min(z) < 1:
        raise InvalidConfiguration(f"z.shape={z} must be (N,) or (N, K): one logit per sample (or K)")
    if y is None or tuple(y) != tuple(z):
        raise InvalidConfiguration(f"y.shape={y}, but should equal z.shape={z}")


def softmax_reduction_lengths(shapes: dict[str, Shape | None]) -> dict[str, int]:
    """``loss``: ``C`` exponentials summed, a log, a subtraction, then ``N`` terms averaged;
    ``dz``: the same ``C`` sum, a division, the one-hot subtraction and ``1/N``."""
    n, c = required(shapes, "z")
    return {"loss": c + n + 4, "dz": c + 6}


def bce_reduction_lengths(shapes: dict[str, Shape | None]) -> dict[str, int]:
    """``loss``: a few roundings per element and the mean over all of them; ``dz``: a sigmoid,
    a subtraction and the ``1/size``."""
    size = int(np.prod(required(shapes, "z")))
    return {"loss": size + 6, "dz": 8}


def softmax_magnitude(output: str, z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``S`` for the softmax cross-entropy ``loss`` (a scalar) or ``dz``."""
    z = np.asarray(z, dtype=np.float64)
    n = z.shape[0]
    m = z.max(axis=1, keepdims=True)
    shifted = np.exp(z - m)
    p = shifted / shifted.sum(axis=1, keepdims=True)
    picked = np.abs(z[np.arange(n), labels])
    if output == "loss":
        lse = np.log(shifted.sum(axis=1))
        # + 1: the log of a sum that is at least 1 is off by about K*u in absolute terms.
        return np.asarray(np.mean(np.abs(m[:, 0]) + picked + lse + 1.0))
    onehot = np.zeros_like(z)
    onehot[np.arange(n), labels] = 1.0
    s: np.ndarray = (p * (1.0 + np.abs(z - m)) + onehot) / n
    return s


def bce_magnitude(output: str, z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``S`` for the sigmoid binary cross-entropy ``loss`` (a scalar) or ``dz``."""
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if output == "loss":
        return np.asarray(np.mean(np.abs(z) * (1.0 + np.abs(y)) + np.log1p(np.exp(-np.abs(z))) + 1.0))
    s: np.ndarray = (sigmoid(z) + np.abs(y)) / z.size
    return s

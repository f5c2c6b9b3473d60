"""How close a correct implementation's network must come to PyTorch's float64 autograd.

Every compared quantity (a layer's output, the gradient a layer passes down,
``dw``, ``db``, the updated weights, the loss before and after the step) is
judged as a whole array by its norm-wise relative error::

    e = ||got - expected||_2 / ||expected||_2

against the bound::

    e <= SAFETY * K * (u + u64)

* ``u`` is the unit roundoff of the dtype the implementation ran in
  (``2**-53`` for float64, ``2**-24`` for float32) and ``u64 = 2**-53`` that of
  PyTorch's float64 reference, which rounds too.
* ``K`` is the network's longest chain of roundings: the reduction length of
  every layer's forward output, of the loss and its gradient, and of the
  longest of every layer's gradients (``Operation.reduction_lengths``, the
  numbers the per-operation tolerance policy uses). A quantity computed through
  ``K`` roundings, each with relative error at most ``u``, is off by at most
  about ``K u`` relative to its error scale, to first order; errors of earlier
  layers reach later ones through the layers' Jacobians, which at the
  PyTorch-like initialisation neither blow up nor vanish.
* ``SAFETY = 16`` covers what the first-order argument leaves out: the
  amplification by those Jacobians (their norms are a few units at this
  initialisation; sigmoid and tanh derivatives are at most 1), and the
  cancellation in a gradient whose norm is smaller than the sum of its terms'
  (a ``db`` summed over a batch and positions). Measured over 150 seeds on
  correct implementations, the error ratio ``e / bound`` is typically
  ``1e-4`` to ``1e-3`` and at worst ``0.04`` (toy_cnn's one-element ``conv1.db``
  in float32, a sum of 64 terms of both signs): random rounding errors grow
  like ``sqrt(K) u``, not ``K u``.

For the spec networks at batch 4, ``K`` is 102 (toy_cnn), 1082 (two_conv) and
4630 (lenet5), so the bound is ``4e-13`` to ``2e-11`` in float64 and ``1e-4``
to ``4e-3`` in float32. A wiring mistake is far above it: a missing or doubled
batch mean gives ``e = N - 1`` or ``1 - 1/N``, a transposed flatten or a
misrouted gradient ``e`` of order 1, which is ten orders of magnitude over
the float64 bound and two or more over the float32 one. The float64 run is the
one that localises subtle mistakes: a mistake whose effect is small where it
starts (a wrong derivative that matters only for large pre-activations) can
stay under the float32 bound in one layer and first show in another.

Norm-wise, not element-wise: a network's intermediate errors are spread over
every element by the layers after them, so no per-element error scale is at
hand without rerunning the whole network on absolute values. The norm-wise
form is the one the per-operation policy uses for transform algorithms for the
same reason.

Kinks. Max-pool and ReLU are piecewise linear: if an implementation's rounding
moves a pre-activation across 0 or reorders a near-tie in a pooling window,
one element's gradient switches and the norm-wise error jumps. With
continuous random data that needs two values within a few ``u`` of each other:
over 150 seeds, no correct implementation tripped on one in either dtype, and
the default seed passes numpy_reference, numpy_fast and torch in both.
"""

from __future__ import annotations

import math

import numpy as np

from ..spec import OPERATIONS
from ..spec.networks import Network
from ..spec.params import NoParams
from ..spec.tolerance import TINY, override_for, unit_roundoff

SAFETY = 16.0
"""Multiplier on ``K (u + u64)``; the module docstring says why 16."""


def layer_inputs(net: Network, batch: int) -> list[dict[str, tuple[int, ...] | None]]:
    """Each layer's array shapes (``x`` and its weights, ``b=None`` where absent), as the spec rules take them."""
    shapes = net.activation_shapes(batch)
    out = []
    for layer, x in zip(net.layers, shapes, strict=False):
        arrays: dict[str, tuple[int, ...] | None] = {"x": x, **layer.weights}
        if "b" in OPERATIONS[layer.op].inputs and "b" not in layer.weights:
            arrays["b"] = None
        out.append(arrays)
    return out


def chain_length(net: Network, batch: int) -> int:
    """``K``: every layer's forward reduction, the loss's two, and every layer's longest gradient reduction."""
    k = 0
    for layer, arrays in zip(net.layers, layer_inputs(net, batch), strict=True):
        lengths = OPERATIONS[layer.op].reduction_lengths(arrays, layer.params)
        k += lengths["y"] + max(lengths[g] for g in OPERATIONS[layer.op].grads)
    loss = OPERATIONS[net.loss]
    z = net.activation_shapes(batch)[-1]
    target = (batch,) if net.loss == "softmax_cross_entropy" else z
    k += sum(loss.reduction_lengths({"z": z, loss.inputs[1]: target}, NoParams()).values())
    return k


def bound(net: Network, batch: int, dtype: str) -> float:
    """The largest norm-wise relative error a correct implementation may show (module docstring)."""
    return SAFETY * chain_length(net, batch) * (unit_roundoff(dtype) + unit_roundoff("float64"))


def overridden_bound(net: Network, batch: int, dtype: str) -> tuple[float, str | None]:
    """``bound`` under the user's tolerance overrides (``spec.tolerance``), and the override's description.

    An override naming the network (``lenet5:float32=4``), or ``*``, applies as it is: a ``factor``
    multiplies the bound, an ``rtol`` replaces it (the norm-wise relative error must stay below it;
    ``atol`` has no norm-wise meaning and is not used). Without one, the largest ``factor`` among the
    overrides of the network's layers (``conv2d:float32=4``) scales the whole chain, whose error is
    made of theirs.
    """
    base = bound(net, batch, dtype)
    own = override_for(net.name, dtype)
    if own is not None:
        if own.replaces_bound:
            return own.rtol_or_zero, own.describe()
        return base * own.factor_or_one, own.describe()
    layered = [o for o in (override_for(layer.op, dtype) for layer in net.layers) if o is not None]
    factors = [o for o in layered if not o.replaces_bound]
    if not factors:
        return base, None
    widest = max(factors, key=lambda o: o.factor_or_one)
    return base * widest.factor_or_one, widest.describe()


def relative_error(got: np.ndarray | float, expected: np.ndarray | float) -> float:
    """``||got - expected||_2 / ||expected||_2``; ``inf`` for a non-finite ``got`` or a shape mismatch.

    An all-zero ``expected`` is measured against the smallest normal float64
    instead, so that exact zeros on both sides agree.
    """
    g = np.asarray(got, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if g.shape != e.shape or not np.all(np.isfinite(g)):
        return math.inf
    diff = float(np.linalg.norm((g - e).ravel()))
    if diff == 0.0:
        return 0.0
    return diff / max(float(np.linalg.norm(e.ravel())), TINY["float64"] * math.sqrt(max(e.size, 1)))


def scale_note(got: np.ndarray | float, expected: np.ndarray | float, batch: int) -> str:
    """When ``got`` is ``expected`` times a constant (to 6 digits), say so, naming the batch size if it is one.

    A single number is always some multiple of another, so for one element only
    a factor of ``N``, ``1/N`` or ``-1`` is noted.
    """
    g = np.asarray(got, dtype=np.float64).ravel()
    e = np.asarray(expected, dtype=np.float64).ravel()
    if g.shape != e.shape or not np.all(np.isfinite(g)) or not np.any(e):
        return ""
    c = float(g @ e / (e @ e))
    if c == 0.0 or abs(c - 1.0) < 1e-6 or np.linalg.norm(g - c * e) > 1e-6 * np.linalg.norm(c * e):
        return ""
    batch_mean = batch > 1 and (
        math.isclose(c, batch, rel_tol=1e-6) or math.isclose(c, 1.0 / batch, rel_tol=1e-6)
    )
    flipped = math.isclose(c, -1.0, rel_tol=1e-6)
    if g.size == 1 and not (batch_mean or flipped):
        return ""  # any two numbers differ by a factor: only a telling one is worth a note
    note = f"got = {c:.6g} x expected"
    if batch_mean:
        note += f" (N = {batch} is the batch size: a batch mean missing, or applied twice)"
    elif flipped:
        note += " (the sign is flipped)"
    return note

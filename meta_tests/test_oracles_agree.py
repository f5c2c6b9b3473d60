"""The two oracles agree with each other on random cases of every operation.

SciPy/NumPy (textbook derivation, explicit windows, the course's formulas) and
PyTorch (autograd) share no arithmetic; agreement within the float64 bound of
the tolerance policy on every case drawn here is what lets either one serve as
the reference.

The 2-D core is drawn by the suite's own strategies (``convcheck.tests.strategies``).
Every operation, the 2-D core included, is also drawn by the small strategies
of this file, which depend only on the spec: sliding-window operations in 1, 2
and 3-D with per-axis stride, asymmetric padding, dilation, groups, ``ceil_mode``
and ``count_include_pad``; activations, ``linear`` and ``flatten`` on every value
family; losses with logits up to ``spec.loss.LARGE_LOGIT`` and hard or soft targets.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convcheck import oracles
from convcheck.spec import FULL, OPERATIONS, InvalidConfiguration, tolerance
from convcheck.spec.case import Case
from convcheck.spec.loss import LARGE_LOGIT
from convcheck.spec.ops import PARAMS_TYPE_BY_FAMILY_AND_NDIM
from convcheck.spec.params import NoParams
from convcheck.spec.shapes import effective_kernel
from convcheck.tests.strategies import cases
from convcheck.tests.values import FAMILIES, make_case

ORACLE_NAMES = ("scipy", "torch")


def _both(
    function_name: str, args: list[Any], kwargs: dict[str, Any], semantics: dict[str, Any]
) -> list[Any]:
    return [oracles.call(name, function_name, *args, semantics=semantics, **kwargs) for name in ORACLE_NAMES]


NEGLIGIBLE_S = tolerance.TINY["float64"] / tolerance.unit_roundoff("float64")
"""Below this ``S``, ``u * S`` is subnormal and the bound is its ``TINY`` floor anyway."""


def _assert_close(name: str, a: Any, b: Any, scale: Any, k: int) -> None:
    """``a`` within the policy's float64 bound of ``b``.

    ``S`` below ``NEGLIGIBLE_S`` is passed as 0: ``spec.tolerance``'s aggregate
    test divides by ``u * S``, which underflows to 0 there (e.g. ``sigmoid(-720)``).
    """
    scale = np.where(np.abs(scale) < NEGLIGIBLE_S, 0.0, scale)
    comp = tolerance.compare(name, a, b, scale, k, "float64")
    assert comp.passed, (
        f"oracles disagree on {name}: error ratio {comp.error_ratio:.3g} at {comp.worst_index} "
        f"(torch {comp.worst_got!r}, scipy {comp.worst_expected!r})"
    )


def _as_tuple(out: Any) -> tuple[Any, ...]:
    return out if isinstance(out, tuple) else (out,)


def _abs(args: list[Any]) -> list[Any]:
    return [None if a is None else np.abs(a) for a in args]


def _scales(case: Case, semantics: dict[str, Any]) -> dict[str, Any]:
    """``S`` per output: the spec's ``magnitude`` where it has one, else the scipy oracle on absolute inputs.

    Max pooling keeps ``x`` as it is in the backward: the routing depends on its signs.
    """
    op = case.op
    if op.magnitude is not None:
        return {name: case.magnitude(name) for name in dict.fromkeys((*op.outputs, *op.grads))}
    y = oracles.call("scipy", op.forward, *_abs(case.forward_args()), semantics=semantics, **case.kwargs())
    abs_args = _abs(case.backward_args())
    if op.family == "max_pool":
        abs_args[1] = case.x
    grads = oracles.call("scipy", op.backward, *abs_args, semantics=semantics, **case.kwargs())
    return {"y": y, **dict(zip(op.grads, _as_tuple(grads), strict=True))}


def check_agreement(case: Case, semantics: dict[str, Any] | None = None) -> None:
    """Both oracles' outputs on ``case`` (forward, and backward for a layer) agree within the policy's bound."""
    op, sem = case.op, semantics or {}
    k = op.reduction_lengths(case.shapes(), case.params)
    s = _scales(case, sem)
    results = {}
    y_scipy, y_torch = _both(op.forward, case.forward_args(), case.kwargs(), sem)
    results.update(zip(op.outputs, zip(_as_tuple(y_scipy), _as_tuple(y_torch), strict=True), strict=True))
    if not op.is_loss:
        g_scipy, g_torch = _both(op.backward, case.backward_args(), case.kwargs(), sem)
        results.update(zip(op.grads, zip(_as_tuple(g_scipy), _as_tuple(g_torch), strict=True), strict=True))
    for name, (a, b) in results.items():
        if a is None:
            assert b is None, f"{name}: scipy says None, torch returned an array"
            continue
        assert a.dtype == b.dtype == np.float64 and a.shape == b.shape, name
        _assert_close(name, b, a, s[name], k[name])


# --------------------------------------------------------------------------- the suite's own 2-D cases

SEMANTICS = [
    ("conv2d", "cross-correlation"),
    ("conv2d", "convolution"),
    ("max_pool2d", None),
    ("avg_pool2d", None),
]


@pytest.mark.parametrize(("operation", "convention"), SEMANTICS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_scipy_and_torch_agree(operation, convention, data):
    case = data.draw(cases(operation, FULL, dtypes_=("float64",)), label="case")
    check_agreement(case, {"convention": convention} if operation == "conv2d" else {})


# --------------------------------------------------------------------------- sliding windows in 1, 2, 3-D

WINDOW_OPS = [name for name, op in OPERATIONS.items() if op.ndim]
MAX_SIDE = {1: 12, 2: 7, 3: 6}
"""Largest input side per dimension: small enough for the scipy loops over a 3-D volume."""


def _axis_sizes(draw: st.DrawFn, ndim: int, effective: list[int], pads: list[tuple[int, int]]) -> list[int]:
    """Input lengths in which each axis's (dilated) window fits the padded input."""
    sizes = []
    for eff, (lo, hi) in zip(effective, pads, strict=True):
        least = max(1, eff - lo - hi)
        sizes.append(draw(st.integers(least, max(least, MAX_SIDE[ndim]))))
    return sizes


@st.composite
def window_cases(draw: st.DrawFn, op_name: str) -> Case:
    """A valid float64 case of a convolution or pooling operation in any dimension.

    Every axis draws its own kernel, stride, dilation and ``(low, high)`` padding
    (asymmetric, within the pooling limit of half the effective kernel); conv
    draws groups and a bias or none, pooling ``ceil_mode`` (and for avg
    ``count_include_pad``). The values come from any of the suite's families.
    """
    op = OPERATIONS[op_name]
    nd = op.ndim
    kernel = [draw(st.integers(1, 3)) for _ in range(nd)]
    stride = [draw(st.integers(1, 3)) for _ in range(nd)]
    dilation = [draw(st.integers(1, 2)) if "dilation" in op.hyperparameters else 1 for _ in range(nd)]
    effective = [effective_kernel(k, d) for k, d in zip(kernel, dilation, strict=True)]
    limits = [2 if op.family == "conv" else e // 2 for e in effective]
    pads = [(draw(st.integers(0, m)), draw(st.integers(0, m))) for m in limits]
    sizes = _axis_sizes(draw, nd, effective, pads)
    common = {"stride": tuple(stride), "padding": tuple(v for pair in pads for v in pair)}
    n = draw(st.integers(1, 2))
    params_type = PARAMS_TYPE_BY_FAMILY_AND_NDIM[op.family][nd]
    if op.family == "conv":
        groups = draw(st.integers(1, 2))
        c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
        params = params_type(dilation=tuple(dilation), groups=groups, **common)
        bias = (c_out,) if draw(st.booleans()) else None
        shapes = {"x": (n, c_in, *sizes), "w": (c_out, c_in // groups, *kernel), "b": bias}
    else:
        extra = {"dilation": tuple(dilation)} if op.family == "max_pool" else {}
        if op.family == "avg_pool":
            extra["count_include_pad"] = draw(st.booleans())
        params = params_type(kernel_size=tuple(kernel), ceil_mode=draw(st.booleans()), **common, **extra)
        shapes = {"x": (n, draw(st.integers(1, 2)), *sizes)}
    try:
        op.check(shapes, params)
    except InvalidConfiguration:
        assume(False)  # rare: a dilated or ceil_mode window lying wholly in padding
    family = draw(st.sampled_from(FAMILIES), label="values")
    return make_case(op_name, params, shapes, "float64", family, draw(st.integers(0, 2**32 - 1)))


WINDOW_SEMANTICS = [
    pytest.param(name, {"convention": convention}, id=f"{name}-{convention}")
    for name in WINDOW_OPS
    for convention in (("cross-correlation", "convolution") if OPERATIONS[name].family == "conv" else (None,))
]


@pytest.mark.parametrize(("operation", "semantics"), WINDOW_SEMANTICS)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_windows_agree_in_every_dimension(operation, semantics, data):
    case = data.draw(window_cases(operation), label="case")
    check_agreement(case, {k: v for k, v in semantics.items() if v is not None})


# --------------------------------------------------------------------------- activations, linear, flatten


@st.composite
def layer_cases(draw: st.DrawFn, op_name: str) -> Case:
    """A float64 case of an activation (any shape), ``linear`` (bias or none) or ``flatten`` (2 to 5 axes)."""
    if op_name == "linear":
        n, n_in, n_out = (draw(st.integers(1, 5)) for _ in range(3))
        shapes = {"x": (n, n_in), "w": (n_out, n_in), "b": (n_out,) if draw(st.booleans()) else None}
    else:
        least = 2 if op_name == "flatten" else 1
        shapes = {"x": tuple(draw(st.lists(st.integers(1, 4), min_size=least, max_size=5)))}
    family = draw(st.sampled_from(FAMILIES), label="values")
    return make_case(op_name, NoParams(), shapes, "float64", family, draw(st.integers(0, 2**32 - 1)))


DENSE_AND_ACTIVATIONS = [name for name, op in OPERATIONS.items() if not op.ndim and not op.is_loss]


@pytest.mark.parametrize("operation", DENSE_AND_ACTIVATIONS)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_layers_agree(operation, data):
    check_agreement(data.draw(layer_cases(operation), label="case"))


SATURATING = st.one_of(st.floats(-LARGE_LOGIT, LARGE_LOGIT), st.floats(-800, 800), st.floats(-1e-290, 1e-290))
"""Inputs up to where ``exp`` overflows and beyond, around it, and tiny (subnormal outputs)."""


@settings(max_examples=60, deadline=None)
@given(x=st.lists(SATURATING, min_size=1, max_size=12), seed=st.integers(0, 99))
def test_activations_agree_on_saturating_inputs(x, seed):
    """Inputs where ``exp`` overflows, ``1 - s`` cancels or the output is subnormal, with ``|dy|`` up
    to ``1e4`` (which lifts a subnormal slope into the normal range): the oracles agree."""
    dy = np.random.default_rng(seed).standard_normal(len(x)) * 10.0 ** (seed % 5)
    for name in ("relu", "sigmoid", "tanh"):
        case = Case(name, NoParams(), {"x": np.array(x)}, dy, "float64")
        check_agreement(case)


# --------------------------------------------------------------------------- losses


@st.composite
def loss_cases(draw: st.DrawFn, op_name: str) -> Case:
    """Logits at one of three scales (up to ``LARGE_LOGIT``, a few set to exactly +-``LARGE_LOGIT``),
    class labels, or 0/1 or soft targets for the binary cross-entropy."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(1, 5))
    if op_name == "softmax_cross_entropy":
        shape: tuple[int, ...] = (n, draw(st.integers(1, 5)))
    else:
        shape = (n,) if draw(st.booleans()) else (n, draw(st.integers(1, 4)))
    z = rng.standard_normal(shape) * draw(st.sampled_from([1.0, 30.0, LARGE_LOGIT]))
    if draw(st.booleans()):
        z[rng.random(shape) < 0.3] = LARGE_LOGIT * rng.choice([-1.0, 1.0])
    if op_name == "softmax_cross_entropy":
        inputs = {"z": z, "labels": rng.integers(0, shape[1], n)}
    else:
        soft = draw(st.booleans())
        inputs = {"z": z, "y": rng.random(shape) if soft else rng.integers(0, 2, shape).astype(np.float64)}
    return Case(op_name, NoParams(), inputs, None, "float64")


@pytest.mark.parametrize("operation", [name for name, op in OPERATIONS.items() if op.is_loss])
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_losses_agree(operation, data):
    case = data.draw(loss_cases(operation), label="case")
    check_agreement(case)
    for name in ORACLE_NAMES:
        loss, dz = oracles.call(name, operation, *case.forward_args())
        assert np.isfinite(loss) and np.all(np.isfinite(dz)), name

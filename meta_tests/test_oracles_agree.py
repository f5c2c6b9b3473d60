"""The two oracles agree with each other on the suite's own generated cases.

SciPy (textbook derivation) and PyTorch (autograd) share no code; agreement to
the float64 bound on every case the strategies can draw is what lets either
one serve as the reference.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcheck import oracles
from convcheck.spec import FULL, OPERATIONS, tolerance
from convcheck.tests.strategies import cases


def _both(function_name, args, kwargs, semantics):
    return [
        oracles.call(name, function_name, *args, semantics=semantics, **kwargs) for name in ("scipy", "torch")
    ]


def _assert_close(name, a, b, scale, k):
    comp = tolerance.compare(name, a, b, scale, k, "float64")
    assert comp.passed, (
        f"oracles disagree on {name}: error ratio {comp.error_ratio:.3g} at {comp.worst_index}"
    )


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
    op = OPERATIONS[operation]
    sem = {"convention": convention} if operation == "conv2d" else {}
    k = op.reduction_lengths(case.shapes(), case.params)
    y_scipy, y_torch = _both(op.forward, case.forward_args(), case.kwargs(), sem)
    scale = oracles.call(
        "scipy",
        op.forward,
        *[None if a is None else np.abs(a) for a in case.forward_args()],
        semantics=sem,
        **case.kwargs(),
    )
    _assert_close("y", y_torch, y_scipy, scale, k["y"])
    g_scipy, g_torch = _both(op.backward, case.backward_args(), case.kwargs(), sem)
    if len(op.grads) == 1:
        g_scipy, g_torch = (g_scipy,), (g_torch,)
    abs_args = [None if a is None else np.abs(a) for a in case.backward_args()]
    if operation == "max_pool2d":
        abs_args[1] = case.x
    g_scale = oracles.call("scipy", op.backward, *abs_args, semantics=sem, **case.kwargs())
    if len(op.grads) == 1:
        g_scale = (g_scale,)
    for name, a, b, s in zip(op.grads, g_torch, g_scipy, g_scale, strict=True):
        if b is None:
            assert a is None, f"{name}: scipy says None, torch returned an array"
            continue
        _assert_close(name, a, b, s, k[name])

"""The oracles: worked examples, agreement with each other, refusal of invalid configurations, ties.

The two oracles (``scipy``: textbook derivation on scipy.signal, NumPy sliding
windows and the course's formulas; ``torch``: torch.nn.functional with autograd)
are written independently, so their agreement to ``1e-12`` in float64 on
hand-picked configurations is the evidence that both compute the spec. Beyond
the 2-D core, each oracle is checked against values worked by hand (activations,
``linear``, ``flatten``, the losses, large logits) and against direct loops
written from the spec's definitions (convolution and pooling in 1-D and 3-D).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d

from convcheck.oracles import ORACLES, SEMANTIC_OPTIONS, call
from convcheck.spec import FUNCTION_NAMES, OPERATIONS, InvalidConfiguration
from convcheck.spec.conv import output_shape as conv_output_shape
from convcheck.spec.params import (
    AvgPool1dParams,
    AvgPool2dParams,
    AvgPool3dParams,
    Conv2dParams,
    MaxPool1dParams,
    MaxPool2dParams,
    MaxPool3dParams,
)
from convcheck.spec.pool import output_shape as pool_output_shape

ORACLE_NAMES = sorted(ORACLES)
TOL: dict[str, float] = {"rtol": 1e-12, "atol": 1e-12}
CONVENTIONS = ("cross-correlation", "convolution")


def module(name: str) -> Any:
    return ORACLES[name].module


def as_nchw(a: list[list[float]]) -> np.ndarray:
    return np.array(a, dtype=np.float64)[None, None]


def _as_tuple(out: Any) -> tuple[Any, ...]:
    """A layer's backward returns a tuple for several gradients, one array for a single one."""
    return out if isinstance(out, tuple) else (out,)


# --------------------------------------------------------------------------- (a) worked examples

MAXPOOL_X = [[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]]
MAXPOOL_2X2 = {"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0, 0, 0), "dilation": (1, 1)}

MAGIC = [[17, 24, 1, 8, 15], [23, 5, 7, 14, 16], [4, 6, 13, 20, 22], [10, 12, 19, 21, 3], [11, 18, 25, 2, 9]]
KERNEL = [[1, 3, 1], [0, 5, 0], [2, 1, 2]]
UNIT_CONV = {"stride": (1, 1), "dilation": (1, 1), "groups": 1}


@pytest.mark.parametrize("name", ORACLE_NAMES)
def test_max_pool_worked_example(name: str) -> None:
    """2x2 windows, stride 2: each window's maximum, and ``dy = 1`` routed to the first maximum."""
    m = module(name)
    x = as_nchw(MAXPOOL_X)
    y = m.max_pool2d_forward(x, ceil_mode=False, **MAXPOOL_2X2)
    np.testing.assert_array_equal(y, as_nchw([[6, 8], [3, 4]]))
    dx = m.max_pool2d_backward(np.ones_like(y), x, ceil_mode=False, **MAXPOOL_2X2)
    # 6 at (1, 1), 8 at (1, 3), the first 3 at (2, 0) (row-major), the 4 at (3, 3).
    expected = as_nchw([[0, 0, 0, 0], [0, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 1]])
    np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("name", ORACLE_NAMES)
def test_full_convolution_of_the_magic_square(name: str) -> None:
    """``convolve2d(A, K, mode="full")`` as a conv2d forward.

    The full convolution places the kernel, rotated by 180 degrees, at every
    offset where it overlaps ``A`` at least one cell: that is the
    cross-correlation of ``flip(K)`` with ``A`` zero-padded by ``K - 1 = 2`` on
    every side (output ``5 + 2*2 - 3 + 1 = 7`` per axis). The "convolution"
    convention does the flip itself.
    """
    m = module(name)
    a, k = as_nchw(MAGIC), as_nchw(KERNEL)
    expected = convolve2d(np.array(MAGIC, float), np.array(KERNEL, float), mode="full")
    pad = (2, 2, 2, 2)
    y = m.conv2d_forward(a, k[:, :, ::-1, ::-1], None, padding=pad, **UNIT_CONV)
    np.testing.assert_allclose(y[0, 0], expected, **TOL)
    y_conv = m.conv2d_forward(a, k, None, padding=pad, convention="convolution", **UNIT_CONV)
    np.testing.assert_allclose(y_conv[0, 0], expected, **TOL)
    # Anchors by hand: corners 17*1 and 9*2; (0, 1) = 24*1 + 17*3; centre = 90 + 65 + 45.
    assert (y[0, 0, 0, 0], y[0, 0, 6, 6], y[0, 0, 0, 1], y[0, 0, 3, 3]) == (17, 18, 75, 200)


# --------------------------------------------------------------------------- (b) agreement

# (x shape, w shape, bias, stride, padding, dilation, groups)
CONV_CONFIGS = [
    pytest.param((1, 1, 5, 5), (1, 1, 3, 3), True, (1, 1), (0, 0, 0, 0), (1, 1), 1, id="plain"),
    pytest.param((2, 3, 9, 8), (4, 3, 2, 2), True, (3, 4), (0, 0, 0, 0), (1, 1), 1, id="stride>kernel"),
    pytest.param((1, 2, 6, 7), (3, 2, 3, 2), True, (1, 2), (2, 0, 1, 3), (1, 1), 1, id="asym-padding"),
    pytest.param((2, 2, 9, 10), (2, 2, 3, 2), True, (1, 1), (1, 1, 2, 2), (2, 3), 1, id="dilation"),
    pytest.param((2, 6, 6, 5), (4, 3, 3, 3), True, (2, 1), (1, 1, 1, 1), (1, 1), 2, id="groups"),
    pytest.param((1, 4, 5, 6), (8, 1, 2, 3), False, (1, 2), (0, 1, 1, 0), (2, 1), 4, id="depthwise-nobias"),
    pytest.param((2, 4, 7, 11), (6, 2, 2, 3), False, (2, 3), (0, 1, 2, 1), (3, 2), 2, id="non-square"),
    pytest.param((1, 1, 2, 3), (2, 1, 4, 4), True, (1, 1), (1, 1, 1, 0), (1, 1), 1, id="kernel>input"),
    pytest.param((1, 3, 7, 5), (2, 3, 1, 1), False, (3, 2), (0, 2, 1, 0), (1, 1), 1, id="1x1-stride"),
]


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize(("xs", "ws", "bias", "stride", "padding", "dilation", "groups"), CONV_CONFIGS)
def test_conv2d_oracles_agree(xs, ws, bias, stride, padding, dilation, groups, convention) -> None:
    rng = np.random.default_rng(sum(xs) + sum(ws))
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    b = rng.standard_normal(ws[0]) if bias else None
    hp = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    s, t = (module(n) for n in ("scipy", "torch"))
    y = s.conv2d_forward(x, w, b, convention=convention, **hp)
    np.testing.assert_allclose(y, t.conv2d_forward(x, w, b, convention=convention, **hp), **TOL)
    assert y.shape == conv_output_shape(xs, ws, Conv2dParams(**hp))
    dy = rng.standard_normal(y.shape)
    grads_s = s.conv2d_backward(dy, x, w, b, convention=convention, **hp)
    grads_t = t.conv2d_backward(dy, x, w, b, convention=convention, **hp)
    for name, gs, gt in zip(("dx", "dw", "db"), grads_s, grads_t, strict=True):
        if not bias and name == "db":
            assert gs is None and gt is None
            continue
        np.testing.assert_allclose(gs, gt, **TOL, err_msg=name)


# (x shape, kernel, stride, padding, dilation, ceil_mode)
MAX_CONFIGS = [
    pytest.param((1, 1, 4, 4), (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), False, id="plain"),
    pytest.param((2, 2, 9, 10), (2, 2), (3, 4), (0, 0, 0, 0), (1, 1), False, id="stride>kernel"),
    pytest.param((1, 2, 7, 6), (3, 4), (2, 1), (1, 0, 2, 1), (1, 1), False, id="asym-padding"),
    pytest.param((2, 1, 9, 8), (3, 2), (1, 2), (1, 1, 0, 1), (2, 3), False, id="dilation"),
    pytest.param((1, 2, 8, 8), (2, 2), (2, 1), (2, 2, 2, 2), (3, 3), False, id="pad>k//2"),
    pytest.param((1, 2, 6, 7), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), True, id="ceil-symmetric"),
    pytest.param((2, 2, 7, 8), (3, 2), (2, 3), (1, 0, 0, 1), (2, 1), True, id="ceil-asym-dilation"),
    pytest.param((1, 1, 5, 4), (2, 2), (2, 2), (0, 1, 0, 1), (1, 1), True, id="ceil-extra-torch-window"),
    pytest.param((2, 3, 5, 9), (1, 3), (2, 2), (0, 0, 1, 0), (1, 2), True, id="non-square"),
]

# (x shape, kernel, stride, padding, ceil_mode)
AVG_CONFIGS = [
    pytest.param((1, 1, 4, 4), (2, 2), (2, 2), (0, 0, 0, 0), False, id="plain"),
    pytest.param((2, 2, 9, 10), (2, 2), (3, 4), (0, 0, 0, 0), False, id="stride>kernel"),
    pytest.param((1, 2, 7, 6), (3, 4), (2, 1), (1, 0, 2, 1), False, id="asym-padding"),
    pytest.param((1, 2, 6, 7), (3, 3), (2, 2), (1, 1, 1, 1), True, id="ceil-symmetric"),
    pytest.param((2, 2, 7, 8), (3, 2), (2, 3), (1, 0, 0, 1), True, id="ceil-asym"),
    pytest.param((1, 1, 5, 4), (2, 2), (2, 2), (0, 1, 0, 1), True, id="ceil-extra-torch-window"),
    pytest.param((2, 3, 5, 9), (4, 3), (3, 2), (2, 1, 1, 0), True, id="non-square"),
]


def _pool_agree(op: str, x_shape: tuple[int, ...], hp: dict[str, Any], seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    s, t = (module(n) for n in ("scipy", "torch"))
    forward, backward = f"{op}_forward", f"{op}_backward"
    y = getattr(s, forward)(x, **hp)
    np.testing.assert_allclose(y, getattr(t, forward)(x, **hp), **TOL)
    params = (MaxPool2dParams if op == "max_pool2d" else AvgPool2dParams)(**hp)
    assert y.shape == pool_output_shape(x_shape, params)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(getattr(s, backward)(dy, x, **hp), getattr(t, backward)(dy, x, **hp), **TOL)


@pytest.mark.parametrize(("xs", "kernel", "stride", "padding", "dilation", "ceil"), MAX_CONFIGS)
def test_max_pool2d_oracles_agree(xs, kernel, stride, padding, dilation, ceil) -> None:
    hp = {
        "kernel_size": kernel,
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "ceil_mode": ceil,
    }
    _pool_agree("max_pool2d", xs, hp, seed=sum(xs))


@pytest.mark.parametrize("count_include_pad", [False, True])
@pytest.mark.parametrize(("xs", "kernel", "stride", "padding", "ceil"), AVG_CONFIGS)
def test_avg_pool2d_oracles_agree(xs, kernel, stride, padding, ceil, count_include_pad) -> None:
    hp = {
        "kernel_size": kernel,
        "stride": stride,
        "padding": padding,
        "ceil_mode": ceil,
        "count_include_pad": count_include_pad,
    }
    _pool_agree("avg_pool2d", xs, hp, seed=sum(xs))


@pytest.mark.parametrize("name", ORACLE_NAMES)
def test_float64_out_and_inputs_untouched(name: str) -> None:
    m = module(name)
    rng = np.random.default_rng(3)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((1, 2, 5, 5), (2, 2, 3, 3), (2,)))
    copies = [a.copy() for a in (x, w, b)]
    hp = {"stride": (2, 1), "padding": (1, 0, 0, 1), "dilation": (1, 1), "groups": 1}
    y = m.conv2d_forward(x, w, b, **hp)
    grads = m.conv2d_backward(np.ones(y.shape, np.float32), x, w, b, **hp)
    pooled = [
        m.max_pool2d_forward(
            x, kernel_size=(2, 2), stride=(1, 1), padding=(1, 0, 0, 1), dilation=(1, 1), ceil_mode=False
        ),
        m.avg_pool2d_forward(
            x,
            kernel_size=(2, 2),
            stride=(1, 1),
            padding=(1, 0, 0, 1),
            ceil_mode=False,
            count_include_pad=False,
        ),
    ]
    assert all(a.dtype == np.float64 for a in (y, *grads, *pooled))
    for a, c in zip((x, w, b), copies, strict=True):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("name", ORACLE_NAMES)
def test_any_memory_layout(name: str) -> None:
    """Flipped (negative-stride) and Fortran-ordered inputs give the contiguous answers."""
    m = module(name)
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((2, 2, 5, 6)), rng.standard_normal((3, 2, 2, 3))
    hp = {"stride": (1, 2), "padding": (0, 1, 1, 0), "dilation": (2, 1), "groups": 1}
    dy = rng.standard_normal(m.conv2d_forward(x, w, None, **hp).shape)
    x_flipped = x[:, :, ::-1, ::-1].copy()[:, :, ::-1, ::-1]  # same values, negative strides
    dy_flipped = dy[..., ::-1].copy()[..., ::-1]
    expected = m.conv2d_backward(dy, x, w, None, **hp)
    got = m.conv2d_backward(dy_flipped, x_flipped, np.asfortranarray(w), None, **hp)
    for e, g in zip(expected[:2], got[:2], strict=True):
        np.testing.assert_array_equal(e, g)
    pool_hp = {"kernel_size": (2, 2), "stride": (1, 2), "padding": (1, 0, 0, 1), "dilation": (1, 1)}
    np.testing.assert_array_equal(
        m.max_pool2d_forward(x_flipped, ceil_mode=True, **pool_hp),
        m.max_pool2d_forward(x, ceil_mode=True, **pool_hp),
    )


# --------------------------------------------------------------------------- (c) invalid configurations

TRAP = {
    "kernel_size": (2, 4),
    "stride": (1, 2),
    "padding": (1, 1, 1, 1),
    "dilation": (2, 2),
    "ceil_mode": True,
}
"""H = 1, kernel 2 dilated by 2: the only window reads rows -1 and 1, both padding."""


@pytest.mark.parametrize("name", ORACLE_NAMES)
def test_invalid_max_pool_configuration_never_reaches_torch(name: str, monkeypatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("torch was called on an invalid configuration")

    for fn in ("max_pool2d", "avg_pool2d", "conv2d", "pad"):
        monkeypatch.setattr(torch.nn.functional, fn, boom)
    m = module(name)
    x = np.zeros((2, 3, 1, 4))
    with pytest.raises(InvalidConfiguration):
        m.max_pool2d_forward(x, **TRAP)
    with pytest.raises(InvalidConfiguration):
        m.max_pool2d_backward(np.ones((2, 3, 1, 1)), x, **TRAP)
    with pytest.raises(InvalidConfiguration):  # kernel longer than the padded input
        m.conv2d_forward(
            x, np.ones((1, 3, 3, 3)), None, stride=(1, 1), padding=(0, 1, 0, 0), dilation=(1, 1), groups=1
        )


# --------------------------------------------------------------------------- (d) ties

TIE_CONFIGS = [
    pytest.param((2, 3, 6, 6), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), False, id="overlap-padded"),
    pytest.param((1, 2, 7, 5), (2, 3), (2, 1), (0, 1, 1, 0), (2, 1), True, id="dilated-asym-ceil"),
    pytest.param((1, 1, 4, 4), (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), False, id="tiling"),
]


@pytest.mark.parametrize(("xs", "kernel", "stride", "padding", "dilation", "ceil"), TIE_CONFIGS)
def test_torch_routes_ties_to_the_first_maximum(xs, kernel, stride, padding, dilation, ceil) -> None:
    """On an all-equal input every window is one big tie: torch must do what ``ties="first"`` says."""
    hp = {
        "kernel_size": kernel,
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "ceil_mode": ceil,
    }
    x = np.full(xs, 7.0)
    dy = np.random.default_rng(0).standard_normal(module("scipy").max_pool2d_forward(x, **hp).shape)
    first = module("scipy").max_pool2d_backward(dy, x, ties="first", **hp)
    np.testing.assert_allclose(module("torch").max_pool2d_backward(dy, x, **hp), first, **TOL)


@pytest.mark.parametrize("name", ORACLE_NAMES)
def test_tie_rules_on_one_window(name: str) -> None:
    """Window ``[[1, 5], [5, 2]]``: first -> (0, 1), last -> (1, 0), split -> half each."""
    x = as_nchw([[1, 5], [5, 2]])
    hp = {**MAXPOOL_2X2, "ceil_mode": False}
    expected = {"first": [[0, 4], [0, 0]], "last": [[0, 0], [4, 0]], "split": [[0, 2], [2, 0]]}
    for ties, dx in expected.items():
        if not ORACLES[name].covers("max_pool2d", {"ties": ties}):
            with pytest.raises(NotImplementedError):
                module(name).max_pool2d_backward(np.full((1, 1, 1, 1), 4.0), x, ties=ties, **hp)
            continue
        got = module(name).max_pool2d_backward(np.full((1, 1, 1, 1), 4.0), x, ties=ties, **hp)
        np.testing.assert_array_equal(got, as_nchw(dx), err_msg=ties)


@pytest.mark.parametrize(("xs", "kernel", "stride", "padding", "dilation", "ceil"), TIE_CONFIGS[:2])
def test_split_on_a_constant_input_is_average_pooling_of_the_real_cells(
    xs, kernel, stride, padding, dilation, ceil
) -> None:
    """All real cells tie, so "split" shares ``dy`` like avg-pool with ``count_include_pad=False``."""
    s = module("scipy")
    hp = {"kernel_size": kernel, "stride": stride, "padding": padding, "ceil_mode": ceil}
    x = np.full(xs, -3.0)
    dy = np.random.default_rng(1).standard_normal(s.max_pool2d_forward(x, dilation=dilation, **hp).shape)
    split = s.max_pool2d_backward(dy, x, dilation=dilation, ties="split", **hp)
    if dilation == (1, 1):
        avg = s.avg_pool2d_backward(dy, x, count_include_pad=False, **hp)
        np.testing.assert_allclose(split, avg, **TOL)
    # Whatever the windows, "split" (like every rule) hands out all of dy.
    np.testing.assert_allclose(split.sum(), dy.sum(), **TOL)


def test_last_is_first_on_the_flipped_input() -> None:
    """When the windows tile the padded input exactly, flipping both spatial axes
    (and swapping the paddings) reverses every window's order: "last" on ``x`` is
    "first" on ``flip(x)``, flipped back."""
    s = module("scipy")
    hp = {"kernel_size": (3, 2), "stride": (2, 2), "dilation": (1, 1), "ceil_mode": False}
    x = np.random.default_rng(2).integers(0, 3, (2, 2, 5, 5)).astype(float)  # many ties
    padding, swapped = (1, 1, 1, 0), (1, 1, 0, 1)
    dy = np.random.default_rng(3).standard_normal(s.max_pool2d_forward(x, padding=padding, **hp).shape)
    last = s.max_pool2d_backward(dy, x, padding=padding, ties="last", **hp)
    flip = (slice(None), slice(None), slice(None, None, -1), slice(None, None, -1))
    first_flipped = s.max_pool2d_backward(dy[flip], x[flip], padding=swapped, ties="first", **hp)
    np.testing.assert_allclose(last, first_flipped[flip], **TOL)
    assert not np.allclose(last, s.max_pool2d_backward(dy, x, padding=padding, ties="first", **hp))


# --------------------------------------------------------------------------- registry


def test_coverage() -> None:
    scipy, torch_ = ORACLES["scipy"], ORACLES["torch"]
    for pool_op in ("max_pool1d", "max_pool2d", "max_pool3d"):
        for ties in ("first", "last", "split"):
            assert scipy.covers(pool_op, {"ties": ties})
            assert torch_.covers(pool_op, {"ties": ties}) == (ties == "first")
    for conv_op in ("conv1d", "conv2d", "conv3d"):
        for convention in CONVENTIONS:
            assert scipy.covers(conv_op, {"convention": convention})
            assert torch_.covers(conv_op, {"convention": convention, "ties": "split"})
        assert not scipy.covers(conv_op, {"convention": "mirror"})
    assert {"convention", "ties", "derivative_at_zero", "pad_value", "ceil_rule"} == SEMANTIC_OPTIONS
    # every-max routing has a scipy answer; "any" valid subgradient and a ReLU'(0) other than 0 have none
    assert scipy.covers("max_pool2d", {"ties": "all"}) and not scipy.covers("max_pool2d", {"ties": "any"})
    assert scipy.covers("relu", {"derivative_at_zero": 0})
    assert not scipy.covers("relu", {"derivative_at_zero": 1})
    # Operations without semantic features: covered whatever the (other operations') options say.
    for op_name in ("relu", "sigmoid", "tanh", "linear", "flatten", "softmax_cross_entropy", "avg_pool3d"):
        for oracle in (scipy, torch_):
            assert oracle.covers(op_name)
            assert oracle.covers(op_name, {"ties": "split", "convention": "convolution"})


@pytest.mark.parametrize("name", ORACLE_NAMES)
def test_call_passes_each_function_only_its_semantic_options(name: str) -> None:
    semantics = {"convention": "convolution", "ties": "first"}
    x = as_nchw(MAXPOOL_X)
    y = call(name, "max_pool2d_forward", x, semantics=semantics, ceil_mode=False, **MAXPOOL_2X2)
    np.testing.assert_array_equal(y, as_nchw([[6, 8], [3, 4]]))
    k = as_nchw(KERNEL)
    y = call(name, "conv2d_forward", x, k, None, semantics=semantics, padding=(2, 2, 2, 2), **UNIT_CONV)
    expected = convolve2d(np.array(MAXPOOL_X, float), np.array(KERNEL, float), mode="full")
    np.testing.assert_allclose(y[0, 0], expected, **TOL)
    with pytest.raises(KeyError):
        call(name, "max_pool2d_forward", x, semantics={"tie": "first"}, ceil_mode=False, **MAXPOOL_2X2)


# --------------------------------------------------------------------------- (e) the layers around the core

LOG2 = float(np.log(2.0))
EXACT = {"rtol": 0.0, "atol": 0.0}
NO_FLOAT_TRAPS = {"over": "raise", "invalid": "raise", "divide": "raise"}
"""NumPy error states under which the oracles must still run: no overflow, NaN or division by zero."""


def assert_loss(loss: Any, expected: float, **tol: float) -> None:
    """A loss is a 0-d float64 array equal to ``expected``."""
    assert isinstance(loss, np.ndarray) and loss.shape == () and loss.dtype == np.float64
    np.testing.assert_allclose(loss, expected, **(tol or TOL))


@pytest.mark.parametrize("name", ORACLE_NAMES)
def test_relu_derivative_at_zero_is_zero(name: str) -> None:
    """``relu'(0) = 0``: the gradient passes only where ``x > 0``, so exact zeros (signed too) get none."""
    m = module(name)
    x = np.array([[-2.0, -0.0, 0.0, 3.0], [0.0, 1e-300, -1e-300, 0.0]])
    dy = np.full(x.shape, 5.0)
    np.testing.assert_array_equal(m.relu_forward(x), [[0, 0, 0, 3], [0, 1e-300, 0, 0]])
    np.testing.assert_array_equal(m.relu_backward(dy, x), [[0, 0, 0, 5], [0, 5, 0, 0]])


@pytest.mark.parametrize("name", ORACLE_NAMES)
def test_sigmoid_and_tanh_worked_values(name: str) -> None:
    """``sigmoid(0) = 1/2``, ``sigmoid(log 3) = 3/4`` (slopes ``1/4`` and ``3/16``);
    ``tanh(0) = 0``, ``tanh(log 2) = 3/5`` (slopes 1 and ``16/25``)."""
    m = module(name)
    x = np.array([0.0, np.log(3.0)])
    dy = np.array([2.0, 16.0])
    np.testing.assert_allclose(m.sigmoid_forward(x), [0.5, 0.75], **TOL)
    np.testing.assert_allclose(m.sigmoid_backward(dy, x), [0.5, 3.0], **TOL)
    x = np.array([0.0, np.log(2.0)])
    np.testing.assert_allclose(m.tanh_forward(x), [0.0, 0.6], **TOL)
    np.testing.assert_allclose(m.tanh_backward(np.array([2.0, 25.0]), x), [2.0, 16.0], **TOL)


@pytest.mark.parametrize("name", ORACLE_NAMES)
def test_activations_saturate_without_overflow(name: str) -> None:
    """``|x| = 1e4``: ``exp`` of it overflows, the answers (0 or 1, slope 0) do not."""
    m = module(name)
    x = np.array([-1e4, -800.0, 800.0, 1e4])
    dy = np.ones_like(x)
    with np.errstate(**NO_FLOAT_TRAPS):
        np.testing.assert_array_equal(m.sigmoid_forward(x), [0, 0, 1, 1])
        np.testing.assert_array_equal(m.sigmoid_backward(dy, x), [0, 0, 0, 0])
        np.testing.assert_array_equal(m.tanh_forward(x), [-1, -1, 1, 1])
        np.testing.assert_array_equal(m.tanh_backward(dy, x), [0, 0, 0, 0])


@pytest.mark.parametrize("name", ORACLE_NAMES)
def test_sigmoid_keeps_subnormal_values(name: str) -> None:
    """Below ``x = -709.78`` ``exp(-x)`` overflows but ``sigmoid(x) = exp(x) (1 - exp(x) + ...)`` is a
    subnormal; ``dy * sigmoid'(x)`` with a large ``dy`` is back in the normal range and must not be 0."""
    m = module(name)
    x = np.array([-715.5, -730.0])
    dy = np.array([3e3, 1e15])
    expected = np.exp(x)  # 1 + exp(x) rounds to 1
    np.testing.assert_allclose(m.sigmoid_forward(x), expected, rtol=1e-6, atol=0)
    np.testing.assert_allclose(m.sigmoid_backward(dy, x), dy * expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("name", ORACLE_NAMES)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_worked_example(name: str, bias: bool) -> None:
    """``y = x w^T + b``, ``dx = dy w``, ``dw = dy^T x``, ``db = sum_n dy``; ``db`` is ``None`` without ``b``."""
    m = module(name)
    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    w = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    b = np.array([0.5, -1.0, 0.0]) if bias else None
    y = m.linear_forward(x, w, b)
    expected = np.array([[1.0, 2.0, 3.0], [3.0, -1.0, 2.0]]) + (b if bias else 0.0)
    np.testing.assert_array_equal(y, expected)
    dy = np.array([[1.0, 1.0, 1.0], [0.0, 2.0, -1.0]])
    dx, dw, db = m.linear_backward(dy, x, w, b)
    np.testing.assert_array_equal(dx, [[2.0, 2.0], [-1.0, 1.0]])
    np.testing.assert_array_equal(dw, [[1.0, 2.0], [7.0, 0.0], [-2.0, 3.0]])
    if bias:
        np.testing.assert_array_equal(db, [1.0, 3.0, 0.0])
    else:
        assert db is None


@pytest.mark.parametrize("name", ORACLE_NAMES)
@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4), (2, 3, 4, 5), (1, 2, 3, 2, 2)])
def test_flatten_is_row_major(name: str, shape: tuple[int, ...]) -> None:
    """``y[n] = x[n].ravel()`` (channel slowest, last axis fastest); backward is the inverse reshape."""
    m = module(name)
    x = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    y = m.flatten_forward(x)
    assert y.shape == (shape[0], int(np.prod(shape[1:])))
    for n in range(shape[0]):
        np.testing.assert_array_equal(y[n], x[n].ravel())
    np.testing.assert_array_equal(m.flatten_backward(y, x), x)


@pytest.mark.parametrize("name", ORACLE_NAMES)
def test_softmax_cross_entropy_worked_examples(name: str) -> None:
    """Two equal logits: ``loss = log 2``, ``dz = [p - 1, p] = [-1/2, 1/2]``. Then a batch of two."""
    m = module(name)
    loss, dz = m.softmax_cross_entropy(np.array([[0.0, 0.0]]), np.array([0]))
    assert_loss(loss, LOG2)
    np.testing.assert_allclose(dz, [[-0.5, 0.5]], **TOL)
    z = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    loss, dz = m.softmax_cross_entropy(z, np.array([2, 1]))
    e = np.exp([1.0, 2.0, 3.0])
    assert_loss(loss, (np.log(e.sum()) - 3.0 + np.log(3.0)) / 2)
    expected = np.vstack([e / e.sum() - [0, 0, 1], np.full(3, 1 / 3) - [0, 1, 0]]) / 2
    np.testing.assert_allclose(dz, expected, **TOL)


@pytest.mark.parametrize("name", ORACLE_NAMES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_cross_entropy_large_logits(name: str, dtype: str) -> None:
    """``|z| = 1e4`` (``exp`` overflows at 710): the loss is the analytic value, ``dz`` exact.

    Row 1 (label 1): ``logsumexp(1e4, 0) - 0 = 1e4``; row 2 (label 0): ``1e4 - (-1e4) = 2e4``;
    the mean is ``1.5e4``. Row 3: two equal huge logits, ``log 2``.
    """
    m = module(name)
    z = np.array([[1e4, 0.0], [-1e4, 1e4], [1e4, 1e4]], dtype=dtype)
    with np.errstate(**NO_FLOAT_TRAPS):
        loss, dz = m.softmax_cross_entropy(z, np.array([1, 0, 0]))
    assert_loss(loss, (1e4 + 2e4 + LOG2) / 3)
    np.testing.assert_allclose(dz, np.array([[1.0, -1.0], [-1.0, 1.0], [-0.5, 0.5]]) / 3, **TOL)


@pytest.mark.parametrize("name", ORACLE_NAMES)
def test_sigmoid_binary_cross_entropy_worked_examples(name: str) -> None:
    """``z = 0, y = 1``: ``log 2``, ``dz = 1/2 - 1``. Soft targets: ``z = 0, y = 1/2`` gives ``log 2``
    and no gradient; ``z = log 3, y = 1``: ``log(4/3)``, ``dz = 3/4 - 1``; the mean runs over all elements."""
    m = module(name)
    loss, dz = m.sigmoid_binary_cross_entropy(np.array([0.0]), np.array([1.0]))
    assert_loss(loss, LOG2)
    np.testing.assert_allclose(dz, [-0.5], **TOL)
    z, y = np.array([[0.0, np.log(3.0)]]), np.array([[0.5, 1.0]])
    loss, dz = m.sigmoid_binary_cross_entropy(z, y)
    assert_loss(loss, (LOG2 + np.log(4.0 / 3.0)) / 2)
    np.testing.assert_allclose(dz, [[0.0, -0.125]], **TOL)


@pytest.mark.parametrize("name", ORACLE_NAMES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_binary_cross_entropy_large_logits(name: str, dtype: str) -> None:
    """``|z| = 1e4``: right answers cost 0, wrong ones ``|z|``; ``dz = (s - y) / 4`` is 0 or ``+-1/4``."""
    m = module(name)
    z = np.array([1e4, -1e4, 1e4, -1e4], dtype=dtype)
    with np.errstate(**NO_FLOAT_TRAPS):
        loss, dz = m.sigmoid_binary_cross_entropy(z, np.array([1.0, 0.0, 0.0, 1.0], dtype=dtype))
    assert_loss(loss, 5e3)
    np.testing.assert_allclose(dz, [0.0, 0.0, 0.25, -0.25], **TOL)


@pytest.mark.parametrize("name", ORACLE_NAMES)
def test_labels_must_be_class_indices(name: str) -> None:
    m = module(name)
    z = np.zeros((2, 3))
    for labels in (np.array([0, 3]), np.array([-1, 0]), np.array([0.5, 1.0]), np.array([True, False])):
        with pytest.raises(InvalidConfiguration):
            m.softmax_cross_entropy(z, labels)
    loss, _ = m.softmax_cross_entropy(z, np.array([2.0, 0.0]))  # integer-valued floats are indices
    assert_loss(loss, np.log(3.0))


# --------------------------------------------------------------------------- (f) 1-D and 3-D against direct loops


def _axis_pads(padding: tuple[int, ...]) -> list[tuple[int, int]]:
    return [(padding[2 * a], padding[2 * a + 1]) for a in range(len(padding) // 2)]


def direct_conv(
    dy: np.ndarray | None, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, hp: dict[str, Any]
) -> tuple[np.ndarray, ...]:
    """``y``, and with ``dy`` also ``dx, dw, db``, by one loop over output positions, taps and channels:
    ``y[n, co, o] += xp[n, g(co)*Cg + c, o*s + a*d] * w[co, c, a]``, each product's gradient accumulated."""
    stride, dilation, groups = hp["stride"], hp["dilation"], hp["groups"]
    pads = _axis_pads(hp["padding"])
    xp = np.pad(x, [(0, 0), (0, 0), *pads])
    kernel = w.shape[2:]
    out = [(xp.shape[2 + a] - dilation[a] * (k - 1) - 1) // stride[a] + 1 for a, k in enumerate(kernel)]
    c_per_group, out_per_group = w.shape[1], w.shape[0] // groups
    y = np.zeros((x.shape[0], w.shape[0], *out))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for o in itertools.product(*map(range, out)):
        for tap in itertools.product(*map(range, kernel)):
            cell = tuple(o[a] * stride[a] + tap[a] * dilation[a] for a in range(len(kernel)))
            for co, c in itertools.product(range(w.shape[0]), range(c_per_group)):
                ci = co // out_per_group * c_per_group + c
                y[(slice(None), co, *o)] += xp[(slice(None), ci, *cell)] * w[(co, c, *tap)]
                if dy is not None:
                    dxp[(slice(None), ci, *cell)] += dy[(slice(None), co, *o)] * w[(co, c, *tap)]
                    dw[(co, c, *tap)] += dy[(slice(None), co, *o)] @ xp[(slice(None), ci, *cell)]
    if b is not None:
        y += b.reshape(-1, *(1,) * len(kernel))
    if dy is None:
        return (y,)
    crop = tuple(slice(lo, lo + n) for (lo, _), n in zip(pads, x.shape[2:], strict=True))
    db = None if b is None else dy.sum(axis=(0, *range(2, dy.ndim)))
    return y, dxp[(slice(None), slice(None), *crop)], dw, db


# (x shape, w shape, bias, stride, padding, dilation, groups)
CONV_ND_CONFIGS = [
    pytest.param((2, 4, 11), (6, 2, 3), True, (2,), (2, 1), (2,), 2, id="1d-all"),
    pytest.param((1, 1, 4), (2, 1, 6), False, (1,), (1, 2), (1,), 1, id="1d-kernel>input"),
    pytest.param((1, 3, 9), (3, 1, 2), True, (4,), (0, 3), (3,), 3, id="1d-depthwise"),
    pytest.param(
        (1, 2, 5, 6, 4), (2, 2, 2, 3, 2), True, (2, 1, 3), (1, 0, 0, 2, 1, 1), (1, 2, 1), 1, id="3d-all"
    ),
    pytest.param(
        (2, 4, 4, 3, 5), (4, 2, 1, 2, 3), False, (1, 2, 1), (0, 1, 1, 0, 2, 0), (2, 1, 1), 2, id="3d-groups"
    ),
]


@pytest.mark.parametrize("name", ORACLE_NAMES)
@pytest.mark.parametrize(("xs", "ws", "bias", "stride", "padding", "dilation", "groups"), CONV_ND_CONFIGS)
def test_conv_1d_3d_against_a_direct_loop(name, xs, ws, bias, stride, padding, dilation, groups) -> None:
    """Small integers, so every sum is exact whatever its order: the oracle must match the loop bit for bit."""
    rng = np.random.default_rng(len(xs) * 100 + sum(xs))
    x, w = rng.integers(-4, 5, xs).astype(float), rng.integers(-4, 5, ws).astype(float)
    b = rng.integers(-4, 5, ws[0]).astype(float) if bias else None
    hp = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    op = f"conv{len(xs) - 2}d"
    m = module(name)
    (y_loop,) = direct_conv(None, x, w, b, hp)
    y = getattr(m, f"{op}_forward")(x, w, b, **hp)
    np.testing.assert_array_equal(y, y_loop)
    dy = rng.integers(-4, 5, y.shape).astype(float)
    _, *grads_loop = direct_conv(dy, x, w, b, hp)
    grads = getattr(m, f"{op}_backward")(dy, x, w, b, **hp)
    for g_name, g, g_loop in zip(("dx", "dw", "db"), grads, grads_loop, strict=True):
        if g_loop is None:
            assert g is None
        else:
            np.testing.assert_array_equal(g, g_loop, err_msg=g_name)
    # The convolution convention is the cross-correlation with the kernel reversed on every axis.
    flip = (slice(None), slice(None), *(slice(None, None, -1),) * (len(xs) - 2))
    y_conv = getattr(m, f"{op}_forward")(x, w, b, convention="convolution", **hp)
    np.testing.assert_array_equal(y_conv, direct_conv(None, x, w[flip], b, hp)[0])
    dw_conv = getattr(m, f"{op}_backward")(dy, x, w, b, convention="convolution", **hp)[1]
    np.testing.assert_array_equal(dw_conv, direct_conv(dy, x, w[flip], b, hp)[2][flip])


def direct_pool(x: np.ndarray, dy: np.ndarray, hp: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(y, dx)`` of max pooling (``hp`` without ``count_include_pad``) or avg pooling, window by window.

    Each window lists its cells in row-major order. Max: padding and overhang
    read ``-inf``, ``argmax`` picks the first maximum, which gets the window's
    ``dy``. Avg: the sum of the real cells over the count of the cells inside
    the padded input (``count_include_pad``) or of the real cells only; each
    real cell gets ``dy / count``.
    """
    kernel, stride = hp["kernel_size"], hp["stride"]
    dilation = hp.get("dilation", (1,) * len(kernel))
    pads = _axis_pads(hp["padding"])
    is_max = "count_include_pad" not in hp
    params = (MAX_PARAMS if is_max else AVG_PARAMS)[len(kernel)](**hp)
    out = pool_output_shape(x.shape, params)
    sizes = x.shape[2:]
    y, dx = np.zeros(out), np.zeros(x.shape)
    for o in itertools.product(*map(range, out[2:])):
        axes = [
            [o[a] * stride[a] - pads[a][0] + j * dilation[a] for j in range(kernel[a])]
            for a in range(len(kernel))
        ]
        cells = list(itertools.product(*axes))
        real = [c for c in cells if all(0 <= c[a] < sizes[a] for a in range(len(c)))]
        g = dy[(slice(None), slice(None), *o)]
        if is_max:
            values = np.stack(
                [x[(..., *c)] if c in real else np.full(x.shape[:2], -np.inf) for c in cells], -1
            )
            y[(..., *o)] = values.max(axis=-1)
            first = values.argmax(axis=-1)
            for n, ch in itertools.product(range(x.shape[0]), range(x.shape[1])):
                dx[(n, ch, *cells[first[n, ch]])] += g[n, ch]
        else:
            inside = [
                c for c in cells if all(-pads[a][0] <= c[a] < sizes[a] + pads[a][1] for a in range(len(c)))
            ]
            count = len(inside) if hp["count_include_pad"] else len(real)
            y[(..., *o)] = sum(x[(..., *c)] for c in real) / count
            for c in real:
                dx[(..., *c)] += g / count
    return y, dx


MAX_PARAMS = {1: MaxPool1dParams, 2: MaxPool2dParams, 3: MaxPool3dParams}
AVG_PARAMS = {1: AvgPool1dParams, 2: AvgPool2dParams, 3: AvgPool3dParams}

# (x shape, kernel, stride, padding, dilation, ceil_mode)
MAX_ND_CONFIGS = [
    pytest.param((2, 2, 11), (3,), (2,), (1, 0), (2,), True, id="1d-asym-dilated-ceil"),
    pytest.param((1, 2, 7), (4,), (3,), (2, 2), (1,), True, id="1d-native-ceil"),
    pytest.param((2, 2, 5, 6, 7), (2, 3, 2), (2, 1, 3), (1, 0, 1, 1, 0, 1), (1, 2, 1), True, id="3d-all"),
    pytest.param((1, 2, 5, 5, 6), (3, 3, 3), (2, 2, 2), (1, 1, 1, 1, 1, 1), (1, 1, 1), True, id="3d-native"),
    pytest.param(
        (1, 1, 4, 6, 3), (2, 2, 2), (2, 3, 1), (2, 2, 0, 0, 1, 0), (3, 1, 2), False, id="3d-pad>k//2"
    ),
]

# (x shape, kernel, stride, padding, ceil_mode)
AVG_ND_CONFIGS = [
    pytest.param((2, 2, 11), (3,), (2,), (1, 0), True, id="1d-asym-ceil"),
    pytest.param((1, 2, 7), (4,), (3,), (2, 2), True, id="1d-native-ceil"),
    pytest.param((2, 2, 5, 6, 7), (2, 3, 2), (2, 1, 3), (1, 0, 1, 1, 0, 1), True, id="3d-asym-ceil"),
    pytest.param((1, 2, 5, 5, 6), (3, 3, 3), (2, 2, 2), (1, 1, 1, 1, 1, 1), True, id="3d-native"),
    pytest.param((1, 1, 2, 3, 4), (3, 2, 2), (1, 2, 1), (1, 1, 1, 1, 0, 0), False, id="3d-input<kernel"),
]


@pytest.mark.parametrize("name", ORACLE_NAMES)
@pytest.mark.parametrize(("xs", "kernel", "stride", "padding", "dilation", "ceil"), MAX_ND_CONFIGS)
def test_max_pool_1d_3d_against_a_direct_loop(name, xs, kernel, stride, padding, dilation, ceil) -> None:
    """Values in {0, 1, 2}: windows tie, and the first maximum in row-major window order must win."""
    hp = {
        "kernel_size": kernel,
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "ceil_mode": ceil,
    }
    rng = np.random.default_rng(sum(xs))
    x = rng.integers(0, 3, xs).astype(float)
    op = f"max_pool{len(kernel)}d"
    y = getattr(module(name), f"{op}_forward")(x, **hp)
    dy = rng.integers(-4, 5, y.shape).astype(float)
    y_loop, dx_loop = direct_pool(x, dy, hp)
    np.testing.assert_array_equal(y, y_loop)
    np.testing.assert_array_equal(getattr(module(name), f"{op}_backward")(dy, x, **hp), dx_loop)


@pytest.mark.parametrize("name", ORACLE_NAMES)
@pytest.mark.parametrize("count_include_pad", [False, True])
@pytest.mark.parametrize(("xs", "kernel", "stride", "padding", "ceil"), AVG_ND_CONFIGS)
def test_avg_pool_1d_3d_against_a_direct_loop(
    name, xs, kernel, stride, padding, ceil, count_include_pad
) -> None:
    hp = {
        "kernel_size": kernel,
        "stride": stride,
        "padding": padding,
        "ceil_mode": ceil,
        "count_include_pad": count_include_pad,
    }
    rng = np.random.default_rng(sum(xs))
    x = rng.standard_normal(xs)
    op = f"avg_pool{len(kernel)}d"
    y = getattr(module(name), f"{op}_forward")(x, **hp)
    dy = rng.standard_normal(y.shape)
    y_loop, dx_loop = direct_pool(x, dy, hp)
    np.testing.assert_allclose(y, y_loop, **TOL)
    np.testing.assert_allclose(getattr(module(name), f"{op}_backward")(dy, x, **hp), dx_loop, **TOL)


@pytest.mark.parametrize("name", ORACLE_NAMES)
def test_3d_tie_rules_follow_row_major_window_order(name: str) -> None:
    """One 2x2x2 window with maxima at (0, 1, 1) and (1, 0, 0): first, last or half each."""
    x = np.zeros((1, 1, 2, 2, 2))
    x[0, 0, 0, 1, 1] = x[0, 0, 1, 0, 0] = 3.0
    hp = {"kernel_size": (2, 2, 2), "stride": (2, 2, 2), "padding": (0,) * 6, "dilation": (1, 1, 1)}
    for ties, share in {"first": (4, 0), "last": (0, 4), "split": (2, 2)}.items():
        dy = np.full((1, 1, 1, 1, 1), 4.0)
        if not ORACLES[name].covers("max_pool3d", {"ties": ties}):
            with pytest.raises(NotImplementedError):
                module(name).max_pool3d_backward(dy, x, ties=ties, ceil_mode=False, **hp)
            continue
        dx = module(name).max_pool3d_backward(dy, x, ties=ties, ceil_mode=False, **hp)
        expected = np.zeros_like(x)
        expected[0, 0, 0, 1, 1], expected[0, 0, 1, 0, 0] = share
        np.testing.assert_array_equal(dx, expected, err_msg=ties)


# --------------------------------------------------------------------------- (g) every function


def sample_inputs(
    op_name: str, rng: np.random.Generator
) -> tuple[dict[str, Any], list[Any], np.ndarray | None]:
    """``(hyper-parameters, forward arrays, dy)`` of a small valid float32 case of ``op_name``."""
    op = OPERATIONS[op_name]
    nd = op.ndim
    if op.family == "conv":
        hp = {"stride": (2, 1, 2)[:nd], "padding": (1, 0, 0, 1, 1, 1)[: 2 * nd], "dilation": (1, 2, 1)[:nd]}
        hp["groups"] = 1
        shapes = [(2, 2, *(5, 6, 5)[:nd]), (3, 2, *(2, 2, 3)[:nd]), (3,)]
    elif nd:
        hp = {"kernel_size": (2,) * nd, "stride": (1, 2, 1)[:nd], "padding": (1, 0, 0, 1, 1, 0)[: 2 * nd]}
        hp["ceil_mode"] = True
        hp.update({"dilation": (1,) * nd} if op.family == "max_pool" else {"count_include_pad": False})
        shapes = [(2, 2, *(5, 6, 5)[:nd])]
    else:
        hp = {}
        shapes = {"linear": [(3, 4), (2, 4), (2,)], "softmax_cross_entropy": [(3, 4)]}.get(
            op_name, [(2, 3, 4)]
        )
    arrays: list[Any] = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    if op_name == "softmax_cross_entropy":
        arrays.append(rng.integers(0, 4, 3))
    if op_name == "sigmoid_binary_cross_entropy":
        arrays = [rng.standard_normal((3, 2)).astype(np.float32), rng.random((3, 2)).astype(np.float32)]
    if op.is_loss:
        return hp, arrays, None
    y_shape = op.output_shape(
        dict(zip(op.inputs, (a.shape for a in arrays), strict=True)), op.params_type(**hp)
    )
    return hp, arrays, rng.standard_normal(y_shape).astype(np.float32)


def layouts(arrays: list[Any]) -> Iterator[list[Any]]:
    """The arrays as given, then Fortran-ordered, then with negative strides on every axis."""
    yield arrays
    yield [a if a is None or a.dtype.kind != "f" else np.asfortranarray(a) for a in arrays]
    yield [
        a
        if a is None or a.dtype.kind != "f"
        else a[(slice(None, None, -1),) * a.ndim].copy()[(slice(None, None, -1),) * a.ndim]
        for a in arrays
    ]


@pytest.mark.parametrize("name", ORACLE_NAMES)
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_every_function_float64_out_inputs_untouched_any_layout(name: str, operation: str) -> None:
    """Both oracles define every contract function: float64 out (a loss 0-d), inputs left alone,
    and the same bits for any memory layout of the inputs."""
    op, m = OPERATIONS[operation], module(name)
    hp, arrays, dy = sample_inputs(operation, np.random.default_rng(5))
    copies = [a.copy() for a in arrays]
    answers = []
    for given_arrays in layouts(arrays):
        out = list(_as_tuple(getattr(m, op.forward)(*given_arrays, **hp)))
        if not op.is_loss:
            out += list(_as_tuple(getattr(m, op.backward)(dy, *given_arrays, **hp)))
        assert all(a.dtype == np.float64 for a in out if a is not None)
        answers.append(out)
    if op.is_loss:
        assert answers[0][0].shape == ()
    for other in answers[1:]:
        for a, b in zip(answers[0], other, strict=True):
            np.testing.assert_array_equal(a, b)
    for a, c in zip(arrays, copies, strict=True):
        np.testing.assert_array_equal(a, c)


def test_both_oracles_define_every_contract_function() -> None:
    for name in ORACLE_NAMES:
        for function_name in FUNCTION_NAMES:
            assert callable(ORACLES[name].function(function_name)), (name, function_name)


INVALID = [
    pytest.param(
        "conv1d_forward",
        (np.zeros((1, 2, 3)), np.zeros((1, 2, 5)), None),
        {"stride": (1,), "padding": (0, 1), "dilation": (1,), "groups": 1},
        id="conv1d-kernel>input",
    ),
    pytest.param(
        "conv3d_forward",
        (np.zeros((1, 3, 4, 4, 4)), np.zeros((2, 2, 1, 1, 1)), None),
        {"stride": (1,) * 3, "padding": (0,) * 6, "dilation": (1,) * 3, "groups": 2},
        id="conv3d-groups",
    ),
    pytest.param(
        "max_pool3d_forward",
        (np.zeros((1, 1, 1, 1, 4)),),
        {
            "kernel_size": (1, 2, 2),
            "stride": (1, 1, 2),
            "padding": (0, 0, 1, 1, 1, 1),
            "dilation": (1, 2, 2),
            "ceil_mode": True,
        },
        id="max_pool3d-window-in-padding",
    ),
    pytest.param(
        "avg_pool1d_forward",
        (np.zeros((1, 1, 4)),),
        {
            "kernel_size": (2,),
            "stride": (1,),
            "padding": (2, 0),
            "ceil_mode": False,
            "count_include_pad": True,
        },
        id="avg_pool1d-pad>k/2",
    ),
    pytest.param("relu_forward", (np.zeros(()),), {}, id="relu-0d"),
    pytest.param("linear_forward", (np.zeros((2, 3)), np.zeros((4, 5)), None), {}, id="linear-in-mismatch"),
    pytest.param(
        "linear_backward",
        (np.zeros((2, 4)), np.zeros((2, 3)), np.zeros((4, 3)), np.zeros(3)),
        {},
        id="linear-bias-shape",
    ),
    pytest.param("flatten_forward", (np.zeros(5),), {}, id="flatten-1d"),
    pytest.param("flatten_backward", (np.zeros((2, 5)), np.zeros((2, 3, 2))), {}, id="flatten-dy-shape"),
    pytest.param("sigmoid_backward", (np.zeros((2, 3)), np.zeros((3, 2))), {}, id="sigmoid-dy-shape"),
    pytest.param(
        "softmax_cross_entropy", (np.zeros((2, 3)), np.zeros(3, dtype=int)), {}, id="softmax-labels"
    ),
    pytest.param("sigmoid_binary_cross_entropy", (np.zeros((2, 1)), np.zeros(2)), {}, id="bce-y-shape"),
]


@pytest.mark.parametrize("name", ORACLE_NAMES)
@pytest.mark.parametrize(("function_name", "arrays", "hp"), INVALID)
def test_invalid_configurations_of_new_operations_never_reach_torch(
    name, function_name, arrays, hp, monkeypatch
):
    def boom(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("torch was called on an invalid configuration")

    for fn in (
        "conv1d",
        "conv3d",
        "max_pool3d",
        "avg_pool1d",
        "pad",
        "linear",
        "cross_entropy",
        "binary_cross_entropy_with_logits",
    ):
        monkeypatch.setattr(torch.nn.functional, fn, boom)
    for fn in ("relu", "sigmoid", "flatten"):
        monkeypatch.setattr(torch, fn, boom)
    with pytest.raises(InvalidConfiguration):
        ORACLES[name].function(function_name)(*arrays, **hp)


@pytest.mark.parametrize("name", ORACLE_NAMES)
def test_call_passes_no_semantic_option_to_operations_without_one(name: str) -> None:
    semantics = {"convention": "convolution", "ties": "first"}
    x = np.array([[-1.0, 0.0, 2.0]])
    np.testing.assert_array_equal(
        call(name, "relu_backward", np.ones((1, 3)), x, semantics=semantics), [[0, 0, 1]]
    )
    loss, _ = call(name, "softmax_cross_entropy", np.zeros((1, 2)), np.array([1]), semantics=semantics)
    assert_loss(loss, LOG2)
    y = call(
        name,
        "conv1d_forward",
        np.array([[[1.0, 2.0, 3.0]]]),
        np.array([[[1.0, 0.0]]]),
        None,
        semantics=semantics,
        stride=(1,),
        padding=(0, 0),
        dilation=(1,),
        groups=1,
    )
    np.testing.assert_array_equal(y, [[[2.0, 3.0]]])  # convolution: the kernel reversed, [0, 1]

"""The oracles: worked examples, agreement with each other, refusal of invalid configurations, ties.

The two oracles (``scipy``: textbook derivation on scipy.signal plus NumPy sliding
windows; ``torch``: torch.nn.functional with autograd) are written independently,
so their agreement to ``1e-12`` in float64 on hand-picked configurations is the
evidence that both compute the spec.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d

from convcheck.oracles import ORACLES, SEMANTIC_OPTIONS, call
from convcheck.spec import InvalidConfiguration
from convcheck.spec.conv import output_shape as conv_output_shape
from convcheck.spec.params import AvgPool2dParams, Conv2dParams, MaxPool2dParams
from convcheck.spec.pool import output_shape as pool_output_shape

ORACLE_NAMES = sorted(ORACLES)
TOL: dict[str, float] = {"rtol": 1e-12, "atol": 1e-12}
CONVENTIONS = ("cross-correlation", "convolution")


def module(name: str) -> Any:
    return ORACLES[name].module


def as_nchw(a: list[list[float]]) -> np.ndarray:
    return np.array(a, dtype=np.float64)[None, None]


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
    for ties in ("first", "last", "split"):
        assert scipy.covers("max_pool2d", {"ties": ties})
        assert torch_.covers("max_pool2d", {"ties": ties}) == (ties == "first")
    for convention in CONVENTIONS:
        assert scipy.covers("conv2d", {"convention": convention})
        assert torch_.covers("conv2d", {"convention": convention, "ties": "split"})
    assert not scipy.covers("conv2d", {"convention": "mirror"})
    assert {"convention", "ties"} == SEMANTIC_OPTIONS


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

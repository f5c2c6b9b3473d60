"""Meta-tests of ``impls/adapters.py`` and the plug-ins in ``examples/``.

Every adapted function is compared with PyTorch float64 autograd applied
directly to ``torch.nn.functional`` on hand-picked configurations inside the
plug-in's declared capabilities: the 2-D core through the example plug-ins,
and the other operations (1-D and 3-D windows, activations, ``linear``,
``flatten``, the losses) through CS231n-style functions defined here and
through ``from_torch`` / ``from_jax`` on ``torch.nn.functional`` forwards.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convcheck.impls import adapters, numpy_reference
from convcheck.spec import OPERATIONS, ContractError, parse_capabilities

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load_example(name: str) -> types.ModuleType:
    """Import ``examples/<name>.py`` by path, as a plug-in loader would."""
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cs231n() -> types.ModuleType:
    return _load_example("cs231n_plugin")


@pytest.fixture(scope="module")
def torch_plugin() -> types.ModuleType:
    return _load_example("torch_forward_only")


# --- CS231n-style layers beyond the example (a student's extension of the API) ----------


def _conv_nd_forward_naive(x, w, b, conv_param):
    """conv_param = {'stride', 'pad'} for any number of spatial axes (computed by numpy_reference)."""
    nd = x.ndim - 2
    hp = {"stride": (conv_param["stride"],) * nd, "padding": (conv_param["pad"],) * (2 * nd)}
    out = numpy_reference.conv_forward(x, w, b, **hp, dilation=(1,) * nd, groups=1)
    return out, (x, w, b, hp)


def _conv_nd_backward_naive(dout, cache):
    x, w, b, hp = cache
    nd = x.ndim - 2
    return numpy_reference.conv_backward(dout, x, w, b, **hp, dilation=(1,) * nd, groups=1)


_POOL_KEYS = {1: ("pool_length",), 3: ("pool_depth", "pool_height", "pool_width")}


def _max_pool_nd_forward_naive(x, pool_param):
    """pool_param = {'pool_length'} (1-D) or {'pool_depth', 'pool_height', 'pool_width'} (3-D), 'stride'."""
    nd = x.ndim - 2
    hp = {
        "kernel_size": tuple(pool_param[k] for k in _POOL_KEYS[nd]),
        "stride": (pool_param["stride"],) * nd,
        "padding": (0,) * (2 * nd),
        "dilation": (1,) * nd,
        "ceil_mode": False,
    }
    return numpy_reference.max_pool_forward(x, **hp), (x, hp)


def _max_pool_nd_backward_naive(dout, cache):
    x, hp = cache
    return numpy_reference.max_pool_backward(dout, x, **hp)


def _relu_forward(x):
    return np.maximum(0, x), x


def _relu_backward(dout, cache):
    return dout * (cache > 0)


def _sigmoid_forward(x):
    out = 1 / (1 + np.exp(-x))
    return out, out


def _sigmoid_backward(dout, cache):
    return dout * cache * (1 - cache)


def _tanh_forward(x):
    out = np.tanh(x)
    return out, out


def _tanh_backward(dout, cache):
    return dout * (1 - cache**2)


def _affine_forward(x, w, b):
    """CS231n's affine layer: ``w`` is (D, M), ``out = x.reshape(N, D) @ w + b``."""
    return x.reshape(x.shape[0], -1) @ w + b, (x, w, b)


def _affine_backward(dout, cache):
    x, w, _ = cache
    return (dout @ w.T).reshape(x.shape), x.reshape(x.shape[0], -1).T @ dout, dout.sum(axis=0)


def _softmax_loss(x, y):
    """CS231n's softmax_loss: the batch-mean loss and its gradient."""
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = x.shape[0]
    dx = np.exp(log_probs)
    dx[np.arange(n), y] -= 1
    return -log_probs[np.arange(n), y].mean(), dx / n


CS231N_LAYERS = {
    "conv1d_forward_naive": _conv_nd_forward_naive,
    "conv1d_backward_naive": _conv_nd_backward_naive,
    "conv3d_forward_naive": _conv_nd_forward_naive,
    "conv3d_backward_naive": _conv_nd_backward_naive,
    "max_pool1d_forward_naive": _max_pool_nd_forward_naive,
    "max_pool1d_backward_naive": _max_pool_nd_backward_naive,
    "max_pool3d_forward_naive": _max_pool_nd_forward_naive,
    "max_pool3d_backward_naive": _max_pool_nd_backward_naive,
    "relu_forward": _relu_forward,
    "relu_backward": _relu_backward,
    "sigmoid_forward": _sigmoid_forward,
    "sigmoid_backward": _sigmoid_backward,
    "tanh_forward": _tanh_forward,
    "tanh_backward": _tanh_backward,
    "affine_forward": _affine_forward,
    "affine_backward": _affine_backward,
    "softmax_loss": _softmax_loss,
}


@pytest.fixture(scope="module")
def cs231n_more() -> types.ModuleType:
    """``from_cs231n`` on the layers above (a mapping of the CS231n names)."""
    return adapters.from_cs231n(CS231N_LAYERS)


def _pads(padding: tuple[int, ...]) -> list[int]:
    """``F.pad`` widths (the last axis first) from the contract's flattened (lo, hi) pairs."""
    pairs = [padding[i : i + 2] for i in range(0, len(padding), 2)]
    return [p for pair in reversed(pairs) for p in pair]


def _functional_forwards() -> dict[str, Any]:
    """A forward per operation beyond the 2-D core, straight from torch.nn.functional
    (pools with torch's symmetric ``padding``: the lows of the contract's pairs)."""
    forwards: dict[str, Any] = {
        "relu": F.relu,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "linear": F.linear,
        "flatten": lambda x: torch.flatten(x, 1),
        "softmax_cross_entropy": F.cross_entropy,
        "sigmoid_binary_cross_entropy": F.binary_cross_entropy_with_logits,
    }
    for nd in (1, 3):
        conv, max_pool, avg_pool = (getattr(F, f"{f}{nd}d") for f in ("conv", "max_pool", "avg_pool"))
        forwards[f"conv{nd}d"] = lambda x, w, b, *, stride, padding, dilation, groups, conv=conv: conv(
            F.pad(x, _pads(padding)), w, b, stride, 0, dilation, groups
        )
        forwards[f"max_pool{nd}d"] = (
            lambda x, *, kernel_size, stride, padding, dilation, ceil_mode, pool=max_pool: pool(
                x, kernel_size, stride, padding[::2], dilation, ceil_mode
            )
        )
        forwards[f"avg_pool{nd}d"] = (
            lambda x, *, kernel_size, stride, padding, ceil_mode, count_include_pad, pool=avg_pool: pool(
                x, kernel_size, stride, padding[::2], ceil_mode, count_include_pad
            )
        )
    return forwards


SYMMETRIC_POOLS = {f"{f}{nd}d": {"padding": "symmetric"} for f in ("max_pool", "avg_pool") for nd in (1, 3)}


@pytest.fixture(scope="module")
def torch_more() -> types.ModuleType:
    """``from_torch`` on ``torch.nn.functional`` forwards for every operation beyond the 2-D core."""
    return adapters.from_torch(capabilities=SYMMETRIC_POOLS, **_functional_forwards())


# --- configurations: (shapes of the inputs, hyper-parameters) ---------------------------

CS231N_CASES: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {
    "conv2d": [
        (
            {"x": (2, 3, 7, 7), "w": (4, 3, 3, 3), "b": (4,)},
            {"stride": (1, 1), "padding": (1, 1, 1, 1), "dilation": (1, 1), "groups": 1},
        ),
        (  # stride leaves a row and a column unread
            {"x": (1, 2, 8, 6), "w": (3, 2, 3, 2), "b": None},
            {"stride": (2, 2), "padding": (0, 0, 0, 0), "dilation": (1, 1), "groups": 1},
        ),
        (
            {"x": (2, 1, 5, 6), "w": (2, 1, 2, 3), "b": (2,)},
            {"stride": (3, 3), "padding": (2, 2, 2, 2), "dilation": (1, 1), "groups": 1},
        ),
    ],
    "max_pool2d": [
        (
            {"x": (2, 3, 6, 6)},
            {"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0, 0, 0), "dilation": (1, 1)},
        ),
        (  # overlapping windows
            {"x": (1, 2, 7, 5)},
            {"kernel_size": (3, 2), "stride": (1, 1), "padding": (0, 0, 0, 0), "dilation": (1, 1)},
        ),
        (
            {"x": (2, 1, 7, 7)},
            {"kernel_size": (2, 3), "stride": (3, 3), "padding": (0, 0, 0, 0), "dilation": (1, 1)},
        ),
    ],
}
for _hp in (hp for _, hp in CS231N_CASES["max_pool2d"]):
    _hp["ceil_mode"] = False

TORCH_CASES: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {
    "conv2d": [
        (
            {"x": (2, 4, 7, 6), "w": (6, 2, 3, 2), "b": (6,)},
            {"stride": (2, 1), "padding": (1, 0, 2, 1), "dilation": (2, 1), "groups": 2},
        ),
        (
            {"x": (1, 3, 5, 5), "w": (2, 3, 1, 1), "b": None},
            {"stride": (1, 1), "padding": (0, 0, 0, 0), "dilation": (1, 1), "groups": 1},
        ),
        (  # depthwise
            {"x": (2, 3, 6, 8), "w": (3, 1, 3, 3), "b": (3,)},
            {"stride": (1, 3), "padding": (0, 2, 1, 1), "dilation": (1, 2), "groups": 3},
        ),
    ],
    "max_pool2d": [
        (
            {"x": (2, 2, 7, 7)},
            {
                "kernel_size": (3, 3),
                "stride": (2, 2),
                "padding": (1, 1, 1, 1),
                "dilation": (1, 1),
                "ceil_mode": True,
            },
        ),
        (
            {"x": (1, 3, 8, 7)},
            {
                "kernel_size": (2, 3),
                "stride": (1, 2),
                "padding": (1, 0, 1, 1),
                "dilation": (2, 1),
                "ceil_mode": False,
            },
        ),
        (
            {"x": (1, 1, 6, 9)},
            {
                "kernel_size": (3, 2),
                "stride": (2, 3),
                "padding": (1, 0, 1, 0),
                "dilation": (1, 2),
                "ceil_mode": True,
            },
        ),
    ],
    "avg_pool2d": [
        (  # the last row of windows overhangs the padding (which then does not count)
            {"x": (2, 2, 6, 7)},
            {
                "kernel_size": (3, 3),
                "stride": (2, 2),
                "padding": (1, 1, 1, 1),
                "ceil_mode": True,
                "count_include_pad": True,
            },
        ),
        (
            {"x": (2, 2, 7, 7)},
            {
                "kernel_size": (3, 3),
                "stride": (2, 2),
                "padding": (1, 1, 1, 1),
                "ceil_mode": True,
                "count_include_pad": False,
            },
        ),
        (
            {"x": (1, 3, 8, 7)},
            {
                "kernel_size": (2, 3),
                "stride": (1, 2),
                "padding": (1, 0, 1, 1),
                "ceil_mode": False,
                "count_include_pad": True,
            },
        ),
        (
            {"x": (1, 1, 6, 9)},
            {
                "kernel_size": (3, 4),
                "stride": (2, 3),
                "padding": (1, 0, 2, 1),
                "ceil_mode": True,
                "count_include_pad": False,
            },
        ),
    ],
}


NEW_CS231N_CASES: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {
    "conv1d": [
        (
            {"x": (2, 3, 9), "w": (4, 3, 3), "b": (4,)},
            {"stride": (2,), "padding": (1, 1), "dilation": (1,), "groups": 1},
        )
    ],
    "conv3d": [
        (
            {"x": (2, 2, 5, 6, 4), "w": (3, 2, 2, 3, 2), "b": None},
            {"stride": (2, 2, 2), "padding": (1,) * 6, "dilation": (1, 1, 1), "groups": 1},
        )
    ],
    "max_pool1d": [
        (
            {"x": (2, 2, 9)},
            {"kernel_size": (3,), "stride": (2,), "padding": (0, 0), "dilation": (1,), "ceil_mode": False},
        )
    ],
    "max_pool3d": [
        (  # a different kernel length on each axis: pool_depth, pool_height, pool_width
            {"x": (1, 2, 5, 6, 7)},
            {
                "kernel_size": (2, 3, 1),
                "stride": (2, 2, 2),
                "padding": (0,) * 6,
                "dilation": (1, 1, 1),
                "ceil_mode": False,
            },
        )
    ],
    "relu": [({"x": (3, 4, 5)}, {})],
    "sigmoid": [({"x": (3, 4, 5)}, {})],
    "tanh": [({"x": (2, 7)}, {})],
    "linear": [({"x": (4, 6), "w": (3, 6), "b": (3,)}, {}), ({"x": (2, 5), "w": (4, 5), "b": None}, {})],
    "softmax_cross_entropy": [({"z": (5, 4), "labels": (5,)}, {})],
}
"""The operations beyond the examples' 2-D core, inside what the CS231n API can express."""

NEW_TORCH_CASES: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {
    **NEW_CS231N_CASES,
    "conv1d": [
        *NEW_CS231N_CASES["conv1d"],
        (
            {"x": (2, 4, 11), "w": (6, 2, 3), "b": (6,)},
            {"stride": (2,), "padding": (2, 1), "dilation": (2,), "groups": 2},
        ),
    ],
    "conv3d": [
        *NEW_CS231N_CASES["conv3d"],
        (
            {"x": (1, 3, 5, 6, 5), "w": (3, 1, 2, 3, 2), "b": (3,)},
            {"stride": (1, 2, 2), "padding": (1, 0, 0, 2, 1, 1), "dilation": (1, 1, 2), "groups": 3},
        ),
    ],
    "max_pool1d": [
        *NEW_CS231N_CASES["max_pool1d"],
        (
            {"x": (2, 2, 10)},
            {"kernel_size": (3,), "stride": (2,), "padding": (1, 1), "dilation": (2,), "ceil_mode": True},
        ),
    ],
    "max_pool3d": [
        *NEW_CS231N_CASES["max_pool3d"],
        (
            {"x": (1, 2, 6, 5, 7)},
            {
                "kernel_size": (3, 2, 3),
                "stride": (2, 1, 2),
                "padding": (1, 1, 0, 0, 1, 1),
                "dilation": (1, 2, 1),
                "ceil_mode": True,
            },
        ),
    ],
    "avg_pool1d": [
        (
            {"x": (2, 2, 9)},
            {
                "kernel_size": (3,),
                "stride": (2,),
                "padding": (1, 1),
                "ceil_mode": True,
                "count_include_pad": False,
            },
        )
    ],
    "avg_pool3d": [
        (
            {"x": (1, 2, 5, 6, 7)},
            {
                "kernel_size": (3, 2, 3),
                "stride": (2, 2, 2),
                "padding": (1, 1, 1, 1, 0, 0),
                "ceil_mode": True,
                "count_include_pad": True,
            },
        )
    ],
    "flatten": [({"x": (2, 3, 4, 2)}, {})],
    "sigmoid_binary_cross_entropy": [({"z": (6,), "y": (6,)}, {}), ({"z": (3, 4), "y": (3, 4)}, {})],
}
"""The operations beyond the 2-D core for the autodiff adapters (pools with symmetric padding)."""


def _ids(cases: dict[str, list]) -> list[tuple[str, int]]:
    return [(op, i) for op, items in cases.items() for i in range(len(items))]


# --- data and the reference ------------------------------------------------------------


def _inputs(op_name: str, shapes: dict[str, Any], hp: dict[str, Any], dtype: Any, seed: int = 0):
    """Random inputs and ``dy`` (``None`` for a loss) for a valid configuration. Max-pool
    inputs are small integers, so that windows have tied maxima; labels are class
    indices and binary targets zeros and ones."""
    op = OPERATIONS[op_name]
    params = op.params_type(**hp)
    op.check(shapes, params)
    rng = np.random.default_rng(seed)
    arrays = {}
    for name in op.inputs:
        shape = shapes.get(name)
        if shape is None:
            arrays[name] = None
        elif name == "labels":
            arrays[name] = rng.integers(0, shapes["z"][1], shape)
        elif name == "y":
            arrays[name] = rng.integers(0, 2, shape).astype(dtype)
        elif op.family == "max_pool":
            arrays[name] = rng.integers(-2, 3, shape).astype(dtype)
        else:
            arrays[name] = rng.standard_normal(shape).astype(dtype)
    if op.is_loss:
        return arrays, None
    dy = rng.standard_normal(op.output_shape(shapes, params)).astype(dtype)
    return arrays, dy


def _torch_forward(op_name: str, t: dict[str, Any], hp: dict[str, Any], out_shape: tuple[int, ...]):
    """``torch.nn.functional`` with the contract's explicit padding.

    Pools get symmetric padding ``lo`` on each axis and are cropped to the spec's
    output size, which equals the asymmetric result when ``lo >= hi`` on every
    axis (outside ceil_mode overhangs for count_include_pad)."""
    op = OPERATIONS[op_name]
    nd = op.ndim
    if op.family in ("conv", "max_pool", "avg_pool"):
        pairs = [(hp["padding"][2 * a], hp["padding"][2 * a + 1]) for a in range(nd)]
        lows = tuple(lo for lo, _ in pairs)
    if op.family == "conv":
        xp = F.pad(t["x"], [p for pair in reversed(pairs) for p in pair])
        conv = getattr(F, f"conv{nd}d")
        return conv(xp, t["w"], t["b"], hp["stride"], 0, hp["dilation"], hp["groups"])
    crop = (..., *(slice(0, o) for o in out_shape[2:]))
    if op.family == "max_pool":
        assert all(lo >= hi for lo, hi in pairs), "reference needs lo >= hi on every axis"
        pool = getattr(F, f"max_pool{nd}d")
        return pool(t["x"], hp["kernel_size"], hp["stride"], lows, hp["dilation"], hp["ceil_mode"])[crop]
    if op.family == "avg_pool":
        assert all(lo >= hi for lo, hi in pairs), "reference needs lo >= hi on every axis"
        symmetric = all(lo == hi for lo, hi in pairs)
        assert symmetric or not (hp["ceil_mode"] and hp["count_include_pad"])
        pool = getattr(F, f"avg_pool{nd}d")
        args = (hp["kernel_size"], hp["stride"], lows, hp["ceil_mode"], hp["count_include_pad"])
        return pool(t["x"], *args)[crop]
    layers = {
        "relu": F.relu,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "flatten": lambda x: torch.flatten(x, 1),
        "linear": F.linear,
    }
    return layers[op_name](*(t[k] for k in op.inputs))


def _reference(op_name: str, arrays: dict[str, Any], hp: dict[str, Any], dy: np.ndarray | None):
    """``(y, grads)`` by float64 torch autograd; ``grads[i]`` is None for an absent input.
    For a loss, ``(loss, [dz])``."""
    op = OPERATIONS[op_name]
    if op.is_loss:
        z = torch.tensor(arrays["z"], dtype=torch.float64, requires_grad=True)
        if op_name == "softmax_cross_entropy":
            loss = F.cross_entropy(z, torch.tensor(arrays["labels"], dtype=torch.int64))
        else:
            loss = F.binary_cross_entropy_with_logits(z, torch.tensor(arrays["y"], dtype=torch.float64))
        (dz,) = torch.autograd.grad(loss, [z])
        return loss.detach().numpy(), [dz.numpy()]
    t = {
        k: None if a is None else torch.tensor(a, dtype=torch.float64, requires_grad=True)
        for k, a in arrays.items()
    }
    y = _torch_forward(op_name, t, hp, dy.shape)
    present = [t[k] for k in op.inputs if t[k] is not None]
    grads = iter(torch.autograd.grad(y, present, torch.tensor(dy, dtype=torch.float64)))
    out = [None if t[k] is None else next(grads).numpy() for k in op.inputs]
    return y.detach().numpy(), out


def _call(plugin: Any, op_name: str, arrays: dict[str, Any], hp: dict[str, Any], dy: np.ndarray | None):
    """``(y, grads)`` from the plug-in's forward and backward, grads as a list; ``(loss, [dz])`` for a loss."""
    op = OPERATIONS[op_name]
    args = [arrays[k] for k in op.inputs]
    if op.is_loss:
        loss, dz = getattr(plugin, op.forward)(*args)
        return loss, [dz]
    y = getattr(plugin, op.forward)(*args, **hp)
    grads = getattr(plugin, op.backward)(dy, *args, **hp)
    return y, list(grads) if isinstance(grads, tuple) else [grads]


def _assert_matches(plugin: Any, op_name: str, shapes, hp, dtype=np.float64, tol=1e-10) -> None:
    arrays, dy = _inputs(op_name, shapes, hp, dtype)
    y, grads = _call(plugin, op_name, arrays, hp, dy)
    y_ref, grads_ref = _reference(op_name, arrays, hp, dy)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, y_ref, rtol=tol, atol=tol)
    for name, g, g_ref in zip(OPERATIONS[op_name].grads, grads, grads_ref, strict=True):
        if g_ref is None:
            assert g is None, f"{name} must be None when the bias is absent"
        else:
            assert g.dtype == dtype and g.shape == g_ref.shape, name
            np.testing.assert_allclose(g, g_ref, rtol=tol, atol=tol, err_msg=name)


# --- agreement with torch --------------------------------------------------------------


@pytest.mark.parametrize(("operation", "i"), _ids(CS231N_CASES))
def test_cs231n_example_matches_torch(cs231n, operation, i):
    _assert_matches(cs231n, operation, *CS231N_CASES[operation][i])


@pytest.mark.parametrize(("operation", "i"), _ids(TORCH_CASES))
def test_torch_example_matches_torch(torch_plugin, operation, i):
    _assert_matches(torch_plugin, operation, *TORCH_CASES[operation][i])


@pytest.mark.parametrize("operation", ["conv2d", "max_pool2d"])
def test_float32_in_float32_out(cs231n, torch_plugin, operation):
    for plugin, cases in ((cs231n, CS231N_CASES), (torch_plugin, TORCH_CASES)):
        _assert_matches(plugin, operation, *cases[operation][0], dtype=np.float32, tol=1e-4)


def test_from_torch_with_functional_forwards():
    """A plug-in built straight from F.conv2d / F.max_pool2d / F.avg_pool2d."""
    plugin = adapters.from_torch(
        conv2d=lambda x, w, b, *, stride, padding, dilation, groups: F.conv2d(
            x, w, b, stride, (padding[0], padding[2]), dilation, groups
        ),
        max_pool2d=lambda x, *, kernel_size, stride, padding, dilation, ceil_mode: F.max_pool2d(
            x, kernel_size, stride, (padding[0], padding[2]), dilation, ceil_mode
        ),
        avg_pool2d=lambda x, *, kernel_size, stride, padding, ceil_mode, count_include_pad: F.avg_pool2d(
            x, kernel_size, stride, (padding[0], padding[2]), ceil_mode, count_include_pad
        ),
        capabilities={name: {"padding": "symmetric"} for name in ("conv2d", "max_pool2d", "avg_pool2d")},
    )
    for op_name, items in TORCH_CASES.items():
        for shapes, hp in items:
            if OPERATIONS[op_name].params_type(**hp).padding_kind != "asymmetric":
                _assert_matches(plugin, op_name, shapes, hp)
    with pytest.raises(NotImplementedError, match=r"padding=\(1, 0, 2, 1\)"):
        _assert_matches(plugin, "conv2d", *TORCH_CASES["conv2d"][0])


# --- bias, inputs, outputs, signatures -------------------------------------------------


@pytest.mark.parametrize("which", ["cs231n", "torch_plugin"])
def test_no_bias_gives_no_db(request, which):
    plugin = request.getfixturevalue(which)
    shapes, hp = CS231N_CASES["conv2d"][0]
    arrays, dy = _inputs("conv2d", {**shapes, "b": None}, hp, np.float64)
    dx, dw, db = plugin.conv2d_backward(dy, arrays["x"], arrays["w"], None, **hp)
    assert db is None and dx.shape == arrays["x"].shape and dw.shape == arrays["w"].shape


@pytest.mark.parametrize("which", ["cs231n", "torch_plugin"])
def test_inputs_untouched_and_outputs_fresh(request, which):
    plugin = request.getfixturevalue(which)
    for op_name in ("conv2d", "max_pool2d"):
        op = OPERATIONS[op_name]
        arrays, dy = _inputs(op_name, *CS231N_CASES[op_name][0], np.float64)
        inputs = [a for a in (*arrays.values(), dy) if a is not None]
        saved = [a.copy() for a in inputs]
        for a in inputs:
            a.flags.writeable = False  # an in-place write would raise
        y, grads = _call(plugin, op_name, arrays, CS231N_CASES[op_name][0][1], dy)
        for a, before in zip(inputs, saved, strict=True):
            np.testing.assert_array_equal(a, before)
        for out in (y, *grads):
            assert not any(np.shares_memory(out, a) for a in inputs), op.name


@pytest.mark.parametrize("which", ["cs231n", "torch_plugin"])
@pytest.mark.parametrize("layout", ["fortran", "strided"])
def test_any_memory_layout(request, which, layout):
    """Fortran-ordered or strided inputs give the same answers as C-ordered ones."""
    plugin = request.getfixturevalue(which)

    def relayout(a):
        if a is None:
            return None
        return np.asfortranarray(a) if layout == "fortran" else np.repeat(a, 2, axis=-1)[..., ::2]

    for operation in ("conv2d", "max_pool2d"):
        shapes, hp = CS231N_CASES[operation][0]
        arrays, dy = _inputs(operation, shapes, hp, np.float64)
        y, grads = _call(plugin, operation, arrays, hp, dy)
        y2, grads2 = _call(plugin, operation, {k: relayout(a) for k, a in arrays.items()}, hp, relayout(dy))
        for a, b in zip((y, *grads), (y2, *grads2), strict=True):
            _assert_same_answer(which, a, b, operation)


def _assert_same_answer(which: str, a: np.ndarray, b: np.ndarray, what: str) -> None:
    """Autodiff plug-ins compute on C-ordered copies, so any layout gives the same bits; the CS231n
    adapter hands the caller's arrays to the student's code, whose NumPy sums may round differently
    in another layout (by an ulp or two), so its answers agree to rounding."""
    if which.startswith("cs231n"):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15, err_msg=what)
    else:
        np.testing.assert_array_equal(a, b, err_msg=what)


@pytest.mark.parametrize("which", ["cs231n", "torch_plugin", "cs231n_more", "torch_more"])
def test_signatures_follow_the_contract(request, which):
    plugin = request.getfixturevalue(which)
    for op in OPERATIONS.values():
        for fn_name in op.functions:
            positional = op.inputs if fn_name == op.forward else ("dy", *op.inputs)
            fn = getattr(plugin, fn_name, None)
            if fn is None:
                continue
            params = inspect.signature(fn).parameters.values()
            assert [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD] == list(positional)
            assert [p.name for p in params if p.kind is p.KEYWORD_ONLY] == list(op.hyperparameters)


# --- CS231n capabilities ---------------------------------------------------------------


def test_cs231n_capabilities_declare_exactly_what_the_api_cannot_express():
    caps = parse_capabilities(adapters.CS231N_CAPABILITIES)
    conv = {("padding", "uniform"), ("dilation", False), ("groups", False)}
    pool = {("padding", "none"), ("dilation", False), ("ceil_mode", False)}
    expected = {
        (f"{family}{nd}d", *limit)
        for family, limits in (("conv", conv), ("max_pool", pool))
        for nd in (1, 2, 3)
        # a single stride restricts nothing on one spatial axis, so 1-D does not declare it
        for limit in (limits if nd == 1 else limits | {("stride", "uniform")})
    }
    assert set(caps.unsupported()) == expected
    assert caps.dtypes == ("float32", "float64")
    # the course contract by default: its geometry ("exact") comes with it (spec/contracts.py)
    assert caps.contract == "course"


def test_cs231n_plugin_has_no_avg_pool(cs231n):
    assert cs231n.CONVCHECK_CAPABILITIES == adapters.CS231N_CAPABILITIES
    assert not hasattr(cs231n, "avg_pool2d_forward") and not hasattr(cs231n, "avg_pool2d_backward")


@pytest.mark.parametrize(
    ("operation", "change", "named"),
    [
        ("conv2d", {"stride": (1, 2)}, "stride"),
        ("conv2d", {"padding": (1, 1, 0, 0)}, "padding"),
        ("conv2d", {"dilation": (2, 2)}, "dilation"),
        ("conv2d", {"groups": 3}, "groups"),
        ("max_pool2d", {"padding": (1, 1, 1, 1)}, "padding"),
        ("max_pool2d", {"stride": (2, 1)}, "stride"),
        ("max_pool2d", {"dilation": (1, 2)}, "dilation"),
        ("max_pool2d", {"ceil_mode": True}, "ceil_mode"),
    ],
)
def test_cs231n_refuses_what_it_cannot_express(cs231n, operation, change, named):
    shapes, hp = CS231N_CASES[operation][0]
    arrays, dy = _inputs(operation, shapes, hp, np.float64)
    op = OPERATIONS[operation]
    args = [arrays[k] for k in op.inputs]
    with pytest.raises(NotImplementedError, match=rf"\b{named}="):
        getattr(cs231n, op.forward)(*args, **{**hp, **change})
    with pytest.raises(NotImplementedError, match=rf"\b{named}="):
        getattr(cs231n, op.backward)(dy, *args, **{**hp, **change})


def test_from_cs231n_lookup_and_narrowing():
    layers = _load_example("cs231n_layers")
    forward_only = {"conv_forward_naive": layers.conv_forward_naive}
    plugin = adapters.from_cs231n(
        forward_only,
        capabilities={"conv2d": {"padding": "asymmetric", "stride": "unit"}, "dtypes": ["float64"]},
    )
    assert adapters.exports(plugin).keys() == {"conv2d_forward", "CONVCHECK_CAPABILITIES"}
    caps = parse_capabilities(plugin.CONVCHECK_CAPABILITIES)
    assert caps.value("conv2d", "padding") == "uniform"  # a declaration cannot widen the API
    assert caps.value("conv2d", "stride") == "unit"
    assert caps.dtypes == ("float64",)
    with pytest.raises(ContractError, match="conv_forward_naive"):
        adapters.from_cs231n({})


# --- JAX -------------------------------------------------------------------------------


def test_from_jax_without_jax_raises_a_clear_import_error():
    if importlib.util.find_spec("jax") is not None:
        pytest.skip("jax is installed")
    with pytest.raises(ImportError, match="from_jax needs JAX"):
        adapters.from_jax(conv2d=lambda x, w, b, **hp: x)


def _fake_jax(monkeypatch) -> list[tuple[str, Any]]:
    """Install a stand-in ``jax`` (the API from_jax uses, computed by torch);
    returns the list that records ``jax.config.update`` calls."""
    updates: list[tuple[str, Any]] = []
    jax, jnp = types.ModuleType("jax"), types.ModuleType("jax.numpy")

    def asarray(a, dtype=None):
        t = torch.from_numpy(np.array(a))
        return t if dtype is None else t.to(dtype)

    def vjp(fn, *primals):
        inputs = [p.detach().clone().requires_grad_() for p in primals]
        y = fn(*inputs)
        return y.detach(), lambda ct: torch.autograd.grad(y, inputs, ct)

    jnp.asarray = asarray
    jax.numpy, jax.vjp = jnp, vjp
    jax.config = types.SimpleNamespace(update=lambda name, value: updates.append((name, value)))
    monkeypatch.setitem(sys.modules, "jax", jax)
    monkeypatch.setitem(sys.modules, "jax.numpy", jnp)
    return updates


def test_from_jax_shapes_the_contract_like_from_torch(monkeypatch):
    """from_jax's plumbing (argument order, b None, dtypes), run on a torch-backed stand-in."""
    updates = _fake_jax(monkeypatch)
    example = _load_example("torch_forward_only")
    plugin = adapters.from_jax(
        conv2d=example.conv2d, max_pool2d=example.max_pool2d, avg_pool2d=example.avg_pool2d
    )
    assert updates == [("jax_enable_x64", True)]
    for op_name, items in TORCH_CASES.items():
        for shapes, hp in items:
            _assert_matches(plugin, op_name, shapes, hp)


# --- the operations beyond the 2-D core ------------------------------------------------


@pytest.mark.parametrize(("operation", "i"), _ids(NEW_CS231N_CASES))
def test_cs231n_more_matches_torch(cs231n_more, operation, i):
    _assert_matches(cs231n_more, operation, *NEW_CS231N_CASES[operation][i])


@pytest.mark.parametrize(("operation", "i"), _ids(NEW_TORCH_CASES))
def test_from_torch_more_matches_torch(torch_more, operation, i):
    _assert_matches(torch_more, operation, *NEW_TORCH_CASES[operation][i])


def test_cs231n_more_provides_what_the_api_names():
    plugin = adapters.from_cs231n(CS231N_LAYERS)
    provided = {name for name in adapters.exports(plugin) if name != "CONVCHECK_CAPABILITIES"}
    assert provided == {f for op in NEW_CS231N_CASES for f in OPERATIONS[op].functions}
    assert plugin.relu_forward.__name__ == "relu_forward"
    assert plugin.softmax_cross_entropy.__name__ == "softmax_cross_entropy"


@pytest.mark.parametrize("which", ["cs231n_more", "torch_more"])
def test_more_float32_in_float32_out(request, which):
    plugin = request.getfixturevalue(which)
    for operation, items in NEW_CS231N_CASES.items():
        _assert_matches(plugin, operation, *items[0], dtype=np.float32, tol=1e-4)


def _relayout(a: Any, layout: str) -> Any:
    """The same values in Fortran order or as a strided view."""
    if a is None:
        return None
    return np.asfortranarray(a) if layout == "fortran" else np.repeat(a, 2, axis=-1)[..., ::2]


@pytest.mark.parametrize("which", ["cs231n_more", "torch_more"])
def test_more_inputs_untouched_outputs_fresh_any_layout(request, which):
    """Read-only, Fortran-ordered or strided inputs: same answers, fresh outputs, inputs untouched."""
    plugin = request.getfixturevalue(which)
    for operation, items in NEW_CS231N_CASES.items():
        shapes, hp = items[0]
        arrays, dy = _inputs(operation, shapes, hp, np.float64)
        y, grads = _call(plugin, operation, arrays, hp, dy)
        for layout in ("fortran", "strided"):
            moved = {k: _relayout(a, layout) for k, a in arrays.items()}
            moved_dy = _relayout(dy, layout)
            inputs = [a for a in (*moved.values(), moved_dy) if a is not None]
            for a in inputs:
                a.flags.writeable = False  # an in-place write would raise
            y2, grads2 = _call(plugin, operation, moved, hp, moved_dy)
            for a, b in zip((y, *grads), (y2, *grads2), strict=True):
                if a is None:
                    assert b is None
                    continue
                _assert_same_answer(which, a, b, f"{operation} {layout}")
                assert not any(np.shares_memory(b, a_in) for a_in in inputs), f"{operation}: aliased"


def test_loss_returns_a_scalar_of_the_logits_dtype(cs231n_more, torch_more):
    for plugin in (cs231n_more, torch_more):
        for dtype in (np.float32, np.float64):
            arrays, _ = _inputs("softmax_cross_entropy", {"z": (3, 4), "labels": (3,)}, {}, dtype)
            loss, dz = plugin.softmax_cross_entropy(arrays["z"], arrays["labels"])
            assert np.asarray(loss).shape == () and loss.dtype == dtype and dz.dtype == dtype


def test_from_torch_loss_takes_any_integer_labels(torch_more):
    """torch's cross_entropy wants int64 targets; the adapter converts int32 labels."""
    arrays, _ = _inputs("softmax_cross_entropy", {"z": (5, 3), "labels": (5,)}, {}, np.float64)
    loss32, dz32 = torch_more.softmax_cross_entropy(arrays["z"], arrays["labels"].astype(np.int32))
    loss64, dz64 = torch_more.softmax_cross_entropy(arrays["z"], arrays["labels"])
    assert loss32 == loss64 and np.array_equal(dz32, dz64)


def test_from_torch_loss_independent_of_the_logits_gives_zero_dz():
    plugin = adapters.from_torch(softmax_cross_entropy=lambda z, labels: (labels * 0.0).sum())
    loss, dz = plugin.softmax_cross_entropy(np.ones((2, 3)), np.array([0, 2]))
    assert loss == 0.0 and np.array_equal(dz, np.zeros((2, 3)))


@pytest.mark.parametrize(
    ("operation", "change", "named"),
    [
        ("conv1d", {"padding": (1, 0)}, "padding"),
        ("conv1d", {"dilation": (2,)}, "dilation"),
        ("conv3d", {"stride": (2, 1, 2)}, "stride"),
        ("conv3d", {"padding": (1, 1, 1, 1, 0, 0)}, "padding"),
        ("max_pool1d", {"ceil_mode": True}, "ceil_mode"),
        ("max_pool3d", {"padding": (1, 1, 0, 0, 0, 0)}, "padding"),
        ("max_pool3d", {"stride": (1, 2, 2)}, "stride"),
    ],
)
def test_cs231n_more_refuses_what_it_cannot_express(cs231n_more, operation, change, named):
    shapes, hp = NEW_CS231N_CASES[operation][0]
    arrays, dy = _inputs(operation, shapes, hp, np.float64)
    op = OPERATIONS[operation]
    args = [arrays[k] for k in op.inputs]
    for function in (getattr(cs231n_more, op.forward), getattr(cs231n_more, op.backward)):
        with pytest.raises(NotImplementedError, match=rf"\b{named}="):
            function(*([dy] if function.__name__ == op.backward else []), *args, **{**hp, **change})


def test_declared_dtypes_are_enforced_for_every_operation():
    plugin = adapters.from_torch(
        relu=F.relu, softmax_cross_entropy=F.cross_entropy, capabilities={"dtypes": ["float64"]}
    )
    with pytest.raises(NotImplementedError, match="dtype=float32"):
        plugin.relu_forward(np.ones((2, 2), dtype=np.float32))
    with pytest.raises(NotImplementedError, match="dtype=float32"):
        plugin.softmax_cross_entropy(np.ones((2, 2), dtype=np.float32), np.array([0, 1]))


def test_from_torch_rejects_unknown_operations_and_nothing_at_all():
    with pytest.raises(TypeError, match="conv4d"):
        adapters.from_torch(conv4d=F.relu)
    with pytest.raises(ContractError, match="at least one"):
        adapters.from_torch()


def test_from_jax_more_on_the_stand_in(monkeypatch):
    """from_jax's plumbing for every operation beyond the 2-D core, losses included."""
    _fake_jax(monkeypatch)
    plugin = adapters.from_jax(capabilities=SYMMETRIC_POOLS, **_functional_forwards())
    for operation, items in NEW_TORCH_CASES.items():
        for shapes, hp in items:
            _assert_matches(plugin, operation, shapes, hp)

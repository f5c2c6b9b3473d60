"""Meta-tests of ``impls/adapters.py`` and the plug-ins in ``examples/``.

Every adapted function is compared with PyTorch float64 autograd applied
directly to ``torch.nn.functional`` on hand-picked configurations inside the
plug-in's declared capabilities.
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

from convcheck.impls import adapters
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


def _ids(cases: dict[str, list]) -> list[tuple[str, int]]:
    return [(op, i) for op, items in cases.items() for i in range(len(items))]


# --- data and the reference ------------------------------------------------------------


def _inputs(op_name: str, shapes: dict[str, Any], hp: dict[str, Any], dtype: Any, seed: int = 0):
    """Random inputs and ``dy`` for a valid configuration. Max-pool inputs are
    small integers, so that windows have tied maxima."""
    op = OPERATIONS[op_name]
    params = op.params_type(**hp)
    op.check(shapes, params)
    rng = np.random.default_rng(seed)
    arrays = {}
    for name in op.inputs:
        if shapes.get(name) is None:
            arrays[name] = None
        elif op_name == "max_pool2d":
            arrays[name] = rng.integers(-2, 3, shapes[name]).astype(dtype)
        else:
            arrays[name] = rng.standard_normal(shapes[name]).astype(dtype)
    dy = rng.standard_normal(op.output_shape(shapes, params)).astype(dtype)
    return arrays, dy


def _torch_forward(op_name: str, t: dict[str, Any], hp: dict[str, Any], out_hw: tuple[int, int]):
    """``torch.nn.functional`` with the contract's explicit padding.

    Pools get symmetric padding ``(top, left)`` and are cropped to the spec's
    output size, which equals the asymmetric result when top >= bottom and
    left >= right (outside ceil_mode overhangs for count_include_pad)."""
    top, bottom, left, right = hp["padding"]
    if op_name == "conv2d":
        xp = F.pad(t["x"], (left, right, top, bottom))
        return F.conv2d(xp, t["w"], t["b"], hp["stride"], 0, hp["dilation"], hp["groups"])
    assert top >= bottom and left >= right, "reference needs top >= bottom, left >= right"
    if op_name == "max_pool2d":
        y = F.max_pool2d(
            t["x"], hp["kernel_size"], hp["stride"], (top, left), hp["dilation"], hp["ceil_mode"]
        )
    else:
        symmetric = (top, left) == (bottom, right)
        assert symmetric or not (hp["ceil_mode"] and hp["count_include_pad"])
        y = F.avg_pool2d(
            t["x"], hp["kernel_size"], hp["stride"], (top, left), hp["ceil_mode"], hp["count_include_pad"]
        )
    return y[:, :, : out_hw[0], : out_hw[1]]


def _reference(op_name: str, arrays: dict[str, Any], hp: dict[str, Any], dy: np.ndarray):
    """``(y, grads)`` by float64 torch autograd; ``grads[i]`` is None for an absent input."""
    op = OPERATIONS[op_name]
    t = {
        k: None if a is None else torch.tensor(a, dtype=torch.float64, requires_grad=True)
        for k, a in arrays.items()
    }
    y = _torch_forward(op_name, t, hp, dy.shape[2:])
    present = [t[k] for k in op.inputs if t[k] is not None]
    grads = iter(torch.autograd.grad(y, present, torch.tensor(dy, dtype=torch.float64)))
    out = [None if t[k] is None else next(grads).numpy() for k in op.inputs]
    return y.detach().numpy(), out


def _call(plugin: Any, op_name: str, arrays: dict[str, Any], hp: dict[str, Any], dy: np.ndarray):
    """``(y, grads)`` from the plug-in's forward and backward, grads as a list."""
    op = OPERATIONS[op_name]
    args = [arrays[k] for k in op.inputs]
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
        capabilities={op: {"padding": "symmetric"} for op in OPERATIONS},
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
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("which", ["cs231n", "torch_plugin"])
def test_signatures_follow_the_contract(request, which):
    plugin = request.getfixturevalue(which)
    for op in OPERATIONS.values():
        for fn_name, positional in ((op.forward, op.inputs), (op.backward, ("dy", *op.inputs))):
            fn = getattr(plugin, fn_name, None)
            if fn is None:
                continue
            params = inspect.signature(fn).parameters.values()
            assert [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD] == list(positional)
            assert [p.name for p in params if p.kind is p.KEYWORD_ONLY] == list(op.hyperparameters)


# --- CS231n capabilities ---------------------------------------------------------------


def test_cs231n_capabilities_declare_exactly_what_the_api_cannot_express():
    caps = parse_capabilities(adapters.CS231N_CAPABILITIES)
    assert set(caps.unsupported()) == {
        ("conv2d", "stride", "uniform"),
        ("conv2d", "padding", "uniform"),
        ("conv2d", "dilation", False),
        ("conv2d", "groups", False),
        ("max_pool2d", "stride", "uniform"),
        ("max_pool2d", "padding", "none"),
        ("max_pool2d", "dilation", False),
        ("max_pool2d", "ceil_mode", False),
    }
    assert caps.dtypes == ("float32", "float64")


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

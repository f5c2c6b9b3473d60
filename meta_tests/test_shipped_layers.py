"""Meta-tests: the three shipped implementations compute all 30 contract functions correctly.

Every function of ``numpy_reference``, ``numpy_fast`` and ``torch`` is compared
with ``torch.nn.functional`` in float64 (autograd for the gradients), applied
directly here, independent of ``oracles/``: sliding windows in 1, 2 and 3-D on
random valid configurations (per-axis stride, asymmetric padding, dilation,
groups, ``ceil_mode``, ``count_include_pad=False``), max-pool ties, the
activations (exact zeros included), ``linear``, ``flatten`` and both losses with
logits up to ``spec.loss.LARGE_LOGIT``; float32 and float64; C-ordered,
Fortran-ordered, negatively strided and strided inputs. Also: outputs keep the
input dtype, never alias an input, inputs stay untouched, the registry loads
every function of every shipped implementation, and ``numpy_fast``'s pointwise
and tiled im2col paths (a small tile budget forces bands of output rows) agree
with the reference.

The reference pools with torch's own ``padding`` argument where torch can
express the configuration (symmetric padding up to half the kernel), and
otherwise pads explicitly, pools in floor mode and crops to the spec's output
size, dividing average-pool window sums by window counts pooled from a mask
(``test_explicit_padding_reference_matches_native_torch`` checks that route
against the native one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convcheck.impls import numpy_fast, registry
from convcheck.spec import FUNCTION_NAMES, OPERATIONS, InvalidConfiguration
from convcheck.spec.loss import LARGE_LOGIT
from convcheck.spec.shapes import effective_kernel

IMPLS = tuple(registry.SHIPPED)
WINDOW_OPS = tuple(op.name for op in OPERATIONS.values() if op.family in ("conv", "max_pool", "avg_pool"))
DTYPES = (np.float32, np.float64)
TOL = {np.float32: 5e-5, np.float64: 1e-11}
"""Error allowed relative to the reference's largest magnitude (sums of at most a few hundred products)."""


@pytest.fixture(scope="module", params=IMPLS)
def shipped(request: pytest.FixtureRequest) -> Any:
    """A shipped implementation, loaded and validated by the registry (not the plug-in's ``impl``)."""
    return registry.load(request.param)


# --- the float64 torch reference ---------------------------------------------------------


def _pairs(padding: tuple[int, ...]) -> list[tuple[int, int]]:
    return [(padding[2 * a], padding[2 * a + 1]) for a in range(len(padding) // 2)]


def _widths(pairs: list[tuple[int, int]]) -> list[int]:
    """``F.pad`` widths: the last spatial axis first."""
    return [p for pair in reversed(pairs) for p in pair]


def _window_sums(x: torch.Tensor, kernel: tuple[int, ...], stride: tuple[int, ...]) -> torch.Tensor:
    if x.dim() == 3:
        return F.avg_pool2d(x[:, :, None], (1, *kernel), (1, *stride), divisor_override=1)[:, :, 0]
    pool = F.avg_pool2d if x.dim() == 4 else F.avg_pool3d
    return pool(x, kernel, stride, divisor_override=1)


def _explicit_pool(x: torch.Tensor, hp: dict[str, Any], maximum: bool) -> torch.Tensor:
    """Pooling with the padding applied explicitly: ``-inf`` (max) or a counted mask (avg),
    the ``ceil_mode`` overhang appended (never counted), floor-mode windows, cropped to the spec's size."""
    nd = x.dim() - 2
    kernel, stride, pairs = hp["kernel_size"], hp["stride"], _pairs(hp["padding"])
    dilation = hp.get("dilation", (1,) * nd)
    op = OPERATIONS[f"{'max' if maximum else 'avg'}_pool{nd}d"]
    out = op.output_shape({"x": tuple(x.shape)}, op.params_type(**hp))[2:]
    over = [
        max(0, (o - 1) * s + effective_kernel(k, d) - (n + lo + hi))
        for o, s, k, d, n, (lo, hi) in zip(out, stride, kernel, dilation, x.shape[2:], pairs, strict=True)
    ]
    with_over = [(lo, hi + e) for (lo, hi), e in zip(pairs, over, strict=True)]
    crop = (..., *(slice(0, o) for o in out))
    if maximum:
        xp = F.pad(x, _widths(with_over), value=float("-inf"))
        return getattr(F, f"max_pool{nd}d")(xp, kernel, stride, 0, dilation, False)[crop]
    sums = _window_sums(F.pad(x, _widths(with_over)), kernel, stride)
    mask = torch.ones_like(x)
    if hp["count_include_pad"]:
        mask = F.pad(F.pad(mask, _widths(pairs), value=1.0), _widths([(0, e) for e in over]))
    else:
        mask = F.pad(mask, _widths(with_over))
    return (sums / _window_sums(mask, kernel, stride))[crop]


def _native_pool(x: torch.Tensor, hp: dict[str, Any], maximum: bool) -> torch.Tensor | None:
    """Torch's own padding argument, when it can express the configuration; else ``None``.

    Torch pads natively up to half the undilated kernel, symmetrically, and its
    ``avg_pool3d`` refuses an input shorter than the kernel even when padded.
    """
    nd, pairs, kernel = x.dim() - 2, _pairs(hp["padding"]), hp["kernel_size"]
    pads = tuple(lo for lo, _ in pairs)
    if any(lo != hi for lo, hi in pairs) or any(2 * p > k for p, k in zip(pads, kernel, strict=True)):
        return None
    if nd == 3 and not maximum and any(n < k for n, k in zip(x.shape[2:], kernel, strict=True)):
        return None
    if maximum:
        args = (hp["kernel_size"], hp["stride"], pads, hp["dilation"], hp["ceil_mode"])
        return getattr(F, f"max_pool{nd}d")(x, *args)
    args = (hp["kernel_size"], hp["stride"], pads, hp["ceil_mode"], hp["count_include_pad"])
    return getattr(F, f"avg_pool{nd}d")(x, *args)


def _torch_layer(op_name: str, t: list[torch.Tensor | None], hp: dict[str, Any]) -> torch.Tensor:
    """The forward of a layer operation on float64 tensors."""
    family, x = OPERATIONS[op_name].family, t[0]
    if family == "conv":
        nd = x.dim() - 2
        xp = F.pad(x, _widths(_pairs(hp["padding"])))
        return getattr(F, f"conv{nd}d")(xp, t[1], t[2], hp["stride"], 0, hp["dilation"], hp["groups"])
    if family in ("max_pool", "avg_pool"):
        maximum = family == "max_pool"
        native = _native_pool(x, hp, maximum)
        return _explicit_pool(x, hp, maximum) if native is None else native
    functions: dict[str, Callable[..., torch.Tensor]] = {
        "relu": F.relu,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "linear": F.linear,
        "flatten": lambda x_: torch.flatten(x_, 1),
    }
    return functions[family](*t)


def _tensor(a: np.ndarray | None, grad: bool = False) -> torch.Tensor | None:
    if a is None:
        return None
    return torch.tensor(np.array(a, dtype=np.float64, order="C"), requires_grad=grad)


def reference(op_name: str, arrays: list[np.ndarray | None], hp: dict[str, Any], dy: np.ndarray):
    """``(y, grads)`` of a layer in float64 by torch autograd (``None`` for an absent bias)."""
    t = [_tensor(a, grad=True) for a in arrays]
    y = _torch_layer(op_name, t, hp)
    present = [a for a in t if a is not None]
    grads = iter(torch.autograd.grad(y, present, _tensor(dy)))
    return y.detach().numpy(), [None if a is None else next(grads).numpy() for a in t]


def reference_loss(op_name: str, z: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """``(loss, dz)`` in float64: ``F.cross_entropy`` or ``F.binary_cross_entropy_with_logits``."""
    zt = _tensor(z, grad=True)
    if op_name == "softmax_cross_entropy":
        loss = F.cross_entropy(zt, torch.tensor(np.array(target, dtype=np.int64)))
    else:
        loss = F.binary_cross_entropy_with_logits(zt, _tensor(target))
    (dz,) = torch.autograd.grad(loss, [zt])
    return float(loss.detach()), dz.numpy()


# --- random valid configurations ---------------------------------------------------------


def window_case(rng: np.random.Generator, op_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Random valid ``(shapes, hyper-parameters)`` for a conv or pool operation (rejection sampling)."""
    op = OPERATIONS[op_name]
    nd = op.ndim
    side = {1: 12, 2: 8, 3: 6}[nd]

    def ints(low: int, high: int, size: int) -> tuple[int, ...]:
        return tuple(int(v) for v in rng.integers(low, high, size))

    while True:
        n, kernel, spatial = int(rng.integers(1, 3)), ints(1, 4, nd), ints(1, side + 1, nd)
        hp: dict[str, Any] = {"stride": ints(1, 4, nd), "padding": ints(0, 3, 2 * nd)}
        if op.family == "conv":
            g = int(rng.choice([1, 1, 2, 3]))
            hp.update(dilation=ints(1, 3, nd), groups=g)
            c_in, c_out = g * int(rng.integers(1, 3)), g * int(rng.integers(1, 3))
            bias = (c_out,) if rng.random() < 0.7 else None
            shapes = {"x": (n, c_in, *spatial), "w": (c_out, c_in // g, *kernel), "b": bias}
        else:
            hp.update(kernel_size=kernel, ceil_mode=bool(rng.random() < 0.5))
            if op.family == "max_pool":
                hp["dilation"] = ints(1, 3, nd)
            else:
                hp["count_include_pad"] = bool(rng.random() < 0.5)
            shapes = {"x": (n, int(rng.integers(1, 3)), *spatial)}
        try:
            op.check(shapes, op.params_type(**hp))
        except InvalidConfiguration:
            continue
        return shapes, hp


def layer_shapes(rng: np.random.Generator, op_name: str) -> dict[str, Any]:
    """Random shapes for an activation, ``linear`` or ``flatten``."""
    if op_name == "linear":
        n, n_in, n_out = (int(v) for v in rng.integers(1, 7, 3))
        return {"x": (n, n_in), "w": (n_out, n_in), "b": (n_out,) if rng.random() < 0.7 else None}
    rank = int(rng.integers(2, 6))
    return {"x": tuple(int(v) for v in rng.integers(1, 5, rank))}


def layer_inputs(
    rng: np.random.Generator,
    op_name: str,
    shapes: dict[str, Any],
    hp: dict[str, Any],
    dtype: Any,
    ties: bool = False,
) -> tuple[list[np.ndarray | None], np.ndarray]:
    """Random inputs and ``dy`` (small integers when ``ties``, so that max-pool windows tie)."""
    op = OPERATIONS[op_name]
    arrays: list[np.ndarray | None] = []
    for name in op.inputs:
        shape = shapes.get(name)
        if shape is None:
            arrays.append(None)
        elif ties:
            arrays.append(rng.integers(-2, 3, shape).astype(dtype))
        else:
            a = rng.standard_normal(shape) * 3
            a[rng.random(shape) < 0.1] = 0.0  # exact zeros: relu's kink, flatten's exactness
            arrays.append(a.astype(dtype))
    out = op.output_shape(shapes, op.params_type(**hp))
    dy = rng.integers(-3, 4, out) if ties else rng.standard_normal(out)
    return arrays, dy.astype(dtype)


# --- comparing ---------------------------------------------------------------------------


def assert_close(got: Any, ref: np.ndarray, dtype: Any, what: str, exact: bool = False) -> None:
    """``got`` has ``ref``'s shape, the case's dtype, and its values within ``TOL`` of the largest magnitude."""
    assert isinstance(got, np.ndarray), f"{what}: {type(got).__name__}, not an ndarray"
    assert got.dtype == dtype, f"{what}: dtype {got.dtype}, expected {np.dtype(dtype)}"
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, expected {ref.shape}"
    if exact:
        np.testing.assert_array_equal(got, ref, err_msg=what)
        return
    scale = max(1.0, float(np.max(np.abs(ref), initial=0.0)))
    np.testing.assert_allclose(got, ref, rtol=TOL[dtype], atol=TOL[dtype] * scale, err_msg=what)


def run_layer(
    impl: registry.Implementation, op_name: str, arrays: list[Any], hp: dict[str, Any], dy: np.ndarray
):
    """``(y, grads)`` from an implementation's forward and backward, grads as a list."""
    op = OPERATIONS[op_name]
    y = impl.functions[op.forward](*arrays, **hp)
    grads = impl.functions[op.backward](dy, *arrays, **hp)
    return y, list(grads) if isinstance(grads, tuple) else [grads]


def check_layer(
    impl: registry.Implementation,
    op_name: str,
    arrays: list[Any],
    hp: dict[str, Any],
    dy: np.ndarray,
    exact=False,
):
    """The implementation's forward and backward against the float64 reference."""
    op = OPERATIONS[op_name]
    dtype = arrays[0].dtype.type
    y, grads = run_layer(impl, op_name, arrays, hp, dy)
    y_ref, grads_ref = reference(op_name, arrays, hp, dy)
    where = f"{impl.name} {op_name} {np.dtype(dtype).name} {hp}"
    assert_close(y, y_ref, dtype, f"{op.forward} ({where})", exact)
    for name, g, g_ref in zip(op.grads, grads, grads_ref, strict=True):
        if g_ref is None:
            assert g is None, f"{name} must be None without a bias ({where})"
        else:
            assert_close(g, g_ref, dtype, f"{name} ({where})", exact)


# --- the tests ---------------------------------------------------------------------------


def test_registry_loads_all_thirty_functions(shipped):
    assert len(FUNCTION_NAMES) == 30
    assert set(shipped.functions) == set(FUNCTION_NAMES)
    assert shipped.operations() == list(OPERATIONS)


@pytest.mark.parametrize("operation", WINDOW_OPS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_window_operations_match_torch(shipped, operation, dtype):
    rng = np.random.default_rng([WINDOW_OPS.index(operation), np.dtype(dtype).itemsize])
    for _ in range(10):
        shapes, hp = window_case(rng, operation)
        arrays, dy = layer_inputs(rng, operation, shapes, hp, dtype)
        check_layer(shipped, operation, arrays, hp, dy)


@pytest.mark.parametrize("operation", [n for n in WINDOW_OPS if n.startswith("max_pool")])
def test_max_pool_ties_go_to_the_first_maximum(shipped, operation):
    """Integer inputs and gradients: windows tie, and every sum of ``dy`` is exact in both dtypes."""
    rng = np.random.default_rng(int(operation[-2]))
    for dtype in DTYPES:
        for _ in range(10):
            shapes, hp = window_case(rng, operation)
            arrays, dy = layer_inputs(rng, operation, shapes, hp, dtype, ties=True)
            check_layer(shipped, operation, arrays, hp, dy, exact=True)


@pytest.mark.parametrize("operation", ["relu", "sigmoid", "tanh", "linear", "flatten"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_layers_match_torch(shipped, operation, dtype):
    rng = np.random.default_rng(list(OPERATIONS).index(operation))
    exact = operation in ("relu", "flatten")  # selection and data movement only
    for _ in range(8):
        arrays, dy = layer_inputs(rng, operation, layer_shapes(rng, operation), {}, dtype)
        check_layer(shipped, operation, arrays, {}, dy, exact=exact)


def test_relu_derivative_at_zero_is_zero(shipped):
    x = np.array([[-1.0, 0.0, -0.0, 2.0]])
    dx = shipped.functions["relu_backward"](np.ones_like(x), x)
    np.testing.assert_array_equal(dx, [[0.0, 0.0, 0.0, 1.0]])


def loss_inputs(
    rng: np.random.Generator, op_name: str, dtype: Any, large: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Logits (up to ``LARGE_LOGIT`` in size when ``large``) and labels or hard/soft targets."""
    n, c = (int(v) for v in rng.integers(1, 7, 2))
    if op_name == "softmax_cross_entropy":
        shape, target = (n, c), rng.integers(0, c, n).astype(rng.choice([np.int64, np.int32]))
    else:
        shape = (n,) if rng.random() < 0.5 else (n, c)
        target = rng.random(shape) if rng.random() < 0.5 else rng.integers(0, 2, shape)
        target = target.astype(dtype)
    z = rng.uniform(-LARGE_LOGIT, LARGE_LOGIT, shape) if large else rng.standard_normal(shape) * 3
    return z.astype(dtype), target


@pytest.mark.parametrize("operation", ["softmax_cross_entropy", "sigmoid_binary_cross_entropy"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("large", [False, True], ids=["moderate", "large_logits"])
def test_losses_match_torch(shipped, operation, dtype, large):
    rng = np.random.default_rng([int(large), np.dtype(dtype).itemsize, len(operation)])
    for _ in range(10):
        z, target = loss_inputs(rng, operation, dtype, large)
        loss, dz = shipped.functions[operation](z, target)
        loss_ref, dz_ref = reference_loss(operation, z, target)
        scale = max(1.0, float(np.max(np.abs(z))))
        assert np.asarray(loss).shape == () and np.isfinite(loss)
        assert not isinstance(loss, np.ndarray) or loss.dtype == dtype, "the loss must keep the logits' dtype"
        assert abs(float(loss) - loss_ref) <= TOL[dtype] * scale, (
            shipped.name,
            operation,
            float(loss),
            loss_ref,
        )
        assert_close(dz, dz_ref, dtype, f"{shipped.name} {operation} dz")


def _relayouts(a: np.ndarray | None) -> dict[str, np.ndarray | None]:
    """The same values as a Fortran-ordered copy, a negatively strided view and a strided view."""
    if a is None:
        return dict.fromkeys(("fortran", "reversed", "strided"))
    return {
        "fortran": np.asfortranarray(a),
        "reversed": np.flip(np.flip(a).copy()),
        "strided": np.repeat(a, 2, axis=-1)[..., ::2],
    }


CASES_FOR_LAYOUT = [*WINDOW_OPS, "relu", "sigmoid", "tanh", "linear", "flatten"]


@pytest.mark.parametrize("operation", CASES_FOR_LAYOUT)
def test_any_layout_inputs_untouched_outputs_fresh(shipped, operation):
    """Non-contiguous, read-only inputs give the reference's answers in fresh arrays."""
    rng = np.random.default_rng(CASES_FOR_LAYOUT.index(operation))
    shapes, hp = (
        window_case(rng, operation) if operation in WINDOW_OPS else (layer_shapes(rng, operation), {})
    )
    for dtype in DTYPES:
        arrays, dy = layer_inputs(rng, operation, shapes, hp, dtype)
        for layout in ("fortran", "reversed", "strided"):
            moved = [_relayouts(a)[layout] for a in arrays]
            moved_dy = _relayouts(dy)[layout]
            inputs = [a for a in (*moved, moved_dy) if a is not None]
            for a in inputs:
                a.flags.writeable = False  # an in-place write raises
            y, grads = run_layer(shipped, operation, moved, hp, moved_dy)
            for out in (y, *grads):
                if out is not None:
                    assert not any(np.shares_memory(out, a) for a in inputs), f"{operation} {layout}: aliased"
            check_layer(shipped, operation, moved, hp, moved_dy)


@pytest.mark.parametrize("operation", ["softmax_cross_entropy", "sigmoid_binary_cross_entropy"])
def test_losses_any_layout_inputs_untouched(shipped, operation):
    rng = np.random.default_rng(7)
    for dtype in DTYPES:
        z, target = loss_inputs(rng, operation, dtype, large=False)
        z, target = np.repeat(z, 2, axis=0)[::2], np.flip(np.flip(target).copy())
        for a in (z, target):
            a.flags.writeable = False
        loss, dz = shipped.functions[operation](z, target)
        assert not np.shares_memory(dz, z)
        loss_ref, dz_ref = reference_loss(operation, z, target)
        assert abs(float(loss) - loss_ref) <= TOL[dtype] * max(1.0, abs(loss_ref))
        assert_close(dz, dz_ref, dtype, f"{operation} dz")


@pytest.mark.parametrize("operation", ["conv1d", "conv3d"])
def test_pointwise_convolution(shipped, operation):
    """A kernel of ones, stride 1, no padding (numpy_fast's matmul path), with groups."""
    nd = OPERATIONS[operation].ndim
    rng = np.random.default_rng(nd)
    shapes = {"x": (2, 4, *(3,) * nd), "w": (6, 2, *(1,) * nd), "b": (6,)}
    hp = {"stride": (1,) * nd, "padding": (0,) * (2 * nd), "dilation": (2,) * nd, "groups": 2}
    for dtype in DTYPES:
        arrays, dy = layer_inputs(rng, operation, shapes, hp, dtype)
        check_layer(shipped, operation, arrays, hp, dy)


@pytest.mark.parametrize("budget", [1, 200])
@pytest.mark.parametrize("operation", ["conv1d", "conv2d", "conv3d"])
def test_numpy_fast_tiles(monkeypatch, operation, budget):
    """numpy_fast's im2col tiling: one output row per band (``budget`` 1) or several items per tile."""
    monkeypatch.setattr(numpy_fast, "_TILE_ELEMENTS", budget)
    fast = registry.load("numpy_fast")
    rng = np.random.default_rng([budget, OPERATIONS[operation].ndim])
    for _ in range(4):
        shapes, hp = window_case(rng, operation)
        shapes["x"] = (3, *shapes["x"][1:])
        arrays, dy = layer_inputs(rng, operation, shapes, hp, np.float64)
        check_layer(fast, operation, arrays, hp, dy)


@pytest.mark.parametrize("operation", [n for n in WINDOW_OPS if "pool" in n])
def test_explicit_padding_reference_matches_native_torch(operation):
    """The reference's explicit-padding route agrees with torch's own padding where both apply."""
    rng = np.random.default_rng(len(operation) + OPERATIONS[operation].ndim)
    maximum = operation.startswith("max")
    checked = 0
    while checked < 10:
        shapes, hp = window_case(rng, operation)
        x = _tensor(rng.standard_normal(shapes["x"]))
        native = _native_pool(x, hp, maximum)
        if native is None:
            continue
        torch.testing.assert_close(_explicit_pool(x, hp, maximum), native, rtol=1e-12, atol=1e-12)
        checked += 1

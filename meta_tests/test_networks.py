"""The whole-network checker: parameter counts, correct layers pass, broken layers are localised.

The checker is tested on a small correct NumPy layer set of its own (below:
just what the spec networks need, independent of the shipped implementations)
and on copies of it with one realistic mistake each. For each mistake the
test asserts the layer the localisation must name, by the rule the checker
documents: walking forward, the first output that disagrees; then walking
backward from the loss, the first gradient that disagrees while the gradient
arriving at its layer agrees.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from convcheck.impls.registry import from_namespace
from convcheck.networks import Batch, check_network, init_weights, make_batch
from convcheck.networks import tolerance as network_tolerance
from convcheck.oracles import torch_network
from convcheck.spec import Capabilities
from convcheck.spec.networks import NETWORKS, required_functions

ROOT = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------- a correct layer set


def _windows(x, kernel, stride):
    """``(N, C, OH, OW, KH, KW)`` view of ``x``'s windows."""
    return sliding_window_view(x, kernel, axis=(2, 3))[:, :, :: stride[0], :: stride[1]]


def _scatter(dx, parts, kernel, stride, out_hw):
    """``dx[..., i + s*oh, j + s*ow] += parts(i, j)`` for every kernel offset."""
    (oh, ow), (sh, sw) = out_hw, stride
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            dx[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] += parts(i, j)
    return dx


def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
    assert dilation == (1, 1) and groups == 1 and not any(padding), "the networks need no more"
    y = np.einsum("nchwij,ocij->nohw", _windows(x, w.shape[2:], stride), w, optimize=True)
    return y if b is None else y + b[None, :, None, None]


def conv2d_backward(dy, x, w, b, *, stride, padding, dilation, groups):
    dw = np.einsum("nchwij,nohw->ocij", _windows(x, w.shape[2:], stride), dy, optimize=True)

    def part(i, j):
        return np.einsum("nohw,oc->nchw", dy, w[:, :, i, j])

    dx = _scatter(np.zeros_like(x), part, w.shape[2:], stride, dy.shape[2:])
    return dx, dw, None if b is None else dy.sum(axis=(0, 2, 3))


def max_pool2d_forward(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    return _windows(x, kernel_size, stride).max(axis=(4, 5))


def max_pool2d_backward(dy, x, *, kernel_size, stride, padding, dilation, ceil_mode):
    v = _windows(x, kernel_size, stride)
    n, c, oh, ow, kh, kw = v.shape
    first = v.reshape(n, c, oh, ow, kh * kw).argmax(axis=-1)  # a tied window's first maximum wins
    hit = np.arange(kh * kw) == first[..., None]
    routed = (hit * dy[..., None]).reshape(n, c, oh, ow, kh, kw)
    return _scatter(np.zeros_like(x), lambda i, j: routed[..., i, j], kernel_size, stride, (oh, ow))


def avg_pool2d_forward(x, *, kernel_size, stride, padding, ceil_mode, count_include_pad):
    return _windows(x, kernel_size, stride).mean(axis=(4, 5))


def avg_pool2d_backward(dy, x, *, kernel_size, stride, padding, ceil_mode, count_include_pad):
    share = dy / (kernel_size[0] * kernel_size[1])
    return _scatter(np.zeros_like(x), lambda i, j: share, kernel_size, stride, dy.shape[2:])


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def relu_forward(x):
    return np.maximum(x, x.dtype.type(0))


def relu_backward(dy, x):
    return np.where(x > 0, dy, x.dtype.type(0))


def sigmoid_forward(x):
    return _sigmoid(x)


def sigmoid_backward(dy, x):
    s = _sigmoid(x)
    return dy * s * (1 - s)


def tanh_forward(x):
    return np.tanh(x)


def tanh_backward(dy, x):
    return dy * (1 - np.tanh(x) ** 2)


def flatten_forward(x):
    return x.reshape(x.shape[0], -1)


def flatten_backward(dy, x):
    return dy.reshape(x.shape)


def linear_forward(x, w, b):
    return x @ w.T + b


def linear_backward(dy, x, w, b):
    return dy @ w, dy.T @ x, dy.sum(axis=0)


def softmax_cross_entropy(z, labels):
    n = z.shape[0]
    shifted = z - z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    p = e / e.sum(axis=1, keepdims=True)
    loss = np.mean(np.log(e.sum(axis=1)) - shifted[np.arange(n), labels])
    p[np.arange(n), labels] -= 1
    return np.asarray(loss, dtype=z.dtype), p / n


def sigmoid_binary_cross_entropy(z, y):
    loss = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
    return np.asarray(loss, dtype=z.dtype), (_sigmoid(z) - y) / z.size


# --------------------------------------------------------------------------- broken copies

STALE: dict[tuple[int, ...], np.ndarray] = {}


def _dw_batch_averaged(dy, x, w, b):
    dx, dw, db = linear_backward(dy, x, w, b)
    return dx, dw / x.shape[0], db


def _relu_one_at_zero(dy, x):
    return np.where(x >= 0, dy, x.dtype.type(0))


def _flatten_channels_last(x):
    return np.moveaxis(x, 1, -1).reshape(x.shape[0], -1)


def _unflatten_channels_last(dy, x):
    n, c, *spatial = x.shape
    return np.moveaxis(dy.reshape(n, *spatial, c), -1, 1)


def _softmax_dz_without_mean(z, labels):
    loss, dz = softmax_cross_entropy(z, labels)
    return loss, dz * z.shape[0]


def _conv_caching_weights(x, w, b, **kw):
    return conv2d_forward(x, STALE.setdefault(w.shape, w.copy()), b, **kw)


def _raises(x):
    raise FloatingPointError("overflow in exp\nsecond line")


def _linear_wrong_shape(x, w, b):
    return (x @ w.T + b)[:, :-1]


BUGS = {
    "linear_dw_batch_averaged": {"linear_backward": _dw_batch_averaged},
    "relu_derivative_one_at_zero": {"relu_backward": _relu_one_at_zero},
    "flatten_channels_last": {
        "flatten_forward": _flatten_channels_last,
        "flatten_backward": _unflatten_channels_last,
    },
    "flatten_backward_channels_last": {"flatten_backward": _unflatten_channels_last},
    "softmax_dz_without_batch_mean": {"softmax_cross_entropy": _softmax_dz_without_mean},
    "conv_forward_caches_weights": {"conv2d_forward": _conv_caching_weights},
    "sigmoid_forward_raises": {"sigmoid_forward": _raises},
    "linear_forward_drops_a_unit": {"linear_forward": _linear_wrong_shape},
}


def layer_set(broken: str | None = None) -> dict[str, object]:
    """Every contract function the networks need, correct, or with the mistake ``BUGS[broken]``."""
    STALE.clear()
    names = {f for net in NETWORKS.values() for f in required_functions(net)}
    functions = {name: globals()[name] for name in names}
    return functions | BUGS.get(broken or "", {})


def impl(broken: str | None = None, drop: tuple[str, ...] = (), caps: dict | None = None):
    functions = {k: v for k, v in layer_set(broken).items() if k not in drop}
    namespace = types.SimpleNamespace(**functions, CONVCHECK_CAPABILITIES=caps)
    return from_namespace(namespace, broken or "numpy_layers", "meta_tests/test_networks.py")


# --------------------------------------------------------------------------- the networks


@pytest.mark.parametrize(("network_name", "count"), [("toy_cnn", 15), ("two_conv", 1021), ("lenet5", 61706)])
def test_parameter_counts(network_name, count):
    """toy_cnn has exactly 15 trainable parameters (course note 002), LeNet-5 61706: spec, init and torch agree."""
    net = NETWORKS[network_name]
    weights = init_weights(net, 0)
    assert net.parameter_count() == count
    assert sum(a.size for p in weights.values() for a in p.values()) == count
    assert torch_network.parameter_count(net, weights) == count


def test_suite_marker_names_every_network():
    """tests/test_networks.py's marker lists every network (a literal, for the grading rubric's ast reader)."""
    source = (ROOT / "tests" / "test_networks.py").read_text()
    nodes = ast.walk(ast.parse(source))
    calls = [n for n in nodes if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "conformance"]
    (ops,) = [ast.literal_eval(k.value) for c in calls for k in c.keywords if k.arg == "ops"]
    assert tuple(ops) == tuple(NETWORKS)


def test_init_is_pytorch_like_and_the_batch_in_range():
    for net in NETWORKS.values():
        for label, p in init_weights(net, 3).items():
            limit = 1 / np.sqrt(np.prod(p["w"].shape[1:]))
            assert all(np.abs(a).max() <= limit for a in p.values()), label
        batch = make_batch(net, 6, 3)
        assert batch.x.shape == (6, *net.input_shape)
        assert set(np.unique(batch.targets)) <= set(range(max(net.classes, 2)))
        np.testing.assert_array_equal(batch.x, make_batch(net, 6, 3).x)  # deterministic


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("network_name", list(NETWORKS))
def test_correct_layers_pass(network_name, dtype):
    result = check_network(impl(), network_name, dtype=dtype)
    assert result.passed, result.report()
    assert result.first_bad is None and result.step is not None and result.step.ok
    worst = max(r.ratio for r in result.rows)
    assert worst < 0.1, (
        f"a correct implementation should sit far below the bound: {worst:.3g}\n{result.report()}"
    )
    assert result.loss == pytest.approx(result.loss_expected, rel=1e-4)
    assert result.step.loss_after < result.step.loss_before  # one SGD step goes downhill
    stages = {(r.label, r.stage, r.quantity) for r in result.rows}
    for label, p in init_weights(NETWORKS[network_name], 0).items():
        assert {(label, "backward", "d" + n) for n in p} | {(label, "step", n) for n in p} <= stages


def test_bound_is_chain_times_roundoff():
    net = NETWORKS["lenet5"]
    k = network_tolerance.chain_length(net, 4)
    assert k > 2 * (26 + 151 + 401 + 121 + 85)  # every dense and conv reduction, forward and backward
    assert network_tolerance.bound(net, 4, "float64") == pytest.approx(
        network_tolerance.SAFETY * k * 2.0**-52
    )


def test_relative_error_and_scale_notes():
    assert network_tolerance.relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert network_tolerance.relative_error(np.ones(3), np.ones(2)) == float("inf")
    assert network_tolerance.relative_error(np.array([np.nan]), np.ones(1)) == float("inf")
    assert network_tolerance.relative_error(np.array([3.0, 4.0]), np.array([0.0, 4.0])) == pytest.approx(0.75)
    assert (
        network_tolerance.scale_note(np.array([2.0, -4.0]), np.array([1.0, -2.0]), 4) == "got = 2 x expected"
    )
    assert "batch size" in network_tolerance.scale_note(np.array([4.0]), np.array([1.0]), 4)
    assert network_tolerance.scale_note(np.array([3.0]), np.array([1.0]), 4) == ""  # one number: no news
    assert network_tolerance.scale_note(np.array([1.0, 3.0]), np.array([1.0, 2.0]), 4) == ""


def test_ops_option_selects_networks():
    """No --ops: operations and networks; ``networks``: all three; an operation's name: not the networks."""
    from convcheck.spec import UsageError
    from convcheck.spec.networks import selection

    assert set(NETWORKS) <= set(selection([])) and "conv2d" in selection([])
    assert selection(["networks"]) == list(NETWORKS)
    assert selection(["conv2d", "lenet5"]) == ["conv2d", "lenet5"]
    with pytest.raises(UsageError, match=r"unknown operation.*conv4d"):
        selection(["conv2d", "conv4d"])


# --------------------------------------------------------------------------- localisation


def _where(bad):
    """``(layer, stage, quantity, function)`` of a first bad layer."""
    return bad.label, bad.stage, bad.quantity, bad.function


@pytest.mark.parametrize(
    ("network_name", "layer"), [("toy_cnn", "dense1"), ("two_conv", "dense2"), ("lenet5", "dense3")]
)
def test_dw_batch_averaged_is_the_last_dense_layer(network_name, layer):
    """Walking back from the loss, the last dense layer is the first whose dw disagrees: dz reaching it is right."""
    result = check_network(impl("linear_dw_batch_averaged"), network_name)
    bad = result.first_bad
    assert _where(bad) == (layer, "backward", "dw", "linear_backward")
    assert "while the gradient arriving from the loss is right" in bad.hint
    assert "got = 0.25 x expected" in bad.hint and "batch size" in bad.hint
    assert result.loss == pytest.approx(result.loss_expected)  # the forward pass is untouched
    assert "first bad layer: " + bad.hint in result.report()


def test_relu_wrong_at_zero_is_relu_when_some_pre_activation_is_zero():
    """A zero sample through a bias-free conv makes every relu1 input exactly 0; the relu's dx is then the first
    gradient to disagree (pool1 routes a tied window's gradient to its first cell, which relu must stop)."""
    net = NETWORKS["toy_cnn"]
    weights = init_weights(net, 0)
    weights["conv1"]["b"][:] = 0.0
    data = make_batch(net, 4, 0)
    x = data.x.copy()
    x[0] = 0.0
    result = check_network(
        impl("relu_derivative_one_at_zero"), net, weights=weights, data=Batch(x, data.targets)
    )
    bad = result.first_bad
    assert _where(bad) == ("relu1", "backward", "dx", "relu_backward")
    assert "the gradient it passes to conv1" in bad.hint and "arriving from pool1 is right" in bad.hint
    # With the seeded batch no pre-activation is exactly 0: the mistake is invisible there.
    assert check_network(impl("relu_derivative_one_at_zero"), net).passed


def test_flatten_order_is_the_flatten_forward():
    """A channels-last flatten scrambles the dense layer's input: the first output to disagree is flatten's."""
    result = check_network(impl("flatten_channels_last"), "two_conv")
    bad = result.first_bad
    assert _where(bad) == ("flatten", "forward", "y", "flatten_forward")
    assert "while its input (the output of pool2) is right" in bad.hint
    # toy_cnn flattens one channel: both orders agree there.
    assert check_network(impl("flatten_channels_last"), "toy_cnn").passed


def test_flatten_backward_order_is_the_flatten_backward():
    result = check_network(impl("flatten_backward_channels_last"), "lenet5")
    bad = result.first_bad
    assert _where(bad) == ("flatten", "backward", "dx", "flatten_backward")
    assert "the gradient it passes to pool2" in bad.hint and "arriving from dense1 is right" in bad.hint


def test_softmax_dz_without_batch_mean_is_the_loss():
    """The loss value is right and dz is N times too large: the loss is to blame, before any layer."""
    result = check_network(impl("softmax_dz_without_batch_mean"), "two_conv")
    bad = result.first_bad
    assert _where(bad) == ("loss", "backward", "dz", "softmax_cross_entropy")
    assert "got = 4 x expected (N = 4 is the batch size" in bad.hint
    assert all(r.ok for r in result.rows if r.stage == "forward")


def test_state_kept_between_calls_shows_after_the_step():
    """A conv that reuses the first weights it saw agrees before the SGD step and disagrees after it."""
    result = check_network(impl("conv_forward_caches_weights"), "toy_cnn")
    bad = result.first_bad
    assert _where(bad) == ("conv1", "step", "y", "conv2d_forward")
    assert "before the step it agreed" in bad.hint and "keep state between calls" in bad.hint
    assert not result.step.ok


@pytest.mark.parametrize(
    ("broken", "layer", "text"),
    [
        ("sigmoid_forward_raises", "sigmoid1", "sigmoid_forward raised FloatingPointError: overflow in exp"),
        (
            "linear_forward_drops_a_unit",
            "dense1",
            "linear_forward returned y of shape (4, 15), but should return",
        ),
    ],
)
def test_a_call_that_fails_is_named(broken, layer, text):
    result = check_network(impl(broken), "two_conv")
    assert result.status == "failed" and result.first_bad.label == layer
    assert text in result.first_bad.hint
    assert result.rows[-1].note.startswith("error: ")  # the walk stops there


def test_missing_functions_and_undeclared_dtypes_are_unsupported():
    result = check_network(impl(drop=("tanh_forward", "tanh_backward")), "lenet5")
    assert result.status == "unsupported" and not result.rows
    assert result.missing == ("tanh_forward", "tanh_backward")
    assert "does not provide tanh_forward, tanh_backward" in result.reason
    assert check_network(impl(drop=("tanh_forward",)), "two_conv").passed  # two_conv needs no tanh
    only64 = impl(caps={"dtypes": ["float64"]})
    assert check_network(only64, "toy_cnn", dtype="float32").status == "unsupported"
    assert check_network(only64, "toy_cnn", dtype="float32", caps=Capabilities()).passed  # --strict
    unit = impl(caps={"max_pool2d": {"stride": "unit"}})
    assert "pool1 needs max_pool2d.stride='uniform'" in check_network(unit, "toy_cnn").reason


# --------------------------------------------------------------------------- through convcheck run


IMPL_FILE = """\
import importlib.util
_spec = importlib.util.spec_from_file_location("convcheck_meta_network_layers", {path!r})
_layers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_layers)
globals().update(_layers.layer_set({broken!r}))
"""


def test_convcheck_run_reports_the_localisation(tmp_path):
    """``convcheck run --ops networks``: a matrix row per network, the first bad layer in the failure card."""
    source = tmp_path / "broken_dense.py"
    source.write_text(IMPL_FILE.format(path=__file__, broken="linear_dw_batch_averaged"))
    folder = tmp_path / "report"
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "CONVCHECK_PROFILE")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "convcheck",
            "run",
            "--impl",
            str(source),
            "--ops",
            "toy_cnn,two_conv",
            "--profile",
            "fast",
            "--report",
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "FAILED at dense2 (linear_backward)" in proc.stdout
    doc = json.loads((folder / "report.json").read_text())
    schema = json.loads((ROOT / "spec" / "report.schema.json").read_text())
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(doc))
    assert not errors, errors[0].message[:300]
    assert {(r["op"], r["property"], r["dtype"]) for r in doc["records"]} == {
        (n, "network", d) for n in ("toy_cnn", "two_conv") for d in ("float32", "float64")
    }
    card = next(r for r in doc["records"] if r["op"] == "two_conv" and r["dtype"] == "float64")
    assert card["network"]["first_bad"]["label"] == "dense2"
    assert "check_network" in card["reproduction"]["command"]
    markdown = (folder / "report.md").read_text()
    assert "| network: two_conv | FAIL |" in markdown and "FAIL (dense2: dw)" in markdown
    assert "**first bad layer** (backward): dense2 (linear_backward): dw disagrees" in markdown
    assert (
        "First bad layer</strong> (backward): dense1 (linear_backward)"
        in (folder / "report.html").read_text()
    )


def test_the_kink_inputs_put_relus_at_zero_and_catch_a_wrong_derivative_there():
    """The seeded batch never hits ReLU'(0); the kink inputs (a zero sample through a bias-free first
    layer) do, and correct layers still agree with PyTorch there."""
    from convcheck.impls.registry import load

    net = NETWORKS["toy_cnn"]
    wrong = load("buggy.relu_derivative_at_zero")
    assert check_network(wrong, net).passed
    kinked = check_network(wrong, net, kink=True)
    assert kinked.first_bad is not None and kinked.first_bad.label == "relu1"
    assert "a zero sample at the kinks" in kinked.headline()
    for name in ("toy_cnn", "two_conv"):
        assert check_network(impl(), name, kink=True).passed, name


def test_the_network_bound_honours_tolerance_overrides():
    from convcheck.spec import tolerance

    net = NETWORKS["toy_cnn"]
    base = network_tolerance.bound(net, 4, "float32")
    cases = [
        ("toy_cnn:float32=4", 4 * base, "toy_cnn:float32 x4 (cli)"),
        ("*:float32=rtol=1e-3", 1e-3, "*:float32 rtol=0.001 atol=0 (cli)"),
        ("conv2d:float32=3", 3 * base, "conv2d:float32 x3 (cli)"),  # a layer's factor scales the chain
        ("conv2d:float64=3", base, None),  # another dtype: the policy as it is
    ]
    try:
        for item, limit, described in cases:
            tolerance.use_overrides(tolerance.ToleranceOverrides.from_cli([item]))
            assert network_tolerance.overridden_bound(net, 4, "float32") == (pytest.approx(limit), described)
        tolerance.use_overrides(tolerance.ToleranceOverrides.from_cli(["toy_cnn:float32=1e-9"]))
        result = check_network(impl(), net, dtype="float32")
        assert not result.passed and result.override == "toy_cnn:float32 x1e-09 (cli)"
        assert "tolerance override toy_cnn:float32 x1e-09 (cli)" in result.report()
    finally:
        tolerance.use_overrides(tolerance.ToleranceOverrides())

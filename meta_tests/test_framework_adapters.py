"""The framework adapters (``torch_functional``, ``jax_lax``): a library's own kernels behind the contract.

Each adapter is loaded by its short name, as ``convcheck run --impl`` loads it, and
called on a few cases that reach what the framework does itself (groups, dilation,
ceil_mode, both divisor rules, tied maxima), forward and backward, against the
SciPy oracle. What the torch adapter declares unsupported is refused with
``NotImplementedError`` (asymmetric padding) or left out by its predicate (a
pooling pad beyond half the undilated kernel). The JAX adapter runs only where JAX
is installed (the ``jax`` extra); torch is a dependency, so its checks always run.
A short ``convcheck run`` of the torch adapter checks it end to end.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from convcheck import oracles
from convcheck.impls import registry
from convcheck.spec import OPERATIONS

RNG = np.random.default_rng(7)

CONV = {"stride": (2, 1), "padding": (1, 1, 0, 0), "dilation": (1, 2), "groups": 2}
MAX = {
    "kernel_size": (2, 3),
    "stride": (2, 2),
    "padding": (1, 1, 1, 1),
    "dilation": (2, 1),
    "ceil_mode": True,
}
AVG = {"kernel_size": (3, 2), "stride": (2, 3), "padding": (1, 1, 1, 1), "ceil_mode": True}

CASES: list[tuple[str, dict[str, Any]]] = [
    ("conv2d", CONV),
    ("conv1d", {"stride": (3,), "padding": (2, 2), "dilation": (2,), "groups": 2}),
    ("max_pool2d", MAX),
    (
        "max_pool3d",
        {
            **MAX,
            "kernel_size": (2, 2, 1),
            "stride": (1, 2, 1),
            "padding": (1, 1, 0, 0, 0, 0),
            "dilation": (1, 1, 2),
            "ceil_mode": False,
        },
    ),
    ("avg_pool2d", {**AVG, "count_include_pad": True}),
    ("avg_pool2d", {**AVG, "count_include_pad": False}),
    (
        "avg_pool1d",
        {
            "kernel_size": (3,),
            "stride": (2,),
            "padding": (1, 1),
            "ceil_mode": True,
            "count_include_pad": False,
        },
    ),
]
"""Cases with symmetric padding (torch's), each reaching a feature the framework implements itself."""

ASYMMETRIC: list[tuple[str, dict[str, Any]]] = [
    ("conv2d", {**CONV, "padding": (0, 2, 1, 0)}),
    ("max_pool2d", {**MAX, "padding": (0, 1, 1, 0)}),
    ("avg_pool2d", {**AVG, "padding": (1, 0, 0, 1), "count_include_pad": True}),
]
"""Cases with unequal padding pairs: JAX takes them as they are, torch declares them unsupported."""


def _inputs(op_name: str, ties: bool = False) -> list[np.ndarray | None]:
    """The case's arrays: ``x`` (small integers when ``ties``, so that maxima tie), then ``w`` and ``b``."""
    nd = int(op_name[-2])
    shape = (2, 4, *(7, 6, 5)[:nd])
    x = RNG.integers(0, 3, shape).astype(np.float64) if ties else RNG.standard_normal(shape)
    if OPERATIONS[op_name].family != "conv":
        return [x]
    return [x, RNG.standard_normal((6, 2, *(3, 2, 2)[:nd])), RNG.standard_normal(6)]


def _close(got: Any, want: Any, what: str) -> None:
    """``got`` matches the oracle's float64 ``want`` to float64 rounding, in shape and value."""
    assert got is not None, f"{what}: no output"
    got = np.asarray(got)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, the oracle's is {want.shape}"
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10, err_msg=what)


def _check_against_oracle(
    impl: registry.Implementation, op_name: str, hp: dict[str, Any], ties: bool
) -> None:
    """The adapter's forward and every gradient of its backward equal the SciPy oracle's; a backward
    the adapter declares forward only raises ``NotImplementedError``."""
    op = OPERATIONS[op_name]
    arrays = _inputs(op_name, ties)
    y = impl.functions[op.forward](*arrays, **hp)
    _close(y, oracles.call("scipy", op.forward, *arrays, **hp), f"{op.forward} {hp}")
    dy = RNG.standard_normal(np.shape(y))
    if not impl.capabilities.for_direction("backward").admits(op, op.params_type(**hp)):
        with pytest.raises(NotImplementedError):
            impl.functions[str(op.backward)](dy, *arrays, **hp)
        return
    got = impl.functions[str(op.backward)](dy, *arrays, **hp)
    want = oracles.call("scipy", str(op.backward), dy, *arrays, **hp)
    got, want = (t if isinstance(t, tuple) else (t,) for t in (got, want))
    for name, g, w in zip(("dx", "dw", "db"), got, want, strict=False):  # the pools give dx alone
        _close(g, w, f"{op.backward} {name} {hp}")


@pytest.fixture(scope="module")
def torch_functional() -> registry.Implementation:
    return registry.load("torch_functional")


@pytest.fixture(scope="module")
def jax_lax() -> registry.Implementation:
    pytest.importorskip("jax", reason="the jax extra is not installed (pip install -e '.[jax]')")
    return registry.load("jax_lax")


@pytest.mark.parametrize(("operation", "hp"), CASES, ids=[f"{op}-{i}" for i, (op, _) in enumerate(CASES)])
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
def test_torch_kernels_match_the_oracle(torch_functional, operation, hp, ties):
    _check_against_oracle(torch_functional, operation, hp, ties)


@pytest.mark.parametrize(
    ("operation", "hp"), CASES + ASYMMETRIC, ids=[f"{op}-{i}" for i, (op, _) in enumerate(CASES + ASYMMETRIC)]
)
def test_jax_kernels_match_the_oracle(jax_lax, operation, hp):
    # Each new shape costs JAX a compilation: one value family per case, ties where they matter.
    _check_against_oracle(jax_lax, operation, hp, ties=OPERATIONS[operation].family == "max_pool")


@pytest.mark.parametrize("name", ["torch_functional", "jax_lax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adapters_keep_the_dtype_and_return_fresh_writable_arrays(name, dtype, request):
    impl = request.getfixturevalue(name)
    x, w, b = (a.astype(dtype) for a in _inputs("conv2d"))  # type: ignore[union-attr]
    y = impl.functions["conv2d_forward"](x, w, b, **CONV)
    dx, dw, db = impl.functions["conv2d_backward"](y, x, w, b, **CONV)
    for a in (y, dx, dw, db):
        assert a.dtype == dtype
        assert a.flags.writeable and not np.shares_memory(a, x)


def test_torch_refuses_asymmetric_padding_as_declared(torch_functional):
    assert torch_functional.capabilities.value(OPERATIONS["conv2d"], "padding") == "symmetric"
    for op_name, hp in ASYMMETRIC:
        op = OPERATIONS[op_name]
        with pytest.raises(NotImplementedError, match=r"pads each axis symmetrically"):
            torch_functional.functions[op.forward](*_inputs(op_name), **hp)


def test_torch_predicate_leaves_out_pooling_pads_beyond_half_the_undilated_kernel(torch_functional):
    from convcheck.impls.torch_functional import supports

    dilated = OPERATIONS["max_pool2d"].params_type(**{**MAX, "kernel_size": (2, 2), "padding": (2, 2, 1, 1)})
    assert "kernel_size // 2" in str(supports("max_pool2d", dilated))
    assert supports("max_pool2d", OPERATIONS["max_pool2d"].params_type(**MAX)) is True
    # torch itself refuses the case the predicate leaves out: the declaration is not too cautious.
    import torch
    import torch.nn.functional as F

    with pytest.raises(RuntimeError, match="pad should be at most half"):
        F.max_pool2d(torch.zeros(1, 1, 6, 6), (2, 2), (2, 2), (2, 1), (2, 1))


def test_torch_device_setting_names_what_to_do_when_the_device_is_missing():
    import torch

    from convcheck.impls.torch_functional import DEVICE, DEVICE_ENV, _device

    assert torch.device("cpu") == DEVICE  # the default, without the variable
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(ValueError, match=rf"{DEVICE_ENV}='cuda'.*no CUDA device.*unset {DEVICE_ENV}"):
        _device("cuda")
    with pytest.raises(ValueError, match="is not a torch device"):
        _device("gpu0")


def test_a_missing_framework_is_a_usage_error_that_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)  # an import of jax now fails as if not installed
    monkeypatch.delitem(sys.modules, "convcheck.impls.jax_lax", raising=False)
    with pytest.raises(registry.ContractError, match=r"jax_lax checks jax.*install -c constraints.txt"):
        registry.load("jax_lax")


def test_convcheck_run_checks_torch_max_pool2d_end_to_end():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "convcheck",
            "run",
            "--impl",
            "torch_functional",
            "--profile",
            "ci",
            "--ops",
            "max_pool2d",
            "--max-examples",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "max_pool2d.padding = 'symmetric'" in proc.stdout  # the declaration is listed
    assert "torch_functional passed every check that applies" in proc.stdout

"""Half precision (float16, bfloat16): the bound follows the declared accumulation, correct
implementations pass, summing in the storage dtype is caught, and bfloat16 crosses the sandbox.

The conformance runs are restricted to the half dtypes and to conv2d's forward and backward
(a small implementation file narrowing ``dtypes``) so that each stays within seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from convcheck.sandbox import wire
from convcheck.spec import CapabilityError, parse_capabilities, tolerance
from convcheck.spec.dtypes import HALF_DTYPES, numpy_dtype, round_to

HALF_ONLY = """from convcheck.impls.{module} import *  # noqa: F403
CONVCHECK_CAPABILITIES = {{"dtypes": ["float16", "bfloat16"], "accumulate": "float32"}}
"""


def _run(impl: str, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CONVCHECK_PROFILE": "ci"}
    return subprocess.run(
        [sys.executable, "-m", "convcheck", "run", "--impl", impl, "--ops", "conv2d", *extra],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.mark.parametrize(("dtype", "u"), [("float16", 2.0**-11), ("bfloat16", 2.0**-8)])
def test_unit_roundoff_and_tiny(dtype, u):
    assert tolerance.unit_roundoff(dtype) == u
    assert tolerance.TINY[dtype] == {"float16": 2.0**-14, "bfloat16": 2.0**-126}[dtype]


@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("accumulate", ["float32", None])
def test_bound_follows_the_accumulation_precision(dtype, accumulate):
    rng = np.random.default_rng(0)
    s, e, k = rng.random(50) * 10, rng.standard_normal(50), 27
    u, u_acc = tolerance.unit_roundoff(dtype), tolerance.unit_roundoff(accumulate or dtype)
    gamma = lambda n, r: n * r / (1 - n * r)  # noqa: E731
    want = (
        tolerance.SAFETY * (gamma(k, u_acc) + gamma(k, 2.0**-53)) * s + u * np.abs(e) + tolerance.TINY[dtype]
    )
    got = tolerance.elementwise_bound(s, e, k, dtype, accumulate=accumulate)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_float32_accumulation_is_tighter_than_storage_accumulation():
    s, e = np.full(4, 100.0), np.full(4, 1.0)
    tight = tolerance.elementwise_bound(s, e, 64, "float16", accumulate="float32")
    loose = tolerance.elementwise_bound(s, e, 64, "float16")
    assert np.all(loose > 10 * tight)


def test_exact_comparison_rounds_the_expected_value_once_to_storage():
    expected = np.array([257.0, 1000.0])  # not representable in bfloat16
    got = expected.astype(numpy_dtype("bfloat16"))
    comp = tolerance.compare("y", got, expected, expected, 1, "bfloat16", exact=True)
    assert comp.passed and comp.error_ratio == 0
    np.testing.assert_array_equal(round_to(expected, "bfloat16"), got.astype(np.float64))


def test_storage_accumulation_error_fails_a_float32_declaration():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((200, 64)), rng.standard_normal(64)
    x16, w16 = x.astype(np.float16), w.astype(np.float16)
    exact = x16.astype(np.float64) @ w16.astype(np.float64)
    acc = np.zeros(200, np.float16)
    for j in range(64):  # every partial sum rounded to float16
        acc += x16[:, j] * w16[j]
    s = np.abs(x16.astype(np.float64)) @ np.abs(w16.astype(np.float64))
    wide = (x16.astype(np.float32) @ w16.astype(np.float32)).astype(np.float16)
    assert tolerance.compare("y", wide, exact, s, 64, "float16", accumulate="float32").passed
    assert not tolerance.compare("y", acc, exact, s, 64, "float16", accumulate="float32").passed
    assert tolerance.compare("y", acc, exact, s, 64, "float16").passed


def test_accumulate_declaration_is_validated():
    assert parse_capabilities({"dtypes": ["bfloat16"]}).accumulate == "float32"
    assert parse_capabilities({}).dtypes == ("float32", "float64")
    with pytest.raises(CapabilityError, match="accumulate"):
        parse_capabilities({"accumulate": "float16"})


def test_bfloat16_crosses_the_wire_as_bit_patterns():
    base = np.arange(-12.0, 12.0).reshape(2, 3, 4) / 3
    a = base.astype(numpy_dtype("bfloat16"))[:, ::2, ::-1]  # non-contiguous, negative strides
    message = wire.dumps({"dx": a, "pair": (a.astype(np.float16), None)})
    assert b"bfloat16" in message and b"pickle" not in message
    back = wire.loads(message)
    assert back["dx"].dtype == a.dtype and back["dx"].strides == a.strides
    np.testing.assert_array_equal(back["dx"].view(np.uint16), a.view(np.uint16))
    assert back["pair"][0].dtype == np.float16 and back["pair"][1] is None


def test_wire_refuses_an_unknown_storage_tag():
    message = wire.dumps(np.zeros(3, numpy_dtype("bfloat16")))
    forged = message.replace(b'"storage": "bfloat16"', b'"storage": "float8e5"')  # same length
    assert forged != message
    with pytest.raises(ValueError, match="float8e5"):
        wire.loads(forged)


@pytest.mark.parametrize("module", ["numpy_fast", "torch_backed"])
def test_correct_implementations_pass_half_precision(module, tmp_path: Path):
    impl = tmp_path / f"{module}_half.py"
    impl.write_text(HALF_ONLY.format(module=module))
    proc = _run(str(impl), "-k", "test_forward or test_backward", "--no-isolation")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "passed every check that applies" in proc.stdout


def test_storage_accumulation_plant_is_caught():
    proc = _run("buggy.conv_half_accumulated", "-k", "test_forward")
    assert proc.returncode == 1, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "conv2d:forward" in proc.stdout
    assert "dtype=float16" in proc.stdout or "dtype=bfloat16" in proc.stdout
    assert "likely cause: accumulated_in_storage_dtype" in proc.stdout


def test_bench_baseline_takes_bfloat16_arrays():
    import torch

    from convcheck.bench.baseline import _tensor

    a = (np.arange(6.0).reshape(2, 3) / 4).astype(numpy_dtype("bfloat16"))
    t = _tensor(a)
    assert t is not None and t.dtype == torch.bfloat16
    np.testing.assert_array_equal(t.float().numpy(), a.astype(np.float32))

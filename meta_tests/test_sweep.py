"""The small-scope sweep: its enumeration covers what it claims, and it finds planted narrow-region
defects by their smallest case while passing the correct implementations.

The enumeration is checked against an independent brute force over the spec (every valid 1-D
geometry of the bounded space, every plain small 2-D one). The planted implementations
(``impls/buggy``, ``EXPECTED_FAILURES`` naming ``:sweep``) run through ``convcheck run`` as a user
would; the case each one is reported on must be the first case of the enumeration on which it
differs from ``numpy_reference``, found here by calling both directly.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from convcheck.impls.buggy import BUGGY
from convcheck.impls.registry import load
from convcheck.spec import FULL, OPERATIONS, InvalidConfiguration, parse_capabilities
from convcheck.tests import small_scope
from convcheck.tests.values import make_case

WINDOW_OPS = [name for name in OPERATIONS if small_scope.is_window(name)]
PLANTED = [
    b
    for b in BUGGY
    if any(
        c.endswith(":sweep") for c in importlib.import_module(f"convcheck.impls.buggy.{b}").EXPECTED_FAILURES
    )
]


@pytest.mark.parametrize("operation", WINDOW_OPS)
def test_every_geometry_is_valid_and_in_size_order(operation):
    op = OPERATIONS[operation]
    geometries = small_scope.geometries(operation, FULL)
    assert geometries, operation
    for g in geometries:
        op.check(g.shapes, g.params)  # raises InvalidConfiguration otherwise
    keys = [g.size_key() for g in geometries]
    assert keys == sorted(keys)
    assert len({k[2:] for k in keys}) == len(keys), "a geometry enumerated twice"
    assert small_scope._enumerate(op, FULL) == geometries  # the same in every run


NARROW = parse_capabilities(
    {
        "dtypes": ["float64"],
        "conv2d": {"stride": "uniform", "padding": "symmetric", "dilation": False, "groups": False},
        "max_pool2d": {"padding": "none", "ceil_mode": False},
        "avg_pool2d": {"exclude_pad": False, "stride": "unit"},
    }
)


@pytest.mark.parametrize("operation", ["conv2d", "max_pool2d", "avg_pool2d"])
def test_declaration_narrows_the_sweep(operation):
    narrowed = small_scope.geometries(operation, NARROW)
    assert narrowed and len(narrowed) < len(small_scope.geometries(operation, FULL))
    for g in narrowed:
        assert NARROW.admits(operation, g.params), g


def _all_conv1d_rows():
    """Every valid conv1d geometry of the bounded space, by brute force over the spec."""
    op, b = OPERATIONS["conv1d"], small_scope.BOUNDS[1]
    for n, c_in, c_out, g, bias, size, k, s, lo, hi, d in itertools.product(
        b.batch, b.channels, b.channels, b.groups, (True, False), b.size, b.kernel, b.stride, b.pad, b.pad,
        b.dilation,
    ):  # fmt: skip
        if c_in % g or c_out % g:
            continue
        params = op.params_type(stride=(s,), padding=(lo, hi), dilation=(d,), groups=g)
        shapes = {"x": (n, c_in, size), "w": (c_out, c_in // g, k), "b": (c_out,) if bias else None}
        try:
            op.check(shapes, params)
        except InvalidConfiguration:
            continue
        out = op.output_shape(shapes, params)[2]
        yield {"n": n, "c_in": c_in, "c_out": c_out, "g": g, "bias": bias, "size": size, "k": k, "s": s,
               "lo": lo, "hi": hi, "d": d, "out": out}  # fmt: skip


def _row(g):
    p = g.params
    x, w = g.shapes["x"], g.shapes["w"]
    return {
        "n": x[0], "c_in": x[1], "c_out": w[0], "g": p.groups, "bias": g.shapes["b"] is not None, "size": x[2],
        "k": w[2], "s": p.stride[0], "lo": p.padding[0], "hi": p.padding[1], "d": p.dilation[0],
        "out": OPERATIONS["conv1d"].output_shape(g.shapes, p)[2],
    }  # fmt: skip


def test_every_pair_of_feature_values_is_covered():
    """Pairwise coverage, checked on conv1d, whose whole bounded space a brute force can list."""
    possible = {
        frozenset(pair) for row in _all_conv1d_rows() for pair in itertools.combinations(row.items(), 2)
    }
    chosen = {
        frozenset(pair)
        for g in small_scope.geometries("conv1d", FULL)
        for pair in itertools.combinations(_row(g).items(), 2)
    }
    missing = possible - chosen
    assert not missing, (
        f"{len(missing)} of {len(possible)} pairs never appear, e.g. {sorted(map(sorted, missing))[:5]}"
    )


def test_the_smallest_plain_geometries_are_all_enumerated():
    op, b = OPERATIONS["conv2d"], small_scope.BOUNDS[2]
    listed = {repr((g.params, g.shapes)) for g in small_scope.geometries("conv2d", FULL)}
    small = range(1, b.full_size + 1)
    kernels = range(1, b.full_kernel + 1)
    count = 0
    for n, c_in, c_out, h, w, kh, kw, sh, sw in itertools.product(
        b.batch, b.channels, b.channels, small, small, kernels, kernels, b.stride, b.stride
    ):
        params = op.params_type(stride=(sh, sw), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1)
        shapes = {"x": (n, c_in, h, w), "w": (c_out, c_in, kh, kw), "b": (c_out,)}
        try:
            op.check(shapes, params)
        except InvalidConfiguration:
            continue
        count += 1
        assert repr((params, shapes)) in listed, (params, shapes)
    assert count > 100


def test_sweep_families_hold_the_same_values_in_every_dtype():
    """One float64 oracle answer serves every dtype only because the arrays are equal."""
    for op_name in WINDOW_OPS:
        g = small_scope.geometries(op_name, FULL)[-1]
        for family in small_scope.FAMILIES:
            wide, narrow = (
                make_case(op_name, g.params, g.shapes, d, family, small_scope.SEED)
                for d in ("float64", "float32")
            )
            for name, a in wide.inputs.items():
                assert a is None or np.array_equal(a, narrow.inputs[name].astype(np.float64)), (
                    op_name,
                    family,
                    name,
                )
            assert np.array_equal(wide.dy, narrow.dy.astype(np.float64))


def _first_difference(bug: str, op_name: str) -> tuple[int, str]:
    """``(case number, description)`` of the first sweep case on which the planted implementation
    differs from ``numpy_reference`` (or from itself on a second call), in the sweep's own order."""
    plant, right = load(f"buggy.{bug}"), load("numpy_reference")
    op = OPERATIONS[op_name]
    index = 0
    for g in small_scope.geometries(op_name, plant.capabilities):
        for family in small_scope.FAMILIES:
            for dtype in plant.capabilities.dtypes:
                index += 1
                case = make_case(op_name, g.params, g.shapes, dtype, family, small_scope.SEED)
                args = {op.forward: case.forward_args(), op.backward: case.backward_args()}
                for fname, arrays in args.items():
                    want = _outputs(right.functions[fname](*arrays, **case.kwargs()))
                    for _ in range(2):
                        got = _outputs(
                            plant.functions[fname](
                                *(None if a is None else a.copy() for a in arrays), **case.kwargs()
                            )
                        )
                        if any(
                            a is not None and not np.array_equal(a, b) for a, b in zip(got, want, strict=True)
                        ):
                            return index, case.describe()
    raise AssertionError(f"buggy.{bug} never differs from numpy_reference on the sweep")


def _outputs(out):
    return list(out) if isinstance(out, tuple | list) else [out]


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CONVCHECK_PROFILE": "ci"}
    cmd = [sys.executable, "-m", "convcheck", "run", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)


@pytest.mark.slow
@pytest.mark.parametrize("bug", PLANTED)
def test_planted_defect_is_reported_on_its_smallest_case(bug):
    module = importlib.import_module(f"convcheck.impls.buggy.{bug}")
    op_name = next(c for c in module.EXPECTED_FAILURES if c.endswith(":sweep")).split(":")[0]
    proc = _run("--impl", f"buggy.{bug}", "--ops", op_name, "-k", "sweep")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    index, description = _first_difference(bug, op_name)
    reported = re.search(r"small-scope sweep, the first failing case (\d+) of \d+", proc.stdout)
    assert reported, proc.stdout[-3000:]
    assert int(reported.group(1)) == index, (
        f"reported case {reported.group(1)}, first failing is {index}: {description}"
    )
    assert description in proc.stdout
    assert "reproduce:" in proc.stdout and "likely cause:" in proc.stdout


@pytest.mark.slow
def test_correct_implementations_pass_the_sweep_in_every_dtype(tmp_path):
    results = tmp_path / "results.jsonl"
    suite = Path(small_scope.__file__).resolve().parent
    cmd = [
        sys.executable, "-m", "pytest", str(suite / "test_sweep.py"), "-p", "convcheck.pytest_plugin",
        "-p", "no:cacheprovider", "-q", "--rootdir", str(suite), "-c", os.devnull,
        "--impl", "numpy_reference,numpy_fast,torch", "--convcheck-profile", "ci",
        "--convcheck-results", str(results),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    rows = [json.loads(line) for line in results.read_text().splitlines() if line]
    assert {(r["impl"], r["op"]) for r in rows} == {
        (i, o) for i in ("numpy_reference", "numpy_fast", "torch") for o in WINDOW_OPS
    }
    for r in rows:
        assert r["status"] == "passed" and r["property"] == "sweep", r
        for dtype in ("float32", "float64"):
            outputs = r["by_dtype"][dtype]["outputs"]
            assert r["by_dtype"][dtype]["examples"] > 0 and outputs, (r["impl"], r["op"], dtype)
            assert all(o["failed"] == 0 for o in outputs.values()), (r["impl"], r["op"], dtype)

"""The student's path: CS231n-style ``layers.py`` files planted with what real submissions do
(``meta_tests/cs231n_plants/``), adapted with ``from_cs231n`` and checked as a course would.

- Hygiene through the adapter: the student's code gets the caller's arrays, and any write into an
  input (an array, a parameter dict, the cache) is named, function and argument.
- The adapter is as wide as the API: ``affine_forward`` sees ``x`` of rank 2 to 4.
- The course's geometry: a divisibility assertion is never a failure of the drawn cases.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import cs231n_plants as plants
import numpy as np
import pytest

from convcheck.impls import adapters


def _adapt(name: str):
    return adapters.from_cs231n(plants.path(name))


def _plugin(tmp_path: Path, name: str) -> Path:
    """A two-line plug-in file wrapping plant ``name``, as a student's would."""
    path = tmp_path / f"{name}_plugin.py"
    path.write_text(
        "from convcheck.impls.adapters import exports, from_cs231n\n"
        f"globals().update(exports(from_cs231n({str(plants.path(name))!r})))\n"
    )
    return path


def _run(plugin: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CONVCHECK_PROFILE": "ci"}
    return subprocess.run(
        [sys.executable, "-m", "convcheck", "run", "--impl", str(plugin), *extra],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def _failed_groups(stdout: str) -> set[str]:
    m = re.search(r"FAILED \d+ property group\(s\): (.+)$", stdout, re.MULTILINE)
    return set(m.group(1).split(", ")) if m else set()


# --- hygiene through the adapter ---------------------------------------------------------------


def test_relu_backward_writing_into_dout_is_named():
    plugin = _adapt("relu_writes_dout")
    x = np.array([[-1.0, 2.0, 0.0]])
    dy = np.array([[5.0, 6.0, 7.0]])
    with pytest.raises(
        adapters.InputModified, match=r"relu_backward wrote into its argument dout: dout\[0, 0\]"
    ):
        plugin.relu_backward(dy, x)


def test_relu_forward_writing_into_x_is_named():
    plugin = _adapt("relu_writes_x")
    with pytest.raises(adapters.InputModified, match=r"relu_forward wrote into its argument x: x\[0, 0\]"):
        plugin.relu_forward(np.array([[-1.0, 2.0]]))


def test_a_write_into_the_cached_pool_param_is_named():
    plugin = _adapt("pool_writes_pool_param")
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    hp = {
        "kernel_size": (2, 2),
        "stride": (2, 2),
        "padding": (0,) * 4,
        "dilation": (1, 1),
        "ceil_mode": False,
    }
    plugin.max_pool2d_forward(x, **hp)  # the forward alone writes nothing
    with pytest.raises(
        adapters.InputModified, match=r"max_pool_backward_naive wrote into its argument cache"
    ):
        plugin.max_pool2d_backward(np.ones((1, 1, 2, 2)), x, **hp)


def test_a_write_of_minus_zero_over_zero_is_a_write():
    """Bit for bit: ``-0.0`` over ``+0.0`` changes the input although ``==`` holds."""
    before = adapters._snapshot({"a": np.zeros(3)})
    after = {"a": np.array([0.0, -0.0, 0.0])}
    assert adapters._first_write(before, after, "cache") == (
        "cache['a'][1] was np.float64(0.0), afterwards np.float64(-0.0) (1 of 3 elements changed)"
    )
    assert adapters._first_write(before, {"a": np.zeros(3)}, "cache") is None


def test_the_adapter_hands_over_the_callers_arrays():
    """No hidden copies: the student's function receives the very arrays (or views of them)."""
    seen = []

    def relu_forward(x):
        seen.append(x)
        return np.maximum(x, 0), x

    plugin = adapters.from_cs231n({"relu_forward": relu_forward})
    x = np.array([[1.0, -1.0]])
    plugin.relu_forward(x)
    assert seen[0] is x


@pytest.mark.slow
def test_hygiene_property_fails_on_relu_writing_into_dout(tmp_path):
    proc = _run(_plugin(tmp_path, "relu_writes_dout"), "--ops", "relu", "-k", "hygiene")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "relu:hygiene" in _failed_groups(proc.stdout)
    assert "relu_backward wrote into its argument dout" in proc.stdout


# --- affine: x of any rank ---------------------------------------------------------------------


@pytest.mark.parametrize(("d_in", "d_out", "rank"), [(6, 3, 2), (6, 4, 3), (6, 5, 4), (5, 5, 3), (1, 4, 4)])
def test_affine_input_shape_covers_ranks_two_to_four(d_in, d_out, rank):
    shape = adapters.affine_input_shape(2, d_in, d_out)
    assert len(shape) == rank and shape[0] == 2 and int(np.prod(shape[1:])) == d_in


def test_affine_sees_every_rank_and_dx_comes_back_in_the_contract_shape():
    seen = set()

    def affine_forward(x, w, b):
        seen.add(x.ndim)
        return x.reshape(x.shape[0], -1) @ w + b, (x, w, b)

    def affine_backward(dout, cache):
        x, w, _ = cache
        return (dout @ w.T).reshape(x.shape), x.reshape(x.shape[0], -1).T @ dout, dout.sum(axis=0)

    plugin = adapters.from_cs231n({"affine_forward": affine_forward, "affine_backward": affine_backward})
    rng = np.random.default_rng(0)
    for d_out in (3, 4, 5):
        x, w, b = rng.standard_normal((2, 6)), rng.standard_normal((d_out, 6)), rng.standard_normal(d_out)
        dy = rng.standard_normal((2, d_out))
        np.testing.assert_allclose(plugin.linear_forward(x, w, b), x @ w.T + b)
        dx, dw, db = plugin.linear_backward(dy, x, w, b)
        np.testing.assert_allclose(dx, dy @ w)
        np.testing.assert_allclose(dw, dy.T @ x)
        np.testing.assert_allclose(db, dy.sum(axis=0))
    assert seen == {2, 3, 4}


def test_affine_backward_returning_flat_dx_is_caught_on_higher_ranks():
    plugin = _adapt("affine_flat_dx")
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 6)), rng.standard_normal((4, 6)), rng.standard_normal(4)
    with pytest.raises(ValueError, match=r"dx of shape \(2, 6\) for x of shape \(2, 2, 3\)"):
        plugin.linear_backward(rng.standard_normal((2, 4)), x, w, b)
    w3 = rng.standard_normal((3, 6))  # rank 2: the flat dx is right there
    dx, _, _ = plugin.linear_backward(np.ones((2, 3)), x, w3, rng.standard_normal(3))
    np.testing.assert_allclose(dx, np.ones((2, 3)) @ w3)


# --- the course's geometry ---------------------------------------------------------------------


@pytest.mark.slow
def test_divisibility_assertions_are_never_failures_of_the_drawn_cases(tmp_path):
    proc = _run(_plugin(tmp_path, "asserts_divisible"), "--ops", "conv2d,max_pool2d")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "geometry" in proc.stdout  # listed as not part of the contract for this run


# --- conventions apart from defects: the two contracts ------------------------------------------

CONVENTIONS = [
    (
        "relu_grad_at_zero_one",
        "relu",
        "convention (relu derivative_at_zero=1)",
        '{"relu": {"derivative_at_zero": 1}}',
    ),
    (
        "pool_ties_last",
        "max_pool2d",
        "convention (max_pool2d ties='last')",
        '{"max_pool2d": {"ties": "last"}}',
    ),
    (
        "pool_ties_split",
        "max_pool2d",
        "convention (max_pool2d ties='split')",
        '{"max_pool2d": {"ties": "split"}}',
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("plant", "ops", "verdict", "declaration"), CONVENTIONS)
def test_a_convention_is_a_note_under_the_course_contract(tmp_path, plant, ops, verdict, declaration):
    proc = _run(_plugin(tmp_path, plant), "--ops", ops)  # from_cs231n: the course contract by default
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "contract: course" in proc.stdout
    assert f"note: {verdict}" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("plant", "ops", "verdict", "declaration"), CONVENTIONS)
def test_a_convention_fails_the_library_contract_with_how_to_declare_it(
    tmp_path, plant, ops, verdict, declaration
):
    proc = _run(_plugin(tmp_path, plant), "--ops", ops, "--contract", "library")
    assert proc.returncode == 1, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "contract: library" in proc.stdout
    assert verdict in proc.stdout
    assert f"declare it: CONVCHECK_CAPABILITIES = {declaration}" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("plant", "ops", "declaration", "shown"),
    [
        ("relu_grad_at_zero_one", "relu", {"relu": {"derivative_at_zero": 1}}, "relu.derivative_at_zero = 1"),
        ("pool_ties_split", "max_pool2d", {"max_pool2d": {"ties": "any"}}, "max_pool2d.ties = 'any'"),
        ("pool_ties_every_max", "max_pool2d", {"max_pool2d": {"ties": "all"}}, "max_pool2d.ties = 'all'"),
    ],
)
def test_a_declared_convention_passes_the_library_contract(tmp_path, plant, ops, declaration, shown):
    plugin = tmp_path / "declared_plugin.py"
    plugin.write_text(
        "from convcheck.impls.adapters import exports, from_cs231n\n"
        f"globals().update(exports(from_cs231n({str(plants.path(plant))!r}, "
        f"capabilities={declaration!r})))\n"
    )
    proc = _run(plugin, "--ops", ops, "--contract", "library")
    # The pool plants route dy with a comparison mask, as the assignment does: an infinite dy
    # times a loser's 0 is NaN, and a NaN cell never equals the maximum, which the library's
    # non-finite contract fails whatever the tie rule; every other property passes as declared.
    beyond_ties = {"max_pool2d:nonfinite"} if ops == "max_pool2d" else set()
    assert _failed_groups(proc.stdout) == beyond_ties, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.returncode == (1 if beyond_ties else 0)
    assert shown in proc.stdout  # reported as declared
    assert "notes and warnings (not failures" not in proc.stdout


@pytest.mark.slow
def test_every_max_routing_is_a_warning_under_course_and_a_failure_under_library(tmp_path):
    plugin = _plugin(tmp_path, "pool_ties_every_max")
    course = _run(plugin, "--ops", "max_pool2d")
    assert course.returncode == 0, course.stdout[-4000:] + course.stderr[-2000:]
    assert "warning: kink defect (max_pool2d ties='all')" in course.stdout
    assert "every-max routing multiplies their gradient" in course.stdout
    library = _run(plugin, "--ops", "max_pool2d", "--contract", "library")
    assert library.returncode == 1, library.stdout[-4000:]
    assert {"max_pool2d:backward", "max_pool2d:max_routing"} <= _failed_groups(library.stdout)
    assert "kink defect (max_pool2d ties='all')" in library.stdout


@pytest.mark.slow
def test_divisibility_assertions_fail_the_library_contract_with_how_to_declare_it(tmp_path):
    proc = _run(_plugin(tmp_path, "asserts_divisible"), "--ops", "max_pool2d", "--contract", "library")
    assert proc.returncode == 1, proc.stdout[-4000:]
    assert 'declare it: CONVCHECK_CAPABILITIES = {"max_pool2d": {"geometry": "exact"}}' in proc.stdout


@pytest.mark.slow
def test_the_example_plugin_still_passes_from_the_repository_root():
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-m", "convcheck", "run", "--impl", "examples/cs231n_plugin.py"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=root,
        env={**os.environ, "CONVCHECK_PROFILE": "ci"},
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]

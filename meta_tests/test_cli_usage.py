"""Bad input to convcheck gets one clear line and exit status 2; capabilities and --strict behave."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _convcheck(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "convcheck", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env={**os.environ, **env},
    )


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


BAD = {
    "missing file": ("nowhere/impl.py", "no such file: nowhere/impl.py"),
    "unknown name": ("no_such_module_xyz", "unknown implementation 'no_such_module_xyz'"),
    "syntax error": ("syntax.py", "syntax error"),
    "no contract functions": ("empty.py", "exposes none of the contract functions"),
    "malformed capabilities": ("badcaps.py", "has unknown feature 'dilaton'"),
    "bad capability value": ("badvalue.py", "['padding']='sometimes' must be one of"),
    "wrong signature": ("badsig.py", "lacks keyword argument(s) dilation, groups"),
    "import raises": ("raises.py", "importing"),
    "unknown buggy": ("buggy.nope", "unknown buggy implementation 'buggy.nope'"),
}

SOURCES = {
    "syntax.py": "def conv2d_forward(x, w, b, *, stride padding):\n    pass\n",
    "empty.py": "def helper():\n    return 1\n",
    "badcaps.py": """
        CONVCHECK_CAPABILITIES = {"conv2d": {"dilaton": False}}
        def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
            return x
        """,
    "badvalue.py": """
        CONVCHECK_CAPABILITIES = {"conv2d": {"padding": "sometimes"}}
        def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
            return x
        """,
    "badsig.py": """
        def conv2d_forward(x, w, b, *, stride, padding):
            return x
        """,
    "raises.py": "raise RuntimeError('student code crashed at import')\n",
}


@pytest.mark.parametrize("problem", list(BAD))
def test_bad_implementation_is_a_usage_error(problem, tmp_path):
    impl, expected = BAD[problem]
    if impl in SOURCES:
        impl = _write(tmp_path, impl, SOURCES[impl])
    proc = _convcheck("run", "--impl", impl, "--profile", "fast", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{proc.stderr}"
    assert lines[0].startswith("convcheck: error: ") and expected in lines[0], lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--impl", "numpy_fast", "--profile", "nope"],
        ["run"],
        ["frobnicate"],
        ["run", "--impl", "torch", "--ops", "conv4d"],
    ],
    ids=["unknown profile", "no impl", "unknown command", "unknown op"],
)
def test_bad_arguments_exit_2(args):
    proc = _convcheck(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_unwritable_report_folder_is_a_usage_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    proc = _convcheck("run", "--impl", "numpy_fast", "--report", str(blocker / "report"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write the report folder" in lines[0], proc.stderr


def test_declared_unsupported_features_are_reported_and_strict_fails_them():
    plugin = str(ROOT / "examples" / "cs231n_plugin.py")
    lenient = _convcheck("run", "--impl", plugin, "--profile", "fast", "--ops", "conv2d,max_pool2d")
    assert lenient.returncode == 0, lenient.stdout[-3000:] + lenient.stderr
    declared = [
        ln for ln in lenient.stdout.splitlines() if ln.startswith("  unsupported (declared): conv2d.")
    ]
    assert len(declared) == 1 and "conv2d.dilation = False" in declared[0]  # one line per operation
    assert "avg_pool2d" not in lenient.stdout.split("unsupported")[0]  # no avg functions: not run at all
    strict = _convcheck("run", "--impl", plugin, "--profile", "fast", "--ops", "conv2d", "--strict")
    assert strict.returncode == 1, strict.stdout[-3000:]
    assert "FAILED" in strict.stdout


def test_missing_functions_are_unsupported_not_failures(tmp_path):
    forward_only = _write(
        tmp_path,
        "fwd_only.py",
        """
        import numpy as np
        from convcheck.impls import numpy_reference as ref
        max_pool2d_forward = ref.max_pool2d_forward
        """,
    )
    proc = _convcheck("run", "--impl", forward_only, "--profile", "fast", "--ops", "max_pool2d")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "unsupported" in proc.stdout and "passed" in proc.stdout


def test_env_var_selects_the_implementation_under_pytest():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/test_shapes_dtypes.py",
            "-q",
            "-p",
            "no:cacheprovider",
            "--ops",
            "avg_pool2d",
            "--max-examples",
            "3",
            "--convcheck-profile",
            "ci",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, "CONVCHECK_IMPL": "buggy.dtype_promoted,torch"},
    )
    table = proc.stdout.split("convcheck conformance summary")[-1]
    assert "buggy.dtype_promoted" in table and "\ntorch " in table, proc.stdout


def test_entry_point_registration(tmp_path):
    """An installed package registers itself in the ``convcheck.implementations`` entry-point group."""
    (tmp_path / "mylayers.py").write_text("from convcheck.impls.numpy_reference import *  # noqa\n")
    dist = tmp_path / "mylayers-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mylayers\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[convcheck.implementations]\nmine = mylayers\n")
    env = {"PYTHONPATH": str(tmp_path)}
    listed = _convcheck("list", **env)
    assert "mine" in listed.stdout.split()
    proc = _convcheck("run", "--impl", "mine", "--profile", "fast", "--ops", "avg_pool2d", **env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    off = _convcheck("run", "--impl", "mine", CONVCHECK_NO_PLUGINS="1", **env)
    assert off.returncode == 2


def test_list_ops_prints_the_contract_from_the_spec():
    """``convcheck list --ops``: every contract function's call form and every network, read from the spec."""
    from convcheck.spec import FUNCTION_NAMES
    from convcheck.spec.networks import NETWORKS

    proc = _convcheck("list", "--ops")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert all(f"  {name}(" in out for name in FUNCTION_NAMES)
    assert "  relu_backward(dy, x) -> dx" in out
    assert "  softmax_cross_entropy(z, labels) -> (loss, dz)" in out
    assert "  conv3d_backward(dy, x, w, b, *, stride, padding, dilation, groups) -> (dx, dw, db)" in out
    assert all(f"{name}: " in out for name in NETWORKS) and "15 parameters" in out

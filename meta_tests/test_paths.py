"""Paths mean what they meant where the user typed them.

The isolated worker runs in a scratch folder of its own; every path a user gives
(``--impl``, ``--report``, ``--results``, ``--tolerance-file``, ``CONVCHECK_IMPL``,
the pytest plugin's options) must be resolved against the caller's working folder
before that. These run the commands as a user types them, with relative paths,
from a clone's root and from a subfolder.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--ops", "max_pool2d", "--max-examples", "2", "--profile", "ci"]


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=600, cwd=cwd, env={**os.environ, **env}
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A folder holding the CS231n example pair in ``examples/``, like a clone's root."""
    (tmp_path / "examples").mkdir()
    for name in ("cs231n_layers.py", "cs231n_plugin.py"):
        shutil.copy(ROOT / "examples" / name, tmp_path / "examples" / name)
    (tmp_path / "tol.toml").write_text("[max_pool2d.float64]\nfactor = 2\n")
    return tmp_path


def test_relative_impl_report_results_from_the_root(workspace: Path) -> None:
    done = _run(
        [
            sys.executable,
            "-m",
            "convcheck",
            "run",
            "--impl",
            "examples/cs231n_plugin.py",
            "--report",
            "out",
            "--results",
            "res/results.jsonl",
            "--tolerance-file",
            "tol.toml",
            *QUICK,
        ],
        workspace,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert "no such file" not in done.stderr
    report = json.loads((workspace / "out" / "report.json").read_text())
    assert report["summary"]["failed"] == 0
    lines = (workspace / "res" / "results.jsonl").read_text().splitlines()
    assert lines and all(json.loads(line)["op"] == "max_pool2d" for line in lines)


def test_relative_impl_from_a_subfolder(workspace: Path) -> None:
    done = _run(
        [sys.executable, "-m", "convcheck", "run", "--impl", "cs231n_plugin.py", *QUICK],
        workspace / "examples",
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    up = _run(
        [sys.executable, "-m", "convcheck", "run", "--impl", "../examples/cs231n_plugin.py", *QUICK],
        workspace / "examples",
    )
    assert up.returncode == 0, up.stdout[-2000:] + up.stderr


def test_missing_relative_file_names_the_path_as_typed(workspace: Path) -> None:
    done = _run([sys.executable, "-m", "convcheck", "run", "--impl", "examples/nope.py", *QUICK], workspace)
    assert done.returncode == 2
    assert done.stderr.strip() == "convcheck: error: no such file: examples/nope.py"


def test_pytest_plugin_and_environment_variable_take_relative_paths(workspace: Path) -> None:
    suite = str(ROOT / "tests")
    common = [
        sys.executable,
        "-m",
        "pytest",
        suite,
        "-p",
        "convcheck.pytest_plugin",
        "-p",
        "no:cacheprovider",
        "-q",
    ]
    common += [
        "--rootdir",
        suite,
        "--ops",
        "max_pool2d",
        "--max-examples",
        "2",
        "--convcheck-profile",
        "ci",
        "-x",
    ]
    done = _run([*common, "--impl", "examples/cs231n_plugin.py", "--convcheck-report", "rep"], workspace)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (workspace / "rep" / "report.json").is_file()
    env_run = _run(common, workspace, CONVCHECK_IMPL="examples/cs231n_plugin.py")
    assert env_run.returncode == 0, env_run.stdout[-2000:] + env_run.stderr[-2000:]

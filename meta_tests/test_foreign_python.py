"""``--python``: the implementation runs under another interpreter, with another NumPy and no convcheck.

A second virtual environment holds only NumPy, at a different version from convcheck's (Python 3.9
with NumPy 1.23.5 where pyenv's 3.9 is installed, else this interpreter with NumPy 1.26.4). It is
built once per machine and kept under the temporary folder, keyed by the versions; the tests skip,
saying why, only when it cannot be built (no network for pip). Through it: the same verdicts as in
convcheck's own environment, the handshake in the report, the hostile code contained, the benchmark
timed in the worker; and every kind of unusable interpreter refused in one line with exit status 2.
"""

from __future__ import annotations

import fcntl
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from convcheck.bench.overhead import TOLERANCE
from convcheck.bench.runner import WORKER_BLOCK_TIME
from convcheck.bench.threads import ENV_VARS, blas_threads, set_blas_threads
from convcheck.bench.timing import Policy, Target, calibrate, gc_disabled, time_block
from convcheck.impls import registry
from convcheck.sandbox import load
from convcheck.sandbox.interpreter import probe
from convcheck.spec import UsageError

ROOT = Path(__file__).resolve().parents[1]
PYENV_39 = Path("/root/.pyenv/versions/3.9.18/bin/python")
RUN = ["--profile", "ci", "--max-examples", "5", "-k", "test_forward or test_backward"]


def _base() -> tuple[str, str]:
    """The interpreter the second environment is made from, and the NumPy it gets."""
    if PYENV_39.exists():
        return str(PYENV_39), "1.23.5"
    return sys.executable, "1.26.4" if np.__version__ != "1.26.4" else "1.25.2"


def _build(folder: Path, base: str, numpy_version: str) -> None:
    subprocess.run([base, "-m", "venv", "--clear", str(folder)], check=True, capture_output=True, timeout=300)
    subprocess.run(
        [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         f"numpy=={numpy_version}"],
        check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.fixture(scope="session")
def foreign_python() -> str:
    """A Python with NumPy and nothing else, built once (a lock keeps parallel sessions from racing)."""
    base, numpy_version = _base()
    version = subprocess.run(
        [base, "-c", "import platform; print(platform.python_version())"], capture_output=True, text=True
    ).stdout.strip()
    folder = Path(tempfile.gettempdir()) / f"convcheck-foreign-env-py{version}-numpy{numpy_version}"
    ready = folder / ".convcheck-ready"
    with open(f"{folder}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            try:
                _build(folder, base, numpy_version)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
                said = getattr(e, "stderr", "") or ""
                pytest.skip(
                    f"cannot build a Python {version} environment with NumPy {numpy_version}: {said[-300:]}"
                )
            ready.write_text("")
    return str(folder / "bin" / "python")


def _convcheck(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "convcheck", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env=env or dict(os.environ),
    )


FULL_PRECISION_FAST = """\
from convcheck.impls import numpy_fast as _fast
from convcheck.impls.numpy_fast import *  # noqa: F403

CONVCHECK_CAPABILITIES = {**_fast.CONVCHECK_CAPABILITIES, "dtypes": ["float32", "float64"]}
"""
"""numpy_fast declaring float32 and float64 only."""


def test_bfloat16_is_left_out_where_the_worker_has_no_ml_dtypes(foreign_python, tmp_path):
    """numpy_fast declares bfloat16; in an environment with only NumPy it is checked on the other
    dtypes, and the report says why."""
    there = _convcheck(
        "run",
        "--impl",
        "numpy_fast",
        "--ops",
        "relu",
        *RUN,
        "--report",
        "there",
        "--python",
        foreign_python,
        cwd=tmp_path,
    )
    assert there.returncode == 0, there.stdout[-3000:] + there.stderr[-2000:]
    doc = json.loads((tmp_path / "there" / "report.json").read_text())
    assert doc["environment"]["implementation_side"]["ml_dtypes"] is None
    dtypes = {r["dtype"] for r in doc["records"]}
    assert dtypes and dtypes <= {"float16", "float32", "float64"}, dtypes
    assert "no ml_dtypes there, so bfloat16 is not checked" in (tmp_path / "there" / "report.md").read_text()


def _verdicts(report: Path) -> dict[tuple[str, str, str, str], str]:
    """Each record's status, by check (test id, dtype, direction) in report.json."""
    doc = json.loads((report / "report.json").read_text())
    return {(r["test"], r["dtype"], r.get("direction") or "", r["op"]): r["status"] for r in doc["records"]}


@pytest.mark.parametrize(
    ("name", "ops", "status"),
    [("numpy_fast", "max_pool2d", 0), ("buggy.maxpool_ties_to_every_max", "max_pool2d", 1)],
)
def test_the_same_verdicts_as_in_convcheck_s_environment(foreign_python, tmp_path, name, ops, status):
    if name == "numpy_fast":  # the same dtypes on both sides: the NumPy-only environment has no bfloat16
        (tmp_path / "fast_full.py").write_text(FULL_PRECISION_FAST)
        name = "fast_full.py"
    here = _convcheck("run", "--impl", name, "--ops", ops, *RUN, "--report", "here", cwd=tmp_path)
    there = _convcheck(
        "run",
        "--impl",
        name,
        "--ops",
        ops,
        *RUN,
        "--report",
        "there",
        "--python",
        foreign_python,
        cwd=tmp_path,
    )
    assert here.returncode == status, here.stdout[-3000:] + here.stderr[-2000:]
    assert there.returncode == status, there.stdout[-3000:] + there.stderr[-2000:]
    assert _verdicts(tmp_path / "there") == _verdicts(tmp_path / "here")
    failing = {k for k, v in _verdicts(tmp_path / "there").items() if v in ("failed", "error")}
    assert bool(failing) == bool(status)

    side = json.loads((tmp_path / "there" / "report.json").read_text())["environment"]
    worker = side["implementation_side"]
    assert worker["executable"] == foreign_python
    assert worker["python"] != side["python"] or worker["numpy"] != side["numpy"]
    assert worker["numpy"] == _base()[1]
    assert f"implementation side: Python {worker['python']} ({foreign_python}), NumPy {worker['numpy']}" in (
        there.stdout
    )
    assert f"NumPy {worker['numpy']}" in (tmp_path / "there" / "report.md").read_text()
    assert foreign_python in (tmp_path / "there" / "report.html").read_text()


def test_the_python_api_runs_the_implementation_under_the_given_interpreter(foreign_python, tmp_path):
    """``convcheck.check(..., python=PATH)``: the worker runs under that interpreter (the report's
    implementation side says so) and the verdicts are those of convcheck's own environment."""
    import convcheck

    (tmp_path / "fast_full.py").write_text(FULL_PRECISION_FAST)
    here = tmp_path / "fast_full.py"
    options = {
        "ops": "max_pool2d",
        "profile": "ci",
        "max_examples": 5,
        "select": "test_forward or test_backward",
    }
    there = convcheck.check(
        str(here), python=foreign_python, report=tmp_path / "there", progress=False, **options
    )
    own = convcheck.check(str(here), report=tmp_path / "here", progress=False, **options)
    assert there.exit_code == own.exit_code == 0
    assert _verdicts(tmp_path / "there") == _verdicts(tmp_path / "here")
    side = json.loads((tmp_path / "there" / "report.json").read_text())["environment"]["implementation_side"]
    assert side["executable"] == foreign_python and side["numpy"] == _base()[1]


def test_environment_variable_names_the_interpreter_and_the_flag_wins(tmp_path):
    env = {**os.environ, "CONVCHECK_PYTHON": str(tmp_path / "from-env" / "python")}
    by_env = _convcheck("run", "--impl", "numpy_fast", "--ops", "relu", cwd=tmp_path, env=env)
    assert by_env.returncode == 2, by_env.stderr
    assert by_env.stderr.startswith(
        f"convcheck: error: CONVCHECK_PYTHON={env['CONVCHECK_PYTHON']}: no such file"
    )
    by_flag = _convcheck(
        "run",
        "--impl",
        "numpy_fast",
        "--ops",
        "relu",
        "--python",
        str(tmp_path / "from-flag"),
        cwd=tmp_path,
        env=env,
    )
    assert by_flag.returncode == 2 and "from-flag" in by_flag.stderr and "from-env" not in by_flag.stderr


@pytest.mark.parametrize(
    ("module", "expected", "extra"),
    [
        ("hangs", "worker killed after 2 s", ["--timeout", "2"]),
        ("patch_numpy", "conv2d_forward", []),
    ],
)
def test_hostile_code_is_contained(foreign_python, tmp_path, module, expected, extra):
    proc = _convcheck(
        "run", "--impl", f"convcheck.impls.hostile.{module}", "--ops", "conv2d", "--profile", "fast",
        "--max-examples", "5", "-k", "forward", "--python", foreign_python, "--report", "r", *extra,
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert expected in proc.stdout, proc.stdout[-3000:]
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    assert doc["status"] == "complete"
    assert any(r["status"] in ("failed", "error") for r in doc["records"] if r["property"] == "forward")
    assert not (tmp_path / "report.json").exists(), "the code under test wrote into the caller's folder"


def _fake(tmp_path: Path, name: str, body: str, mode: int = 0o755) -> str:
    path = tmp_path / name
    path.write_text(body)
    path.chmod(mode)
    return str(path)


def _probe_line(python: str, numpy_version: str) -> str:
    return f"#!/bin/sh\nprintf 'convcheck-probe\\t{python}\\t{numpy_version}\\tLinux\\n'\n"


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda t: str(t / "missing" / "python"), "no such file"),
        (lambda t: str(t), "is a folder"),
        (lambda t: _fake(t, "python", "print('hi')\n", 0o644), "is not executable"),
        (lambda t: _fake(t, "python", "#!/bin/sh\necho hello\n"), "is not a usable Python interpreter"),
        (
            lambda t: _fake(t, "python", _probe_line("3.8.18", "1.23.5")),
            "is Python 3.8.18; the worker needs Python 3.9",
        ),
        (
            lambda t: _fake(t, "python", _probe_line("3.9.18", "1.20.3")),
            "its NumPy is 1.20.3; the worker needs NumPy 1.21",
        ),
        (
            lambda t: _fake(t, "python", _probe_line("3.9.18", "!ImportError: numpy is broken")),
            "has no usable NumPy (ImportError: numpy is broken)",
        ),
    ],
)
def test_an_unusable_interpreter_is_refused_naming_it_and_what_is_missing(tmp_path, make, says):
    path = make(tmp_path)
    with pytest.raises(UsageError) as raised:
        probe(path)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"--python {path}: ") and says in message, message


@pytest.mark.parametrize(
    "command",
    [
        ["run", "--impl", "numpy_fast", "--ops", "relu"],
        ["bench", "--impl", "numpy_fast", "--corpus", "course_toy"],
        ["grade", "submissions", "--report", "grades"],
    ],
)
def test_an_unusable_interpreter_is_one_line_and_exit_2(tmp_path, command):
    (tmp_path / "submissions").mkdir()
    (tmp_path / "submissions" / "alice.py").write_text((ROOT / "examples" / "my_layers.py").read_text())
    path = _fake(tmp_path, "python", _probe_line("3.8.18", "1.23.5"))
    proc = _convcheck(*command, "--python", path, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    prefix = "convcheck bench: error:" if command[0] == "bench" else "convcheck: error:"
    assert (
        proc.stderr.strip()
        == f"{prefix} --python {path}: is Python 3.8.18; the worker needs Python 3.9 or newer"
    )
    assert not (tmp_path / "grades").exists() or not any((tmp_path / "grades").iterdir())


def test_an_environment_without_numpy_is_refused(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True, timeout=120
    )
    python = str(tmp_path / "bare" / "bin" / "python")
    with pytest.raises(UsageError) as raised:
        probe(python)
    assert str(raised.value) == (
        f"--python {python}: its Python {'.'.join(map(str, sys.version_info[:3]))} has no "
        f"usable NumPy (ModuleNotFoundError: No module named 'numpy'); install it there: {python} -m pip "
        'install "numpy>=1.21"'
    )


def test_bench_through_python_times_in_the_worker(foreign_python, tmp_path):
    proc = _convcheck(
        "bench", "--impl", "numpy_fast", "--corpus", "course_toy", "--min-time", "0.05", "--python",
        foreign_python, "--report", "b", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    doc = json.loads((tmp_path / "b" / "bench.json").read_text())["benchmark"]
    assert doc["environment"]["implementation_side"]["numpy"] == _base()[1]
    functions = [f for e in doc["entries"] for f in e["functions"]]
    assert functions and all(f["status"] == "ok" and f["impl"]["median"] > 0 for f in functions), functions


def _paired_ratio(sandbox, local: Target, rounds: int = 40) -> float:
    """The median over rounds of (worker block / local block), the two back to back, who goes first
    alternating (the harness's paired estimate, which a busy machine disturbs least)."""
    worker = Target(lambda: None, block=sandbox.time_block)
    ratios = []
    with gc_disabled():
        number, _ = calibrate(local, Policy(block_time=WORKER_BLOCK_TIME))
        for round_ in range(rounds):
            first, second = (local, worker) if round_ % 2 else (worker, local)
            times = {id(first): time_block(first, number), id(second): time_block(second, number)}
            ratios.append(times[id(worker)] / times[id(local)])
    return statistics.median(ratios)


def test_worker_timing_agrees_with_in_process_timing(monkeypatch):
    """The same small layer timed in this process and inside a worker started the ``--python`` way
    (this interpreter, so the same NumPy), one BLAS thread each, in blocks of the benchmark's worker
    block time: the paired ratio is within the harness's tolerance of 1. A shared machine's bursts
    can spoil one measurement, so up to three are taken; a message crossing in the time would put
    every one of them far out. And a call that takes next to nothing is timed as next to nothing,
    well under one round trip to the worker."""
    for name in ENV_VARS:
        monkeypatch.setenv(name, "1")
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 3, 16, 16)), rng.standard_normal((8, 3, 3, 3))
    kwargs = {"stride": (1, 1), "padding": (1, 1, 1, 1), "dilation": (1, 1), "groups": 1}
    here = registry.load("numpy_fast").functions["conv2d_forward"]
    sandbox = load("numpy_fast", python=sys.executable).extras["sandbox"]
    blas = blas_threads()[0]
    set_blas_threads(1)
    try:
        sandbox.stage("relu_forward", (np.zeros(1),), {})
        start = time.perf_counter()
        inside = sandbox.time_block(1)
        round_trip = time.perf_counter() - start
        assert inside < round_trip / 2, (inside, round_trip)
        sandbox.stage("conv2d_forward", (x, w, None), kwargs)
        local = Target(lambda: here(x, w, None, **kwargs))
        ratios = []
        for _ in range(3):
            ratios.append(_paired_ratio(sandbox, local))
            if abs(ratios[-1] - 1) <= TOLERANCE:
                break
    finally:
        sandbox.close()
        if blas:
            set_blas_threads(blas)
    assert abs(ratios[-1] - 1) <= TOLERANCE, ratios

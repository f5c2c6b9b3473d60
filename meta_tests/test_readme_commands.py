"""The README's commands run as written, from a fresh clone's root, the way doctest runs docstrings.

Every line of every ``bash`` block in README.md is run with bash in a copy of the
clone's tracked files, one copy per block (the lines of a block build on each
other: a report written by one is diffed by the next). A line passes when it
exits 0, or with the status its comment names (``# exit 1: why``). The few
lines that cannot run inside the suite are listed in ``NOT_RUN`` with the
reason; each must still be a README line, so the list cannot drift from it.
Every example in ``examples/`` is also checked as a user would run it.

``CONVCHECK_MAX_EXAMPLES`` keeps each run short; it changes how many examples a
property draws, not which commands, paths or options work.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

_FOREIGN = (
    "needs a second Python environment (built from PyPI); meta_tests/test_foreign_python.py builds one "
    "once and runs run, bench and the environment variable through it"
)

NOT_RUN = {
    'python -m pip install -c constraints.txt -e ".[notebook]"': (
        "would point the editable install under test at a temporary copy; .ci/run runs this very "
        "command first on every CI run"
    ),
    "python -m pytest -n 2": "the project's own test command, which this test is part of (.ci/run runs it)",
    "convcheck bench --impl numpy_fast --corpus resnet50 vgg16 --batch 8 --threads 2 --report big/": (
        "minutes of timing on large layers; the same options run on course_toy above"
    ),
    "tox -e py311": "builds a virtual environment of its own (minutes); .ci/run runs its commands directly",
    "tox -e lint": "builds a virtual environment of its own; .ci/run runs the same ruff commands",
    "tox -e typecheck": "builds a virtual environment of its own; .ci/run runs the same mypy command",
    "tox -e bench": "builds a virtual environment of its own; the benchmark lines above run the same command",
    "CONVCHECK_TORCH_DEVICE=cuda convcheck run --impl torch_functional --profile ci": (
        "needs a CUDA GPU and a CUDA build of torch; the CPU line above runs the same adapter"
    ),
    'python -m pip install -c constraints.txt -e ".[jax]"': (
        "would point the editable install under test at a temporary copy, and JAX is not a dependency"
    ),
    "convcheck run --impl jax_lax --profile ci --ops conv2d,max_pool2d,avg_pool2d": (
        "needs the jax extra, which CI does not install; meta_tests/test_framework_adapters.py checks "
        "the adapter where JAX is installed"
    ),
    "tox -e torch": "builds a virtual environment of its own; the torch_functional line above runs its command",
    "tox -e jax": "builds a virtual environment of its own and installs JAX",
    "python3.9 -m venv /opt/hw-env": _FOREIGN,
    '/opt/hw-env/bin/pip install "numpy==1.23.5"': _FOREIGN,
    "convcheck run --impl submissions/alice.py --python /opt/hw-env/bin/python": _FOREIGN,
    "CONVCHECK_PYTHON=/opt/hw-env/bin/python convcheck grade submissions/ --report grades/": _FOREIGN,
    "convcheck bench --impl numpy_fast --corpus course_toy --python /opt/hw-env/bin/python": _FOREIGN,
    "dask scheduler --host 10.0.0.5 --port 8786": (
        "a server that runs until stopped, on another machine's address; "
        "meta_tests/test_dask_grading.py starts a real scheduler and workers on 127.0.0.1"
    ),
    "dask worker tcp://10.0.0.5:8786 --nworkers 4 --nthreads 1": (
        "joins the scheduler above; meta_tests/test_dask_grading.py starts real workers"
    ),
    "convcheck grade /shared/subs/ --report /shared/grades/ --scheduler tcp://10.0.0.5:8786": (
        "needs the cluster above; meta_tests/test_dask_grading.py grades on a real one"
    ),
    "convcheck scoreboard --impl numpy_fast,torch,torch_functional --profile thorough --out /shared/board/ "
    "--scheduler tcp://10.0.0.5:8786": (
        "needs the cluster above; meta_tests/test_dask_grading.py runs a scoreboard on a real one"
    ),
}
"""README command -> why this test does not run it."""

EXPECTED_EXIT = re.compile(r"#\s*exit (\d+):")
SECTION = re.compile(r"^#{2,3} (.+)$")


def readme_blocks() -> list[tuple[str, list[str]]]:
    """``(section title, command lines)`` for every ``bash`` block, in order."""
    blocks, title, lines, inside = [], "", [], False
    for line in README.read_text(encoding="utf-8").splitlines():
        heading = SECTION.match(line)
        if heading and not inside:
            title = heading.group(1)
        elif line.strip() == "```bash":
            inside, lines = True, []
        elif inside and line.strip() == "```":
            inside = False
            blocks.append((title, lines))
        elif inside and line.strip():
            lines.append(line.strip())
    return blocks


def commands(line: str) -> list[str]:
    """The commands of one README line: ``a && b`` is two."""
    code = line.split(" #", 1)[0].strip()
    return [part.strip() for part in code.split(" && ")]


def expected_exit(line: str) -> int:
    found = EXPECTED_EXIT.search(line)
    return int(found.group(1)) if found else 0


def fresh_clone(tmp_path: Path) -> Path:
    """The clone's tracked files (as ``git clone`` would lay them) in a new folder."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: the README's commands are run from a clone")
    dest = tmp_path / "clone"
    for rel in filter(None, listed.stdout.split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def run_line(command: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CONVCHECK_MAX_EXAMPLES": "2", "PYTHONDONTWRITEBYTECODE": "1"}
    # `python` and `convcheck` are the interpreter and console script of this environment.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


BLOCKS = readme_blocks()


def test_every_not_run_entry_is_a_readme_command():
    written = {cmd for _, lines in BLOCKS for line in lines for cmd in commands(line)}
    assert not set(NOT_RUN) - written, "NOT_RUN names commands the README no longer has"
    assert len(BLOCKS) >= 6 and sum(len(lines) for _, lines in BLOCKS) >= 15


@pytest.mark.slow
@pytest.mark.parametrize(("title", "lines"), BLOCKS, ids=[f"{i}-{t}" for i, (t, _) in enumerate(BLOCKS)])
def test_readme_block_runs_as_written(title, lines, tmp_path):
    clone = fresh_clone(tmp_path)
    ran = 0
    for line in lines:
        for command in commands(line):
            if command in NOT_RUN:
                continue
            done = run_line(command, clone)
            want = expected_exit(line)
            assert done.returncode == want, (
                f"README ({title}): `{command}` exited {done.returncode}, expected {want}\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
            ran += 1
    assert ran or all(c in NOT_RUN for line in lines for c in commands(line))


EXAMPLE_HELPERS = {"cs231n_layers.py": "the CS231n-style layers that cs231n_plugin.py adapts"}
EXAMPLES = sorted(p.name for p in (ROOT / "examples").glob("*.py") if p.name not in EXAMPLE_HELPERS)


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES)
def test_example_passes_from_the_clone_root_and_its_folder(example, tmp_path):
    clone = fresh_clone(tmp_path)
    for cwd, path in ((clone, f"examples/{example}"), (clone / "examples", example)):
        done = run_line(f"convcheck run --impl {path}", cwd)
        assert done.returncode == 0, (
            f"`convcheck run --impl {path}` in {cwd}:\n{done.stdout[-3000:]}{done.stderr}"
        )


def test_graded_examples_score_as_their_docstrings_say(tmp_path):
    """alice's conv2d is right, bob's dx uses the kernel unrotated: the grades say so."""
    clone = fresh_clone(tmp_path)
    done = run_line("convcheck grade examples/submissions/ --report grades/ --ops conv2d", clone)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    with (clone / "grades" / "summary.csv").open(newline="") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {"alice", "bob"}
    assert float(rows["alice"]["score"]) > float(rows["bob"]["score"])
    bob = (clone / "grades" / "bob" / "stdout.txt").read_text()
    assert "kernel" in bob and "rotated" in bob

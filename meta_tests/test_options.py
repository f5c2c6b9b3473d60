"""The run options are defined once (``convcheck.options``) and every help shows them with their defaults.

Also: ``convcheck --help`` and ``convcheck list`` start without importing
pytest or hypothesis, and ``convcheck run`` hands pytest every option it got.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from convcheck import cli, engine, options
from convcheck.grading import runner
from convcheck.sandbox.limits import Limits

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=ROOT, env=dict(os.environ)
    )


def _flat(text: str) -> str:
    """Help text with argparse's line wrapping undone (words joined by single spaces)."""
    return re.sub(r"(?<=-)\s+(?=\w)", "", " ".join(text.split()))


def _shows(help_text: str, flag: str, default: str | None) -> bool:
    """Whether ``help_text`` lists ``flag`` and, after it, ``(default: <default>)``."""
    flat = _flat(help_text)
    at = re.search(rf"(?<![\w-]){re.escape(flag)}\b", flat)
    if at is None:
        return False
    return default is None or f"(default: {_flat(default)})" in flat[at.end() :]


def test_top_level_help_lists_every_command():
    proc = _run("-m", "convcheck", "--help")
    assert proc.returncode == 0, proc.stderr
    out = _flat(proc.stdout)
    for name, help_text in [("run", cli.RUN_HELP), ("list", cli.LIST_HELP)] + [
        (n, h) for n, _, h in cli.EXTERNAL_COMMANDS
    ]:
        assert f"{name} {_flat(help_text)}" in out, f"convcheck --help lacks {name}: {help_text}"


def test_run_help_shows_every_option_with_its_default():
    proc = _run("-m", "convcheck", "run", "--help")
    assert proc.returncode == 0, proc.stderr
    for option in options.RUN_OPTIONS:
        for flag in option.flags:
            assert _shows(proc.stdout, flag, option.shown_default("run")), (
                f"convcheck run --help lacks {flag} (default: {option.shown_default('run')})"
            )


def test_grade_help_shows_its_run_options_with_the_grader_defaults():
    proc = _run("-m", "convcheck", "grade", "--help")
    assert proc.returncode == 0, proc.stderr
    for option in options.grade_options():
        assert _shows(proc.stdout, option.flag, option.shown_default("grade")), (
            f"convcheck grade --help lacks {option.flag} (default: {option.shown_default('grade')})"
        )
    assert "(default: ci)" in _flat(proc.stdout) and "(default: course)" in _flat(proc.stdout)


def test_pytest_help_shows_every_plugin_option_with_its_default():
    proc = _run("-m", "pytest", "--help", "-p", "no:cacheprovider")
    assert proc.returncode == 0, proc.stderr
    section = proc.stdout.split("convcheck conformance suite:", 1)[1].split("\n\n", 1)[0]
    for option in options.plugin_options():
        assert _shows(section, option.pytest, option.shown_default("pytest")), (
            f"pytest's convcheck group lacks {option.pytest} (default: {option.shown_default('pytest')})"
        )


def test_the_limits_defaults_come_from_the_sandbox():
    shown = {o.name: o.shown_default() for o in options.RUN_OPTIONS}
    limits = {f.name: f.default for f in dataclasses.fields(Limits)}
    assert float(shown["timeout"]) == limits["timeout_s"]
    assert int(shown["memory"]) == limits["memory_mb"]
    assert int(shown["cpu_time"]) == limits["cpu_s"]


@pytest.mark.parametrize(
    ("command", "absent"),
    [
        (["--help"], ("pytest", "_pytest", "hypothesis", "numpy", "torch")),  # no subcommand module either
        (["list"], ("pytest", "_pytest", "hypothesis")),
    ],
)
def test_help_and_list_import_neither_pytest_nor_hypothesis(command, absent):
    probe = (
        "import runpy, sys, json\n"
        f"sys.argv = ['convcheck', *{command!r}]\n"
        "try:\n"
        "    runpy.run_module('convcheck', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {absent!r})\n"
        "print('MODULES=' + json.dumps(heavy))\n"
    )
    proc = _run("-c", probe)
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("MODULES="))
    assert json.loads(line.removeprefix("MODULES=")) == [], f"convcheck {' '.join(command)} imported {line}"


def test_run_passes_every_pytest_option_on():
    """Every option with a pytest spelling reaches pytest's command line when given."""
    given = {
        "impl": "numpy_fast",
        "profile": "thorough",
        "strict": True,
        "contract": "course",
        "max_examples": 7,
        "ops": "conv2d",
        "no_isolation": True,
        "python": "/opt/py39/bin/python",
        "timeout": 3.5,
        "memory": 1000,
        "cpu_time": 9,
        "workers": 2,
        "select": "forward",
        "junitxml": None,
        "results": "ignored",
        "verbose": False,
        "coverage": False,
        "report": "/tmp/r",
        "seed": 5,
        "tolerance": ["conv2d:float32=4", "*:*=2"],
        "tolerance_file": "/tmp/t.toml",
        "xfails": "/tmp/x.toml",
        "strict_xfails": True,
    }
    assert set(given) == {o.name for o in options.RUN_OPTIONS}
    argv = engine.pytest_args(argparse.Namespace(**given), "/tmp/results.jsonl")
    for option in options.RUN_OPTIONS:
        if option.pytest is None or option.name == "results":
            continue
        value = given[option.name]
        values = value if isinstance(value, list) else [value]
        wanted = [[option.pytest]] if value is True else [[option.pytest, str(v)] for v in values]
        for want in wanted:
            assert any(argv[i : i + len(want)] == want for i in range(len(argv))), (option.name, argv)
    assert argv[argv.index("--convcheck-results") :][:2] == ["--convcheck-results", "/tmp/results.jsonl"]
    assert argv[argv.index("--junitxml") + 1] == str(Path("/tmp/r") / "junit.xml")


def test_grade_passes_its_pass_through_options_and_knows_run_has_them():
    args = argparse.Namespace(timeout=2.0, memory=None, cpu_time=30, seed=0)
    assert runner.passthrough(args) == {"--timeout": "2.0", "--cpu-time": "30", "--seed": "0"}
    passed = {o.flag for o in options.grade_options() if o.grade == "pass"}
    assert passed <= options.run_flags()
    assert "--report" in options.run_flags()

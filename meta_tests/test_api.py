"""The Python API, ``convcheck.check``: every target form gives the CLI's verdicts on the same code and
seed; failures carry their arrays; the report folder, the HTML view, isolation, bad input and the
caller's thread settings. Runs are kept small (``ops=``, a few examples, the derandomised ``ci``
profile, which keeps no example database, so two runs of one seed draw the same cases)."""

from __future__ import annotations

import json
import linecache
import os
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import convcheck
from convcheck import cli
from convcheck.api import (
    CheckResult,
    InvalidOption,
    MisspeltName,
    NoContractFunctions,
    NotCapturable,
    UnusableTarget,
)
from convcheck.bench.threads import ENV_VARS
from convcheck.spec import ContractError, ConvcheckError
from convcheck.summary import rows

ROOT = Path(__file__).resolve().parent.parent
RUN = {"profile": "ci", "max_examples": 4, "seed": 11}
"""The draws every comparison shares: the API's keywords, and the same on the command line."""
CLI_RUN = ["--profile", "ci", "--max-examples", "4", "--seed", "11"]

RELU = """
import numpy as np


def _mask(x):
    return x {cmp} 0


def relu_forward(x):
    return np.where(_mask(x), x, np.zeros_like(x))


def relu_backward(dy, x):
    return np.where(_mask(x), dy, np.zeros_like(dy))
"""
"""A student's ReLU; ``cmp`` is ``>`` (correct) or ``>=`` (the derivative at 0 is 1: a mistake
``convcheck.impls.buggy.relu_derivative_at_zero`` holds too)."""

CORRECT, BUGGY = RELU.format(cmp=">"), RELU.format(cmp=">=")


def verdicts(results: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """``(op, property) -> status`` of a run's results."""
    return {(r["op"], r["property"]): r["status"] for r in rows(results)}


def cli_verdicts(impl: str, tmp: Path, *extra: str) -> dict[tuple[str, str], str]:
    """The verdicts ``convcheck run`` gives, in this process, read from its --results file."""
    results = tmp / f"cli-{abs(hash((impl, extra)))}.jsonl"
    code = cli.main(["run", "--impl", impl, *CLI_RUN, "--results", str(results), *extra])
    assert code in (0, 1)
    return verdicts([json.loads(line) for line in results.read_text().splitlines()])


def notebook_globals(source: str, cell: str = "/tmp/ipykernel_4242/3141592.py") -> dict[str, Any]:
    """A notebook's ``globals()``: ``source`` compiled under a cell's file name registered in
    ``linecache``, executed in a namespace named ``__main__``, as IPython does."""
    linecache.cache[cell] = (len(source), None, source.splitlines(True), cell)
    namespace: dict[str, Any] = {"__name__": "__main__", "In": [""], "Out": {}}
    exec(compile(source, cell, "exec"), namespace)
    return namespace


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on the import path holding ``student_ok.py`` and ``student_bug.py``."""
    (tmp_path / "student_ok.py").write_text(CORRECT)
    (tmp_path / "student_bug.py").write_text(BUGGY)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("student_ok", "student_bug"):
        sys.modules.pop(name, None)
    return tmp_path


def _target(form: str, folder: Path, stem: str) -> Any:
    path = folder / f"{stem}.py"
    if form == "path":
        return str(path)
    if form == "pathlike":
        return path
    if form == "name":
        return stem
    module = __import__(stem)
    if form == "module":
        return module
    functions = {n: getattr(module, n) for n in ("relu_forward", "relu_backward")}
    if form == "mapping":
        return functions
    if form == "object":
        return types.SimpleNamespace(**functions)
    if form == "globals":
        return notebook_globals(path.read_text(), cell=f"/tmp/ipykernel_4242/{stem}.py")
    raise AssertionError(form)


FORMS = ("path", "pathlike", "name", "module", "mapping", "object", "globals")


@pytest.mark.parametrize("form", FORMS)
def test_every_target_form_gives_the_clis_verdicts(form: str, module_dir: Path, tmp_path: Path) -> None:
    for stem in ("student_ok", "student_bug"):
        want = cli_verdicts(str(module_dir / f"{stem}.py"), tmp_path, "--ops", "relu")
        result = convcheck.check(_target(form, module_dir, stem), ops="relu", progress=False, **RUN)
        assert isinstance(result, CheckResult)
        assert verdicts(result.results) == want, (form, stem)
        assert result.passed == (stem == "student_ok")
        assert result.exit_code == (0 if stem == "student_ok" else 1)
    assert want[("relu", "backward")] == "failed"


@pytest.mark.parametrize("isolation", ["process", "none"])
def test_a_shipped_buggy_implementation_gives_the_clis_verdicts(isolation: str, tmp_path: Path) -> None:
    name = "buggy.relu_derivative_at_zero"
    want = cli_verdicts(name, tmp_path, "--ops", "relu")
    result = convcheck.check(name, ops="relu", isolation=isolation, progress=False, **RUN)
    assert verdicts(result.results) == want
    assert {f"{f.op}:{p}" for f in result.failures for p in f.properties} >= {
        "relu:backward",
        "relu:relu_kink",
    }
    assert result.operations == {"relu": "failed"}


def test_cs231n_functions_in_a_notebook_are_adapted_as_the_plugin_file_adapts_them(tmp_path: Path) -> None:
    """A student's CS231n layers pasted into a notebook: the same verdicts as examples/cs231n_plugin.py."""
    cells = notebook_globals((ROOT / "examples" / "cs231n_layers.py").read_text())
    want = cli_verdicts(
        str(ROOT / "examples" / "cs231n_plugin.py"), tmp_path, "--ops", "max_pool2d", "-k", "not sweep"
    )
    result = convcheck.check(cells, ops="max_pool2d", select="not sweep", progress=False, **RUN)
    assert verdicts(result.results) == want
    assert "max_pool2d" in result.operations


def test_a_failure_exposes_its_arrays_expected_and_got(module_dir: Path) -> None:
    result = convcheck.check(str(module_dir / "student_bug.py"), ops="relu", progress=False, **RUN)
    failure = next(f for f in result.failures if "backward" in f.properties or "relu_kink" in f.properties)
    spec = failure.counterexample
    assert spec is not None and failure.inputs["x"].shape == tuple(spec["shapes"]["x"])
    assert failure.inputs["x"].dtype == np.dtype(spec["dtype"])
    assert set(failure.expected) == set(failure.got)
    for name, expected in failure.expected.items():
        assert isinstance(expected, np.ndarray) and failure.got[name].shape == expected.shape
    assert any(not np.array_equal(failure.expected[n], failure.got[n]) for n in failure.expected)
    assert failure.diagnosis and failure.diagnosis["slug"] == "relu_derivative_one_at_zero"
    assert "relu_derivative_one_at_zero" in (failure.hint or "")
    assert (
        failure.repro
        and "make_case(" in failure.repro
        and str(module_dir / "student_bug.py") in failure.repro
    )
    assert failure.where() and any("differ" in line for line in failure.where() or [])
    text = str(result)
    assert "FAILED" in text and "relu_derivative_one_at_zero" in text and failure.property in text


def test_write_report_gives_the_folder_the_cli_gives(module_dir: Path, tmp_path: Path) -> None:
    impl = str(module_dir / "student_bug.py")
    cli_dir, api_dir = tmp_path / "cli", tmp_path / "api"
    assert cli.main(["run", "--impl", impl, "--ops", "relu", *CLI_RUN, "--report", str(cli_dir)]) == 1
    result = convcheck.check(impl, ops="relu", progress=False, **RUN)
    assert result.write_report(api_dir) == api_dir.resolve()

    def files(folder: Path) -> set[str]:
        return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}

    assert files(api_dir) == files(cli_dir)
    assert {"report.json", "report.md", "report.html", "junit.xml"} <= files(api_dir)
    assert any(name.startswith("repro/") for name in files(api_dir))
    cli_doc, api_doc = (json.loads((d / "report.json").read_text()) for d in (cli_dir, api_dir))
    assert api_doc["status"] == cli_doc["status"] == "complete"

    def statuses(doc: dict[str, Any]) -> dict[str, str]:
        return {r["id"]: r["status"] for r in doc["records"]}

    assert statuses(api_doc) == statuses(cli_doc)


def test_a_captured_notebook_report_carries_the_captured_module(tmp_path: Path) -> None:
    result = convcheck.check(
        notebook_globals(BUGGY), ops="relu", progress=False, report=tmp_path / "r", **RUN
    )
    copied = tmp_path / "r" / "impl" / "notebook.py"
    assert copied.is_file() and "def relu_backward" in copied.read_text()
    scripts = list((tmp_path / "r" / "repro").glob("*.py"))
    assert scripts and all(str(copied) in s.read_text() for s in scripts)
    assert not result.passed


def test_html_names_the_failing_property_and_the_diagnosis_and_escapes_user_text(module_dir: Path) -> None:
    cells = notebook_globals(BUGGY.replace("def _mask(x):", "def _mask(x):  # <script>alert(1)</script>"))
    result = convcheck.check(cells, ops="relu", progress=False, name="<b>student</b>", **RUN)
    page = result._repr_html_()
    failure = result.failures[0]
    assert failure.property in page and "relu_derivative_one_at_zero" in page
    assert "elements differ" in page  # where got and expected differ, from the recomputed arrays
    assert "<b>student</b>" not in page and "<script>" not in page
    assert "&#10007;" in page or "\u2717" in page


LOOP = """
import numpy as np


def relu_forward(x):
    while True:
        pass


def relu_backward(dy, x):
    return np.where(x > 0, dy, np.zeros_like(dy))
"""


@pytest.mark.parametrize("isolation", ["none", "process"])
def test_an_endless_loop_in_a_cell_ends_as_a_timeout_failure(isolation: str) -> None:
    cells = notebook_globals(LOOP, cell="/tmp/ipykernel_4242/loop.py")
    start = time.perf_counter()
    result = convcheck.check(
        cells, ops="relu", select="forward", timeout=1, isolation=isolation, progress=False, **RUN
    )
    took = time.perf_counter() - start
    assert not result.passed and verdicts(result.results)[("relu", "forward")] == "failed"
    text = str(result)
    assert "relu_forward" in text and ("did not return" in text or "interrupted" in text)
    assert took < 60, f"an endless loop under isolation={isolation!r} held the caller {took:.0f} s"


def test_bad_targets_are_value_or_type_errors_naming_the_key() -> None:
    def conv2d_foward(x, w, b, *, stride, padding, dilation, groups):  # misspelt
        return x

    with pytest.raises(MisspeltName, match=r"'conv2d_foward'.*did you mean 'conv2d_forward'"):
        convcheck.check({"conv2d_foward": conv2d_foward})
    with pytest.raises(ValueError, match="conv2d_foward"):
        convcheck.check(types.SimpleNamespace(conv2d_foward=conv2d_foward))
    with pytest.raises(MisspeltName, match=r"'relu_backwards'.*'relu_backward'"):
        convcheck.check({"relu_forward": np.abs, "relu_backwards": conv2d_foward})
    with pytest.raises(NoContractFunctions, match="none of the contract functions") as none:
        convcheck.check({"helper": len, "data": [1, 2]})
    assert isinstance(none.value, ValueError) and isinstance(none.value, ContractError)
    with pytest.raises(UnusableTarget) as wrong_type:
        convcheck.check(42)
    assert isinstance(wrong_type.value, TypeError) and isinstance(wrong_type.value, ConvcheckError)
    with pytest.raises(InvalidOption, match="isolation"):
        convcheck.check("numpy_fast", isolation="thread")
    with pytest.raises(InvalidOption, match="'timeoutt'"):
        convcheck.check("numpy_fast", timeoutt=3)
    with pytest.raises(ValueError, match="no such file"):
        convcheck.check("no/such/file.py")
    with pytest.raises(ValueError, match=r"unknown operation|bogus"):
        convcheck.check("numpy_fast", ops="bogus")
    with pytest.raises(InvalidOption, match="Wrong expression passed to '-k'"):
        convcheck.check("numpy_fast", ops="relu", select="not (", progress=False)


def test_what_cannot_be_captured_says_so_and_runs_in_process() -> None:
    functions = {"relu_forward": lambda x: np.maximum(x, 0), "relu_backward": lambda dy, x: dy * (x > 0)}
    with pytest.raises(NotCapturable, match=r"'relu_forward'.*lambda.*isolation=.none."):
        convcheck.check(functions, ops="relu")
    result = convcheck.check(functions, ops="relu", isolation="none", progress=False, **RUN)
    assert result.passed, str(result)


def test_the_callers_thread_settings_profile_and_import_path_are_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch
    from hypothesis import settings

    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    profile = settings.get_current_profile_name()
    path = list(sys.path)
    try:
        result = convcheck.check("numpy_fast", ops="relu", progress=False, **RUN)
        assert result.passed
        assert sys.path == path
        assert torch.get_num_threads() == 2
        assert all(name not in os.environ for name in ENV_VARS)
        assert settings.get_current_profile_name() == profile
    finally:
        torch.set_num_threads(before)


def test_import_convcheck_is_cheap_and_check_is_one_attribute_away() -> None:
    import subprocess

    code = "import convcheck, sys; assert 'torch' not in sys.modules and 'pytest' not in sys.modules; print(convcheck.check.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "convcheck.api.run"


def test_progress_on_a_terminal_names_each_failing_property(capfd: pytest.CaptureFixture[str]) -> None:
    """progress=True writes to the standard error the caller had (pytest's capture sees it here)."""
    result = convcheck.check("buggy.relu_derivative_at_zero", ops="relu", progress=True, **RUN)
    err = capfd.readouterr().err
    assert "convcheck: relu:backward FAILED" in err and "convcheck: relu:relu_kink FAILED" in err
    assert result.first_result_s is not None and 0 < result.first_result_s < 60


def test_a_function_reading_a_helper_class_and_an_imported_name_is_captured_whole() -> None:
    source = """
from numpy import maximum as _max
import numpy as np

SLOPE = 0.0


class Mask:
    @staticmethod
    def of(x):
        return (x > 0).astype(x.dtype)


def relu_forward(x):
    return _max(x, SLOPE * x)


def relu_backward(dy, x):
    return dy * Mask.of(x)
"""
    from convcheck.api.target import captured_text, namespace_of

    cells = notebook_globals(source, cell="/tmp/ipykernel_4242/helpers.py")
    text, _ = captured_text(namespace_of(cells))
    assert "from numpy import maximum as _max" in text and "SLOPE = 0.0" in text and "class Mask" in text
    assert "import numpy as np" not in text  # read by nothing captured
    result = convcheck.check(cells, ops="relu", progress=False, **RUN)
    assert result.passed, str(result)

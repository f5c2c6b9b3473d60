"""Notebooks as implementations and as graded submissions, and the Gradescope results.

The notebooks are built with nbformat in temporary folders from the shipped code:
``examples/my_layers.py`` (a correct student's layers) and
``impls/buggy/conv_dx_kernel_not_flipped.py`` (dx computed with the kernel not
rotated), split into cells at their blank-line-separated blocks, with magics,
shell lines, a raising cell, a hanging cell function and skipped cells added.
The fast tests read, load and run them in this process or through
``convcheck run``; the slow one grades a class mixing ``.py`` files and
notebooks through ``convcheck grade --format gradescope`` and checks every
student's verdict, ``feedback.md`` and ``results.json`` (validated against
``spec/gradescope_results.schema.json``, Gradescope's documented fields).

Fixture and argument names avoid ``impl``, ``op_name``, ``grad`` and
``oracle_name``, which the project's pytest plugin parametrizes.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import traceback
from pathlib import Path

import jsonschema
import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from convcheck.grading.discover import discover
from convcheck.grading.feedback import feedback_markdown
from convcheck.grading.gradescope import results, schema_path
from convcheck.grading.outcome import Outcome
from convcheck.grading.rubric import load_rubric, parse_rubric
from convcheck.impls.registry import absolute, load
from convcheck.notebook import NotebookError, cell_filename, read_notebook
from convcheck.spec import ContractError

ROOT = Path(__file__).resolve().parents[1]
MY_LAYERS = (ROOT / "examples" / "my_layers.py").read_text()
BUGGY = (ROOT / "impls" / "buggy" / "conv_dx_kernel_not_flipped.py").read_text()
MAGICS = "%matplotlib inline\n!pip install numpy\nfiles = !ls\nimport numpy as np\nnp.pad?\n"


def cells_of(source: str) -> list[str]:
    """A module's source as notebook cells: one per block separated by two blank lines."""
    return [block.strip("\n") + "\n" for block in source.split("\n\n\n") if block.strip()]


def write_notebook(path: Path, *cells: str | dict) -> Path:
    """A notebook of code cells (a string each, or a ready cell such as a markdown one)."""
    nb = new_notebook(cells=[new_code_cell(c) if isinstance(c, str) else c for c in cells])
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def tagged(source: str, *tags: str) -> dict:
    cell = new_code_cell(source)
    cell.metadata["tags"] = list(tags)
    return cell


def right_notebook(path: Path) -> Path:
    """my_layers.py as a notebook with a markdown cell, magics, a cell magic and two skipped cells."""
    return write_notebook(
        path,
        new_markdown_cell("# Assignment 2: convolutional layers"),
        MAGICS,  # code cell 1
        *cells_of(MY_LAYERS),
        "%%time\nraise RuntimeError('a cell magic drops the whole cell')\n",
        tagged("raise RuntimeError('plotting, tagged to be skipped')\n", "skip-convcheck"),
        "# convcheck: skip\nraise RuntimeError('loading a data set, skipped by its first line')\n",
    )


def buggy_notebook(path: Path) -> Path:
    source = BUGGY.replace("from . import _kit", "from convcheck.impls.buggy import _kit")
    return write_notebook(path, *cells_of(source))


def _convcheck(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "convcheck", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def _schema() -> dict:
    schema = json.loads(schema_path().read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def _valid(document: dict) -> None:
    jsonschema.validate(document, _schema(), cls=jsonschema.Draft202012Validator)


# --------------------------------------------------------------------------- reading a notebook


def test_magics_are_dropped_with_a_note_and_lines_keep_their_numbers(tmp_path):
    nb = read_notebook(right_notebook(tmp_path / "hw.ipynb"))
    first = nb.cells[0]
    assert first.number == 1  # the markdown cell is not counted
    assert first.source.splitlines() == ["pass", "pass", "pass", "import numpy as np", "pass"]
    notes = [str(n) for n in nb.notes]
    assert notes[:4] == [
        "code cell 1, line 1: dropped the IPython magic `%matplotlib inline`: it runs only in Jupyter",
        "code cell 1, line 2: dropped the shell command `!pip install numpy`: it runs only in Jupyter",
        "code cell 1, line 3: dropped the IPython magic or shell command `files = !ls`: it runs only in Jupyter",
        "code cell 1, line 5: dropped the IPython help query `np.pad?`: it runs only in Jupyter",
    ]
    last = len(cells_of(MY_LAYERS)) + 1
    assert notes[4:] == [
        f"code cell {last + 1}: dropped the whole cell: it starts with the cell magic `%%time`",
        f"code cell {last + 2}: skipped the whole cell: tagged skip-convcheck",
        f"code cell {last + 3}: skipped the whole cell: its first line is `# convcheck: skip`",
    ]
    assert [c.number for c in nb.cells] == list(range(1, last + 1))


def test_indented_magics_become_pass_and_get_ipython_lines_go(tmp_path):
    path = write_notebook(
        tmp_path / "nb.ipynb",
        "def f():\n    %time x = 1\n    return 2\n",
        "get_ipython().run_line_magic('matplotlib', 'inline')\ny = f()\n",
    )
    nb = read_notebook(path)
    assert nb.cells[0].source == "def f():\n    pass\n    return 2\n"
    assert nb.cells[1].source.splitlines() == ["pass", "y = f()"]
    assert [str(n).split(":")[0] for n in nb.notes] == ["code cell 1, line 2", "code cell 2, line 1"]


def test_a_cell_that_is_python_keeps_lines_that_only_look_like_magics(tmp_path):
    source = 'def f(a, b):\n    """Shell users type\n    !ls\n    """\n    return ("%d"\n            % a)\n'
    nb = read_notebook(write_notebook(tmp_path / "nb.ipynb", source))
    assert nb.cells[0].source == source and not nb.notes


BROKEN = {
    "not JSON": ('{"cells": [{"cell_type": "code", "source": "x = 1"', "is not valid JSON (Expecting"),
    "empty file": ("", "is empty (no JSON at all)"),
    "a JSON list": ("[1, 2]", 'expected a JSON object with a "cells" list, got list'),
    "no cells": (nbformat.writes(new_notebook()), "holds no code cell (0 cell(s) in all)"),
    "only markdown": (
        nbformat.writes(new_notebook(cells=[new_markdown_cell("# notes")])),
        "holds no code cell (1 cell(s) in all)",
    ),
    "only magics": (
        nbformat.writes(new_notebook(cells=[new_code_cell("%pip install numpy\n"), new_code_cell("")])),
        "holds no code to run",
    ),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_a_broken_notebook_is_one_line_naming_the_file(tmp_path, kind):
    text, expected = BROKEN[kind]
    path = tmp_path / "hw.ipynb"
    path.write_text(text)
    with pytest.raises(NotebookError) as info:
        load(str(path))
    message = str(info.value)
    assert isinstance(info.value, ContractError)
    assert message.startswith(str(path)) and expected in message and "\n" not in message, message


def test_a_syntax_error_names_the_cell_and_its_line(tmp_path):
    path = write_notebook(tmp_path / "hw.ipynb", "import numpy as np\n", "x = 1\ndef conv2d_forward(x, w:\n")
    with pytest.raises(NotebookError) as info:
        load(str(path))
    assert str(info.value).startswith(f"{path}: code cell 2, line 2: syntax error: ")


def test_a_raising_cell_names_its_number_with_a_traceback_in_cells(tmp_path):
    path = write_notebook(
        tmp_path / "hw.ipynb",
        *cells_of(MY_LAYERS),
        "def load_weights(folder):\n    return np.load(folder)['w']\n",
        "weights = load_weights('cs231n/datasets/missing.npz')\n",
    )
    n = len(cells_of(MY_LAYERS)) + 2
    with pytest.raises(NotebookError) as info:
        load(str(path))
    first, *rest = str(info.value).splitlines()
    assert first == f"{path}: code cell {n} raised FileNotFoundError: " + (
        "[Errno 2] No such file or directory: 'cs231n/datasets/missing.npz'"
    )
    trace = "\n".join(rest)
    assert f'File "{cell_filename(path, n)}", line 1, in <module>' in trace
    assert f'File "{cell_filename(path, n - 1)}", line 2, in load_weights' in trace
    assert "return np.load(folder)['w']" in trace  # the cell's own line, shown


# --------------------------------------------------------------------------- loading and running


def test_a_notebook_loads_like_its_module_and_resolves_from_its_folder(tmp_path):
    path = right_notebook(tmp_path / "course" / "hw.ipynb")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    spec = absolute("../course/hw.ipynb", str(elsewhere))
    assert spec == str(path)
    loaded = load(spec)
    as_module = load(str(ROOT / "examples" / "my_layers.py"))
    assert loaded.name == "hw" and loaded.source == str(path)
    assert set(loaded.functions) == set(as_module.functions)
    assert loaded.raw_capabilities == as_module.raw_capabilities
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3))
    hyper = {"stride": (1, 1), "padding": (1, 1, 1, 1), "dilation": (1, 1), "groups": 1}
    np.testing.assert_allclose(
        loaded.functions["conv2d_forward"](x, w, None, **hyper),
        as_module.functions["conv2d_forward"](x, w, None, **hyper),
    )


def test_an_error_inside_a_cell_function_names_the_cell_when_called(tmp_path):
    path = write_notebook(
        tmp_path / "hw.ipynb",
        "import numpy as np\n",
        "def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):\n"
        "    out = np.zeros(3)\n"
        "    return out + x.reshape(-1)\n",
    )
    fn = load(str(path)).functions["conv2d_forward"]
    with pytest.raises(ValueError) as info:
        fn(np.ones(4), None, None, stride=(1, 1), padding=(0,) * 4, dilation=(1, 1), groups=1)
    frame = traceback.extract_tb(info.value.__traceback__)[-1]
    assert (frame.filename, frame.lineno, frame.line) == (
        cell_filename(path, 2),
        3,
        "return out + x.reshape(-1)",
    )


def test_run_takes_a_relative_notebook_path_from_another_folder(tmp_path):
    right_notebook(tmp_path / "course" / "hw.ipynb")
    (tmp_path / "elsewhere").mkdir()
    done = _convcheck(
        "run", "--impl", "../course/hw.ipynb", "--ops", "conv2d", "--max-examples", "3",
        cwd=tmp_path / "elsewhere",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "convcheck: hw passed every check that applies" in done.stdout


@pytest.mark.parametrize("kind", ["not JSON", "no cells"])
def test_run_refuses_a_broken_notebook_in_one_line_exit_2(tmp_path, kind):
    (tmp_path / "hw.ipynb").write_text(BROKEN[kind][0])
    done = _convcheck("run", "--impl", "hw.ipynb", "--ops", "conv2d", cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"convcheck: error: {tmp_path / 'hw.ipynb'}") and BROKEN[kind][1] in lines[0]


# --------------------------------------------------------------------------- discovery


def test_discover_takes_notebooks_and_folders_holding_one(tmp_path):
    write_notebook(tmp_path / "ann.ipynb", "x = 1\n")
    write_notebook(tmp_path / "ben" / "hw.ipynb", "x = 1\n")
    (tmp_path / "ben" / ".ipynb_checkpoints").mkdir()
    write_notebook(tmp_path / "ben" / ".ipynb_checkpoints" / "hw-checkpoint.ipynb", "x = 1\n")
    write_notebook(tmp_path / "cid" / "explore.ipynb", "import layers\n")
    (tmp_path / "cid" / "layers.py").write_text("x = 1\n")
    write_notebook(tmp_path / "dee" / "submission.ipynb", "import helpers\n")
    (tmp_path / "dee" / "helpers.py").write_text("x = 1\n")
    write_notebook(tmp_path / "eve" / "a.ipynb", "x = 1\n")
    write_notebook(tmp_path / "eve" / "b.ipynb", "x = 1\n")
    subs = {s.student: s for s in discover(tmp_path)}
    assert subs["ann"].entry == (tmp_path / "ann.ipynb").resolve()
    assert subs["ben"].entry == (tmp_path / "ben" / "hw.ipynb").resolve()
    assert subs["cid"].entry == (tmp_path / "cid" / "layers.py").resolve()  # a .py file wins
    assert subs["dee"].entry == (tmp_path / "dee" / "submission.ipynb").resolve()  # unless named
    assert subs["eve"].entry is None and "2 notebooks (a.ipynb, b.ipynb)" in subs["eve"].problem
    assert "submission.ipynb" in subs["eve"].problem


# --------------------------------------------------------------------------- feedback and Gradescope


def _mistake() -> dict:
    return {
        "impl": "hw",
        "op": "conv2d",
        "title": "dx_kernel_not_flipped",
        "cause": "likely cause: dx_kernel_not_flipped: dx correlates dy with the kernel unrotated",
        "shown": "test_backward.py::test_backward[hw-conv2d-dx-scipy]",
        "checks": ["a", "b", "c"],
        "properties": ["backward", "adjoint"],
        "case": "conv2d(x=(1, 1, 2, 2), w=(1, 1, 2, 2), b=None) dtype=float64",
        "details": [
            "AssertionError: conv2d_backward dx vs the scipy oracle does not match",
            "  worst at index (0, 0, 0, 0): got 0.5, expected 0.25",
            "  likely cause: dx_kernel_not_flipped: dx correlates dy with the kernel unrotated",
        ],
        "replay": "convcheck run --impl hw.ipynb --profile ci --seed 0 -k 'test_backward[hw-conv2d-dx-scipy]'",
    }


def _outcomes() -> dict[str, Outcome]:
    items = {"conv2d:forward": "passed", "conv2d:backward": "failed", "conv2d:adjoint": "failed"}
    items["conv2d.dilation"] = "unsupported"
    notes = ["code cell 1, line 1: dropped the IPython magic `%matplotlib inline`: not Python"]
    error = [
        "Traceback noise before",
        "convcheck: error: hw.ipynb: code cell 4 raised NameError: name 'np' is not defined",
        "  traceback:",
        '      File "hw.ipynb, code cell 4", line 2, in <module>',
    ]
    return {
        "graded": Outcome("ann", "graded", 40.0, "1 mistake(s)", items, mistakes=[_mistake()], notes=notes),
        "not loaded": Outcome(
            "ben",
            "could not be loaded",
            0.0,
            error[1].removeprefix("convcheck: error: "),
            entry="hw.ipynb",
            stderr_tail=error,
        ),
        "timed out": Outcome("cid", "timed out", 0.0, "still running", {"conv2d:forward": "passed"}),
    }


RUBRIC = {
    "weights": {"conv2d": {"forward": 3, "backward": 3, "adjoint": 2}},
    "features": {"conv2d": {"dilation": 2}},
}


@pytest.mark.parametrize("kind", ["graded", "not loaded", "timed out"])
def test_gradescope_results_follow_the_documented_fields(kind):
    rubric = parse_rubric({**RUBRIC, "credit": {"unsupported": 0.5}})
    outcome = _outcomes()[kind]
    doc = results(outcome, rubric)
    _valid(doc)
    assert doc["score"] == outcome.score and [t["name"] for t in doc["tests"]] == list(rubric.items())
    assert sum(t["max_score"] for t in doc["tests"]) == pytest.approx(100)
    by_name = {t["name"]: t for t in doc["tests"]}
    if kind == "graded":
        assert by_name["conv2d:forward"] == {**by_name["conv2d:forward"], "score": 30.0, "status": "passed"}
        assert (
            by_name["conv2d.dilation"]["score"] == 10.0 and by_name["conv2d.dilation"]["status"] == "failed"
        )
        assert sum(t["score"] for t in doc["tests"]) == pytest.approx(outcome.score)  # 30 + 0 + 0 + 10
        backward = by_name["conv2d:backward"]["output"]
        assert "smallest input: conv2d(x=(1, 1, 2, 2)" in backward and "expected 0.25" in backward
        assert "hint: likely cause: dx_kernel_not_flipped" in backward
        assert "replay: convcheck run --impl hw.ipynb" in backward
        assert "dropped the IPython magic" in doc["output"]
    else:
        assert all(t["score"] == 0 and t["status"] == "failed" for t in doc["tests"])
    if kind == "not loaded":
        assert "code cell 4 raised NameError" in doc["output"] and "hw.ipynb, code cell 4" in doc["output"]
        assert "Cell numbers count code cells only" in doc["output"]
        assert "Traceback noise" not in doc["output"]
    if kind == "timed out":
        assert "no points: the submission timed out" in by_name["conv2d:forward"]["output"]


def test_feedback_says_what_failed_on_which_input_and_how_to_replay_it():
    rubric = parse_rubric(RUBRIC)
    text = feedback_markdown(_outcomes()["graded"], rubric)
    assert "**Score: 40.00 / 100**" in text
    assert "- **Fails**: conv2d:backward, conv2d:adjoint (3 check(s))" in text
    assert "- **Smallest input**: `conv2d(x=(1, 1, 2, 2)" in text
    assert "- **Hint**: likely cause: dx_kernel_not_flipped" in text
    assert "- **Replay it**: `convcheck run --impl hw.ipynb" in text
    assert "got 0.5, expected 0.25" in text
    assert "Cell numbers count code cells only" in text and "code cell 1, line 1: dropped" in text
    assert "| conv2d.dilation | unsupported | 20.0% |" in text


# --------------------------------------------------------------------------- grading a mixed class


def make_mixed_class(folder: Path) -> dict[str, str]:
    """``.py`` files and notebooks of every kind; returns each student's expected status."""
    folder.mkdir(parents=True)
    (folder / "py_right.py").write_text(MY_LAYERS)
    right_notebook(folder / "nb_right.ipynb")
    buggy_notebook(folder / "nb_wrong.ipynb")
    write_notebook(
        folder / "nb_raises.ipynb", MAGICS, *cells_of(MY_LAYERS), "weights = load_weights('w.npz')\n"
    )
    write_notebook(
        folder / "nb_hang.ipynb",
        *cells_of(MY_LAYERS),
        "def conv2d_backward(dy, x, w, b, *, stride, padding, dilation, groups):\n    while True:\n        pass\n",
    )
    (folder / "nb_notjson.ipynb").write_text(
        nbformat.writes(new_notebook(cells=[new_code_cell("x = 1")]))[:40]
    )
    nbformat.write(new_notebook(), str(folder / "nb_empty.ipynb"))
    (folder / "folder_nb").mkdir()
    (folder / "folder_nb" / "helpers.py").write_text("from convcheck.impls.numpy_reference import *\n")
    write_notebook(folder / "folder_nb" / "submission.ipynb", "%load_ext autoreload\nfrom helpers import *\n")
    return {
        "py_right": "graded",
        "nb_right": "graded",
        "nb_wrong": "graded",
        "nb_raises": "could not be loaded",
        "nb_hang": "graded",
        "nb_notjson": "could not be loaded",
        "nb_empty": "could not be loaded",
        "folder_nb": "graded",
    }


@pytest.mark.slow
def test_grading_a_class_mixing_files_and_notebooks(tmp_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    expect = make_mixed_class(subs)
    done = _convcheck(
        "grade", str(subs), "--report", str(out), "--ops", "conv2d", "--max-examples", "3", "-j", "2",
        "--timeout", "1", "--submission-timeout", "300", "--format", "gradescope",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    with open(out / "summary.csv", newline="", encoding="utf-8") as fh:
        rows = {row["student"]: row for row in csv.DictReader(fh)}
    assert {s: r["status"] for s, r in rows.items()} == expect, {s: r["message"] for s, r in rows.items()}
    for student in ("py_right", "nb_right", "folder_nb"):
        assert float(rows[student]["score"]) == 100.0, (student, rows[student])
    assert float(rows["nb_wrong"]["score"]) < 100 and "conv2d:backward" in rows["nb_wrong"]["failing"]
    assert float(rows["nb_hang"]["score"]) < 100 and "conv2d:backward" in rows["nb_hang"]["failing"]
    n = len(cells_of(MY_LAYERS)) + 2
    assert rows["nb_raises"]["message"] == f"nb_raises.ipynb: code cell {n} raised NameError: " + (
        "name 'load_weights' is not defined"
    )
    assert rows["nb_notjson"]["message"].startswith(
        "nb_notjson.ipynb is not a notebook: it is not valid JSON"
    )
    assert rows["nb_empty"]["message"].startswith("nb_empty.ipynb holds no code cell")

    feedback = {s: (out / s / "feedback.md").read_text() for s in rows}
    assert "code cell 1, line 1: dropped the IPython magic `%matplotlib inline`" in feedback["nb_right"]
    assert "skipped the whole cell: tagged skip-convcheck" in feedback["nb_right"]
    assert "code cell 1, line 1: dropped the IPython magic `%load_ext autoreload`" in feedback["folder_nb"]
    assert "Dropped from your notebook" not in feedback["py_right"]
    assert f'File "nb_raises.ipynb, code cell {n}", line 1, in <module>' in feedback["nb_raises"]
    assert "Cell numbers count code cells only" in feedback["nb_raises"]
    assert "code cell 1, line 2: dropped the shell command `!pip install numpy`" in feedback["nb_raises"]
    wrong = feedback["nb_wrong"]
    assert "dx_kernel_not_flipped" in wrong and "- **Smallest input**: `conv2d(" in wrong
    assert "- **Replay it**: `convcheck run --impl nb_wrong.ipynb --profile ci --seed 0" in wrong
    assert str(subs) not in wrong  # paths are the student's, not the grader's
    assert "worker killed after 1 s" in feedback["nb_hang"]

    rubric_items = list(load_rubric().items(["conv2d"]))
    for student in rows:
        doc = json.loads((out / student / "results.json").read_text())
        _valid(doc)
        assert [t["name"] for t in doc["tests"]] == rubric_items
        assert doc["score"] == float(rows[student]["score"])
        if rows[student]["status"] == "graded":
            assert sum(t["score"] for t in doc["tests"]) == pytest.approx(doc["score"], abs=0.01)
    wrong_doc = json.loads((out / "nb_wrong" / "results.json").read_text())
    backward = next(t for t in wrong_doc["tests"] if t["name"] == "conv2d:backward")
    assert backward["status"] == "failed" and backward["score"] == 0
    assert re.search(r"smallest input: conv2d\(x=\(\d", backward["output"]) and "hint: " in backward["output"]
    raises_doc = json.loads((out / "nb_raises" / "results.json").read_text())
    assert f"code cell {n} raised NameError" in raises_doc["output"]


# --------------------------------------------------------------------------- the Gradescope example


def test_run_autograder_writes_valid_results_for_one_submission(tmp_path):
    root = tmp_path / "autograder"
    right_notebook(root / "submission" / "hw.ipynb")
    env = {
        **os.environ,
        "AUTOGRADER_ROOT": str(root),
        "CONVCHECK_OPS": "conv2d",
        "CONVCHECK_MAX_EXAMPLES": "3",
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    script = ROOT / "examples" / "gradescope" / "run_autograder"
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = json.loads((root / "results" / "results.json").read_text())
    _valid(doc)
    assert doc["score"] == 100.0 and [t["name"] for t in doc["tests"]] == list(
        load_rubric().items(["conv2d"])
    )
    assert "dropped the IPython magic `%matplotlib inline`" in doc["output"]
    assert (root / "results" / "feedback.md").is_file()

    env["CONVCHECK_OPS"] = "conv4d"  # the autograder misconfigured: the student still gets a results file
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "unknown operation" in done.stderr
    doc = json.loads((root / "results" / "results.json").read_text())
    _valid(doc)
    assert doc["score"] == 0 and "autograder itself failed" in doc["output"]


def test_statements_that_check_the_notebook_from_within_are_left_out(tmp_path):
    """A student checks the notebook from a cell, reads the result, then submits it: loaded as the code
    under test, the check and what reads its result are left out (no nested run), the layers stay."""
    layers = cells_of(MY_LAYERS)
    path = write_notebook(
        tmp_path / "hw.ipynb",
        *layers[:-1],
        layers[-1] + "\nimport convcheck\nresult = convcheck.check(globals(), ops=['conv2d'])\nresult\n",
        "failure = result.failures[0]\nprint(failure.hint)\nhelper_constant = 3\n",
        "from convcheck import check as verify\nagain = verify(globals())\n",
        "print(again, helper_constant)\n",
    )
    nb = read_notebook(path)
    last = len(layers)
    left_out = {(n.cell, n.line) for n in nb.notes if "left out" in n.text}
    assert any(n.cell == last and "`result = convcheck.check(" in n.text for n in nb.notes)
    assert {(last + 1, 1), (last + 1, 2), (last + 2, 2)} <= left_out
    assert (last + 1, 3) not in left_out, "a statement that reads nothing left out must stay"
    assert (last + 3, 1) in left_out, "`again` came from a left-out check"
    assert any("runs convcheck.check" in n.text for n in nb.notes)
    loaded = load(str(path))  # would start a nested check (and fail on result.failures) if run
    assert set(loaded.functions) == set(load(str(ROOT / "examples" / "my_layers.py")).functions)


def test_cs231n_style_files_are_adapted_without_a_plugin(tmp_path):
    """A CS231n-style layers file or notebook (conv_forward_naive & co., no contract names) is
    checked as it is, through the same adapter a plug-in would call."""
    layers = (ROOT / "examples" / "cs231n_layers.py").read_text()
    as_file = load(str(ROOT / "examples" / "cs231n_layers.py"))
    as_notebook = load(str(write_notebook(tmp_path / "hw.ipynb", *cells_of(layers))))
    via_plugin = load(str(ROOT / "examples" / "cs231n_plugin.py"))
    assert set(as_file.functions) == set(as_notebook.functions) == set(via_plugin.functions)
    assert {"conv2d_forward", "conv2d_backward", "max_pool2d_backward"} <= set(as_file.functions)
    assert as_file.capabilities == via_plugin.capabilities
    done = _convcheck("run", "--impl", "hw.ipynb", "--ops", "conv2d", "--max-examples", "5", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr

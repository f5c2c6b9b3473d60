"""``convcheck grade``: discovery, the rubric, scoring, verdicts, the summary, and whole-class runs.

The fast tests exercise each module on made-up inputs. The slow ones grade
generated class folders end to end through ``python -m convcheck grade``: a
class of 30+ submissions (correct, every shipped buggy one, and hostile ones:
a hang, a crash, a syntax error, no functions, fake "passed" output, a huge
allocation, folder-style ones), a rerun that must give an identical summary,
and a run interrupted with SIGINT that must keep what finished.

Fixture and argument names avoid ``impl``, ``op_name``, ``grad`` and
``oracle_name``, which the project's pytest plugin parametrizes.
"""

from __future__ import annotations

import csv
import importlib
import json
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from convcheck.grading.discover import discover
from convcheck.grading.outcome import Outcome, judge
from convcheck.grading.properties import suite_groups
from convcheck.grading.rubric import RubricError, load_rubric, parse_rubric
from convcheck.grading.runner import ChildRun, run_child
from convcheck.grading.scoring import declared_features, group_statuses, item_statuses, score
from convcheck.grading.summary import write_summary
from convcheck.impls.buggy import BUGGY
from convcheck.spec import OPERATIONS
from convcheck.spec.networks import NETWORKS

ROOT = Path(__file__).resolve().parents[1]
MAX_EXAMPLES = "10"  # 5 misses buggy.conv_noncontiguous_wrong
SUBMISSION_TIMEOUT = "150"  # the hang costs this much; a correct submission needs ~30-60 s


def _grade(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "convcheck", "grade", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def _summary(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "summary.csv", newline="", encoding="utf-8") as fh:
        return {row["student"]: row for row in csv.DictReader(fh)}


# --------------------------------------------------------------------------- discovery


def test_discover_files_folders_and_problems(tmp_path):
    _write(tmp_path / "alice.py", "x = 1\n")
    _write(tmp_path / "bob" / "submission.py", "x = 1\n")
    _write(tmp_path / "bob" / "helpers.py", "x = 1\n")
    _write(tmp_path / "carol" / "layers.py", "x = 1\n")
    _write(tmp_path / "carol" / "__init__.py", "")
    _write(tmp_path / "dave" / "a.py", "x = 1\n")
    _write(tmp_path / "dave" / "b.py", "x = 1\n")
    _write(tmp_path / "erin" / "src" / "layers.py", "x = 1\n")
    _write(tmp_path / "frank.ipynb", "{}\n")
    _write(tmp_path / ".hidden.py", "x = 1\n")
    (tmp_path / "__pycache__").mkdir()
    _write(tmp_path / "gina.py", "x = 1\n")
    _write(tmp_path / "gina" / "submission.py", "x = 1\n")
    subs = {s.student: s for s in discover(tmp_path)}
    assert sorted(subs) == ["alice", "bob", "carol", "dave", "erin", "frank", "gina", "gina.py"]
    assert subs["alice"].entry == (tmp_path / "alice.py").resolve()
    assert subs["bob"].entry == (tmp_path / "bob" / "submission.py").resolve()
    assert subs["carol"].entry == (tmp_path / "carol" / "layers.py").resolve()
    assert subs["gina"].entry.parent.name == "gina" and subs["gina.py"].entry.name == "gina.py"
    assert subs["dave"].entry is None and "a.py, b.py" in subs["dave"].problem
    assert "submission.py" in subs["dave"].problem
    assert subs["erin"].entry is None and "src/layers.py deeper" in subs["erin"].problem
    assert subs["frank"].entry == (tmp_path / "frank.ipynb").resolve()  # a notebook is a submission


def test_discover_rejects_a_missing_folder(tmp_path):
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        discover(tmp_path / "nowhere")


# --------------------------------------------------------------------------- rubric


def test_default_rubric_grades_every_group_of_the_suite():
    rubric = load_rubric()
    groups = {f"{op}:{prop}" for op, props in suite_groups().items() for prop in props}
    assert set(rubric.weights) == groups
    assert all(w > 0 for w in rubric.weights.values())
    assert rubric.credit["unsupported"] == 0.0 and rubric.credit["missing"] == 0.0
    assert not rubric.strict


def test_suite_groups_are_read_from_the_test_markers():
    groups = suite_groups()
    assert set(groups) == {*OPERATIONS, *NETWORKS}
    worked = {"conv2d", "max_pool2d"}  # the course's worked examples are 2-D conv and max-pool
    for name, op in OPERATIONS.items():
        assert set(groups[name]) == set(op.properties) | ({"worked_examples"} if name in worked else set())
    assert groups["lenet5"] == ("network",)
    assert all(list(props) == sorted(props) for props in groups.values())
    assert "bias_gradient" in groups["conv2d"] and "bias_gradient" not in groups["max_pool2d"]
    assert "max_routing" in groups["max_pool2d"] and "avg_spreading" in groups["avg_pool2d"]
    assert "worked_examples" in groups["conv2d"] and "worked_examples" not in groups["avg_pool2d"]


BAD_RUBRICS = {
    "unknown table": ({"weight": {}}, "unknown table 'weight'"),
    "unknown operation": ({"weights": {"conv4d": {"forward": 1}}}, "unknown operation or network 'conv4d'"),
    "unknown property": ({"weights": {"conv2d": {"forwad": 1}}}, "unknown property of conv2d 'forwad'"),
    "property of another op": ({"weights": {"avg_pool2d": {"max_routing": 1}}}, "'max_routing'"),
    "negative weight": (
        {"weights": {"conv2d": {"forward": -1}}},
        "weights.conv2d.forward = -1 must be at least 0",
    ),
    "text weight": (
        {"weights": {"conv2d": {"forward": "3"}}},
        "weights.conv2d.forward = '3' must be a number",
    ),
    "credit above 1": (
        {"weights": {"conv2d": {"forward": 1}}, "credit": {"unsupported": 2}},
        "credit.unsupported = 2 must be between 0 and 1",
    ),
    "credit for passed": (
        {"weights": {"conv2d": {"forward": 1}}, "credit": {"passed": 0.5}},
        "unknown status",
    ),
    "unknown feature": (
        {"weights": {"conv2d": {"forward": 1}}, "features": {"conv2d": {"dilaton": 1}}},
        "dilaton",
    ),
    "no weight": ({"weights": {"conv2d": {"forward": 0}}}, "gives no weight"),
    "bad option": ({"weights": {"conv2d": {"forward": 1}}, "options": {"strict": "yes"}}, "true or false"),
    "not a table": ({"weights": {"conv2d": 3}}, "weights.conv2d must be a table"),
}


@pytest.mark.parametrize("problem", list(BAD_RUBRICS))
def test_invalid_rubric_names_the_key(problem):
    data, expected = BAD_RUBRICS[problem]
    with pytest.raises(RubricError) as info:
        parse_rubric(data, "r.toml")
    message = str(info.value)
    assert message.startswith("rubric r.toml: ") and expected in message, message
    assert "\n" not in message


def test_rubric_files_in_toml_and_json(tmp_path):
    toml = _write(tmp_path / "r.toml", "[weights.conv2d]\nforward = 2\n[credit]\nunsupported = 0.5\n")
    as_json = tmp_path / "r.json"
    as_json.write_text(json.dumps({"weights": {"conv2d": {"forward": 2}}, "credit": {"unsupported": 0.5}}))
    for path in (toml, as_json):
        rubric = load_rubric(path)
        assert rubric.weights == {"conv2d:forward": 2.0} and rubric.credit["unsupported"] == 0.5
    broken = _write(tmp_path / "broken.toml", "[weights.conv2d\nforward = 1\n")
    with pytest.raises(RubricError, match="is not valid TOML"):
        load_rubric(broken)


# --------------------------------------------------------------------------- scoring


def _result(op: str, prop: str, status: str, message: str = "", **typed: object) -> dict:
    """A result as the plug-in writes it; ``typed``: its typed fields (``skip_kind``, ...)."""
    return {
        "impl": "s",
        "op": op,
        "property": prop,
        "status": status,
        "test": f"{op}-{prop}",
        "message": message,
        **typed,
    }


def test_score_weights_credits_features_and_ops():
    rubric = parse_rubric(
        {
            "weights": {"conv2d": {"forward": 3, "backward": 1}, "max_pool2d": {"forward": 2, "backward": 2}},
            "features": {"conv2d": {"dilation": 2}, "max_pool2d": {"ties": 2}},
            "credit": {"unsupported": 0.5, "missing": 0.25},
        }
    )
    results = [
        _result("conv2d", "forward", "passed"),
        _result("conv2d", "backward", "failed"),
        _result("max_pool2d", "forward", "passed"),
        _result(
            "max_pool2d",
            "backward",
            "unsupported",
            "unsupported: s does not provide max_pool2d_backward",
            skip_kind="missing",
        ),
    ]
    groups = group_statuses(results)
    assert groups["max_pool2d:backward"] == "missing"
    items = item_statuses(rubric, groups, declared={"conv2d.dilation"})
    assert items == {
        "conv2d:forward": "passed",
        "conv2d:backward": "failed",
        "max_pool2d:forward": "passed",
        "max_pool2d:backward": "missing",
        "conv2d.dilation": "unsupported",
        "max_pool2d.ties": "passed",
    }
    # (3*1 + 1*0 + 2*1 + 2*0.25 + 2*0.5 + 2*1) / 12
    assert score(rubric, items) == round(100 * 8.5 / 12, 2)
    conv_only = item_statuses(rubric, groups, {"conv2d.dilation"}, ops=["conv2d"])
    assert score(rubric, conv_only, ops=["conv2d"]) == round(100 * 4 / 6, 2)


def test_unreached_groups_and_unimplemented_operations():
    rubric = parse_rubric(
        {
            "weights": {"conv2d": {"forward": 1}, "avg_pool2d": {"forward": 1}},
            "features": {"avg_pool2d": {"ceil_mode": 1}},
        }
    )
    missing = "unsupported: s does not provide avg_pool2d_forward"
    items = item_statuses(
        rubric,
        group_statuses([_result("avg_pool2d", "forward", "unsupported", missing, skip_kind="missing")]),
        set(),
    )
    assert items == {
        "conv2d:forward": "not_run",
        "avg_pool2d:forward": "missing",
        "avg_pool2d.ceil_mode": "missing",
    }
    assert score(rubric, items) == 0.0


# --------------------------------------------------------------------------- verdicts


def _child_folder(tmp_path: Path, results: list[dict], stderr: str = "", stdout: str = "") -> Path:
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results) + '{"cut sh')
    (folder / "stderr.txt").write_text(stderr)
    (folder / "stdout.txt").write_text(stdout)
    return folder


@pytest.mark.parametrize(
    ("run", "stderr", "status", "in_message"),
    [
        (ChildRun(0, 3.0), "", "graded", ""),
        (ChildRun(1, 3.0), "", "graded", ""),
        (
            ChildRun(2, 1.0),
            "convcheck: error: /subs/x.py:3: syntax error: invalid syntax\n",
            "could not be loaded",
            "x.py:3: syntax error",
        ),
        (
            ChildRun(-11, 2.0),
            "Fatal Python error: Segmentation fault\n",
            "crashed",
            "killed by SIGSEGV: Fatal Python error",
        ),
        (ChildRun(3, 2.0), "boom\n", "crashed", "exit status 3: boom"),
        (ChildRun(None, 20.0, timed_out=True), "", "timed out", "1 check(s) had finished"),
    ],
    ids=["exit 0", "exit 1", "exit 2", "SIGSEGV", "exit 3", "timeout"],
)
def test_verdict_follows_the_child(tmp_path, run, stderr, status, in_message):
    rubric = parse_rubric({"weights": {"conv2d": {"forward": 1}}})
    folder = _child_folder(tmp_path, [_result("conv2d", "forward", "passed")], stderr)
    outcome = judge("x", folder, run, rubric, None, root=Path("/subs"))
    assert outcome.status == status and in_message in outcome.message
    assert outcome.score == (100.0 if status == "graded" else 0.0)
    assert outcome.items == {"conv2d:forward": "passed"}  # what finished is kept, whatever the verdict


def test_finished_child_without_results_is_incomplete(tmp_path):
    rubric = parse_rubric({"weights": {"conv2d": {"forward": 1, "backward": 1}}})
    folder = _child_folder(tmp_path, [_result("conv2d", "forward", "passed")])
    outcome = judge("x", folder, ChildRun(0, 1.0), rubric, None)
    assert outcome.status == "incomplete" and outcome.score == 50.0
    assert "conv2d:backward" in outcome.message


def test_declared_features_are_read_from_the_results(tmp_path):
    rubric = parse_rubric({"weights": {"conv2d": {"forward": 3}}, "features": {"conv2d": {"dilation": 1}}})
    declared = [{"op": "conv2d", "feature": "dilation", "value": False}]
    result = _result("conv2d", "forward", "passed", declared_unsupported=declared)
    # what the run printed is not read: only the results' typed field counts
    folder = _child_folder(tmp_path, [result], stdout="  unsupported (declared): conv2d.stride = 'uniform'\n")
    outcome = judge("x", folder, ChildRun(0, 1.0), rubric, None)
    assert outcome.items["conv2d.dilation"] == "unsupported" and outcome.score == 75.0
    assert outcome.items.get("conv2d.stride", "passed") == "passed"


def test_a_declaring_submission_scores_as_its_printed_declaration_says(tmp_path):
    """``convcheck run`` on a module that declares features unsupported: the results carry exactly the
    features its ``unsupported (declared):`` lines print, so the score is the one those lines gave."""
    results = tmp_path / "results.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "convcheck", "run", "--impl", str(ROOT / "examples" / "my_layers.py"),
         "--ops", "max_pool2d,avg_pool2d", "--max-examples", "3", "--results", str(results),
         "-k", "forward and not oracle"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stdout[-2000:] + proc.stderr[-2000:]
    printed = {
        f"{op}.{feature}"
        for line in proc.stdout.splitlines()
        if line.strip().startswith("unsupported (declared): ")
        for op, feature in re.findall(r"(\w+)\.(\w+) = ", line)
    }
    assert printed == {"max_pool2d.ceil_mode", "max_pool2d.dilation", "avg_pool2d.ceil_mode"}, proc.stdout
    found = [json.loads(line) for line in results.read_text().splitlines()]
    assert declared_features(found) == printed
    rubric = load_rubric(None)
    ops = ["max_pool2d", "avg_pool2d"]
    by_results = score(
        rubric, item_statuses(rubric, group_statuses(found), declared_features(found), ops), ops
    )
    by_print = score(rubric, item_statuses(rubric, group_statuses(found), printed, ops), ops)
    assert by_results == by_print


def test_run_child_kills_the_whole_tree_on_timeout(tmp_path):
    script = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'], start_new_session=True)\n"
        "open('grandchild.pid', 'w').write(str(p.pid))\n"
        "time.sleep(300)\n"
    )
    start = time.monotonic()
    run = run_child([sys.executable, "-c", script], tmp_path, timeout=3.0, stop=threading.Event())
    assert run.timed_out and run.returncode is None and time.monotonic() - start < 30
    grandchild = int((tmp_path / "grandchild.pid").read_text())
    assert _gone(grandchild), "the grandchild in its own session outlived the timeout"


def _gone(pid: int, wait: float = 10.0) -> bool:
    """Whether ``pid`` has ended (a zombie awaiting its reaper counts as ended)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


# --------------------------------------------------------------------------- summary


def test_summary_files_are_complete_and_self_contained(tmp_path):
    rubric = parse_rubric({"weights": {"conv2d": {"forward": 1, "backward": 1}}})
    outcomes = [
        Outcome("zoe", "graded", 50.0, "", {"conv2d:forward": "passed", "conv2d:backward": "failed"}),
        Outcome("amy <b>", "crashed", 0.0, 'exit status 3: "quoted", <tag>', {}),
    ]
    write_summary(tmp_path, outcomes, rubric)
    rows = _summary(tmp_path)
    assert list(rows) == ["amy <b>", "zoe"]
    assert rows["zoe"]["score"] == "50.00" and rows["zoe"]["failing"] == "conv2d:backward"
    assert rows["zoe"]["conv2d:backward"] == "failed" and rows["amy <b>"]["conv2d:forward"] == "not_run"
    assert rows["amy <b>"]["message"] == 'exit status 3: "quoted", <tag>'
    html = (tmp_path / "summary.html").read_text()
    assert "<script" not in html and "amy &lt;b&gt;" in html and "<tag>" not in html
    first = (tmp_path / "summary.csv").read_bytes(), html
    write_summary(tmp_path, list(reversed(outcomes)), rubric)
    assert ((tmp_path / "summary.csv").read_bytes(), (tmp_path / "summary.html").read_text()) == first
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# --------------------------------------------------------------------------- command line


def test_usage_errors_are_one_line_exit_2(tmp_path):
    missing = _grade(str(tmp_path / "nowhere"), "--report", str(tmp_path / "out"))
    bad = _write(tmp_path / "bad.toml", "[weights.conv2d]\nforwad = 1\n")
    (tmp_path / "subs").mkdir()
    invalid = _grade(str(tmp_path / "subs"), "--report", str(tmp_path / "out"), "--rubric", str(bad))
    empty = _grade(str(tmp_path / "subs"), "--report", str(tmp_path / "out"), "-j", "0")
    for proc, expected in (
        (missing, "is not a folder"),
        (invalid, "unknown property of conv2d 'forwad'"),
        (empty, "-j/--jobs=0 must be at least 1"),
    ):
        assert proc.returncode == 2, proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("convcheck: error: ") and expected in lines[0], (
            proc.stderr
        )


# --------------------------------------------------------------------------- generated classes

REFERENCE = "from convcheck.impls.numpy_reference import *\n"


def _source(*blocks: str) -> str:
    """One module's source from blocks, each dedented on its own."""
    return "".join(textwrap.dedent(block).lstrip("\n") for block in blocks)


HOSTILE = {
    "hang": _source(
        REFERENCE,
        """
        def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
            while True:
                pass
        """,
    ),
    "crash": _source(
        REFERENCE,
        """
        import os
        def conv2d_backward(dy, x, w, b, *, stride, padding, dilation, groups):
            os._exit(3)
        """,
    ),
    "syntax": "def conv2d_forward(x, w, b, *, stride padding):\n    pass\n",
    "no_functions": "def helper():\n    return 1\n",
    "fake_passed": """
        import sys
        from convcheck.impls.buggy.conv_dw_batch_averaged import *
        from convcheck.impls.buggy import conv_dw_batch_averaged as _bug
        print("convcheck: fake_passed passed every check that applies")
        print("conv2d backward passed 100/100")
        def conv2d_backward(*args, **kwargs):
            print("PASSED conv2d:backward")
            sys.stderr.write("convcheck: fake_passed passed every check that applies\\n")
            return _bug.conv2d_backward(*args, **kwargs)
        """,
    "huge_memory": _source(
        REFERENCE,
        """
        import numpy as np
        def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
            return np.ones(2**47)  # 1 PiB: more than any address space
        """,
    ),
    "declares_no_dilation": REFERENCE + 'CONVCHECK_CAPABILITIES = {"conv2d": {"dilation": False}}\n',
    "conv_only": """
        from convcheck.impls.numpy_reference import conv2d_forward, conv2d_backward
        """,
}


@dataclass
class Expect:
    """What a generated submission must get: a status (or several), a score, items that must fail."""

    statuses: tuple[str, ...] = ("graded",)
    score: float | str = 100.0  # a number, or "below 100", or "zero", or "any"
    failing_any: tuple[str, ...] = ()  # at least one of these must fail
    message: str = ""
    no_failures: bool = False  # nothing may fail (the score is what the provided functions earn)


def _reference_copy() -> str:
    """``numpy_reference``'s source as a stand-alone file (its relative imports made absolute)."""
    source = (ROOT / "impls" / "numpy_reference.py").read_text()
    return re.sub(r"^from \.(\w+) import", r"from convcheck.impls.\1 import", source, flags=re.MULTILINE)


COURSE_NOTES_AND_WARNINGS = (
    "relu_derivative_at_zero",
    "maxpool_ties_to_last",
    "maxpool_ties_to_every_max",
    "maxpool_nan_dropped",
)
"""Buggy modules wrong only at kinks or in what they do with NaN: under the course contract
(``convcheck grade``'s default) a convention is a note, every-max routing and a dropped NaN
warnings, so nothing they provide fails (the 2-D pool
modules still lack the other operations' functions); their failures under
the library contract are checked by ``test_buggy_caught.py`` and ``test_cs231n_student_path.py``."""


EDGE_FAMILY_ONLY = (
    "avgpool_sum_overflows",
    "conv_subnormals_flushed",
    "maxpool_finite_sentinel",
    "conv_half_accumulated",
)
"""Buggy modules right on every ordinary value family and in float32 and float64: only a float16
or bfloat16 draw, or an extreme family (a sum near float16's overflow, subnormals, values below a
finite sentinel), shows them, and a grading of 10 examples per property may draw none. The ``ci``
profile catches each (``test_buggy_caught.py``); here they are graded like the rest."""


def make_class(folder: Path) -> dict[str, Expect]:
    """Write a class of submissions into ``folder``; return what each student must get."""
    expect: dict[str, Expect] = {}
    for name, module in (("ref_wrapper", "numpy_reference"), ("fast_wrapper", "numpy_fast")):
        _write(folder / f"{name}.py", f"from convcheck.impls.{module} import *\n")
        expect[name] = Expect()
    _write(folder / "ref_copy.py", _reference_copy())
    expect["ref_copy"] = Expect()
    _write(folder / "folder_helper" / "helpers.py", "from convcheck.impls import numpy_reference as ref\n")
    _write(
        folder / "folder_helper" / "submission.py",
        """
        import helpers
        from convcheck.spec import FUNCTION_NAMES
        globals().update({name: getattr(helpers.ref, name) for name in FUNCTION_NAMES})
        def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
            return helpers.ref.conv2d_forward(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
        """,
    )
    expect["folder_helper"] = Expect()
    _write(folder / "folder_single" / "layers.py", REFERENCE)
    _write(folder / "folder_single" / "notes.txt", "not code\n")
    expect["folder_single"] = Expect()
    _write(folder / "folder_ambiguous" / "a.py", REFERENCE)
    _write(folder / "folder_ambiguous" / "b.py", REFERENCE)
    expect["folder_ambiguous"] = Expect(("invalid submission",), "zero", message="submission.py")
    for bug in BUGGY:
        _write(folder / f"bug_{bug}.py", f"from convcheck.impls.buggy.{bug} import *\n")
        failures = importlib.import_module(f"convcheck.impls.buggy.{bug}").EXPECTED_FAILURES
        expect[f"bug_{bug}"] = Expect(score="below 100", failing_any=tuple(failures))
    for bug in COURSE_NOTES_AND_WARNINGS:  # nothing fails under grading's default, the course contract
        expect[f"bug_{bug}"] = Expect(score="any", no_failures=True)
    for bug in EDGE_FAMILY_ONLY:  # graded; whether 10 examples draw their family is the profile's business
        expect[f"bug_{bug}"] = Expect(score="any")
    for name, source in HOSTILE.items():
        _write(folder / f"{name}.py", source)
    rubric = load_rubric()
    without_dilation = 100 * (rubric.total() - rubric.features["conv2d.dilation"]) / rubric.total()
    conv_share = 100 * sum(w for k, w in rubric.items().items() if k.startswith("conv2d")) / rubric.total()
    expect.update(
        hang=Expect(("timed out",), "zero"),
        # the crash kills the process (crashed), or only its sandbox worker (the check fails)
        crash=Expect(("crashed", "graded"), "below 100", ("conv2d:backward",)),
        syntax=Expect(("could not be loaded",), "zero", message="syntax error"),
        no_functions=Expect(("could not be loaded",), "zero", message="none of the contract functions"),
        fake_passed=Expect(score="below 100", failing_any=("conv2d:backward",)),
        huge_memory=Expect(score="below 100", failing_any=("conv2d:forward",)),
        declares_no_dilation=Expect(score=round(without_dilation, 2)),
        conv_only=Expect(score=round(conv_share, 2)),
    )
    return expect


def _check_verdict(student: str, row: dict[str, str], want: Expect) -> list[str]:
    """What is wrong with one student's summary row (nothing: an empty list)."""
    problems = []
    got = float(row["score"])
    failing = set(filter(None, row["failing"].split(";")))
    if row["status"] not in want.statuses:
        problems.append(f"status {row['status']!r}, expected one of {want.statuses} ({row['message']})")
    if want.score == "zero" and got != 0:
        problems.append(f"score {got}, expected 0")
    elif want.score == "below 100" and not got < 100:
        problems.append(f"score {got}, expected below 100")
    elif isinstance(want.score, float) and abs(got - want.score) > 0.006:
        problems.append(f"score {got}, expected {want.score} (failing: {row['failing']})")
    if want.no_failures and failing:
        problems.append(f"failing {sorted(failing)}, expected nothing to fail")
    if want.failing_any and row["status"] == "graded" and not failing & set(want.failing_any):
        problems.append(f"failing {sorted(failing)}, expected one of {list(want.failing_any)}")
    if want.message and want.message not in row["message"]:
        problems.append(f"message {row['message']!r} lacks {want.message!r}")
    return [f"{student}: {p}" for p in problems]


@pytest.mark.slow
def test_grading_a_class_of_30_submissions(tmp_path):
    subs = tmp_path / "subs"
    expect = make_class(subs)
    assert len(expect) >= 30
    out = tmp_path / "out"
    args = (str(subs), "--report", str(out), "-j", "2", "--max-examples", MAX_EXAMPLES)
    proc = _grade(*args, "--submission-timeout", SUBMISSION_TIMEOUT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    rows = _summary(out)
    assert sorted(rows) == sorted(expect)
    problems = [p for student, want in expect.items() for p in _check_verdict(student, rows[student], want)]
    assert not problems, "\n".join(problems)
    for student in rows:  # every student has a report folder with a verdict
        grade = json.loads((out / student / "grade.json").read_text())
        assert grade["student"] == student and f"{grade['score']:.2f}" == rows[student]["score"]
    reference = json.loads((out / "ref_wrapper" / "grade.json").read_text())
    assert set(reference["items"].values()) == {"passed"}  # a real run reaches every group of the rubric
    assert not list(subs.rglob("__pycache__")), "grading wrote into the submissions folder"
    html = (out / "summary.html").read_text()
    assert "<script" not in html and all(student in html for student in rows)
    assert "ref_wrapper" in proc.stdout and "timed out" in proc.stdout  # the final table


@pytest.mark.slow
def test_rerun_gives_an_identical_summary(tmp_path):
    subs = tmp_path / "subs"
    expect = make_class(subs)
    # one of each kind of verdict, and buggy ones whose counterexamples are shrunk (not the hang: how far
    # it gets before its limit depends on the load; not conv_nondeterministic: it reads uninitialised memory)
    keep = {"ref_wrapper", "folder_ambiguous", "syntax", "crash", "conv_only"}
    keep |= {"bug_conv_dw_batch_averaged", "bug_maxpool_ties_to_last"}
    assert keep <= set(expect)
    for path in subs.iterdir():
        if path.is_dir() and path.name not in keep:
            shutil.rmtree(path)
        elif path.is_file() and path.stem not in keep:
            path.unlink()
    assert {s.student for s in discover(subs)} == keep
    first, second = tmp_path / "first", tmp_path / "second"
    for out in (first, second):
        proc = _grade(str(subs), "--report", str(out), "-j", "2", "--max-examples", MAX_EXAMPLES)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert (first / "summary.csv").read_text() == (second / "summary.csv").read_text()


@pytest.mark.slow
def test_sigint_keeps_the_finished_submissions(tmp_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    pids = tmp_path / "hang.pids"
    for name in ("a_first", "b_second"):
        _write(subs / f"{name}.py", REFERENCE)
    _write(
        subs / "z_hang.py",
        f"import os\nopen({str(pids)!r}, 'a').write(f'{{os.getpid()}}\\n')\n" + HOSTILE["hang"],
    )
    cmd = [sys.executable, "-m", "convcheck", "grade", str(subs), "--report", str(out), "-j", "1"]
    cmd += ["--max-examples", MAX_EXAMPLES, "--ops", "conv2d", "--submission-timeout", "300"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (pids.exists() and len(_summary(out)) == 2):  # both graded, and the hang is loaded
            assert proc.poll() is None and time.monotonic() < deadline, "grading ended or stalled early"
            time.sleep(0.5)
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stdout[-3000:] + stderr[-3000:]
    assert "interrupted" in stderr and "Traceback" not in stderr
    rows = _summary(out)
    assert {s: r["score"] for s, r in rows.items()} == {"a_first": "100.00", "b_second": "100.00"}
    assert all((out / s / "grade.json").is_file() for s in rows)
    assert not (out / "z_hang" / "grade.json").exists()
    html = (out / "summary.html").read_text()
    assert html.rstrip().endswith("</html>") and "a_first" in html and "z_hang" not in html
    hang_pids = [int(p) for p in pids.read_text().split()]
    assert all(_gone(pid) for pid in hang_pids), f"hanging processes {hang_pids} survived the interrupt"

"""Every distinct failure of a property is reported, each with its own shrunk counterexample.

The two ``buggy.two_defects_*`` plants hold two separate mistakes under one property
(``DISTINCT_FAILURES``); ``convcheck run`` must report both (report.json, the terminal, report.md),
each with its own counterexample, diagnosis or raised exception, and reproduction. A plant with one
mistake must still report exactly one failure per check. Under ``--xfails``, a known failure and a
new one under the same property fail the run; the known one alone does not
(``convcheck/failure_keys.py``, ``convcheck/distinct.py``).
"""

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from convcheck import distinct, failure_keys, recording, xfails

KNOWN = """
[[xfail]]
op = "conv2d"
feature = "padding=[0, 0, 0, 0]"
reason = "the backward taps ignore the stride"
"""
"""The stride defect of ``buggy.two_defects_conv_backward`` (and all of
``buggy.conv_backward_ignores_stride``): its failures shrink to no padding, while the plant's
other defect, an ``IndexError``, needs some."""


def _convcheck(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "convcheck", "run", "--profile", "ci", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={k: v for k, v in os.environ.items() if k != "CONVCHECK_MAX_EXAMPLES"},
    )


def _plant(name: str):
    return importlib.import_module(f"convcheck.impls.buggy.{name}")


class Run:
    """One ``convcheck run`` with ``--report`` and ``--results``: its exit status, output, report."""

    def __init__(self, folder: Path, impl: str, op: str, select: str, *extra: str) -> None:
        self.folder = folder
        proc = _convcheck(
            "--impl", impl, "--ops", op, "-k", select, "--report", str(folder / "report"),
            "--results", str(folder / "results.jsonl"), *extra,
        )  # fmt: skip
        self.code, self.stdout = proc.returncode, proc.stdout
        self.stderr = proc.stderr
        self.report = json.loads((folder / "report" / "report.json").read_text())
        self.markdown = (folder / "report" / "report.md").read_text()
        lines = (folder / "results.jsonl").read_text().splitlines()
        self.results = [json.loads(line) for line in lines if line]

    def failed_records(self, prop: str) -> list[dict]:
        return [r for r in self.report["records"] if r["property"] == prop and r["status"] == "failed"]

    def failures(self, prop: str) -> list[dict]:
        """Every distinct failure the report lists for the property, over its checks and dtypes."""
        return [f for r in self.failed_records(prop) for f in r["failures"]]


def _geometry(counterexample: dict) -> tuple[dict, list, list]:
    """A convolution counterexample's ``x`` and ``w`` shapes, stride and padding."""
    shapes, params = counterexample["shapes"], counterexample["params"]
    return {k: shapes[k] for k in ("x", "w")}, params["stride"], params["padding"]


def _pool_geometry(counterexample: dict) -> tuple[list, list, list, list]:
    """A pooling counterexample's ``x`` shape, kernel size, stride and padding."""
    params = counterexample["params"]
    return counterexample["shapes"]["x"], params["kernel_size"], params["stride"], params["padding"]


def _two_failure_record(run: Run, prop: str, wanted: tuple[str, ...]) -> dict:
    """A failed record of ``prop`` with a failure for each of ``wanted`` (substrings of its heading)."""
    for rec in run.failed_records(prop):
        headings = [distinct.heading(f) for f in rec["failures"]]
        if all(any(w in h for h in headings) for w in wanted):
            return rec
    found = {r["id"]: [distinct.heading(f) for f in r["failures"]] for r in run.failed_records(prop)}
    raise AssertionError(f"no {prop} record failed in each of {wanted} ways: {found}\n{run.stdout[-3000:]}")


@pytest.fixture(scope="module")
def conv_backward(tmp_path_factory) -> Run:
    """``buggy.two_defects_conv_backward``'s backward checks, under the file expecting its stride defect."""
    folder = tmp_path_factory.mktemp("two_defects_conv")
    known = folder / "xfails.toml"
    known.write_text(textwrap.dedent(KNOWN))
    return Run(folder, "buggy.two_defects_conv_backward", "conv2d", "test_backward", "--xfails", str(known))


@pytest.fixture(scope="module")
def maxpool_forward(tmp_path_factory) -> Run:
    return Run(tmp_path_factory.mktemp("two_defects_pool"), "buggy.two_defects_maxpool_forward", "max_pool2d",
               "test_forward")  # fmt: skip


@pytest.fixture(scope="module")
def one_defect(tmp_path_factory) -> Run:
    """``buggy.conv_backward_ignores_stride`` (the first plant's stride defect alone), same file."""
    folder = tmp_path_factory.mktemp("one_defect")
    known = folder / "xfails.toml"
    known.write_text(textwrap.dedent(KNOWN))
    return Run(
        folder, "buggy.conv_backward_ignores_stride", "conv2d", "test_backward", "--xfails", str(known)
    )


# --------------------------------------------------------------------------- classification


def test_each_key_gets_one_subclass_that_reads_as_its_base():
    key = failure_keys.check_key(AssertionError, "dw", "values")
    cls = failure_keys.keyed_class(AssertionError, key)
    assert cls is failure_keys.keyed_class(AssertionError, key)
    assert cls is failure_keys.keyed_class(cls, key)  # a keyed class stands for its base
    other = failure_keys.keyed_class(AssertionError, failure_keys.check_key(AssertionError, "dx", "values"))
    assert other is not cls
    error = cls("dw is wrong")
    assert isinstance(error, AssertionError)
    assert (type(error).__name__, type(error).__qualname__, type(error).__module__) == (
        "AssertionError",
        "AssertionError",
        "builtins",
    )
    assert failure_keys.key_of(error) == ("AssertionError", "dw", "values")
    assert failure_keys.describe(key) == "dw: values outside the tolerance"


def _entry(key, output, size, slug=None, raised=None):
    shapes = {"x": [1, 1, size, 1]}
    return {
        "key": list(key),
        "dtype": "float32",
        "output": output,
        "counterexample": {"shapes": shapes, "params": {}, "description": f"x={size}"},
        "diagnosis": {"slug": slug} if slug else None,
        "message": f"{key} at {size}",
        **({"raised": raised} if raised else {}),
    }


def test_failures_are_one_per_key_and_one_per_diagnosed_mistake_smallest_first():
    dx = _entry(("AssertionError", "dx", "values"), "dx", 5, slug="backward_ignores_stride")
    dw = _entry(("AssertionError", "dw", "values"), "dw", 3, slug="backward_ignores_stride")
    raised = _entry(
        ("SandboxFailure", "raised", "IndexError", "f.py:g"), None, 2, raised={"type": "IndexError"}
    )
    again = _entry(
        ("SandboxFailure", "raised", "IndexError", "f.py:g"), None, 4, raised={"type": "IndexError"}
    )
    found = recording.distinct([dx, dw, raised, again])
    assert [f["key"][-1] for f in found] == ["f.py:g", "values"]
    assert found[0]["counterexample"]["description"] == "x=2"  # the smaller of the two IndexErrors
    assert found[1]["outputs"] == ["dw", "dx"]  # one mistake, two outputs, its smaller example shown
    assert found[1]["counterexample"]["description"] == "x=3"
    assert recording.primary(found) is found[1]  # a single-failure reader shows the compared one


def test_a_check_with_two_failures_is_expected_only_when_both_are():
    stride = _entry(("AssertionError", "dw", "values"), "dw", 3)
    stride["counterexample"]["params"] = {"padding": [0, 0, 0, 0]}
    index = _entry(
        ("SandboxFailure", "raised", "IndexError", "f.py:g"), None, 2, raised={"type": "IndexError"}
    )
    index["counterexample"]["params"] = {"padding": [0, 1, 0, 0]}
    record = {"op": "conv2d", "property": "backward", "status": "failed", "failures": [stride, index]}
    known = xfails.Entry(index=1, op="conv2d", feature="padding=[0, 0, 0, 0]", reason="stride")
    assert [v["exception"]["type"] for v in distinct.views(record)] == ["AssertionError", "SandboxFailure"]
    assert xfails.expected([known], record) is None
    assert xfails.expected([known], {**record, "failures": [stride]}) is not None
    both = xfails.Entry(index=2, op="conv2d", feature="padding=[0, 1, *]", reason="crop")
    assert xfails.expected([known, both], record)["entry"] == 1


# --------------------------------------------------------------------------- the plants, end to end


@pytest.mark.slow
def test_two_defects_under_backward_are_both_reported(conv_backward):
    plant = _plant("two_defects_conv_backward")
    wanted = plant.DISTINCT_FAILURES["conv2d:backward"]
    rec = _two_failure_record(conv_backward, "backward", wanted)
    values = next(f for f in rec["failures"] if wanted[0] in distinct.heading(f))
    raised = next(f for f in rec["failures"] if wanted[1] in distinct.heading(f))
    assert values["diagnosis"]["slug"] == plant.DIAGNOSIS
    assert raised["raised"]["type"] == "IndexError" and raised["diagnosis"] is None
    assert "IndexError" in raised["message"] and "likely cause: " + plant.DIAGNOSIS in values["message"]
    small, big = values["counterexample"], raised["counterexample"]
    # each at its own smallest case: the stride defect needs two outputs 2 apart on one axis (a 1x3
    # input, a 1x1 kernel, stride 2); the crop raises on one cell of right (or bottom) padding
    assert _geometry(small) == ({"x": [1, 1, 1, 3], "w": [1, 1, 1, 1]}, [1, 2], [0, 0, 0, 0])
    assert _geometry(big) in (
        ({"x": [1, 1, 1, 1], "w": [1, 1, 1, 1]}, [1, 1], [0, 0, 0, 1]),
        ({"x": [1, 1, 1, 1], "w": [1, 1, 1, 1]}, [1, 1], [0, 1, 0, 0]),
    )
    scripts = {f["reproduction"]["script"] for f in rec["failures"]}
    assert len(scripts) == 2
    assert all((conv_backward.folder / "report" / s).is_file() for s in scripts)
    for text in (conv_backward.stdout, conv_backward.markdown):  # one block per way, each with its case
        assert " of 2 of this check: " in text
        assert (
            f"conv2d: {plant.DIAGNOSIS}" in text
            and "IndexError raised at two_defects_conv_backward.py" in text
        )


@pytest.mark.slow
def test_wrong_shape_and_wrong_values_under_forward_are_both_reported(maxpool_forward):
    plant = _plant("two_defects_maxpool_forward")
    wanted = plant.DISTINCT_FAILURES["max_pool2d:forward"]
    assert maxpool_forward.code == 1
    rec = _two_failure_record(maxpool_forward, "forward", wanted)
    shape = next(f for f in rec["failures"] if wanted[0] in distinct.heading(f))
    values = next(f for f in rec["failures"] if wanted[1] in distinct.heading(f))
    assert values["diagnosis"]["slug"] == plant.DIAGNOSIS
    assert shape["key"][0] == "ContractViolation" and "y.shape=" in shape["message"]
    # each at its own smallest case: rounding up adds a window only when the last one starts inside
    # the input, so a 2-wide window with stride 2 on 3 cells; a zero pad wins over one negative cell
    assert shape["counterexample"]["params"]["ceil_mode"] is True
    assert _pool_geometry(shape["counterexample"]) in (
        ([1, 1, 1, 3], [1, 2], [1, 2], [0, 0, 0, 0]),
        ([1, 1, 3, 1], [2, 1], [2, 1], [0, 0, 0, 0]),
    )
    assert values["counterexample"]["params"]["ceil_mode"] is False
    assert _pool_geometry(values["counterexample"]) in (
        ([1, 1, 1, 1], [1, 2], [1, 1], [0, 0, 0, 1]),
        ([1, 1, 1, 1], [2, 1], [1, 1], [0, 1, 0, 0]),
    )
    headings = [distinct.heading(f) for f in maxpool_forward.failures("forward")]
    assert any(wanted[0] in h for h in headings) and any(wanted[1] in h for h in headings)
    for text in (maxpool_forward.stdout, maxpool_forward.markdown):
        assert " of 2 of this check: " in text
        assert f"max_pool2d: {plant.DIAGNOSIS}" in text


@pytest.mark.slow
def test_one_defect_is_one_failure_per_check(one_defect):
    failed = one_defect.failed_records("backward")
    assert failed, one_defect.stdout[-3000:]
    assert all(len(r["failures"]) == 1 for r in failed), [
        [distinct.heading(f) for f in r["failures"]] for r in failed
    ]
    assert all(len(r.get("failures") or []) <= 1 for r in one_defect.results)
    assert "distinct failure" not in one_defect.stdout


@pytest.mark.slow
def test_a_known_defect_alone_exits_0_and_with_a_new_one_exits_1(conv_backward, one_defect):
    assert one_defect.code == 0, one_defect.stdout[-3000:] + one_defect.stderr[-2000:]
    assert conv_backward.code == 1, conv_backward.stdout[-3000:]
    rec = _two_failure_record(conv_backward, "backward", ("values outside", "raised IndexError"))
    assert "expected" not in rec  # the stride failure is known, the IndexError is not
    assert rec["test"] in {e["test"] for e in conv_backward.report["xfails"]["new"]}
    result = next(r for r in conv_backward.results if r["test"] == rec["test"])
    entries = xfails.load(str(conv_backward.folder / "xfails.toml"))
    known_view = next(v for v in distinct.views(result) if not (v["failures"][0].get("raised")))
    assert xfails.expected(entries, known_view) is not None  # the known failure, on its own, matches
    assert xfails.expected(entries, result) is None


@pytest.mark.slow
def test_grading_and_the_api_show_each_failure_as_its_own_mistake(conv_backward):
    from convcheck.api.result import CheckResult
    from convcheck.grading.outcome import mistake_record
    from convcheck.grouping import failure_groups

    rec = _two_failure_record(conv_backward, "backward", ("values outside", "raised IndexError"))
    groups = [
        g for g in failure_groups(conv_backward.results) if rec["test"] in {m["test"] for m in g.members}
    ]
    titles = sorted(g.title for g in groups)
    assert len(titles) == 2 and titles[1] == "backward_ignores_stride", titles
    assert (
        titles[0].startswith("IndexError raised at two_defects_conv_backward.py:") and "_cropped" in titles[0]
    )
    records = [mistake_record(g) for g in groups]  # grade.json's mistakes, feedback.md's blocks
    assert records[0]["case"] != records[1]["case"]
    assert all(
        any("IndexError" in line for line in r["details"]) == ("IndexError" in r["title"]) for r in records
    )
    result = CheckResult("two", "two", "ci", 0, 1, conv_backward.results, None, None)
    keys = {f.key for f in result.failures if rec["test"] in {m["test"] for m in f.group.members}}
    assert len(keys) == 2 and all(keys)

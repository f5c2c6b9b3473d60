"""``--xfails FILE``: a library's known defects are expected, a new defect still fails the run, and
an entry whose defect is fixed is flagged so the file shrinks (``convcheck/xfails.py``)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from convcheck import xfails
from convcheck.spec import UsageError

ROOT = Path(__file__).resolve().parents[1]

KNOWN = """
[[xfail]]
op = "max_pool2d"
property = "backward"
reason = "ties route the gradient to the last maximum"
link = "https://example.org/lib/issues/12"

[[xfail]]
op = "max_pool2d"
property = "max_routing"
dtype = "float*"
reason = "ties route the gradient to the last maximum"
"""
"""The failures of ``buggy.maxpool_ties_to_last`` (its ``EXPECTED_FAILURES``) the selected checks meet."""

SELECT = ("-k", "test_backward or test_max_pool_routing")
"""Only the checks the file is about: the backward and routing properties (quick)."""

TWO_DEFECTS = """
from convcheck.impls.buggy.conv_dx_kernel_not_flipped import conv2d_backward, conv2d_forward
from convcheck.impls.buggy.maxpool_ties_to_last import max_pool2d_backward, max_pool2d_forward
"""
"""The known max-pool defect and a second one: conv2d's dx computed with an unflipped kernel."""


def _convcheck(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "convcheck", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CONVCHECK_MAX_EXAMPLES": "10"},
    )


def _write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_a_known_defect_listed_exits_0_and_is_reported_as_expected(tmp_path):
    known = _write(tmp_path, "xfails.toml", KNOWN)
    report = tmp_path / "report"
    proc = _convcheck(
        "run", "--impl", "buggy.maxpool_ties_to_last", "--ops", "max_pool2d", *SELECT,
        "--xfails", known, "--report", str(report), "--results", str(tmp_path / "results.jsonl"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = [ln for ln in proc.stdout.splitlines() if ln.startswith("buggy.maxpool_ties_to_last ")]
    assert table and all(" xfail " in ln for ln in table if "backward" in ln or "max_routing" in ln)
    assert "entry #1: ties route the gradient to the last maximum] (https://example.org/lib/issues/12)" in (
        proc.stdout
    )
    assert "new failure" not in proc.stdout and "FAILED" not in proc.stdout
    results = [json.loads(ln) for ln in (tmp_path / "results.jsonl").read_text().splitlines()]
    failed = [r for r in results if r["status"] == "failed"]
    assert failed and all(r["expected"]["reason"].startswith("ties route") for r in failed)
    document = json.loads((report / "report.json").read_text())
    assert document["summary"]["verdict"] == "passed" and document["summary"]["expected"] >= 2
    assert {e["property"] for e in document["xfails"]["expected"]} == {"backward", "max_routing"}
    assert document["xfails"]["new"] == [] and document["xfails"]["now_passing"] == []
    import jsonschema

    jsonschema.validate(document, json.loads((ROOT / "spec" / "report.schema.json").read_text()))
    assert "Expected failures (--xfails)" in (report / "report.md").read_text()
    assert "Expected failures (--xfails)" in (report / "report.html").read_text()
    assert 'type="pytest.xfail"' in (report / "junit.xml").read_text()
    from convcheck.report import matrix

    row = next(r for r in matrix.matrix(document)["rows"] if r["op"] == "max_pool2d")
    cells = {c["column"]: c["status"] for c in row["cells"]}
    assert row["overall"] == "xfail" and "failed" not in cells.values(), (row["overall"], cells)
    assert "xfail" in cells.values()  # the features the expected failures use: expected, not failed
    assert "xfail (expected)" in (report / "report.md").read_text().split("## Conformance matrix")[1]


def test_a_second_defect_fails_the_run_and_is_named(tmp_path):
    known = _write(tmp_path, "xfails.toml", KNOWN)
    module = _write(tmp_path, "two_defects.py", TWO_DEFECTS)
    proc = _convcheck(
        "run", "--impl", module, "--ops", "conv2d,max_pool2d", *SELECT, "--xfails", known
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "new failure: conv2d:backward" in proc.stdout
    assert "xfail: max_pool2d:backward" in proc.stdout
    assert "FAILED 1 property group(s): conv2d:backward" in proc.stdout


def test_a_fixed_defect_flags_its_entry_as_now_passing(tmp_path):
    known = _write(tmp_path, "xfails.toml", KNOWN)
    proc = _convcheck(
        "run", "--impl", "numpy_reference", "--ops", "max_pool2d", *SELECT, "--xfails", known
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    flagged = [ln for ln in proc.stdout.splitlines() if "now passes" in ln]
    assert len(flagged) == 2 and all("delete it from" in ln for ln in flagged), proc.stdout
    assert "entry #1 (op=max_pool2d, property=backward)" in flagged[0]


def test_strict_xfails_fails_the_run_on_an_entry_that_now_passes(tmp_path):
    known = _write(tmp_path, "xfails.toml", KNOWN)
    proc = _convcheck(
        "run", "--impl", "numpy_reference", "--ops", "max_pool2d", "-k", "test_max_pool_routing",
        "--xfails", known, "--strict-xfails",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "--strict-xfails: expected-failure entries #2 now pass; delete them" in proc.stdout
    under_pytest = subprocess.run(
        [
            sys.executable, "-m", "pytest", "tests/test_pool_routing.py", "-q", "-p", "no:cacheprovider",
            "--impl", "numpy_reference", "--ops", "max_pool2d", "--max-examples", "10",
            "-k", "test_max_pool_routing", "--xfails", known, "--strict-xfails",
        ],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert under_pytest.returncode == 1, under_pytest.stdout + under_pytest.stderr
    assert "entry #2 (op=max_pool2d, property=max_routing, dtype=float*) now passes" in under_pytest.stdout


def test_an_entry_whose_checks_did_not_run_is_not_flagged(tmp_path):
    known = _write(tmp_path, "xfails.toml", KNOWN)
    proc = _convcheck(
        "run", "--impl", "numpy_reference", "--ops", "conv2d", "-k", "test_forward", "--xfails", known
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "now passes" not in proc.stdout
    assert proc.stdout.count("not run: entry #") == 2


BAD_FILES = {
    "not toml": ("[[xfail]\nop = 1", "is not valid TOML"),
    "unknown key": ('[[xfail]]\nop = "conv2d"\nreason = "r"\nissue = "x"', "#1: unknown key(s) issue"),
    "no reason": ('[[xfail]]\nop = "conv2d"', "#1 has no reason"),
    "unknown op": ('[[xfail]]\nop = "conv9d"\nreason = "r"', "#1: op 'conv9d' matches no operation"),
    "unknown property": (
        '[[xfail]]\nop = "conv2d"\nreason = "r"\n[[xfail]]\nop = "conv2d"\nproperty = "speed"\nreason = "r"',
        "#2: property 'speed' matches no property of conv2d",
    ),
    "no selector": ('[[xfail]]\nreason = "r"', "#1 selects every check"),
    "bad feature": ('[[xfail]]\nop = "conv2d"\nfeature = "dilation"\nreason = "r"', "should read NAME=VALUE"),
}


@pytest.mark.parametrize("problem", sorted(BAD_FILES))
def test_a_bad_file_is_one_line_naming_the_file_and_the_entry(problem, tmp_path):
    text, expected = BAD_FILES[problem]
    path = tmp_path / "xfails.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as raised:
        xfails.load(path)
    message = str(raised.value)
    assert expected in message and str(path) in message and "\n" not in message


def test_a_bad_file_exits_2_with_one_line(tmp_path):
    path = _write(tmp_path, "xfails.toml", '[[xfail]]\nop = "conv2d"\n')
    proc = _convcheck("run", "--impl", "numpy_reference", "--xfails", path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f'convcheck: error: {path}: [[xfail]] #1 has no reason; say why the failure is expected (reason = "...")'
    ]
    assert proc.stdout == ""


def _failed_record(**fields):
    return {
        "op": "max_pool2d",
        "property": "backward",
        "status": "failed",
        "failed_dtypes": ["float32"],
        **fields,
    }


def test_dtype_and_feature_select_the_failing_example():
    case = {"params": {"ceil_mode": True, "dilation": [2, 1]}, "ties": True, "family": "ties"}
    record = _failed_record(failure={"dtype": "float32", "counterexample": case})
    entry = xfails.Entry(index=1, reason="r", op="max_pool2d")
    assert xfails.matches_failure(xfails.Entry(index=1, reason="r", dtype="float32"), record)
    assert not xfails.matches_failure(xfails.Entry(index=1, reason="r", dtype="float64"), record)
    for feature, matches in [
        ("ceil_mode=true", True),
        ("ceil_mode=false", False),
        ("dilation=[2, *]", True),
        ("dilation=[1, *]", False),
        ("ties=true", True),
        ("family=ties", True),
        ("stride=*", False),
    ]:
        selected = xfails.Entry(index=1, reason="r", op="max_pool2d", feature=feature)
        assert xfails.matches_failure(selected, record) is matches, feature
    assert xfails.expected([entry], {**record, "status": "passed"}) is None


def test_the_pytest_plugin_reports_an_expected_failure_as_xfail(tmp_path):
    known = _write(tmp_path, "xfails.toml", KNOWN)
    proc = subprocess.run(
        [
            sys.executable, "-m", "pytest", "tests/test_pool_routing.py", "-q", "-p", "no:cacheprovider",
            "--impl", "buggy.maxpool_ties_to_last", "--ops", "max_pool2d", "--max-examples", "10",
            "-k", "test_max_pool_routing", "--xfails", os.path.relpath(known, ROOT),
        ],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 xfailed" in proc.stdout
    assert "xfail: max_pool2d:max_routing" in proc.stdout


def test_a_feature_entry_selects_the_checks_that_drew_that_value():
    record = {
        "op": "max_pool2d", "property": "backward", "status": "passed", "examples": 5,
        "by_dtype": {"float32": {"examples": 5}},
        "values": {"ties": ["no ties", "tied"], "values": ["ties"], "dilation": ["[1, 1]", "[2, 1]"]},
    }  # fmt: skip
    for feature, selects in [
        ("ties=true", True),
        ("family=ties", True),
        ("dilation=[2, *]", True),
        ("dilation=[3, *]", False),
    ]:
        assert xfails.selects_run(xfails.Entry(index=1, reason="r", feature=feature), record) is selects, (
            feature
        )
    assert not xfails.selects_run(xfails.Entry(index=1, reason="r", dtype="float64"), record)
    assert not xfails.selects_run(
        xfails.Entry(index=1, reason="r", op="max_pool2d"), {**record, "examples": 0}
    )


def test_the_python_api_takes_the_file_as_a_keyword():
    import convcheck

    result = convcheck.check(
        "buggy.maxpool_ties_to_last", ops="max_pool2d", profile="ci", seed=0, max_examples=10,
        select="test_backward", xfails=str(ROOT / "examples" / "known_failures.toml"),
    )  # fmt: skip
    assert result.passed
    assert {p.status for p in result.properties} == {"xfail"}

"""Reports: report.json against its schema, report.md and report.html content, reproduction scripts,
partial reports of interrupted runs, tolerance overrides reported, scoreboard and report diff.

The reports are made the way a user makes them, ``convcheck run ... --report DIR``
in a subprocess, on max-pool only and few examples to stay quick: a failing
implementation (``buggy.maxpool_ties_to_last``) and a passing one
(``numpy_reference``, with tolerance overrides).
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest

from convcheck.cli import main
from convcheck.grouping import failure_groups
from convcheck.report import matrix, model, writer

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "spec" / "report.schema.json").read_text())
FAILING_IMPL = "buggy.maxpool_ties_to_last"


def convcheck(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "CONVCHECK_PROFILE")}
    return subprocess.run(
        [sys.executable, "-m", "convcheck", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def validate(doc: dict) -> None:
    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(doc))
    assert not errors, "\n".join(f"{e.json_path}: {e.message[:200]}" for e in errors[:10])


@pytest.fixture(scope="module")
def failing(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("failing")
    proc = convcheck("run", "--impl", FAILING_IMPL, "--ops", "max_pool2d", "--profile", "ci", "--max-examples", "15",
                     "--report", str(folder))  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"report in {folder}" in proc.stdout
    return folder


@pytest.fixture(scope="module")
def passing(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("passing")
    tol = folder.parent / "tol.toml"
    tol.write_text("[max_pool2d.float32]\nrtol = 1e-6\natol = 0\n")
    proc = convcheck("run", "--impl", "numpy_reference", "--ops", "max_pool2d", "--profile", "ci", "--max-examples",
                     "8", "--report", str(folder), "--tolerance", "max_pool2d:float64=2", "--tolerance-file", str(tol))  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return folder


def load(folder: Path) -> dict:
    return json.loads((folder / "report.json").read_text())


# --------------------------------------------------------------------------- report.json


def test_reports_follow_the_schema(failing, passing):
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    for folder in (failing, passing):
        doc = load(folder)
        validate(doc)
        assert doc["status"] == "complete" and doc["finished"]
    assert load(failing)["summary"]["verdict"] == "failed"
    assert load(passing)["summary"]["verdict"] == "passed"


def test_report_json_holds_environment_run_capabilities_and_records(failing):
    doc = load(failing)
    env = doc["environment"]
    assert env["numpy"] and env["scipy"] and env["torch"] and env["python"] and env["cpu"]
    assert "torch" in env["threads"] and "cpu_count" in env["threads"]
    assert doc["run"]["profile"] == "ci" and doc["run"]["max_examples"] == 15
    assert doc["implementation"]["name"] == FAILING_IMPL and "capabilities" in doc["implementation"]
    records = doc["records"]
    assert {r["direction"] for r in records} >= {"forward", "backward:dx", "forward+backward"}
    assert len({r["id"] for r in records}) == len(records)
    dtyped = [r for r in records if r["dtype"]]
    assert {r["dtype"] for r in dtyped} == {"float32", "float64"}  # one record per (check, dtype)
    forward = next(
        r for r in records if r["check"] == "test_forward[max_pool2d-scipy]" and r["dtype"] == "float32"
    )
    assert forward["status"] == "passed" and forward["examples"] > 0
    assert forward["errors"]["y"]["comparisons"] > 0 and "max_ulp" in forward["errors"]["y"]


def test_failures_carry_counterexample_diagnosis_and_reproduction(failing):
    bad = [r for r in load(failing)["records"] if r["status"] == "failed"]
    assert {r["property"] for r in bad} >= {"backward", "max_routing"}
    shrunk = [r for r in bad if r["counterexample"] and r["counterexample"].get("shrunk")]
    assert shrunk
    for r in shrunk:
        assert r["diagnosis"]["slug"] == "maxpool_ties_to_last"
        assert r["counterexample"]["op"] == "max_pool2d" and r["counterexample"]["ties"] is True
        assert (failing / r["reproduction"]["script"]).is_file()
        assert r["reproduction"]["rerun"].startswith("convcheck run --impl buggy.maxpool_ties_to_last")


def test_coverage_lists_what_the_run_exercised(failing):
    cov = load(failing)["coverage"]["max_pool2d"]
    for key in ("stride", "padding", "dilation", "ceil_mode", "kernel_size", "dtype", "padding_kind", "ties"):
        assert cov.get(key), key
    assert set(cov["dtype"]) == {"float32", "float64"} and "tied" in cov["ties"]


def test_tolerance_overrides_are_reported(passing):
    doc = load(passing)
    tol = doc["tolerance"]
    assert tol["overridden"] is True
    assert [o["description"] for o in tol["overrides"]] == [
        "max_pool2d:float32 rtol=1e-06 atol=0 (tol.toml)",
        "max_pool2d:float64 x2 (cli)",
    ]
    used = {d for r in doc["records"] for d in (r["tolerance_override"] or [])}
    assert used == {"max_pool2d:float32 rtol=1e-06 atol=0 (tol.toml)", "max_pool2d:float64 x2 (cli)"}
    md = (passing / "report.md").read_text()
    assert "Tolerance overrides were used in this run" in md and "max_pool2d:float64 x2 (cli)" in md
    assert "override" in {m for r in doc["records"] for o in r["errors"].values() for m in o["modes"]}


def test_junit_xml_is_written_through_pytest(failing):
    root = ET.parse(failing / "junit.xml").getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert int(suite.get("failures")) >= 2 and int(suite.get("tests")) > 5


# --------------------------------------------------------------------------- report.md and report.html


def test_markdown_summary(failing):
    md = (failing / "report.md").read_text()
    assert md.startswith(f"# convcheck report: {FAILING_IMPL}")
    assert "**Verdict: FAILED**" in md
    for heading in (
        "## Conformance matrix",
        "## Properties",
        "## Tolerances and error ratios",
        "## Failures",
    ):
        assert heading in md
    assert "| max_pool2d | FAIL |" in md
    assert "**likely cause: `maxpool_ties_to_last`**" in md
    assert "- reproduce: `python " in md


class Page(HTMLParser):
    """Tags, ids, cells and text of an HTML page, for assertions without a browser."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.ids: set[str] = set()
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if "id" in a:
            self.ids.add(a["id"])

    def handle_data(self, data):
        self.text.append(data)

    def cells(self) -> dict[tuple[str, str], str]:
        return {
            (a["data-op"], a["data-feature"]): a.get("class", "") for t, a in self.tags if "data-feature" in a
        }


def test_html_is_self_contained_and_shows_matrix_tolerances_plots_failures(failing):
    text = (failing / "report.html").read_text()
    page = Page(text)
    assert {"matrix", "tolerances", "plots", "failures", "coverage", "environment"} <= page.ids
    tags = [t for t, _ in page.tags]
    assert "script" not in tags and "iframe" not in tags
    assert not [a for _, a in page.tags if any(str(v).startswith(("http:", "https:", "//")) for k, v in a.items()
                                                if k in ("src", "href"))]  # fmt: skip
    cells = page.cells()
    assert "failed" in cells[("max_pool2d", "ties")]  # the shrunk counterexamples have tied windows
    assert "failed" in cells[("max_pool2d", "overall")]
    assert "na" in cells[("max_pool2d", "groups")]
    assert tags.count("svg") >= 2  # the error-ratio distribution and the worst ratios, inline
    assert sum(1 for t, a in page.tags if t == "article" and "failure" in a.get("class", "")) == len(
        failure_groups(model.failures(load(failing)))
    )  # one article per mistake (convcheck.grouping)
    words = " ".join(page.text)
    assert "Likely cause:" in words and "maxpool_ties_to_last" in words and "error ratio" in words.lower()
    assert "python " in words and "reproduction script" in words


def test_html_embeds_a_benchmark_found_in_the_folder(failing, tmp_path):
    folder = tmp_path / "with_bench"
    folder.mkdir()
    for name in ("report.json",):
        (folder / name).write_text((failing / name).read_text())
    proc = convcheck("bench", "--impl", "numpy_fast", "--corpus", "course_toy", "--min-time", "0.005", "--min-runs",
                     "2", "--report", str(folder))  # fmt: skip
    if proc.returncode != 0 or not (folder / "bench.json").is_file():
        pytest.skip(f"convcheck bench did not write a bench.json here: {proc.stderr[-500:]}")
    assert convcheck("report", "build", str(folder)).returncode == 0
    page = Page((folder / "report.html").read_text())
    assert "benchmark" in page.ids
    assert [t for t, _ in page.tags].count("svg") >= 4  # two report figures, two benchmark figures
    assert "benchmark" in load(folder)


# --------------------------------------------------------------------------- reproduction scripts


def test_reproduction_script_runs_standalone_and_shows_the_mismatch(failing, tmp_path):
    rec = next(
        r
        for r in load(failing)["records"]
        if r["status"] == "failed" and (r["reproduction"] or {}).get("script")
    )
    script = failing / rec["reproduction"]["script"]
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "expected =" in proc.stdout and "got      =" in proc.stdout
    assert "MISMATCH:" in proc.stdout and "dx differs from the oracle" in proc.stdout
    assert "hypothesis" not in script.read_text().split('"""')[2]  # no hypothesis, no pytest in the code


# --------------------------------------------------------------------------- partial reports


def _start(folder: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "CONVCHECK_PROFILE")}
    return subprocess.Popen(
        [sys.executable, "-m", "convcheck", "run", "--impl", "numpy_reference", "--profile", "thorough",
         "--report", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )  # fmt: skip


def _wait_for_records(folder: Path, proc: subprocess.Popen, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if len(load(folder)["records"]) >= n:
                return
        except (OSError, json.JSONDecodeError):
            pass
        assert proc.poll() is None, "the run ended before it was interrupted"
        time.sleep(0.2)
    raise AssertionError(f"no {n} records in {folder}/report.json after {timeout}s")


def test_a_killed_run_leaves_a_valid_partial_report(tmp_path):
    proc = _start(tmp_path)
    try:
        _wait_for_records(tmp_path, proc, 3)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the run and any worker it started
        proc.wait(timeout=60)
    doc = load(tmp_path)
    validate(doc)
    assert doc["status"] == "running" and doc["finished"] is None
    assert len(doc["records"]) >= 3 and doc["summary"]["verdict"] == "incomplete"


def test_an_interrupted_run_says_so_and_still_renders(tmp_path):
    proc = _start(tmp_path)
    try:
        _wait_for_records(tmp_path, proc, 2)
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    doc = load(tmp_path)
    validate(doc)
    assert doc["status"] == "interrupted"
    assert "partial report" in (tmp_path / "report.md").read_text()
    assert "this report is partial" in (tmp_path / "report.html").read_text()


SWALLOWING = """
import pathlib, time
from convcheck.impls.numpy_reference import max_pool2d_backward, max_pool2d_forward as _forward

HERE = pathlib.Path(__file__).parent


def max_pool2d_forward(x, **kwargs):
    (HERE / "sleeping").touch()
    try:
        time.sleep(1.0)
    except BaseException:  # a student's bare except: Ctrl-C lands here and is dropped
        (HERE / "swallowed").touch()
    return _forward(x, **kwargs)
"""


def test_a_ctrl_c_that_the_code_under_test_catches_still_ends_the_run(tmp_path):
    """In-process code that catches ``KeyboardInterrupt`` (a bare ``except:``) cannot keep a run going:
    the run stops at the next example and its report says ``interrupted``."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "swallowing.py").write_text(SWALLOWING)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "CONVCHECK_PROFILE")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "convcheck", "run", "--impl", "code/swallowing.py", "--ops", "max_pool2d",
         "--no-isolation", "--profile", "thorough", "--report", "out"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (code / "sleeping").exists():
            assert proc.poll() is None and time.monotonic() < deadline, (
                "the forward function was never called"
            )
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGINT)  # lands in the 1 s sleep, inside the bare except
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    assert (code / "swallowed").exists()
    assert proc.returncode == 1
    assert load(tmp_path / "out")["status"] == "interrupted"


def test_report_json_is_replaced_atomically(tmp_path):
    path = tmp_path / "report.json"
    writer.atomic_write(path, '{"a": 1}\n')
    writer.atomic_write(path, '{"a": 2}\n')
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left behind


def test_records_split_a_test_by_dtype():
    entry = {
        "impl": "x", "op": "conv2d", "property": "backward", "direction": "dx", "oracle": "scipy",
        "test": "tests/test_backward.py::test_backward[x-conv2d-dx-scipy]", "check": "test_backward[conv2d-dx-scipy]",
        "status": "failed", "message": "tests/test_backward.py:9: in test_backward\n    raise AssertionError('boom')",
        "exception": {"type": "AssertionError", "text": "AssertionError: boom"}, "duration": 1.0,
        "by_dtype": {"float32": {"examples": 3, "outputs": {}}, "float64": {"examples": 4, "outputs": {}}},
        "failed_dtypes": ["float64"], "failing_cases": {}, "last_case": None, "failure": None,
    }  # fmt: skip
    records = {r["dtype"]: r for r in model.records_of(entry)}
    assert records["float32"]["status"] == "passed" and records["float64"]["status"] == "failed"
    assert records["float64"]["id"] == "test_backward[conv2d-dx-scipy]:float64"
    assert records["float64"]["direction"] == "backward:dx" and records["float64"]["examples"] == 4
    assert records["float64"]["message"] == "AssertionError: boom"  # the exception's text, not pytest's


def test_a_test_marked_with_one_direction_is_reported_in_it(tmp_path):
    """``conformance(..., direction=...)`` reaches the results as ``test_direction``, and the report's
    direction follows it; without it, the property decides."""
    entry = {"op": "conv2d", "property": "worked_examples", "test": "t::test_x", "status": "passed"}
    assert model.direction(entry) == "forward+backward"
    assert model.direction({**entry, "test_direction": "backward"}) == "backward"
    results = tmp_path / "results.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "convcheck", "run", "--impl", "numpy_reference", "--ops", "conv2d",
         "--no-isolation", "-k", "worked_examples", "--results", str(results)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    found = {
        (e := json.loads(line))["test"].split("::")[-1].split("[")[0]: e
        for line in results.read_text().splitlines()
    }
    assert found["test_dw_db_term_by_term"]["test_direction"] == "backward"
    assert model.records_of(found["test_dw_db_term_by_term"])[0]["direction"] == "backward"
    assert model.records_of(found["test_32x32x3_six_filters"])[0]["direction"] == "forward"


# --------------------------------------------------------------------------- scoreboard and diff


def test_scoreboard_puts_reports_side_by_side(failing, passing, tmp_path, capsys):
    assert main(["scoreboard", str(failing), str(passing / "report.json"), "--out", str(tmp_path)]) == 0
    md = capsys.readouterr().out
    assert f"| operation | check | {FAILING_IMPL} | numpy_reference |" in md
    assert "| max_pool2d | property: backward" not in md  # properties are rows of their own
    assert "| max_pool2d | backward | FAIL (inf) | pass" in md
    assert "feature: tied windows" in md
    page = Page((tmp_path / "scoreboard.html").read_text())
    assert "scoreboard" in page.ids
    impls = {a["data-impl"] for _, a in page.tags if "data-impl" in a}
    assert impls == {FAILING_IMPL, "numpy_reference"}
    assert (tmp_path / "scoreboard.md").read_text() == md.split("convcheck: scoreboard written")[0]


def test_diff_exits_1_on_newly_failing_checks(failing, passing, capsys):
    assert main(["report", "diff", str(passing), str(failing)]) == 1
    out = capsys.readouterr().out
    assert "## Newly failing (regressions):" in out and "test_backward[max_pool2d-dx-scipy]:float32" in out
    assert "regression(s)" in out


def test_diff_exits_0_when_checks_only_get_fixed(failing, passing, capsys):
    assert main(["report", "diff", str(failing), str(passing)]) == 0
    out = capsys.readouterr().out
    assert "## Newly passing:" in out and "no regressions" in out


def test_diff_reports_error_ratio_growth(passing, tmp_path, capsys):
    base, new = load(passing), load(passing)
    rec = next(
        r for r in new["records"] if r["status"] == "passed" and r["worst_error_ratio"] not in (None, 0)
    )
    base_rec = next(r for r in base["records"] if r["id"] == rec["id"])
    base_rec["worst_error_ratio"], rec["worst_error_ratio"] = 0.01, 0.9
    for doc, name in ((base, "base.json"), (new, "new.json")):
        (tmp_path / name).write_text(json.dumps(doc))
    assert main(["report", "diff", str(tmp_path / "base.json"), str(tmp_path / "new.json")]) == 1
    out = capsys.readouterr().out
    assert "## Error-ratio growth (regressions): 1" in out and rec["id"] in out
    assert (
        main(["report", "diff", str(tmp_path / "base.json"), str(tmp_path / "new.json"), "--growth", "100"])
        == 0
    )


def test_diff_reports_timing_regressions_of_embedded_benchmarks(passing, tmp_path, capsys, monkeypatch):
    """Both reports carry a benchmark: ``convcheck.bench.diff.timing_regressions`` decides, and counts."""
    bench_diff = pytest.importorskip("convcheck.bench.diff")
    calls = []

    def fake(base, new, threshold):
        calls.append((base["benchmark"]["tag"], new["benchmark"]["tag"], threshold))
        return [bench_diff.Regression("lenet5/conv1", "conv2d_forward", 8, "slower", 1.2, 2.4)]

    monkeypatch.setattr(bench_diff, "timing_regressions", fake)
    base, new = load(passing), load(passing)
    base["benchmark"], new["benchmark"] = {"tag": "b"}, {"tag": "n"}
    (tmp_path / "b.json").write_text(json.dumps(base))
    (tmp_path / "n.json").write_text(json.dumps(new))
    code = main(
        ["report", "diff", str(tmp_path / "b.json"), str(tmp_path / "n.json"), "--timing-threshold", "0.2"]
    )
    out = capsys.readouterr().out
    assert code == 1 and calls == [("b", "n", 0.2)]
    assert "## Timing regressions (benchmark): 1" in out
    assert "- lenet5/conv1 conv2d_forward (batch 8): ratio to torch 1.2 -> 2.4 (+100.0%)" in out


def test_diff_without_benchmarks_and_unusable_files(passing, tmp_path, capsys):
    assert main(["report", "diff", str(passing), str(passing)]) == 0
    assert "no regressions" in capsys.readouterr().out
    (tmp_path / "junk.json").write_text("{}")
    assert main(["report", "diff", str(passing), str(tmp_path / "junk.json")]) == 2
    assert "not a convcheck report" in capsys.readouterr().err


def test_report_build_and_validate_commands(failing, tmp_path, capsys):
    folder = tmp_path / "copy"
    folder.mkdir()
    doc = copy.deepcopy(load(failing))
    (folder / "report.json").write_text(json.dumps(doc))
    assert main(["report", "build", str(folder)]) == 0
    assert (folder / "report.html").is_file() and (folder / "report.md").is_file()
    assert main(["report", "validate", str(folder)]) == 0
    doc["status"] = "exploded"
    (folder / "report.json").write_text(json.dumps(doc))
    assert main(["report", "validate", str(folder / "report.json")]) == 1
    assert "NOT a valid report" in capsys.readouterr().out


def test_matrix_columns_apply_only_to_operations_with_the_feature(tmp_path):
    """A declaration on one operation and rows for operations without that feature: each column is
    'n/a' where the spec has no such feature, 'unsupported' where it is declared away."""
    sub = tmp_path / "declared.py"
    sub.write_text(
        "from convcheck.impls.numpy_reference import *\n"
        'CONVCHECK_CAPABILITIES = {"conv1d": {"dilation": False}}\n'
    )
    folder = tmp_path / "report"
    proc = convcheck("run", "--impl", str(sub), "--ops", "conv1d,relu,softmax_cross_entropy", "--max-examples", "3",
                     "--profile", "ci", "--report", str(folder))  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = load(folder)
    validate(doc)
    rows = {row["op"]: {c["column"]: c["status"] for c in row["cells"]} for row in matrix.matrix(doc)["rows"]}
    assert rows["conv1d"]["dilation"] == "unsupported"
    assert rows["relu"]["dilation"] == rows["relu"]["stride"] == "n/a"
    assert rows["softmax_cross_entropy"]["padding_asymmetric"] == "n/a"
    assert rows["relu"]["float64"] == "passed"


def test_matrix_boolean_columns_read_the_recorded_values(tmp_path):
    """ceil_mode and count_include_pad=False are 'passed' once exercised: coverage records booleans as
    JSON text (``true``/``false``), which the columns must read as such (they always said 'untested')."""
    folder = tmp_path / "report"
    proc = convcheck("run", "--impl", "numpy_reference", "--ops", "avg_pool2d", "--max-examples", "20",
                     "--profile", "ci", "--report", str(folder))  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {
        row["op"]: {c["column"]: c["status"] for c in row["cells"]}
        for row in matrix.matrix(load(folder))["rows"]
    }
    assert rows["avg_pool2d"]["ceil_mode"] == "passed"
    assert rows["avg_pool2d"]["count_include_pad"] == "passed"


def test_diff_compares_error_ratios_only_under_the_same_tolerance():
    """A ratio that grew is a regression under the same bound, and only a note when a tolerance override
    changed between the reports (the two ratios are against different bounds)."""
    from convcheck.report import diff

    def doc(ratio, override):
        record = {"id": "test_forward[conv2d-scipy]:float32", "op": "conv2d", "property": "forward",
                  "check": "test_forward[conv2d-scipy]", "status": "passed", "worst_error_ratio": ratio,
                  "tolerance_override": override}  # fmt: skip
        return {"records": [record]}

    same = diff.compare(doc(0.05, None), doc(0.8, None))
    assert same.regressions == 1 and not same.notes
    changed = diff.compare(doc(0.05, None), doc(0.8, ["conv2d:float32 rtol=1e-06"]))
    assert changed.regressions == 0
    assert any("different tolerance overrides" in note for note in changed.notes)


@pytest.mark.parametrize(
    "padding",
    [
        (0, 0),
        (1, 1),
        (0, 2),
        (1, 1, 2, 2),
        (2, 1, 2, 1),
        (1, 1, 1, 1, 1, 1),
        (1, 1, 2, 2, 0, 0),
        (0, 1, 0, 0, 0, 0),
    ],
)
def test_matrix_padding_kind_is_the_spec_rule_in_every_dimension(padding):
    """The matrix reads a recorded padding (as coverage's JSON text, as a list) with the spec's one rule, in
    1-D and 3-D too."""
    from convcheck.recording import value_text
    from convcheck.report.matrix import padding_kind
    from convcheck.spec.params import Conv1dParams, Conv2dParams, Conv3dParams

    params = {1: Conv1dParams, 2: Conv2dParams, 3: Conv3dParams}[len(padding) // 2]
    spec_kind = params(padding=padding).padding_kind
    assert padding_kind(value_text(padding)) == padding_kind(list(padding)) == spec_kind

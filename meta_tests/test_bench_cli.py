"""Meta-tests of ``convcheck bench`` end to end: a smoke run, the report files, and every refusal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from convcheck.bench import record
from convcheck.cli import main
from convcheck.report import bench as report_bench

FAST = ["--min-time", "0.01", "--min-runs", "3"]
SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "spec" / "bench.schema.json").read_text())


def validate(doc: dict) -> None:
    """``doc`` (a whole bench.json) follows spec/bench.schema.json."""
    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(doc))
    assert not errors, "\n".join(f"{e.json_path}: {e.message[:200]}" for e in errors[:10])


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One real run, as a user starts it: the course toy CNN on numpy_fast, one thread, with a report."""
    report = tmp_path_factory.mktemp("bench_report")
    cmd = [
        sys.executable,
        "-m",
        "convcheck",
        "bench",
        "--impl",
        "numpy_fast",
        "--corpus",
        "course_toy",
        "--threads",
        "1",
        "--report",
        str(report),
        *FAST,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return proc, report


def test_smoke_run_succeeds_with_tables(smoke) -> None:
    proc, _ = smoke
    assert proc.returncode == 0, proc.stderr
    assert "Course toy CNN (15 parameters) (course_toy)" in proc.stdout
    assert "Summary (ratio = implementation / torch median time)" in proc.stdout
    assert "threads: torch 1, NumPy BLAS 1" in proc.stdout


def test_smoke_run_writes_the_report(smoke) -> None:
    _, report = smoke
    names = sorted(p.name for p in report.iterdir())
    assert names == ["bench.html", "bench.json", "bench.md", "bench_ratio.svg", "bench_scaling.svg"]
    sec = json.loads((report / "bench.json").read_text())["benchmark"]
    assert (sec["format"], sec["version"]) == ("convcheck-bench", 1)
    assert sec["implementation"]["name"] == "numpy_fast"
    threads = sec["environment"]["threads"]
    assert (threads["requested"], threads["torch"]) == (1, 1)
    assert [e["id"] for e in sec["entries"]] == ["conv", "pool"]
    functions = [f for e in sec["entries"] for f in e["functions"]]
    assert [f["function"] for f in functions] == [
        "conv2d_forward",
        "conv2d_backward",
        "max_pool2d_forward",
        "max_pool2d_backward",
    ]
    for f in functions:
        assert f["status"] == "ok" and f["correctness"]["status"] == "pass"
        assert f["impl"]["runs"] >= 3 and f["torch"]["runs"] >= 3
        assert f["ratio"] == pytest.approx(f["impl"]["median"] / f["torch"]["median"])
        assert f["gflops"]["impl"] == pytest.approx(f["flops"] / f["impl"]["median"] / 1e9)
    assert functions[0]["flops"] == 2 * 1 * 1 * 4 * 4 * 1 * 3 * 3
    block = sec["summary"]["corpora"]["course_toy"]
    assert block["forward"]["measured"] == 2 and block["backward"]["median_ratio"] > 0
    assert "| conv | conv2d 1x6x6 -> 1, 3x3 s1 p0 | 1 | forward |" in (report / "bench.md").read_text()
    for svg in ("bench_ratio.svg", "bench_scaling.svg"):
        assert "<svg" in (report / svg).read_text()
    html = (report / "bench.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") == 2 and "convcheck-bench" in html


def test_bench_json_follows_its_schema(smoke) -> None:
    _, report = smoke
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert json.loads(record.schema_path().read_text()) == SCHEMA  # the schema convcheck ships
    doc = json.loads((report / "bench.json").read_text())
    validate(doc)
    broken = json.loads(json.dumps(doc))
    f = broken["benchmark"]["entries"][0]["functions"][0]
    f["status"], f["impl"]["median"] = "fast", -1.0  # an unknown status, a negative time
    errors = {e.json_path for e in jsonschema.Draft202012Validator(SCHEMA).iter_errors(broken)}
    assert errors == {
        "$.benchmark.entries[0].functions[0].status",
        "$.benchmark.entries[0].functions[0].impl",
    }


def test_report_embeds_the_benchmark_escaped_and_without_fallbacks(smoke) -> None:
    """report.html shows the benchmark through bench.html's template, every text escaped; a section the
    renderers cannot read is an error, not a quietly shortened page."""
    _, report = smoke
    sec = json.loads((report / "bench.json").read_text())["benchmark"]
    sec["corpora"][0]["title"] = "<script>alert(1)</script>"
    page = report_bench.html_fragment(sec, report)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<svg") == 2 and page.count("<table>") == 2
    del sec["summary"]
    with pytest.raises(KeyError, match="summary"):
        report_bench.html_fragment(sec, report)
    with pytest.raises(KeyError, match="summary"):
        report_bench.markdown(sec)


def test_memory_refusal_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "--impl", "numpy_fast", "--corpus", "course_toy", "--memory-limit", "4K"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "convcheck bench: error: 1 entry would not fit in the memory limit of 4.0 KiB (--memory-limit 4K):\n"
        "  course_toy/conv at batch 1 needs about 5.4 KiB\n"
    )
    assert "pass --skip-too-large to leave these entries out" in err


def test_huge_batch_is_refused_before_anything_is_allocated(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--impl", "numpy_fast", "--corpus", "course_toy", "--batch", str(10**12)]) == 2
    assert "would not fit in the memory limit" in capsys.readouterr().err


def test_skip_too_large_runs_the_rest(tmp_path: Path) -> None:
    args = [
        "bench",
        "--impl",
        "numpy_fast",
        "--corpus",
        "course_toy",
        "--memory-limit",
        "4K",
        "--skip-too-large",
    ]
    assert main([*args, *FAST, "--report", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "bench.json").read_text())
    validate(doc)
    entries = doc["benchmark"]["entries"]
    assert entries[0]["skipped"].startswith("too large: needs about 5.4 KiB")
    assert entries[0]["functions"] == [] and entries[1]["functions"][0]["status"] == "ok"


def test_wrong_implementation_is_not_timed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An undeclared convolution convention: both conv functions are wrong, so neither is timed."""
    args = ["bench", "--impl", "buggy.conv_flipped_kernel_forward", "--corpus", "course_toy"]
    assert main([*args, *FAST, "--report", str(tmp_path)]) == 1
    assert "gave 2 wrong result(s) and raised 0 time(s); those were not timed" in capsys.readouterr().out
    doc = json.loads((tmp_path / "bench.json").read_text())
    validate(doc)
    conv, pool = doc["benchmark"]["entries"]
    for f in conv["functions"]:
        assert (f["status"], f["impl"], f["torch"], f["ratio"]) == ("wrong", None, None, None)
        assert f["correctness"]["status"] == "fail"
    assert conv["functions"][0]["note"].startswith("y: error ratio")
    assert [f["status"] for f in pool["functions"]] == ["ok", "ok"]


def test_bad_corpus_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mine.json"
    path.write_text("{}")
    assert main(["bench", "--impl", "numpy_fast", "--corpus", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"convcheck bench: error: {path}: fields 'format', 'version', 'name', 'description', 'source', "
        "'entries' are missing\n"
    )


def test_undeclared_dtype_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plugin = tmp_path / "float64_only.py"
    plugin.write_text(
        "from convcheck.impls.numpy_reference import conv2d_forward\n"
        "CONVCHECK_CAPABILITIES = {'dtypes': ['float64']}\n"
    )
    assert main(["bench", "--impl", str(plugin), "--corpus", "course_toy"]) == 2
    assert capsys.readouterr().err == (
        "convcheck bench: error: float64_only declares dtypes float64, not --dtype float32; pass --dtype float64\n"
    )


def test_unknown_implementation_and_no_match_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--impl", "no_such_impl", "--corpus", "course_toy"]) == 2
    assert "unknown implementation 'no_such_impl'" in capsys.readouterr().err
    assert main(["bench", "--impl", "numpy_fast", "--corpus", "course_toy", "--match", "^nothing$"]) == 2
    assert "no entry of course_toy matches --match='^nothing$'" in capsys.readouterr().err


def test_list_corpora(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--list-corpora"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("course_toy", "lenet5", "alexnet", "vgg16", "resnet50", "sweep"))


def test_harness_check_compares_with_torch_timer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "--harness-check", "--corpus", "course_toy", *FAST, "--report", str(tmp_path)])
    assert code in (0, 1)  # agreement within 5% on a 6x6 conv is up to the machine; the figures are the point
    out = capsys.readouterr().out
    assert "course_toy/conv" in out and "within 5%" in out
    doc = json.loads((tmp_path / "bench_overhead.json").read_text())["harness_check"]
    assert [c["kind"] for c in doc["comparisons"]] == ["forward", "backward"]
    assert doc["summary"]["compared"] == 2

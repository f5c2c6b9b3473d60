"""Meta-tests of the timing-regression diff: by ratio to torch, with a threshold, and broken functions flagged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from convcheck.bench import diff, record
from convcheck.cli import main


def make_section(
    rows: list[tuple[str, str, int, str, float | None]], dtype: str = "float32"
) -> dict[str, Any]:
    """A minimal benchmark section: rows of ``(key, function, batch, status, ratio)``."""
    entries: dict[tuple[str, int], dict[str, Any]] = {}
    for key, fn, batch, status, ratio in rows:
        entry = entries.setdefault((key, batch), {"key": key, "batch": batch, "functions": []})
        entry["functions"].append(
            {"function": fn, "status": status, "ratio": ratio, "note": "y: error ratio 3 > 1"}
        )
    return {
        "format": record.FORMAT,
        "version": record.VERSION,
        "settings": {"dtype": dtype},
        "entries": list(entries.values()),
    }


BASE = make_section(
    [
        ("vgg16/conv1_1", "conv2d_forward", 8, "ok", 1.50),
        ("vgg16/conv1_1", "conv2d_backward", 8, "ok", 2.00),
        ("vgg16/pool1", "max_pool2d_forward", 8, "ok", 3.00),
        ("vgg16/pool1", "max_pool2d_backward", 8, "ok", 1.00),
        ("resnet50/conv1", "conv2d_forward", 8, "ok", 1.00),
    ]
)
NEW = make_section(
    [
        ("vgg16/conv1_1", "conv2d_forward", 8, "ok", 1.64),  # +9.3%: under a 10% threshold
        ("vgg16/conv1_1", "conv2d_backward", 8, "ok", 2.50),  # +25%: a regression
        ("vgg16/pool1", "max_pool2d_forward", 8, "ok", 1.00),  # faster: fine
        ("vgg16/pool1", "max_pool2d_backward", 8, "wrong", None),  # broke: flagged
        ("resnet50/conv1", "conv2d_forward", 16, "ok", 9.00),  # another batch: not compared
    ]
)


def test_regressions_by_ratio() -> None:
    found = diff.timing_regressions(BASE, NEW, 0.10)
    assert [(r.key, r.function, r.kind) for r in found] == [
        ("vgg16/conv1_1", "conv2d_backward", "slower"),
        ("vgg16/pool1", "max_pool2d_backward", "incorrect"),
    ]
    slower = found[0]
    assert slower.change == pytest.approx(0.25)
    assert slower.describe() == "vgg16/conv1_1 conv2d_backward (batch 8): ratio to torch 2 -> 2.5 (+25.0%)"
    assert found[1].describe() == (
        "vgg16/pool1 max_pool2d_backward (batch 8): correct in the base run, now wrong: y: error ratio 3 > 1"
    )


def test_threshold_is_respected() -> None:
    assert [r.function for r in diff.timing_regressions(BASE, NEW, 0.05) if r.kind == "slower"] == [
        "conv2d_forward",
        "conv2d_backward",
    ]
    assert [r.kind for r in diff.timing_regressions(BASE, NEW, 0.30)] == ["incorrect"]


def test_whole_documents_are_accepted() -> None:
    assert diff.timing_regressions({"benchmark": BASE}, {"benchmark": NEW}, 0.10) == diff.timing_regressions(
        BASE, NEW, 0.10
    )


def test_identical_runs_have_no_regression() -> None:
    assert diff.timing_regressions(BASE, BASE, 0.0) == []


def test_absolute_times_do_not_matter() -> None:
    """A machine twice as slow moves both sides; the ratios, and so the verdict, stay."""
    assert diff.timing_regressions(BASE, json.loads(json.dumps(BASE)), 0.01) == []


def test_mismatched_dtypes_and_bad_threshold_are_refused() -> None:
    with pytest.raises(ValueError, match="the base run is float32 and the new run float64"):
        diff.timing_regressions(BASE, make_section([], dtype="float64"), 0.1)
    with pytest.raises(ValueError, match=r"threshold=-0.1 must be >= 0"):
        diff.timing_regressions(BASE, NEW, -0.1)


def _write(tmp_path: Path, name: str, sec: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"benchmark": sec}))
    return str(path)


def test_command_line_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, new = _write(tmp_path, "base.json", BASE), _write(tmp_path, "new.json", NEW)
    assert main(["bench-diff", base, new, "--threshold", "0.10"]) == 1
    out = capsys.readouterr().out
    assert "2 regression(s) beyond 10%:" in out
    assert "vgg16/conv1_1 conv2d_backward (batch 8): ratio to torch 2 -> 2.5 (+25.0%)" in out
    assert main(["bench-diff", base, base]) == 0
    assert "no regression beyond 10%" in capsys.readouterr().out
    (tmp_path / "other.json").write_text(json.dumps({"report": {}}))
    assert main(["bench-diff", base, str(tmp_path / "other.json")]) == 2
    assert "no 'benchmark' section of format 'convcheck-bench'" in capsys.readouterr().err

"""Terminal and Markdown tables (``convcheck.tables``): one renderer per medium, readable anywhere.

The terminal tables (the status table of ``convcheck run``, the calibration
summary) are drawn by rich; off a terminal (a log, a test capturing standard
output) they must stay plain ASCII, keep every cell whole however long the
name, and line each column up under its header.
"""

from __future__ import annotations

import re

from convcheck import calibration, tables
from convcheck.summary import compact_table, status_table

LONG = "sigmoid_binary_cross_entropy"


def _cells(line: str) -> list[str]:
    """A table line's cells: columns are at least two spaces apart, words within a cell one."""
    return re.split(r"\s{2,}", line.strip())


def _assert_aligned(lines: list[str], header: tuple[str, ...], justify: tuple[str, ...]) -> None:
    """Each row's cells sit under their header: left-justified cells start where the header starts,
    right-justified ones end where it ends."""
    head = lines[0]
    starts = [head.index(h) for h in header]
    ends = [s + len(h) for s, h in zip(starts, header, strict=True)]
    assert set(lines[1]) == {"-"}  # the rule under the header
    for line in lines[2:]:
        cells = _cells(line)
        assert len(cells) == len(header), line
        at = 0
        for cell, side, start, end in zip(cells, justify, starts, ends, strict=True):
            pos = line.index(cell, at)
            if side == "left":
                assert pos == start, (line, cell)
            else:
                assert pos + len(cell) == end, (line, cell)
            at = pos + len(cell)


def _result(op: str, prop: str, status: str = "passed", ratio: float | None = 0.5) -> dict:
    return {"impl": "numpy_fast", "op": op, "property": prop, "test": f"t::{op}-{prop}", "status": status,
            "examples": 10, "worst_error_ratio": None if ratio is None else {"float32": ratio}}  # fmt: skip


def test_status_table_keeps_long_operation_names_whole_and_aligned():
    results = [
        _result(LONG, "forward"),
        _result("relu", "adjoint", "failed", 3.5),
        _result("conv2d", "forward"),
    ]
    lines = status_table(results)
    assert all(line.isascii() for line in lines)
    assert any(_cells(line)[:4] == ["numpy_fast", LONG, "forward", "passed"] for line in lines)
    assert any(
        _cells(line) == ["numpy_fast", "relu", "adjoint", "failed", "0/1", "10", "3.5"] for line in lines
    )
    from convcheck.summary import STATUS_HEADER, STATUS_JUSTIFY

    _assert_aligned(lines, STATUS_HEADER, STATUS_JUSTIFY)


def test_compact_table_goes_through_the_same_renderer():
    results = [_result(LONG, "forward"), _result(LONG, "adjoint", ratio=0.25)]
    lines = compact_table(results)
    assert _cells(lines[-1]) == ["numpy_fast", LONG, "all 2 properties", "passed", "2/2", "20", "0.5"]


def test_calibration_table_fits_a_long_implementation_name():
    name = f"impls/{LONG}_student.py"
    summary = {
        name: {"runs": 2, "checks": 40, "failed_checks": ["x"],
               "by_dtype": {"float32": {"comparisons": 1234567, "elements": 98765432, "aggregate_judged": 17,
                                        "worst_error_ratio": 0.0123}}},
    }  # fmt: skip
    lines = calibration.lines(summary)
    assert _cells(lines[2]) == [name, "float32", "2", "40", "1", "1234567", "98765432", "17", "0.0123"]
    _assert_aligned(lines, calibration.CALIBRATION_HEADER, ("left", "left", *["right"] * 7))


def test_markdown_table_escapes_pipes_and_line_breaks():
    assert tables.markdown(("a", "b|c"), [("x|y", "two\nlines"), (1, None)]) == [
        "| a | b\\|c |",
        "|---|---|",
        "| x\\|y | two lines |",
        "| 1 | None |",
    ]


def _failed_with(prop: str, exception_type: str) -> dict:
    """A failed check whose passing examples had a small error ratio, as the plug-in records it."""
    return {**_result("conv2d", prop, "failed", 0.25), "exception": {"type": exception_type, "text": "..."}}


def test_worst_ratio_marks_checks_that_failed_by_raising_or_by_a_contract_violation():
    results = [
        _failed_with("forward", "SandboxFailure"),  # the implementation raised in its worker
        _failed_with("backward", "TypeError"),  # ... or in-process (--no-isolation)
        _failed_with("shapes_dtypes", "ContractViolation"),  # it returned the wrong shape
        _failed_with("adjoint", "AssertionError"),  # a mismatch: its ratio stays
        {**_failed_with("hygiene", "ContractViolation"), "test": "t::a"},
        {**_failed_with("hygiene", "ValueError"), "test": "t::b"},  # one raised: the row says raised
    ]
    cells = {_cells(line)[2]: _cells(line)[-1] for line in status_table(results)[2:]}
    assert cells == {
        "forward": "raised",
        "backward": "raised",
        "shapes_dtypes": "contract",
        "adjoint": "0.25",
        "hygiene": "raised",
    }
    assert all(line.isascii() for line in compact_table(results))

"""The example notebook runs in a real Jupyter kernel and shows its verdicts inline.

``examples/cs231n_notebook.ipynb`` writes CS231n-style layers in cells, one of them
wrong (``conv_backward_naive`` assigns window shares of ``dx`` instead of adding
them), checks them with ``convcheck.check(globals())``, digs into the failure's
arrays, fixes the layer and checks again. The test executes a copy with nbclient
and an ipykernel kernel, headless, as a user's Jupyter would, and asserts on what
the cells displayed: the ``text/html`` bundle of the first check names the failing
property and the likely cause, the correct layers pass, the fixed layers pass.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest

if os.environ.get("CI"):  # CI installs the extra: a missing kernel there is a failure, never a skip
    import nbclient
else:
    nbclient = pytest.importorskip("nbclient", reason="the 'notebook' extra: pip install -e '.[notebook]'")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "cs231n_notebook.ipynb"

PROBE = """\
import json
print("PROBE " + json.dumps({
    "first_passed": result.passed,
    "first_operations": result.operations,
    "first_failed": sorted({(f.op, p) for f in result.failures for p in f.properties}),
    "fixed_passed": fixed.passed,
    "fixed_operations": fixed.operations,
}))
"""
"""A cell the test appends: the two results as data, so that verdicts are compared, not text."""


def _cell_index(nb, fragment: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and fragment in c.source)


def _outputs(cell, kind: str) -> str:
    """Everything a cell displayed in ``kind`` (``text/html``, ``text/plain``) and on stdout."""
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif kind in out.get("data", {}):
            parts.append(out["data"][kind])
    return "\n".join(parts)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The example notebook, executed top to bottom in a fresh kernel in a scratch folder."""
    folder = tmp_path_factory.mktemp("notebook")
    copy = folder / NOTEBOOK.name
    shutil.copy(NOTEBOOK, copy)
    nb = nbformat.read(copy, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    client.execute()
    return nb, folder


def test_the_first_check_shows_the_wrong_layer_inline(executed):
    nb, _ = executed
    cell = nb.cells[_cell_index(nb, "result = convcheck.check(")]
    html = _outputs(cell, "text/html")
    assert html, "the check's result displayed no HTML"
    assert "conv2d" in html and "backward" in html
    assert "dx_overlap_overwritten" in html, "the likely cause is not shown"
    assert "FAILED" in html.upper()


def test_the_verdicts_are_those_of_the_layers(executed):
    nb, _ = executed
    probe = _outputs(nb.cells[-1], "text/plain")
    data = json.loads(probe.split("PROBE ", 1)[1])
    assert data["first_passed"] is False
    assert data["first_operations"]["max_pool2d"] == "passed"
    assert data["first_operations"]["conv2d"] == "failed"
    assert ["conv2d", "backward"] in data["first_failed"]
    assert all(op == "conv2d" for op, _ in data["first_failed"])
    assert data["fixed_passed"] is True
    assert set(data["fixed_operations"].values()) == {"passed"}


def test_the_failure_carries_its_arrays(executed):
    nb, _ = executed
    text = _outputs(nb.cells[_cell_index(nb, "failure = result.failures[0]")], "text/plain")
    largest = float(text.rsplit("largest difference in dx:", 1)[1].split()[0])
    assert largest > 0
    assert "'x': (" in text and "'w': (" in text


def test_the_report_is_written_where_the_notebook_runs(executed):
    _, folder = executed
    report = folder / "notebook-report"
    for name in ("report.html", "report.md", "report.json"):
        assert (report / name).is_file(), f"{name} missing from the notebook's report folder"
    assert json.loads((report / "report.json").read_text())

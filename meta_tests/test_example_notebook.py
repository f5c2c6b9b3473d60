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


def test_progress_updates_in_place_as_checks_finish():
    """In a kernel, the verdicts so far are shown while the run goes on: one display, updated in place
    (Jupyter's update_display_data) several times before the cell's result arrives."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        code = "import convcheck\nr = convcheck.check('numpy_fast', ops='relu,sigmoid,tanh,linear', max_examples=10)\nr.passed"
        msg_id = kc.execute(code)
        shown, updates, result = None, [], None
        while True:
            msg = kc.get_iopub_msg(timeout=300)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "display_data" and shown is None:
                shown = content.get("transient", {}).get("display_id")
            elif kind == "update_display_data":
                assert result is None, "the progress was updated after the result came"
                assert content["transient"]["display_id"] == shown
                updates.append(content["data"]["text/html"])
            elif kind == "execute_result":
                result = content["data"]["text/plain"]
            elif kind == "status" and content["execution_state"] == "idle":
                break
        assert shown, "no progress display was shown"
        assert result == "True"
        assert len(updates) >= 3, f"{len(updates)} progress updates"
        assert len(set(updates)) >= 3, "the updates did not change as checks finished"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)

"""One block per mistake (``convcheck.grouping``): failing checks grouped by root cause.

Unit checks on hand-made results (the same diagnosis, an environment problem,
the same exception place, and distinct causes kept apart; operations a module
lacks collapsed into one line), then ``convcheck run`` end to end on a planted
CS231n file with one mistake and on the clean example: one block naming the
cause and the other properties, and short terminal output.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cs231n_plants as plants

from convcheck.grading.scoring import declared_features
from convcheck.grouping import absent_operations, block_lines, failure_groups, root_cause
from convcheck.summary import compact_table

ROOT = Path(__file__).resolve().parents[1]

TRACEBACK = (
    "convcheck.sandbox.client.SandboxFailure: conv2d_forward raised {kind}: {text}\n"
    "  its traceback:\n"
    '      File "/subs/alice/layers.py", line {line}, in conv_forward_naive\n'
    "        out = np.zeros((n, f, h_out, w_out))\n"
    "    {kind}: {text}\n"
)


def _failed(
    prop: str,
    test: str,
    *,
    slug: str | None = None,
    exception: str | None = None,
    message: str | None = None,
    size: int = 1,
) -> dict:
    """A failed result as the plug-in writes it: the exception's text in ``exception`` and pytest's
    whole text in ``message`` (``message`` alone: a failure no exception reached)."""
    diagnosis = (
        {"slug": slug, "explanation": f"because {slug}", "alternatives": [], "tested": 3} if slug else None
    )
    if exception is None and message is None:
        exception = f"AssertionError: {prop} differs"
    failure = {
        "output": "dx",
        "diagnosis": diagnosis,
        "counterexample": {"shapes": {"x": [1, 1, size, size]}},
        "message": exception or message,
    }
    result = {"impl": "s", "op": "conv2d", "property": prop, "test": test, "status": "failed",
              "message": message or _pytest_lines(exception or ""), "failure": failure}  # fmt: skip
    if exception is not None:
        result["exception"] = {"type": exception.split(":")[0].rsplit(".")[-1], "text": exception}
    return result


def _pytest_lines(message: str) -> str:
    """``message`` as pytest reports an exception: every line behind ``E   ``."""
    return "\n".join(f"E   {line}" for line in message.splitlines())


def test_the_same_diagnosis_across_properties_is_one_group_shown_by_its_smallest_case():
    results = [
        _failed("backward", "t::b1", slug="dx_crop_at_zero_padding", size=3),
        _failed("backward", "t::b2", slug="dx_crop_at_zero_padding", size=2),
        _failed("adjoint", "t::a", slug="dx_crop_at_zero_padding", size=1),
        _failed("forward", "t::f", slug="h_w_swapped", size=4),
        {"impl": "s", "op": "conv2d", "property": "hygiene", "test": "t::h", "status": "passed"},
    ]
    groups = failure_groups(results)
    assert [g.title for g in groups] == ["dx_crop_at_zero_padding", "h_w_swapped"]
    crop = groups[0]
    assert crop.first["test"] == "t::a" and crop.span() == "3 checks in 2 properties"
    assert crop.also_line() == "also failed the same way: conv2d:backward (2 checks)"
    lines = block_lines(crop)
    assert lines[0].startswith("--- conv2d: dx_crop_at_zero_padding (3 checks in 2 properties")
    assert "likely cause: dx_crop_at_zero_padding" in "\n".join(lines)


def test_exceptions_group_by_environment_cause_or_by_type_and_place():
    py2 = TRACEBACK.format(
        kind="TypeError", text="'float' object cannot be interpreted as an integer", line=9
    )
    other = TRACEBACK.format(kind="ValueError", text="shapes (2,3) and (4,) not aligned", line=12)
    same_place = TRACEBACK.format(kind="ValueError", text="shapes (1,1) and (5,) not aligned", line=12)
    results = [
        _failed("forward", "t::f", exception=py2),
        _failed("adjoint", "t::a", exception=py2),
        _failed("backward", "t::b", exception=other),
        _failed("linearity", "t::l", exception=same_place),
    ]
    groups = {g.title: g for g in failure_groups(results)}
    assert set(groups) == {
        "python2_division_in_indices",
        "ValueError raised at layers.py:12 in conv_forward_naive",
    }
    env = groups["python2_division_in_indices"]
    assert (
        env.cause.startswith("likely cause: python2_division_in_indices: environment:")
        and len(env.members) == 2
    )
    assert len(groups["ValueError raised at layers.py:12 in conv_forward_naive"].members) == 2


def test_distinct_assertion_messages_stay_apart_and_numbers_do_not_split_one():
    a1 = _failed(
        "backward",
        "t::1",
        exception="AssertionError: dx.shape=(1, 1, 0, 0), but should be (1, 1, 1, 1) [case]",
    )
    a2 = _failed(
        "adjoint",
        "t::2",
        exception="AssertionError: dx.shape=(2, 1, 0, 0), but should be (2, 1, 1, 1) [other]",
    )
    b = _failed("hygiene", "t::3", exception="AssertionError: conv2d_forward modified its input x")
    keys = {root_cause(r)[0] for r in (a1, a2, b)}
    assert len(keys) == 2
    assert len(failure_groups([a1, a2, b])) == 2


def _unsupported(op: str, prop: str, reason: str, kind: str = "missing") -> dict:
    return {"impl": "s", "op": op, "property": prop, "test": f"t::{op}-{prop}", "status": "unsupported",
            "message": reason, "skip_kind": kind}  # fmt: skip


def test_operations_a_module_lacks_are_one_line_and_passing_operations_one_row():
    results = [
        _unsupported("conv1d", "forward", "unsupported: s does not provide conv1d_forward"),
        _unsupported("conv1d", "adjoint", "unsupported: s does not provide conv1d_forward, conv1d_backward"),
        _unsupported("relu", "forward", "unsupported: s does not provide relu_forward"),
        _unsupported("conv2d", "dilation", "unsupported: dilation is declared False", "unsupported"),
        {
            "impl": "s",
            "op": "conv2d",
            "property": "forward",
            "test": "t::f",
            "status": "passed",
            "examples": 5,
        },
        {"impl": "s", "op": "max_pool2d", "property": "forward", "test": "t::m1", "status": "passed"},
        {"impl": "s", "op": "max_pool2d", "property": "adjoint", "test": "t::m2", "status": "passed"},
    ]
    assert absent_operations(results) == {"s": ["conv1d", "relu"]}  # a declared narrowing is not absence
    lines = compact_table(results)
    assert lines[-1] == "s: not provided, so not checked (2): conv1d, relu"
    assert sum("max_pool2d" in ln for ln in lines) == 1 and "all 2 properties" in "\n".join(lines)
    assert sum("conv2d" in ln for ln in lines) == 2  # forward passed, dilation unsupported: rows kept


def test_grading_reads_every_declared_feature_from_the_results():
    declared = [{"op": "conv2d", "feature": "stride", "value": "uniform"},
                {"op": "conv2d", "feature": "dilation", "value": False}]  # fmt: skip
    results = [{**_failed("forward", "t::f"), "declared_unsupported": declared}, _failed("adjoint", "t::a")]
    assert declared_features(results) == {"conv2d.stride", "conv2d.dilation"}


def _run(tmp_path: Path, layers: Path) -> subprocess.CompletedProcess:
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        "from convcheck.impls.adapters import exports, from_cs231n\n"
        f"globals().update(exports(from_cs231n({str(layers)!r})))\n"
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "convcheck",
            "run",
            "--impl",
            str(plugin),
            "--profile",
            "ci",
            "--max-examples",
            "20",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )


def test_one_mistake_is_one_block_in_at_most_40_lines(tmp_path):
    proc = _run(tmp_path, plants.path("crop_at_zero"))
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr
    lines = proc.stdout.splitlines()
    blocks = [ln for ln in lines if ln.startswith("--- ")]
    assert len(blocks) == 1 and "dx_crop_at_zero_padding" in blocks[0], proc.stdout
    assert any(ln.strip().startswith("also failed the same way: conv2d:") for ln in lines)
    assert any(ln.strip() == "reproduce:" for ln in lines)
    assert len(lines) <= 40, proc.stdout


def test_a_clean_cs231n_file_prints_at_most_25_lines(tmp_path):
    proc = _run(tmp_path, ROOT / "examples" / "cs231n_layers.py")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) <= 25, proc.stdout
    assert sum("not provided, so not checked" in ln for ln in lines) == 1
    assert "exercised values" not in proc.stdout  # the coverage listing is behind --coverage


def test_a_raised_block_keeps_the_students_frames_and_drops_the_adapters():
    from convcheck.impls import adapters

    message = (
        "convcheck.sandbox.client.SandboxFailure: conv2d_forward raised TypeError: bad operand\n"
        "  its traceback:\n"
        f'      File "{adapters.__file__}", line 356, in conv_forward\n'
        "        out, _ = forward(x, w, b, param)\n"
        '      File "/subs/alice/layers.py", line 14, in conv_forward_naive\n'
        "        out = x + None\n"
        "    TypeError: bad operand\n"
    )
    text = "\n".join(block_lines(failure_groups([_failed("forward", "t::f", exception=message)])[0]))
    assert "alice/layers.py" in text and "out = x + None" in text
    assert adapters.__file__ not in text and "forward(x, w, b, param)" not in text


def test_an_exception_inside_numpy_is_placed_at_the_implementations_line():
    message = (
        "convcheck.sandbox.client.SandboxFailure: conv2d_forward raised ValueError: shape-mismatch for sum\n"
        "  its traceback:\n"
        '      File "/subs/bob/layers.py", line 19, in conv_forward_naive\n'
        "        out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3]))\n"
        '      File "/usr/lib/python3.11/site-packages/numpy/_core/numeric.py", line 1204, in tensordot\n'
        "        raise ValueError('shape-mismatch for sum')\n"
        "    ValueError: shape-mismatch for sum\n"
    )
    group = failure_groups([_failed("forward", "t::f", exception=message)])[0]
    assert group.title == "ValueError raised at layers.py:19 in conv_forward_naive"
    text = "\n".join(block_lines(group))
    assert "np.tensordot(window" in text and "numeric.py" not in text


def test_an_exception_group_is_shown_from_its_last_exception():
    message = (
        "  + Exception Group Traceback (most recent call last):\n"
        '  |   File "/site-packages/hypothesis/core.py", line 824, in default_executor\n'
        "  |     return function(data)\n"
        "  +-+---------------- 1 ----------------\n"
        "    | convcheck.sandbox.client.SandboxFailure: worker died on conv2d_backward(...): it exited with status 3\n"
        "    +------------------------------------\n"
    )
    group = failure_groups([_failed("adjoint", "t::a", message=message)])[0]
    text = "\n".join(block_lines(group))
    assert group.title.startswith("convcheck.sandbox.client.SandboxFailure: worker died")
    assert "it exited with status 3" in text and "Traceback (most recent call last)" not in text

"""The causes students meet: planted CS231n-style ``layers.py`` files get the right cause named first.

Each plant in ``cs231n_plants`` is the example layers module with one mistake
seen in real submissions (a crop that is empty at zero padding, a hard-coded
crop, square-only loops, a window extent from the wrong axis, a rounded output
size, and code written for Python 2 or an older NumPy). Each is adapted with
``from_cs231n``, exactly as a student's file is, and diagnosed on a case where
its mistake shows; the first cause named must be the planted one. The
catalogue's new entries must also stay silent on the correct example file.
"""

from __future__ import annotations

from pathlib import Path

import cs231n_plants as plants
import pytest

from convcheck.diagnosis import diagnose, environment_cause
from convcheck.impls.adapters import from_cs231n
from convcheck.impls.registry import from_namespace
from convcheck.spec.params import Conv2dParams, MaxPool2dParams
from convcheck.tests.values import make_case

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cs231n_layers.py"

CONV_3X3 = {"x": (1, 1, 4, 4), "w": (1, 1, 3, 3), "b": None}

ONE_CELL = {"x": (1, 1, 1, 1), "w": (1, 1, 1, 1), "b": None}
"""The shrunk case of both crop mistakes: told apart only by the sibling with a wider padding."""

CASES = [
    ("crop_at_zero", "dx_crop_at_zero_padding", "conv2d", Conv2dParams(), ONE_CELL, "dx", "normal"),
    ("crop_hard_coded", "dx_crop_hard_coded", "conv2d", Conv2dParams(), ONE_CELL, "dx", "normal"),
    ("crop_at_zero", "dx_crop_at_zero_padding", "conv2d", Conv2dParams(), CONV_3X3, "dx", "normal"),
    (
        "crop_hard_coded",
        "dx_crop_hard_coded",
        "conv2d",
        Conv2dParams(),
        {"x": (1, 1, 6, 6), "w": (1, 1, 3, 3), "b": None},
        "dx",
        "normal",
    ),
    (
        "crop_hard_coded",
        "dx_crop_hard_coded",
        "conv2d",
        Conv2dParams(padding=(2, 2, 2, 2)),
        CONV_3X3,
        "dx",
        "normal",
    ),
    (
        "square_outputs",
        "square_outputs_assumed",
        "conv2d",
        Conv2dParams(),
        {"x": (1, 1, 3, 5), "w": (1, 1, 2, 2), "b": (1,)},
        "y",
        "normal",
    ),
    (
        "window_wrong_axis",
        "window_extent_from_wrong_axis",
        "max_pool2d",
        MaxPool2dParams((2, 3), (2, 2)),
        {"x": (1, 1, 4, 6)},
        "y",
        "distinct",
    ),
    (
        "rounded_size",
        "output_size_rounded_not_floored",
        "max_pool2d",
        MaxPool2dParams((3, 3), (3, 3)),
        {"x": (1, 1, 4, 5)},
        "y",
        "distinct",
    ),
    ("py2_division", "python2_division_in_indices", "conv2d", Conv2dParams(), CONV_3X3, "y", "normal"),
    (
        "int_of_array",
        "int_of_an_array",
        "max_pool2d",
        MaxPool2dParams((2, 2), (2, 2)),
        {"x": (1, 1, 4, 4)},
        "dx",
        "ties",
    ),
    ("numpy_alias", "numpy_removed_alias", "conv2d", Conv2dParams(), CONV_3X3, "y", "normal"),
]


def _adapted(path: Path):
    return from_namespace(from_cs231n(path), path.stem, str(path))


@pytest.mark.parametrize(
    ("plant", "slug", "op", "params", "shapes", "output", "family"),
    CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)],
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_planted_mistake_is_named_first(plant, slug, op, params, shapes, output, family, dtype):
    impl = _adapted(plants.path(plant))
    case = make_case(op, params, shapes, dtype, family, seed=1)
    d = diagnose(impl, case, impl.capabilities, output)
    assert d.slug == slug, d.line()


def test_environment_causes_say_it_is_the_environment_and_the_fix():
    for slug, text, fix in (
        ("python2_division_in_indices", "TypeError: slice indices must be integers or None", "//"),
        ("int_of_an_array", "TypeError: only length-1 arrays can be converted to Python scalars", ".item()"),
        ("numpy_removed_alias", "AttributeError: module 'numpy' has no attribute 'int'.", "np.int64"),
    ):
        d = environment_cause(f"Traceback (most recent call last):\n  ...\n{text}\n")
        assert d is not None and d.slug == slug
        assert d.explanation.startswith("environment:") and fix in d.explanation
        assert text.split(": ", 1)[1] in d.explanation  # the exception's own line is quoted
    assert environment_cause("ValueError: operands could not be broadcast together") is None


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_the_correct_example_gets_no_cause_on_the_same_cases(case):
    _, _, op, params, shapes, output, family = case
    impl = _adapted(EXAMPLE)
    for dtype in ("float32", "float64"):
        made = make_case(op, params, shapes, dtype, family, seed=1)
        assert diagnose(impl, made, impl.capabilities, output).slug is None

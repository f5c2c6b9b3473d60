"""CS231n-style ``layers.py`` files, each planted with one thing the course's graders meet in real
submissions (``meta_tests/test_cs231n_student_path.py``, ``test_cs231n_causes.py`` and
``test_grouping.py`` check how each is reported).

Plants that differ from the example module (``examples/cs231n_layers.py``) in a line or two are
made from it: ``MUTATIONS`` holds each one's replacements, and ``path(name)`` writes the mutated
file (each replaced text must occur exactly once in the example, so the plants follow the example
as it changes). The split and every-maximum tie rules are made the same way from
``pool_ties_last.py`` (``POOL_VARIANTS``). The others are written out whole in this folder.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parents[1] / "examples" / "cs231n_layers.py"

CROP = "dx = dxp[:, :, pad : pad + x.shape[2], pad : pad + x.shape[3]]"
H_OUT, W_OUT = "h_out = 1 + (h + 2 * pad - hh) // stride", "w_out = 1 + (wd + 2 * pad - ww) // stride"

MUTATIONS: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "crop_at_zero": (
        "The padded gradient is cropped with dx_pad[:, :, pad:-pad, pad:-pad] (empty when pad = 0).",
        ((CROP, "dx = dxp[:, :, pad:-pad, pad:-pad]"),),
    ),
    "crop_hard_coded": (
        "The padded gradient is cropped by one cell a side, as if pad were always 1.",
        ((CROP, "dx = dxp[:, :, 1:-1, 1:-1]"),),
    ),
    "int_of_array": (
        "The max-pool backward takes int() of the array of maxima (fails on ties).",
        (
            (
                "np.unravel_index(np.argmax(window), window.shape)  # first maximum",
                "np.unravel_index(int(np.flatnonzero(window == window.max())), window.shape)",
            ),
        ),
    ),
    "numpy_alias": (
        "The conv forward allocates with dtype=np.float (removed in NumPy 1.24).",
        (
            (
                "out = np.zeros((n, f, h_out, w_out), dtype=x.dtype)",
                "out = np.zeros((n, f, h_out, w_out), dtype=np.float)",
            ),
        ),
    ),
    "py2_division": (
        "Output sizes computed with / (Python 2 integer division).",
        (
            (f"{H_OUT}  # floor: leftover rows are skipped", H_OUT.replace("//", "/")),
            (W_OUT, W_OUT.replace("//", "/")),
        ),
    ),
    "rounded_size": (
        "The max-pool output size is rounded, not floored.",
        (
            (
                "1 + (h - ph) // stride, 1 + (w - pw) // stride",
                "1 + round((h - ph) / stride), 1 + round((w - pw) / stride)",
            ),
        ),
    ),
    "square_outputs": (
        "The forward loops over H_out for both output axes.",
        (("for j in range(w_out):", "for j in range(h_out):"),),
    ),
    "window_wrong_axis": (
        "The max-pool window takes its width from pool_height.",
        (
            (
                "window = x[:, :, i * stride : i * stride + ph, j * stride : j * stride + pw]",
                "window = x[:, :, i * stride : i * stride + ph, j * stride : j * stride + ph]",
            ),
        ),
    ),
}
"""Plant name -> (its mistake, the ``(text in the example, replacement)`` pairs that plant it)."""


LAST_MAX = """mask = np.zeros(window.shape)
                    flat = window.size - 1 - np.argmax(window.ravel()[::-1])  # the last maximum
                    mask[np.unravel_index(flat, window.shape)] = 1"""

POOL_VARIANTS: dict[str, tuple[str, str]] = {
    "pool_ties_split": (
        "A student's max-pool layer. Each window's gradient is split evenly among its tied maxima.",
        "mask = (window == np.max(window)) / np.sum(window == np.max(window))",
    ),
    "pool_ties_every_max": (
        "A student's max-pool layer. Each window's gradient goes, whole, to every cell equal to its maximum.",
        "mask = window == np.max(window)  # every tied maximum gets all of it",
    ),
}
"""Other tie rules, made from ``pool_ties_last.py`` (written out whole): each one's docstring and
what replaces the last-maximum mask."""


def _replaced(name: str, base: Path, replacements: tuple[tuple[str, str], ...]) -> str:
    """``base``'s text after its docstring, with each replacement made; each text must occur once."""
    text = base.read_text(encoding="utf-8")
    for old, new in replacements:
        if text.count(old) != 1:
            raise AssertionError(f"plant {name}: {old!r} occurs {text.count(old)} times in {base}, not once")
        text = text.replace(old, new)
    return text.split('"""', 2)[2]  # the base's own docstring gives way to the plant's


def source(name: str) -> str:
    """The planted module's text: its base with the replacements, under a docstring naming the plant."""
    if name in POOL_VARIANTS:
        doc, mask = POOL_VARIANTS[name]
        return f'"""{doc}"""' + _replaced(name, HERE / "pool_ties_last.py", ((LAST_MAX, mask),))
    what, replacements = MUTATIONS[name]
    return f'"""A CS231n-style layers.py with one planted mistake: {what}"""' + _replaced(
        name, EXAMPLE, replacements
    )


def path(name: str) -> Path:
    """The plant's file: written out whole in this folder, or made from the example (see ``source``)."""
    whole = HERE / f"{name}.py"
    if name not in MUTATIONS and name not in POOL_VARIANTS:
        return whole
    text = source(name)
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / f"convcheck-plants-{digest}"
    target = folder / f"{name}.py"
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        scratch = folder / f".{name}.{os.getpid()}.tmp"
        scratch.write_text(text, encoding="utf-8")
        os.replace(scratch, target)  # atomic: pytest-xdist workers may make the same plant at once
    return target

"""Which (operation, property) groups the conformance suite checks.

The groups are read from the suite itself: every test in ``convcheck.tests``
carries ``@pytest.mark.conformance("<property>", ops=(...))`` (no ``ops``:
every operation whose spec lists the property, ``Operation.properties``; the
network check lists its networks). Reading the markers with ``ast`` finds them without
importing or collecting the tests, so a rubric is validated against what the
suite really checks and cannot drift from it.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from ..spec import OPERATIONS


def _marker_groups(call: ast.Call) -> list[tuple[str, str]]:
    """The groups one ``conformance(...)`` marker call declares (none if it is not one)."""
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr == "conformance"):
        return []
    if not call.args or not isinstance(call.args[0], ast.Constant) or not isinstance(call.args[0].value, str):
        return []
    prop = call.args[0].value
    ops: tuple[str, ...] = tuple(name for name, op in OPERATIONS.items() if prop in op.properties)
    for kw in call.keywords:
        if kw.arg == "ops":
            ops = tuple(ast.literal_eval(kw.value))
    return [(op, prop) for op in ops]


@functools.cache
def suite_groups() -> dict[str, tuple[str, ...]]:
    """Each operation's (and network's) property names, sorted, as the suite's test markers declare them."""
    from .. import tests

    found: dict[str, set[str]] = {op: set() for op in OPERATIONS}
    for path in sorted(Path(tests.__file__).resolve().parent.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Call):
                for op, prop in _marker_groups(node):
                    found.setdefault(op, set()).add(prop)
    return {op: tuple(sorted(props)) for op, props in found.items()}

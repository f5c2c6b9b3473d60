"""A failure's arrays: its counterexample rebuilt, and what the oracle and the implementation answer.

This is what the reproduction script (``report/templates/repro.py.j2``) does,
with the same functions: the case comes back from its recorded description
(``recording.case_from_spec``, i.e. ``make_case`` plus the arrays the check
made itself, and the tie note), the implementation is called the way the suite
calls it (fresh copies in the case's memory layout, the case's keyword
arguments), and the expected values come from the SciPy oracle under the
conventions the run honoured. Nothing here draws a case of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Arrays:
    """``inputs`` (name -> array: the inputs and ``dy``), ``expected`` and ``got`` (output name ->
    array, ``None`` where there is none), and ``problems`` (what the call did wrong besides values:
    an input modified, an exception)."""

    inputs: dict[str, np.ndarray]
    expected: dict[str, Any]
    got: dict[str, Any]
    problems: list[str] = field(default_factory=list)


def rebuild(counterexample: dict[str, Any]) -> Any:
    """The failing case, exactly as the run saw it (``recording.case_from_spec``)."""
    from ..recording import case_from_spec

    case = case_from_spec(counterexample)
    case.notes["ties"] = counterexample.get("ties")
    return case


def _by_name(case: Any, function: str, out: Any) -> dict[str, Any]:
    """An output (tuple) by the contract's output names, as the script names them."""
    if case.op.is_loss:
        return {"loss": np.asarray(out[0]), "dz": out[1]}
    if function == case.op.forward:
        return {"y": out}
    if len(case.op.grads) == 1:
        return {case.op.grads[0]: out}
    return dict(zip(case.op.grads, out, strict=False))


def compute(record: dict[str, Any], impl: Any, caps: Any) -> Arrays:
    """The inputs, expected and got of a failed record, for the functions its failure concerns
    (``report.repro``'s choice). ``impl`` is a loaded implementation (sandboxed or not)."""
    from .. import oracles
    from ..report.repro import _functions
    from ..spec import contracts
    from ..spec.capabilities import FORWARD_ONLY_PROPERTIES
    from ..tests.values import fresh

    case = rebuild(record["counterexample"])
    direction = "forward" if record.get("property") in FORWARD_ONLY_PROPERTIES else None
    semantics = contracts.oracle_semantics(caps.for_direction(direction).semantics(case.op))
    inputs = {
        name: np.array(a, copy=True) for name, a in {**case.inputs, "dy": case.dy}.items() if a is not None
    }
    result = Arrays(inputs, {}, {})
    for function in _functions(record, impl, case.op):
        originals = case.forward_args() if function == case.op.forward else case.backward_args()
        expected = oracles.call("scipy", function, *originals, semantics=semantics, **case.kwargs())
        result.expected.update(_by_name(case, function, expected))
        args = [fresh(a, case.layout) for a in originals]
        try:
            out = impl.functions[function](*args, **case.kwargs())
        except Exception as e:
            result.problems.append(
                f"{function} raised {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            )
            result.got.update({name: None for name in _by_name(case, function, expected)})
            continue
        result.got.update(_by_name(case, function, out))
        names = ["dy", *case.op.inputs] if function == case.op.backward else list(case.op.inputs)
        for n, a, b in zip(names, originals, args, strict=False):
            if a is not None and b is not None and not np.array_equal(a, b, equal_nan=True):
                result.problems.append(f"{function} modified its input {n} in place")
    return result


__all__ = ["Arrays", "compute", "rebuild"]

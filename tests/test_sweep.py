"""Property: the small-scope sweep. Every small geometry (``tests/small_scope.py``), in size order,
forward and backward, in every declared dtype and two value families, against the scipy oracle,
each call made twice and compared bit for bit.

No hypothesis: the cases are enumerated, so the first failure is the smallest failing case
and it is reported like any other property's (the same mismatch report, diagnosis and
reproduction). Calls to an isolated implementation travel in batches, one worker round
trip per chunk of geometries; a batch that cannot finish is repeated call by call.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from convcheck import recording
from convcheck.spec import OPERATIONS, InvalidConfiguration, tolerance
from convcheck.spec.shapes import COVER_ALL
from convcheck.unsupported_calls import UnsupportedCase

from . import checks, small_scope
from .values import fresh, make_case, window_has_ties

if TYPE_CHECKING:
    from convcheck.impls.registry import Implementation
    from convcheck.spec import Capabilities

ORACLE = "scipy"
"""The textbook oracle: it follows every declared semantic (convention, tie rule)."""

CHUNK = 16
"""Geometries per worker round trip."""


@pytest.mark.conformance("sweep")
def test_sweep(impl, caps, contract, op_name, record):
    op = OPERATIONS[op_name]
    present = [f for f in op.functions if impl.provides(f)]
    if not present:
        checks.require(impl, *op.functions)
    geometries = small_scope.geometries(op_name, caps)
    if op.family == "max_pool" and caps.value(op, "ceil_rule") == COVER_ALL:
        geometries = _cover_all(op, geometries)
    if caps.predicate is not None:
        geometries = _admitted(op_name, caps, geometries, record)
    per_geometry = len(small_scope.FAMILIES) * len(caps.dtypes)
    record.values["sweep"].add(
        f"{len(geometries)} geometries ({sum(g.full for g in geometries)} enumerated in full) x "
        f"{len(caps.dtypes)} dtypes x {len(small_scope.FAMILIES)} value families = "
        f"{len(geometries) * per_geometry} cases, each function called twice"
    )
    for start in range(0, len(geometries), CHUNK):
        chunk = geometries[start : start + CHUNK]
        cases = [
            _case(op_name, g, dtype, family)
            for g in chunk
            for family in small_scope.FAMILIES
            for dtype in caps.dtypes
        ]
        calls = [_call(case, f) for case in cases for f in present]
        sandbox = impl.extras.get("sandbox")
        sent = sandbox is not None and sandbox.send_many(calls, repeat=2)
        truths = [_oracle(case, caps, present) for case in cases[:: len(caps.dtypes)]]  # while it runs
        raw = (sandbox.receive_many() if sent else None) or [None] * (2 * len(calls))
        for i, case in enumerate(cases):
            record.case(case)
            outputs = {
                f: raw[2 * (i * len(present) + j) : 2 * (i * len(present) + j) + 2]
                for j, f in enumerate(present)
            }
            index = start * per_geometry + i + 1
            where = f"the first failing case {index} of {len(geometries) * per_geometry}"
            try:
                truth = truths[i // len(caps.dtypes)]
                if not _same_values(case, cases[i - i % len(caps.dtypes)]):
                    truth = _oracle(case, caps, present)  # a narrow dtype rounded the family's values
                _check(impl, caps, case, outputs, truth, where, contract)
            except UnsupportedCase:  # NotImplementedError: unsupported at this case, noted
                continue


def _cover_all(op: Any, geometries: list[Any]) -> list[Any]:
    """The geometries under Chainer's declared ceil rule: each ``ceil_mode=True`` one as a ``cover_all``
    record, left out where a window of that rule reads no input cell (``spec.pool.check``)."""
    out = []
    for g in geometries:
        if g.params.ceil_mode:
            g = dataclasses.replace(g, params=dataclasses.replace(g.params, ceil_mode=COVER_ALL))
            try:
                op.check(g.shapes, g.params)
            except InvalidConfiguration:
                continue
        out.append(g)
    return out


def _admitted(op_name: str, caps: Any, geometries: list[Any], record: Any) -> list[Any]:
    """The geometries the declared ``supports`` predicate admits, the others noted in ``record``;
    the check ends ``unsupported`` when it admits none."""
    admitted = []
    for g in geometries:
        reason = caps.excluded(op_name, g.params)
        if reason is None:
            admitted.append(g)
        else:
            record.exclude(f"{op_name}(x={g.shapes.get('x')}, {g.params})", reason)
    if not admitted:
        recording.skip("unsupported", f"unsupported: {record.excluded_line()}")
    return admitted


def _case(op_name: str, geometry: small_scope.Geometry, dtype: str, family: str) -> Any:
    """The sweep's case of a geometry, with its max-pool ties noted as the strategies note them."""
    case = make_case(op_name, geometry.params, geometry.shapes, dtype, family, small_scope.SEED)
    if case.op.family == "max_pool":
        case.notes["ties"] = window_has_ties(case.x, case.params)
    return case


def _same_values(case: Any, other: Any) -> bool:
    """Whether two cases of one geometry and family hold the same values (in every dtype unless
    one too narrow for them, bfloat16 above 256, rounds some)."""
    pairs = [*zip(case.inputs.values(), other.inputs.values(), strict=True), (case.dy, other.dy)]
    return all(
        (a is None and b is None)
        or (
            a is not None
            and b is not None
            and np.array_equal(np.asarray(a, np.float64), np.asarray(b, np.float64))
        )
        for a, b in pairs
    )


def _call(case: Any, fname: str) -> tuple[str, tuple[Any, ...], dict[str, Any], list[str]]:
    """One call of ``fname`` on the case's arrays (fresh copies), as the sandbox batches it."""
    names, arrays = checks.function_args(case, fname)
    return fname, tuple(fresh(a) for a in arrays), case.kwargs(), names


def _oracle(case: Any, caps: Capabilities, functions: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The float64 oracle's ``(expected, S)`` per output. A sweep family holds the same values in
    every dtype wide enough for them, so one answer serves those dtypes (a case whose values a
    narrow dtype rounded gets its own, see ``_same_values``); ``S`` is computed only where the
    comparison is not exact."""
    exact = checks.exact_required(case, caps)
    op = case.op
    truth: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if op.forward in functions:
        y = checks.oracle_forward(ORACLE, case, caps)
        truth["y"] = (y, y if exact else checks.oracle_forward(ORACLE, case, caps, absolute=True))
    if op.backward in functions:
        grads = checks.oracle_backward(ORACLE, case, caps)
        bounds = grads if exact else checks.oracle_backward(ORACLE, case, caps, absolute=True)
        truth.update({g: (grads[g], bounds[g]) for g in op.grads if grads[g] is not None})
    return truth


def _validated(impl: Implementation, case: Any, fname: str, raw: Any) -> checks.Outputs:
    """A raw output checked by the contract's rules. ``None`` (the call raised in its batch, the
    batch did not finish, or the implementation runs in this process) means: call it here, alone,
    so that an exception is reported as the case's failure."""
    __tracebackhide__ = True
    if raw is None:
        try:
            return checks.call_function(impl, case, fname)
        except (AssertionError, UnsupportedCase):
            raise
        except Exception as e:  # the implementation raised (in process, or in its worker)
            checks.fail(
                case,
                impl,
                f"{fname} raised {type(e).__name__}: {e} [{case.describe()}]\n"
                + checks.reproduction(case, impl),
                kind=f"raised {type(e).__name__}",
                subject=fname,
            )
    if fname == case.op.forward:
        return {"y": checks.validate_forward(impl, case, raw)}
    return checks.validate_backward(impl, case, raw)


def _check(
    impl: Implementation,
    caps: Capabilities,
    case: Any,
    raw: dict[str, list[Any]],
    truth: dict[str, Any],
    where: str,
    contract: str = "library",
) -> None:
    """Both calls of every function of one case: the same bits, then within the policy's bound."""
    __tracebackhide__ = True
    for fname, (first_raw, again_raw) in raw.items():
        first = _validated(impl, case, fname, first_raw)
        again = _validated(impl, case, fname, again_raw)
        for name, got in first.items():
            other = again[name]
            if got is not None and other is not None and not np.array_equal(got, other, equal_nan=True):
                idx = tuple(
                    int(i) for i in np.argwhere(~((got == other) | (np.isnan(got) & np.isnan(other))))[0]
                )
                checks.fail(
                    case,
                    impl,
                    f"{fname} is not deterministic: two calls on the same input differ in {name} at {idx}: "
                    f"{got[idx]!r} then {other[idx]!r} (small-scope sweep, {where}) [{case.describe()}]\n"
                    + checks.reproduction(case, impl),
                    output=name,
                    kind="nondeterminism",
                )
        for name, got in first.items():
            if got is None or name not in truth:
                continue
            expected, bound = truth[name]
            comp = _identical(case, name, got, expected, caps) or checks.compare(
                case, name, got, expected, bound, caps
            )
            what = f"{fname} {name} vs the {ORACLE} oracle (small-scope sweep, {where})"
            if not comp.passed and name == "dx" and case.op.kinked:  # a tie rule (spec/contracts.py)
                report = checks.mismatch_report(case, what, comp, got, expected, impl)
                if checks.excused_at_kink(case, impl, caps, contract, report, got):
                    continue
            record_comparison(comp)
            checks.assert_matches(case, what, comp, got, expected, impl)


def _identical(
    case: Any, name: str, got: np.ndarray, expected: np.ndarray, caps: Capabilities
) -> tolerance.Comparison | None:
    """The comparison of an output equal to the oracle's bit for bit (no error, whatever the
    bound), built without measuring; ``None`` when they differ. Most sweep outputs are identical,
    and measuring them dominated the sweep's time."""
    g = np.asarray(got, dtype=np.float64)
    if g.size == 0 or not np.array_equal(g, expected):
        return None
    override = tolerance.override_for(case.op_name, case.dtype)
    exact = checks.exact_required(case, caps)
    if override is not None and override.replaces_bound:
        mode, exact = "override", False
    else:
        mode = "exact" if exact else ("elementwise" if caps.algorithm == "direct" else "normwise")
    first = float(g.flat[0])
    return tolerance.Comparison(
        name=name,
        size=int(g.size),
        exact=exact,
        mode=mode,
        error_ratio=0.0,
        max_abs=0.0,
        max_rel=0.0,
        max_ulp=0,
        mismatches=0,
        worst_index=(0,) * g.ndim,
        worst_got=first,
        worst_expected=first,
        worst_bound=0.0,
        zero_fraction=float(np.mean(g == 0)),
        dtype=str(np.dtype(case.dtype)),
        k=case.op.reduction_lengths(case.shapes(), case.params)[name],
        override=None if override is None else override.describe(),
        accumulate=checks.accumulation(case, caps),
    )


def record_comparison(comp: Any) -> None:
    """Note a comparison in the running test's recorder."""
    from convcheck import recording

    rec = recording.current()
    if rec is not None:
        rec.comparison(comp)

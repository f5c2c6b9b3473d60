"""Property 11: hygiene. Inputs are never modified, outputs never alias inputs,
two calls give the same bits, and non-contiguous inputs give the same answer.

Every call gets arrays made explicitly for it (``values.fresh``), so an
implementation that writes into its input cannot corrupt the suite's own data,
and the modification is seen by comparing with the untouched case.
"""

import dataclasses

import numpy as np
import pytest
from hypothesis import given

from convcheck.spec import OPERATIONS

from . import checks
from .strategies import cases
from .values import LAYOUTS, fresh


def _outputs(op, fname, out):
    if fname == op.forward and not op.is_loss:
        return {"y": out}
    if op.is_loss:
        return dict(zip(op.outputs, out, strict=False)) if isinstance(out, tuple | list) else {"out": out}
    if len(op.grads) == 1:
        return {op.grads[0]: out}
    return dict(zip(op.grads, out, strict=False)) if isinstance(out, tuple | list) else {"out": out}


def _aliases(value, arg, name):
    """Whether an output aliases input ``name``: in this process, or as the sandbox worker saw it."""
    return np.shares_memory(value, arg) or getattr(value, "aliased_input", None) == name


def _first_change(before, after):
    diff = ~((before == after) | (np.isnan(before) & np.isnan(after)))
    idx = tuple(int(i) for i in np.argwhere(diff)[0])
    return idx, before[idx], after[idx]


@pytest.mark.conformance("hygiene")
def test_hygiene(impl, caps, op_name, record):
    op = OPERATIONS[op_name]
    present = [f for f in op.functions if impl.provides(f)]
    if not present:
        checks.require(impl, *op.functions)

    @given(case=cases(op_name, caps, layouts_=LAYOUTS))
    @checks.shrinks_further
    def check(case):
        record.case(case)
        s = checks.self_bounds(impl, case)
        for fname in present:
            names, originals = checks.function_args(case, fname)
            args = [fresh(a, case.layout) for a in originals]
            out = impl.functions[fname](*args, **case.kwargs())
            for name, original, arg in zip(names, originals, args, strict=True):
                if original is not None and not np.array_equal(arg, original, equal_nan=True):
                    idx, was, now = _first_change(original, arg)
                    checks.fail(
                        case,
                        impl,
                        f"{fname} modified its input {name} in place: at index {idx} it was {was!r}, "
                        f"afterwards {now!r}; inputs must never be modified [{case.describe()}]\n"
                        + checks.reproduction(case, impl),
                        kind="in place",
                        subject=name,
                    )
            outs = _outputs(op, fname, out)
            for oname, value in outs.items():
                for name, arg in zip(names, args, strict=True):
                    if isinstance(value, np.ndarray) and arg is not None and _aliases(value, arg, name):
                        checks.fail(
                            case,
                            impl,
                            f"{fname}'s output {oname} shares memory with its input {name} (a view or the "
                            f"same array was returned); outputs must be fresh arrays [{case.describe()}]",
                            kind="aliasing",
                            subject=oname,
                        )
            # Determinism and layout independence are measured on validated outputs.
            first = checks.call_function(impl, case, fname)
            again = checks.call_function(impl, case, fname)
            pairs = {k: (first[k], again[k]) for k in first}
            for oname, (a, b) in pairs.items():
                if a is not None and not np.array_equal(a, b, equal_nan=True):
                    idx, was, now = _first_change(a, b)
                    checks.fail(
                        case,
                        impl,
                        f"{fname} is not deterministic: two calls on the same input differ in {oname} at "
                        f"{idx}: {was!r} then {now!r} [{case.describe()}]\n"
                        + checks.reproduction(case, impl),
                        output=oname,
                        kind="nondeterminism",
                    )
            if case.layout != "contiguous":
                plain = checks.call_function(impl, _contiguous(case), fname)
                for oname, (a, _) in pairs.items():
                    if a is None:
                        continue
                    b = plain[oname]
                    comp = checks.within(case, oname, a, b, s[oname], caps, factor=2.0)
                    record.comparison(comp)
                    checks.assert_matches(
                        case,
                        f"{fname} {oname} with {case.layout} inputs vs contiguous inputs:",
                        comp,
                        a,
                        b,
                        impl,
                        (f"{case.layout} inputs", "contiguous inputs"),  # both the implementation's answers
                    )

    check()


def _contiguous(case):
    return dataclasses.replace(case, layout="contiguous")

"""Property 3: output shapes and dtypes follow the spec; ``db`` is ``None`` exactly when ``b`` is;
a loss returns a real scalar and a gradient shaped like its logits."""

import pytest
from hypothesis import given

from convcheck.spec import OPERATIONS

from . import checks
from .strategies import cases


@pytest.mark.conformance("shapes_dtypes")
def test_shapes_dtypes(impl, caps, op_name, record):
    op = OPERATIONS[op_name]
    if not any(impl.provides(f) for f in op.functions):
        checks.require(impl, *op.functions)

    @given(case=cases(op_name, caps))
    @checks.shrinks_further
    def check(case):
        record.case(case)
        outputs = {}
        for fname in op.functions:
            if impl.provides(fname):
                outputs.update(checks.call_function(impl, case, fname))  # checks count, types, shapes
        for name, value in outputs.items():
            if value is None or name == "loss":
                continue
            checks.ensure(
                value.dtype == case.dtype,
                f"{name}.dtype={value.dtype}, but should be {case.dtype} (output dtype equals input dtype) "
                f"[{case.describe()}]",
                case=case,
                impl=impl,
                exc=checks.ContractViolation,
                kind="dtype",
                subject=name,
            )

    check()

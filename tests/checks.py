"""pytest helpers: call an implementation safely, ask an oracle, and assert with a readable message.

Every assertion message is self-explanatory (what was compared, what came,
what was expected, where they differ most) and ends with a copy-pasteable
reproduction that needs neither hypothesis nor pytest. Every failure goes
through ``fail``: on hypothesis's final (shrunk) example it asks
``convcheck.diagnosis`` which known mistake explains the failure, adds a
``likely cause:`` line to the message and notes the failure (case and
diagnosis) in the running test's recorder, from which reports are built.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from convcheck import oracles, recording
from convcheck.impls.registry import Implementation, is_file_source
from convcheck.spec import Capabilities, contracts, dtypes, tolerance
from convcheck.spec.case import SMALL, Case, finite_inputs, with_inputs
from convcheck.spec.ops import geometry_of

from . import neighbours, shrink
from .values import INTEGER_FAMILIES, fresh, pool_windows

shrinks_further = shrink.shrinks_further
"""Register a property's body for convcheck's pass after hypothesis's shrink (``tests/shrink.py``):
``@checks.shrinks_further`` under ``@given(case=...)``."""

Outputs = dict[str, Any]
"""Arrays by output name (``None`` for an absent bias's gradient)."""


class ContractViolation(AssertionError):
    """The implementation returned something the contract does not allow."""


def semantics(case: Case, caps: Capabilities) -> dict[str, Any]:
    """The semantic choices (convention, tie rule) the oracles must follow for this case
    (``spec.contracts.oracle_semantics``: the declared conventions at kinks are judged apart)."""
    return contracts.oracle_semantics(caps.semantics(case.op))


def _fresh_args(case: Case, arrays: list[np.ndarray | None]) -> list[np.ndarray | None]:
    return [fresh(a, case.layout) for a in arrays]


def _final_example() -> bool:
    """True on hypothesis's final run of a failing example (the shrunk one it reports), and
    outside hypothesis; false while it is still searching and shrinking, and on the trial runs of
    convcheck's own pass after it (``shrink.in_trial``)."""
    from hypothesis.control import current_build_context, currently_in_test_context

    if shrink.in_trial():
        return False
    return not currently_in_test_context() or current_build_context().is_final


def with_cause(message: str, cause: str) -> str:
    """``message`` with ``cause`` as an indented line before its reproduction (or at the end)."""
    marker = "\n  reproduce:"
    line = f"\n  {cause}"
    if marker in message:
        head, tail = message.split(marker, 1)
        return f"{head}{line}{marker}{tail}"
    return message + line


def fail(
    case: Case,
    impl: Implementation,
    message: str,
    *,
    output: str | None = None,
    caps: Capabilities | None = None,
    exc: type[AssertionError] = AssertionError,
    wrong: bool = False,
    kind: str = "values",
    subject: str | None = None,
) -> None:
    """Raise ``exc(message)``; on the final example, diagnosed and noted in the test's recorder.

    ``output`` names the failing output (``y``, ``dx``, ...) when one was compared; ``wrong``
    says that output was wrong in itself (outside the bound, NaN, the wrong shape or type), not
    merely different from another call's. The exception raised is ``exc``'s subclass for the
    failure's key (``convcheck.failure_keys``): ``exc``, the output (``subject`` names it when it
    is not to be diagnosed as ``output``) and ``kind`` (``failure_keys.KINDS``), so that hypothesis
    shrinks and reports each distinct failure of a property on its own.
    """
    __tracebackhide__ = True
    from convcheck.diagnosis import diagnose, unreplayed
    from convcheck.failure_keys import check_key, keyed_class

    key = check_key(exc, output or subject, kind)
    rec = recording.current()
    final = _final_example()
    diagnosis = None
    caps = caps or (rec.caps if rec is not None and rec.caps is not None else impl.capabilities)
    shrink.note_output(output)
    if final:
        diagnosis = diagnose(impl, case, caps, output)
        message = with_cause(message, diagnosis.line())
        if shrink.note() is not None:
            message = with_cause(message, str(shrink.note()))
    if rec is not None:
        rec.failure(case, output=output, diagnosis=diagnosis, final=final, message=message, key=key)
        if not final:  # diagnosed later only if hypothesis cannot replay it (Recorder.settle_unreplayed)
            rec.unreplayed = (
                case,
                output,
                message,
                lambda: unreplayed(diagnose(impl, case, caps, output), wrong),
            )
    raise keyed_class(exc, key)(message)


def _check_array(
    value: Any, what: str, shape: tuple[int, ...], dtype: str, case: Case, impl: Implementation
) -> np.ndarray:
    __tracebackhide__ = True
    output = what.rsplit("-> ", 1)[-1]
    if not isinstance(value, np.ndarray):
        fail(
            case,
            impl,
            f"{what} is a {type_name(value)}, but should be a numpy.ndarray "
            f"of shape {shape} and dtype {dtype} [{case.describe()}]",
            output=output,
            exc=ContractViolation,
            wrong=True,
            kind="type",
        )
    if value.shape != shape:
        fail(
            case,
            impl,
            f"{what}.shape={value.shape}, but should be {shape} [{case.describe()}]{shape_hint(case, what)}",
            output=output,
            exc=ContractViolation,
            wrong=True,
            kind="shape",
        )
    if (
        (value.dtype.kind in "fc" or dtypes.is_half(value.dtype))
        and not np.all(np.isfinite(value))
        and finite_inputs(case)
        and not _overflow_explains(case, impl, output, value)
    ):
        bad = np.argwhere(~np.isfinite(value))
        first = tuple(int(i) for i in bad[0])
        fail(
            case,
            impl,
            f"{what} contains {value[first]!r} at index {first} ({len(bad)} of {value.size} elements are "
            f"NaN or inf) for finite inputs [{case.describe()}]",
            output=output,
            exc=ContractViolation,
            wrong=True,
            kind="non-finite",
        )
    return value


def _overflow_explains(case: Case, impl: Implementation, output: str, value: np.ndarray) -> bool:
    """Whether every NaN and inf of ``value`` (the output ``output`` of a sum: a convolution, a pool,
    a dense layer) is one a correct evaluation can give by overflowing in the declared accumulation
    dtype (``tolerance.overflow_explains``): a float32 average pool that adds a window of values
    near the largest float32 before dividing. The comparison with the oracle then judges the rest."""
    op = case.op
    if op.magnitude is not None or op.is_loss or output not in (*op.outputs, *op.grads):
        return False
    rec = recording.current()
    caps = rec.caps if rec is not None and rec.caps is not None else impl.capabilities
    try:
        if output in op.outputs:
            expected = {output: oracle_forward("scipy", case, caps)}
            scale = {output: oracle_forward("scipy", case, caps, absolute=True)}
        else:
            expected = oracle_backward("scipy", case, caps)
            scale = oracle_backward("scipy", case, caps, absolute=True)
    except NotImplementedError:
        return False
    k = op.reduction_lengths(case.shapes(), case.params)[output]
    got = np.asarray(value, dtype=np.float64)
    explained = tolerance.overflow_explains(
        got, scale[output], expected[output], k, case.dtype, accumulation(case, caps)
    )
    return bool(np.all(explained[~np.isfinite(got)]))


def type_name(value: Any) -> str:
    """``module.Type`` of a returned object (a sandbox ``Foreign`` marker carries its own)."""
    if hasattr(value, "type_name"):
        return str(value.type_name)
    return f"{type(value).__module__}.{type(value).__name__}"


def shape_hint(case: Case, what: str) -> str:
    """The formula behind an output's expected shape, for shape-mismatch messages."""
    if not what.endswith(".y") and "forward" not in what:
        return ""
    family = case.op.family
    if family == "conv":
        return (
            "; OH = floor((H + top + bottom - dilation*(KH-1) - 1) / stride) + 1, likewise every spatial axis"
        )
    if family == "linear":
        return "; y is (N, out) with w of shape (out, in): y = x w^T + b"
    if family == "flatten":
        return "; y is (N, C*H*W...): every axis after the batch axis flattened, in C order"
    if family not in ("max_pool", "avg_pool"):
        return "; an element-wise layer returns an array of its input's shape"
    return (
        "; OH = floor (ceil if ceil_mode) of (H + top + bottom - dilation*(KH-1) - 1) / stride, plus 1, "
        "minus 1 if ceil_mode makes the last window start past the input and top padding"
    )


def geometry_note(case: Case) -> str | None:
    """For a window case whose strides do not tile the padded input (``spec.ops.geometry_of``): how to
    declare that an implementation assumes they do (the CS231n assignment's geometry); else ``None``."""
    op = case.op
    if not op.ndim or geometry_of(op, case.shapes(), case.params) == "exact":
        return None
    return (
        f"note: this {op.name} case's stride does not tile the padded input "
        "((size + pads - dilation*(k-1) - 1) % stride != 0 on some axis); if the implementation assumes "
        f'it does, as the CS231n assignment does, declare it: CONVCHECK_CAPABILITIES = {{"{op.name}": '
        '{"geometry": "exact"}}, or check under the course contract (--contract course)'
    )


@contextlib.contextmanager
def _geometry_noted(case: Case) -> Iterator[None]:
    """Add ``geometry_note`` to an exception the implementation raises on a case it may not expect."""
    try:
        yield
    except Exception as e:
        with contextlib.suppress(AttributeError, TypeError):  # the case it raised on, for its record
            e.convcheck_case = case  # type: ignore[attr-defined]
        note = geometry_note(case)
        if note is not None:
            e.add_note(note)
        raise


def call_forward(impl: Implementation, case: Case) -> np.ndarray:
    """Run the forward function on fresh copies; check the result is an array of the right shape."""
    __tracebackhide__ = True
    with _geometry_noted(case):
        y = impl.functions[case.op.forward](*_fresh_args(case, case.forward_args()), **case.kwargs())
    return validate_forward(impl, case, y)


def validate_forward(impl: Implementation, case: Case, y: Any) -> np.ndarray:
    """Check a forward function's return value is an array of the right shape, dtype and finiteness."""
    __tracebackhide__ = True
    return _check_array(y, f"{case.op.forward}(...) -> y", case.output_shape(), case.dtype, case, impl)


def call_backward(impl: Implementation, case: Case) -> Outputs:
    """Run the backward function on fresh copies; return ``{grad name: array}``."""
    __tracebackhide__ = True
    with _geometry_noted(case):
        out = impl.functions[str(case.op.backward)](*_fresh_args(case, case.backward_args()), **case.kwargs())
    return validate_backward(impl, case, out)


def validate_backward(impl: Implementation, case: Case, out: Any) -> Outputs:
    """Check a backward function's return value (a gradient, or a tuple of them, ``db`` ``None``
    exactly when there is no bias); return ``{grad name: array}``."""
    __tracebackhide__ = True
    op = case.op
    names = op.grads
    if len(names) == 1:
        values: tuple[Any, ...] = (out,)
    else:
        if not isinstance(out, tuple | list) or len(out) != len(names):
            got = f"{type(out).__name__} of length {len(out)}" if isinstance(out, tuple | list) else type(out)
            fail(
                case,
                impl,
                f"{op.backward} returned {got}, but should return a tuple ({', '.join(names)}) "
                f"[{case.describe()}]",
                exc=ContractViolation,
                kind="structure",
            )
        values = tuple(out)
    result: Outputs = {}
    for name, value in zip(names, values, strict=True):
        source = case.inputs.get(name[1:]) if name != "dx" else case.inputs["x"]
        if name == "db" and case.inputs.get("b") is None:
            if value is not None:
                fail(
                    case,
                    impl,
                    f"{op.backward} returned db={type(value).__name__} for b=None; "
                    f"db must be None when there is no bias [{case.describe()}]",
                    output="db",
                    exc=ContractViolation,
                    kind="structure",
                )
            result[name] = None
            continue
        assert source is not None
        result[name] = _check_array(
            value, f"{op.backward}(...) -> {name}", source.shape, case.dtype, case, impl
        )
    return result


def call_loss(impl: Implementation, case: Case) -> Outputs:
    """Run a loss function on fresh copies; check it returns ``(loss, dz)``: a finite real scalar
    and an array of the logits' shape and dtype."""
    __tracebackhide__ = True
    op = case.op
    out = impl.functions[op.forward](*_fresh_args(case, case.forward_args()))
    if not isinstance(out, tuple | list) or len(out) != 2:
        got = (
            f"{type(out).__name__} of length {len(out)}" if isinstance(out, tuple | list) else type_name(out)
        )
        fail(
            case,
            impl,
            f"{op.forward} returned {got}, but should return a tuple (loss, dz) [{case.describe()}]",
            exc=ContractViolation,
            kind="structure",
        )
    loss, dz = out
    try:
        scalar = np.asarray(loss)
        ok = scalar.ndim == 0 or scalar.size == 1
    except Exception:
        ok = False
    if not ok or not (scalar.dtype.kind in "fiu" or dtypes.is_half(scalar.dtype)):
        fail(
            case,
            impl,
            f"{op.forward} returned loss={type_name(loss)} {getattr(loss, 'shape', '')}, but the loss "
            f"should be a real scalar (a float or a 0-d array) [{case.describe()}]",
            output="loss",
            exc=ContractViolation,
            kind="type",
        )
    loss = _check_array(scalar.reshape(()), f"{op.forward}(...) -> loss", (), scalar.dtype.str, case, impl)
    dz = _check_array(dz, f"{op.forward}(...) -> dz", case.x.shape, case.dtype, case, impl)
    return {"loss": loss, "dz": dz}


def function_args(case: Case, fname: str) -> tuple[list[str], list[np.ndarray | None]]:
    """Names and arrays a contract function of the case's operation takes, in order."""
    op = case.op
    if fname == op.forward:
        return list(op.inputs), case.forward_args()
    return ["dy", *op.inputs], case.backward_args()


def call_function(impl: Implementation, case: Case, fname: str) -> Outputs:
    """Call the forward, backward or loss function ``fname`` through the validating wrappers;
    the outputs by name (``y``; the gradients; ``loss`` and ``dz``)."""
    __tracebackhide__ = True
    op = case.op
    if op.is_loss:
        return call_loss(impl, case)
    if fname == op.forward:
        return {"y": call_forward(impl, case)}
    return call_backward(impl, case)


def oracle_forward(oracle: str, case: Case, caps: Capabilities, *, absolute: bool = False) -> np.ndarray:
    """The oracle's float64 ``y``; with ``absolute``, the bound's ``S`` (``tolerance.error_scale``)."""
    if absolute:
        return tolerance.error_scale(case, case.op.forward, _oracle(oracle, case, caps))["y"]
    return oracles.call(
        oracle, case.op.forward, *case.forward_args(), semantics=semantics(case, caps), **case.kwargs()
    )


def oracle_backward(oracle: str, case: Case, caps: Capabilities, *, absolute: bool = False) -> Outputs:
    """The oracle's float64 gradients; with ``absolute``, the bound's ``S`` for each
    (``tolerance.error_scale``)."""
    op = case.op
    if absolute:
        return tolerance.error_scale(case, str(op.backward), _oracle(oracle, case, caps))
    out = oracles.call(
        oracle, str(op.backward), *case.backward_args(), semantics=semantics(case, caps), **case.kwargs()
    )
    values = out if len(op.grads) > 1 else (out,)
    return dict(zip(op.grads, values, strict=True))


def _oracle(oracle: str, case: Case, caps: Capabilities) -> Any:
    """``oracle(function, *arrays)``: the named oracle under the case's semantics and hyper-parameters."""

    def run(function: str, *arrays: np.ndarray | None) -> Any:
        return oracles.call(oracle, function, *arrays, semantics=semantics(case, caps), **case.kwargs())

    return run


def oracle_loss(oracle: str, case: Case) -> Outputs:
    """The oracle's float64 ``loss`` (0-d) and ``dz`` for a loss case."""
    loss, dz = oracles.call(oracle, case.op.forward, *case.forward_args())
    return {"loss": np.asarray(loss, dtype=np.float64).reshape(()), "dz": np.asarray(dz, dtype=np.float64)}


def loss_magnitudes(case: Case) -> Outputs:
    """``S`` for ``loss`` and ``dz`` (the spec's ``magnitude``, through ``tolerance.error_scale``)."""
    return tolerance.error_scale(case, case.op.forward, oracles.call)


exact_required = tolerance.exact_required
"""The answer must match bit for bit (``spec.tolerance.exact_required``, the rule the reproduction
scripts apply too)."""


def exact_combination(case: Case, caps: Capabilities) -> bool:
    """Whether a property combining outputs (sums of them, ``a*dy1 + b*dy2``, inner products in
    float64) may still demand bit-for-bit agreement: only when the implementation must be exact
    *and* the data are integers, so that the combination itself rounds nothing; never in a half
    dtype, whose exact outputs are themselves rounded integer sums (above 2048, or 256 in bfloat16)."""
    return exact_required(case, caps) and case.family in INTEGER_FAMILIES and not dtypes.is_half(case.dtype)


def compare(
    case: Case, name: str, got: np.ndarray, expected: np.ndarray, abs_sum: np.ndarray, caps: Capabilities
) -> tolerance.Comparison:
    """Measure ``got`` against ``expected`` under the tolerance policy for this case."""
    return within(case, name, got, expected, abs_sum, caps)


def override_factor(case: Case) -> float:
    """The factor of the user's tolerance override for this case (1 without one).

    Oracle-free identities (adjoint, finite differences) have their own bounds;
    a factor scales them too, an rtol/atol override does not apply to them.
    """
    o = tolerance.override_for(case.op_name, case.dtype)
    return 1.0 if o is None else o.factor_or_one


ORACLE_LABELS = ("got", "expected")
"""How a mismatch report names its two sides when one is the implementation's answer and the other
the oracle's (or the spec's definition): ``got`` is always the implementation's, ``expected`` always
the oracle's. A property comparing two answers of the implementation names them itself."""


def assert_matches(
    case: Case,
    what: str,
    comp: tolerance.Comparison,
    got: np.ndarray,
    expected: np.ndarray,
    impl: Implementation,
    labels: tuple[str, str] = ORACLE_LABELS,
) -> None:
    """Fail with a full mismatch report unless ``comp`` passed; ``labels`` name ``got`` and ``expected``
    (``ORACLE_LABELS`` only when ``expected`` is the oracle's)."""
    __tracebackhide__ = True
    if comp.passed:
        return
    fail(
        case,
        impl,
        mismatch_report(case, what, comp, got, expected, impl, labels),
        output=comp.name,
        wrong=True,
    )


def mismatch_report(
    case: Case,
    what: str,
    comp: tolerance.Comparison,
    got: np.ndarray,
    expected: np.ndarray,
    impl: Implementation,
    labels: tuple[str, str] = ORACLE_LABELS,
    fname: str | None = None,
) -> str:
    """NumPy-style mismatch report plus the case, small arrays and a reproduction (calling ``fname``,
    by default the forward for ``y`` and the backward otherwise); ``labels`` name the two sides."""
    if comp.mode == "override":
        rule = f"the user's tolerance override {comp.override} (the policy's bound replaced)"
    elif comp.exact:
        rule = "exact equality (integer data, direct algorithm)"
    else:
        rule = f"{comp.mode} bound (tolerance policy, spec/tolerance.py)"
        if comp.mode == "normwise":
            rule += " for the declared non-direct algorithm"
        if comp.override:
            rule += f", scaled by the user's override {comp.override}"
    lines = [
        f"{what} does not match: error ratio {comp.error_ratio:.3g} > 1 under {rule}",
        f"  case: {case.describe()}",
        f"  mismatched elements: {comp.mismatches} / {comp.size} "
        f"({100.0 * comp.mismatches / max(comp.size, 1):.1f}%); max abs error {comp.max_abs:.6g}, "
        f"max rel error {comp.max_rel:.6g}, max ULP {comp.max_ulp}",
        f"  worst at index {comp.worst_index}: {labels[0]} {comp.worst_got!r}, {labels[1]} "
        f"{comp.worst_expected!r} (bound {comp.worst_bound:.3g})",
    ]
    if not comp.aggregate_ok:
        lines.append(
            f"  aggregate errors: bias {comp.bias:.3g} (limit {comp.bias_limit:.3g}), "
            f"variance {comp.variance:.3g} (limit {comp.variance_limit:.3g}) over {comp.size} elements: "
            f"a systematic error (each limit fails correct code with probability "
            f"{tolerance.FALSE_ALARM:g}; spec/tolerance.py)"
        )
    if got.size <= SMALL:
        for name, arr in case.inputs.items():
            if arr is not None and arr.size <= SMALL:
                lines.append(f"  {name} = {_fmt(arr)}")
        if case.dy is not None:
            lines.append(f"  dy = {_fmt(case.dy)}")
        width = max(len(label) for label in labels)
        lines.append(f"  {labels[1]:<{width}} = {_fmt(expected)}")
        lines.append(f"  {labels[0]:<{width}} = {_fmt(got)}")
    if fname is None and comp.name == "y":
        fname = case.op.forward  # a wrong y is the forward's: reproduce the forward
    lines.append(reproduction(case, impl, fname=fname))
    return "\n".join(lines)


def _fmt(a: np.ndarray) -> str:
    return np.array2string(np.asarray(a), precision=6, separator=", ", max_line_width=200).replace(
        "\n", "\n      "
    )


def reproduction(case: Case, impl: Implementation, extra: str = "", fname: str | None = None) -> str:
    """A snippet rebuilding the case without hypothesis and printing what the implementation returns.

    ``extra`` holds further statements (already indented) that adjust ``case``,
    e.g. the one-hot ``dy`` of a routing probe. ``fname`` is the function called: by default
    the backward (a loss's one function).
    """
    p = case.params
    shapes = case.shapes()
    op = case.op
    extra = own_arrays(case) + extra
    if op.is_loss:
        call = f"impl.functions[{op.forward!r}](*case.forward_args())"
    elif fname == op.forward:
        call = f"impl.functions[{op.forward!r}](*case.forward_args(), **case.kwargs())"
    else:
        call = f"impl.functions[{op.backward!r}](*case.backward_args(), **case.kwargs())"
    return (
        "  reproduce:\n"
        "    from convcheck.impls.registry import load\n"
        f"    from convcheck.spec.params import {type(p).__name__}\n"
        "    from convcheck.tests.values import make_case\n"
        f"    case = make_case({case.op_name!r}, {p!r}, {shapes!r}, {case.dtype!r}, "
        f"{case.family!r}, seed={case.seed}, layout={case.layout!r})\n"
        f"{extra}"
        f"    impl = load({impl.source if is_file_source(impl.source) else impl.name!r})\n"
        f"    print({call})"
    )


def own_arrays(case: Case) -> str:
    """Statements (indented) giving a case cut from another (``neighbours.CUT``) the arrays it holds
    where ``make_case`` draws others; empty for any other case."""
    if not case.notes.get(neighbours.CUT):
        return ""
    spec = recording.case_spec(case)
    if not spec["arrays"]:
        return ""
    given = ", ".join(f"{k}=np.array({v!r}, dtype={case.dtype!r})" for k, v in spec["arrays"].items())
    lines = f"    import numpy as np\n    from convcheck.spec.case import with_inputs\n    case = with_inputs(case, {given})\n"
    if spec["arrays_omitted"]:
        lines += f"    # too large to spell out here: {', '.join(spec['arrays_omitted'])}, drawn by make_case instead\n"
    return lines


def ensure(
    condition: bool,
    message: str,
    *,
    case: Case | None = None,
    impl: Implementation | None = None,
    output: str | None = None,
    exc: type[AssertionError] = AssertionError,
    kind: str = "values",
    subject: str | None = None,
) -> None:
    """Fail with ``exc(message)`` (no assertion introspection noise) unless ``condition``.

    Given the failing ``case`` and ``impl``, the failure is diagnosed and recorded (``fail``, which
    also takes ``kind`` and ``subject``). ``exc`` is ``ContractViolation`` where the output breaks
    the contract's form (its dtype, say) rather than its values.
    """
    __tracebackhide__ = True
    if condition:
        return
    if case is not None and impl is not None:
        fail(case, impl, message, output=output, exc=exc, kind=kind, subject=subject)
    raise exc(message)


def require(impl: Implementation, *functions: str) -> None:
    """Skip as *unsupported* (kind ``missing``) unless the implementation provides every function named."""
    missing = [f for f in functions if not impl.provides(f)]
    if missing:
        recording.skip("missing", f"unsupported: {impl.name} does not provide {', '.join(missing)}")


def require_oracle(oracle: str, op_name: str, caps: Capabilities) -> None:
    """Skip when the oracle cannot follow the declared semantics (e.g. torch and ties='split')."""
    sem = contracts.oracle_semantics(caps.semantics(op_name))
    if not oracles.ORACLES[oracle].covers(op_name, sem):
        recording.skip("not covered", f"not covered: the {oracle} oracle cannot follow {sem}")


def require_dtype(caps: Capabilities, dtype: str, why: str) -> None:
    if dtype not in caps.dtypes:
        recording.skip(
            "unsupported", f"unsupported: {why} need {dtype}, declared dtypes are {list(caps.dtypes)}"
        )


def self_bounds(impl: Implementation, case: Case) -> dict[str, np.ndarray]:
    """``S`` for ``y`` and every gradient, from the implementation itself on absolute values.

    Oracle-free properties still need a scale for their tolerance. Computing it
    with the implementation keeps them independent of the oracles and of the
    declared semantics (a max-pool that routes ties its own way is scaled by its
    own routing: ``|dy|`` is routed through the real ``x``).
    """
    op = case.op
    if op.magnitude is not None:
        return {name: case.magnitude(name) for name in dict.fromkeys((*op.outputs, *op.grads))}
    absolute = {k: (None if v is None else np.abs(v)) for k, v in case.inputs.items()}
    if op.family == "max_pool":
        absolute["x"] = case.x
    abs_case = with_inputs(case, dy=None if case.dy is None else np.abs(case.dy), **absolute)
    out: dict[str, np.ndarray] = {}
    if impl.provides(op.forward):
        out["y"] = np.abs(call_forward(impl, with_inputs(case, **{k: absolute[k] for k in op.inputs})))
    if op.backward is not None and impl.provides(op.backward):
        out.update({k: np.abs(v) for k, v in call_backward(impl, abs_case).items() if v is not None})
    return out


def within(
    case: Case,
    name: str,
    got: np.ndarray,
    expected: np.ndarray,
    abs_sum: np.ndarray,
    caps: Capabilities,
    *,
    factor: float = 1.0,
    exact: bool | None = None,
) -> tolerance.Comparison:
    """Like ``compare``, with the bound multiplied by ``factor`` (two computed sides, say);
    ``exact`` overrides whether bitwise equality is demanded (``exact_required`` by default).

    Two computed sides (``factor`` above 1) are bounded as if every sum were kept in the storage
    dtype: in half precision each side's elements are rounded to it and then combined (summed
    per channel, split by batch, ``a dy1 + b dy2``), which costs ``u`` of the storage times
    ``S``, not times the result. One side against an oracle gets the declared accumulation."""
    k = case.op.reduction_lengths(case.shapes(), case.params)[name]
    return tolerance.compare(
        name,
        got,
        expected,
        abs_sum,
        k,
        case.dtype,
        exact=exact_required(case, caps) if exact is None else exact,
        algorithm=caps.algorithm,
        scale=factor,
        override=tolerance.override_for(case.op_name, case.dtype),
        accumulate=accumulation(case, caps) if factor == 1.0 else None,
        gradual_underflow=case.op.magnitude is None,  # a sum of products, not a transcendental formula
    )


def accumulation(case: Case, caps: Capabilities) -> str:
    """The dtype the implementation keeps this case's sums in (``spec.dtypes.accumulation_dtype``)."""
    return dtypes.accumulation_dtype(case.dtype, caps.accumulate)


def forward_at_fault(case: Case, impl: Implementation, caps: Capabilities, found_by: str) -> None:
    """Blame the function at fault: before a backward-side property (adjoint, finite differences,
    batch independence, linearity; a loss's gradient identities) reports its failure, compare the
    forward (a loss's value) with the oracle at the failing case. When that is wrong, fail against
    the forward, saying which property found it, with a reproduction that calls the forward;
    otherwise return and let the property report.
    """
    __tracebackhide__ = True
    op = case.op
    oracle = next(
        (o for o in oracles.ORACLES if oracles.ORACLES[o].covers(op.name, semantics(case, caps))), None
    )
    if oracle is None or not impl.provides(op.forward):
        return
    if op.is_loss:
        name, got = "loss", call_loss(impl, case)["loss"]
        expected, scale = oracle_loss(oracle, case)["loss"], case.magnitude("loss")
    else:
        name, got = "y", call_forward(impl, case)
        expected = oracle_forward(oracle, case, caps)
        scale = oracle_forward(oracle, case, caps, absolute=True)
    comp = compare(case, name, got, expected, scale, caps)
    if comp.passed:
        return
    what = (
        f"the forward is wrong: {found_by} failed on this case, and here {op.forward} {name} "
        f"disagrees with the {oracle} oracle, so the fault is in {op.forward} (fix it first);"
    )
    fail(case, impl, mismatch_report(case, what, comp, got, expected, impl, fname=op.forward), output=name)


# --------------------------------------------------------------------------- kinks (spec/contracts.py)


def kink_verdict(
    case: Case, caps: Capabilities, name: str, got: np.ndarray, expected: np.ndarray
) -> contracts.Verdict | None:
    """What a backward output that does not match the contract's is, at the kinks of ReLU and
    max-pool (``spec.contracts``): ``None`` when the declaration accepts it, else a ``Verdict`` whose
    kind is ``defect`` (wrong away from the kinks), ``convention`` or ``kink defect``."""
    op = case.op
    defect = contracts.Verdict(contracts.DEFECT, op.name, "", "wrong away from the kinks")
    if name != "dx" or not op.kinked:
        return defect
    if op.family == "relu":
        x = case.x
        if np.any((got != expected) & (x != 0)):
            return defect
        slack = 4 * tolerance.unit_roundoff(case.dtype)
        return contracts.relu_verdict(x, case.dy, got, caps.value(op, "derivative_at_zero"), slack)
    return _pool_kink_verdict(case, caps, got)


def _pool_kink_verdict(case: Case, caps: Capabilities, got: np.ndarray) -> contracts.Verdict | None:
    """The verdict of a max-pool ``dx`` by the tie rule it follows (``pool_tie_rule``)."""
    rule = pool_tie_rule(case, got, caps.value(case.op, "ties"), semantics(case, caps))
    if rule is None:
        return contracts.Verdict(contracts.DEFECT, case.op.name, "", "wrong away from the kinks")
    return contracts.tie_rule_verdict(case.op.name, rule, caps.value(case.op, "ties"))


def pool_tie_rule(
    case: Case, got: np.ndarray, prefer: str = "first", declared: dict[str, Any] | None = None
) -> str | None:
    """The tie rule a max-pool ``dx`` follows: ``first``, ``last``, ``split`` or ``all`` when it matches
    the scipy oracle under that rule; ``any`` when it is some other convex combination (it differs
    from the first-maximum answer only on cells holding a tied window maximum, and every channel hands
    on its whole gradient: a necessary condition; ``max_routing`` checks each window exactly); else
    ``None`` (a defect). The preferred (declared) rule is tried first: without ties every
    rule gives the same answer."""
    op = case.op
    dy, x = np.asarray(case.dy, dtype=np.float64), case.x.astype(np.float64)
    u = tolerance.unit_roundoff(case.dtype)
    got64 = got.astype(np.float64)
    answers = {}
    computable = ("first", "last", "split", "all")
    for rule in sorted(computable, key=lambda r: r != prefer):
        sem = {**(declared or {}), "ties": rule}
        expected = oracles.call("scipy", str(op.backward), dy, x, semantics=sem, **case.kwargs())
        scale = oracles.call("scipy", str(op.backward), np.abs(dy), x, semantics=sem, **case.kwargs())
        answers[rule] = expected
        if np.all(np.abs(got64 - expected) <= 8 * u * scale):
            return rule
    windows = pool_windows(x, case.params)
    tied = (windows == windows.max(axis=-1, keepdims=True)).sum(axis=-1) > 1
    tied_values = set(np.unique(windows.max(axis=-1)[tied]).tolist())
    moved = np.abs(got64 - answers["first"]) > 8 * u * np.abs(answers["first"]).max(initial=1.0)
    spatial = tuple(range(2, x.ndim))
    conserved = np.allclose(got64.sum(axis=spatial), dy.sum(axis=spatial), rtol=16 * u, atol=16 * u)
    if conserved and all(v in tied_values for v in x[moved].tolist()):
        return "any"
    return None


def excused_at_kink(
    case: Case,
    impl: Implementation,
    caps: Capabilities,
    contract: str,
    message: str,
    got: np.ndarray | None = None,
) -> bool:
    """For a failing check of ReLU or max-pool: whether the backward's ``dx`` (``got``, else called)
    differs from the contract's only at kinks, by a declared, conventional or kink-defect answer
    (``kink_verdict``). Such an answer is reported by ``at_kink`` (under the library contract that
    fails with ``message``) and ``True`` comes back, so the caller does not fail it as a defect;
    ``False`` when ``dx`` is the contract's own answer or wrong away from the kinks."""
    __tracebackhide__ = True
    op = case.op
    if not op.kinked or case.dy is None:
        return False
    got = call_backward(impl, case)["dx"] if got is None else got
    if op.family == "max_pool":
        declared = caps.value(op, "ties")
        # the declared answer, unless it is "all", which fails the identities knowingly
        if declared != "all" and pool_tie_rule(case, got, declared, semantics(case, caps)) == declared:
            return False
    elif np.array_equal(got, oracle_backward("scipy", case, caps)["dx"]):
        return False
    verdict = kink_verdict(case, caps, "dx", got, oracle_backward("scipy", case, caps)["dx"])
    if verdict is not None and verdict.kind == contracts.DEFECT:
        return False
    if verdict is not None:
        at_kink(case, impl, verdict, contract, message, output="dx")
    return True


def at_kink(
    case: Case,
    impl: Implementation,
    verdict: contracts.Verdict,
    contract: str,
    message: str,
    output: str | None = None,
) -> None:
    """Report a convention or a kink defect under the run's ``contract``: under the course contract
    it is noted in the test's recorder (a note, or a warning) and the check goes on; under the
    library contract it fails with ``message`` and the verdict's line (how to declare it)."""
    __tracebackhide__ = True
    if contract == contracts.COURSE:
        rec = recording.current()
        if rec is not None:
            rec.kink(verdict.to_dict(), verdict.line(contract), case.describe())
        return
    fail(case, impl, with_cause(message, verdict.line(contract)), output=output, kind=f"kink {verdict.kind}")

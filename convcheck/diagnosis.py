"""Naming the likely mistake behind a failing check, by testing known mistakes on the failing case.

When a check fails, its (shrunk) case is handed to ``diagnose``. It runs the
implementation on that case once more, observing what it returns and what it
does, and tests two kinds of hypotheses:

* *behaviours*, observed directly: inputs modified in place, outputs aliasing
  inputs, float32 returned as float64, an answer that depends on the memory
  layout, or one that changes from call to call;
* *value mistakes* from the catalogue (``convcheck.oracles.mistakes``): each
  computes what an implementation making that mistake would return. A mistake
  explains the failure when its prediction differs from the right answer on
  this case *and* reproduces the implementation's output within the tolerance
  policy (``MATCH_SCALE`` times the bound, as two computed sides are compared),
  for every output it changes. A prediction may hold NaN or inf (an unstable
  formula evaluated in the case's dtype): the implementation must then be
  non-finite exactly there, and within the bound everywhere else;
* a *fallback behaviour*, when no catalogue entry matches: NaN or inf for
  finite inputs where the right answer is finite (an overflow of some kind).

The outputs are a layer's ``y`` and gradients, or a loss's ``loss`` and
``dz``; the error scale ``S`` is the oracle on absolute values, or the spec's
magnitude (``Case.magnitude``) for the operations that define one (activations,
losses). The diagnosis (the implementation's calls included) runs with NumPy's
floating-point warnings silenced, so that an overflow shows as the inf or NaN
it gives, whatever the warnings filter says.

Every hypothesis consistent with the evidence is reported, ranked (``Diagnosis.causes``):

* a behaviour does not exclude a value mistake: the value mistakes are tested
  on the outputs cast to the case's dtype whatever behaviours were seen, so a
  max-pool padding with zeros *and* returning float64 gets both named;
* each cause says how much of each wrong output's error it explains (the
  share of ``sum |got - expected|`` that its prediction removes: all of it
  where it reproduces the output); the causes that account for the failing
  output come first, then by the mean share, behaviours before value
  mistakes at equal share (a layout misread explains the whole error as a
  behaviour), then in catalogue order;
* where no single mistake explains every wrong output whole, pairs of
  mistakes composed (``mistakes.composed``: zero padding on top of a
  geometry mistake) are tested, and one that does is named, with the share
  each part explains alone.

When several value mistakes reproduce the case equally, the implementation
is probed with cases chosen to separate them (``probes``): the siblings (the
same case with a boolean hyper-parameter toggled, the padding mirrored or
widened), then the case with a random ``dy`` (a one-hot ``dy`` hides where the
other windows' gradients go) and with ``x`` distinct and all negative or all
positive. Each probe is one call per function needed; a candidate whose
prediction disagrees with the implementation on a probe is dropped, and
probing stops once one is left. Candidates no probe separates are named
together ("cannot tell apart X and Y on this evidence"). When the
implementation is right on the case itself (the check failed on a case
derived from it, such as ``loss_batch_mean``'s batch repeated twice, and a
batch of one hides a missing ``1/N``), the case with its batch repeated twice
is diagnosed instead. A diagnosis is only ever stated when a hypothesis
reproduces the implementation's output; otherwise the answer is "no known
mistake matches".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .oracles import mistakes
from .spec import InvalidConfiguration, dtypes, tolerance
from .spec.case import Case, finite_inputs, with_inputs

if TYPE_CHECKING:
    from .impls.registry import Implementation
    from .spec import Capabilities

MATCH_SCALE = 2.0
"""Bound multiplier when matching an implementation against a mistake's prediction."""

REPEATS = 2
"""Extra calls on identical inputs, to see whether the answer changes from call to call."""


@dataclass(frozen=True)
class Cause:
    """One hypothesis consistent with the evidence, and how much of the error it explains.

    ``kind`` is ``"mistake"`` (a catalogue entry reproducing the outputs it
    changes), ``"combination"`` (two catalogue mistakes composed reproduce what
    neither does alone; ``parts`` holds each one's share alone) or
    ``"behaviour"`` (observed on the implementation: ``seen`` says what).
    ``explains`` maps each wrong output to the share of its error accounted
    for: ``1 - sum|got - predicted| / sum|got - expected|``, exactly 1 where
    the prediction reproduces the output within the tolerance policy.
    """

    slug: str
    kind: str
    explanation: str
    explains: tuple[tuple[str, float], ...] = ()
    parts: tuple[tuple[str, float], ...] = ()
    seen: str = ""

    def share(self) -> float:
        """The mean explained share over the wrong outputs (0 when none is wrong or it explains none)."""
        return sum(v for _, v in self.explains) / len(self.explains) if self.explains else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "kind": self.kind,
            "explanation": self.explanation,
            "share": round(self.share(), 4),
            "explains": {k: round(v, 4) for k, v in self.explains},
            "parts": {k: round(v, 4) for k, v in self.parts},
            "seen": self.seen,
        }


@dataclass(frozen=True)
class Diagnosis:
    """The outcome: the named mistake (``slug``) or ``None`` when no known mistake matches.

    ``causes`` ranks every hypothesis consistent with the evidence, the named one
    first (``alternatives`` are the others' slugs); ``undecided`` names the top
    candidates that neither the case nor the separating probes (``probes`` of
    them ran) could tell apart.
    """

    slug: str | None
    explanation: str
    alternatives: tuple[str, ...] = ()
    tested: int = 0
    causes: tuple[Cause, ...] = ()
    undecided: tuple[str, ...] = ()
    probes: int = 0

    def line(self) -> str:
        """``likely cause: <slug>: <explanation> (explains ...); also consistent: ...`` or
        ``likely cause: no known mistake matches (...)``."""
        return line_of(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "explanation": self.explanation,
            "alternatives": list(self.alternatives),
            "tested": self.tested,
            "causes": [c.to_dict() for c in self.causes],
            "undecided": list(self.undecided),
            "probes": self.probes,
        }


def line_of(d: Mapping[str, Any]) -> str:
    """The one-line text of a diagnosis given as its ``to_dict()`` (as results record it)."""
    if not d.get("slug"):
        return f"likely cause: no known mistake matches ({d.get('explanation', '')})"
    return f"likely cause: {d['slug']}: {d.get('explanation', '')}{ranking(d)}"


def ranking(d: Mapping[str, Any]) -> str:
    """What follows the named cause in its line: how much of the error it explains, the other
    consistent causes with theirs, and the candidates nothing could tell apart. A diagnosis recorded
    before causes were ranked lists its alternatives."""
    causes = d.get("causes") or []
    if not causes:
        alternatives = d.get("alternatives") or []
        return f" (also consistent with: {', '.join(alternatives)})" if alternatives else ""
    head = _explained(causes[0])
    text = f" ({head})" if head else ""
    if len(causes) > 1:
        others = [f"{c['slug']} ({_explained(c) or 'observed: ' + c.get('seen', '')})" for c in causes[1:]]
        text += f"; also consistent: {', '.join(others)}"
    undecided = d.get("undecided") or []
    if len(undecided) > 1:
        text += f"; cannot tell apart {', '.join(undecided[:-1])} and {undecided[-1]} on this evidence"
    return text


def _explained(cause: Mapping[str, Any]) -> str:
    """``explains 100% of dx, 60% of y``; for a combination, what it and each part alone explain."""
    shares = [f"{_percent(v)} of {k}" for k, v in (cause.get("explains") or {}).items() if v > 0]
    if not shares:
        return ""
    if cause.get("kind") == "combination":
        alone = ", ".join(f"{k} {_percent(v)}" for k, v in (cause.get("parts") or {}).items())
        return f"together explain {', '.join(shares)}, which neither does alone; alone: {alone}"
    return f"explains {', '.join(shares)}"


def _percent(share: float) -> str:
    return f"{round(100 * share)}%"


# --------------------------------------------------------------------------- observing the implementation


@dataclass
class Observation:
    """What the implementation did on a case: outputs (per output name) and behaviours."""

    outputs: dict[str, Any] = field(default_factory=dict)
    repeats: list[dict[str, Any]] = field(default_factory=list)
    contiguous: dict[str, Any] | None = None
    modified: list[str] = field(default_factory=list)
    aliased: list[str] = field(default_factory=list)
    raised: dict[str, str] = field(default_factory=dict)


def _named(case: Case, function: str, out: Any) -> dict[str, Any]:
    """A function's return value as ``{output name: value}``."""
    op = case.op
    if op.is_loss:
        if isinstance(out, tuple | list) and len(out) == len(op.outputs):
            return {k: v for k, v in zip(op.outputs, out, strict=True) if v is not None}
        return {}
    if function == op.forward:
        return {"y": out}
    if len(op.grads) == 1:
        return {op.grads[0]: out}
    if isinstance(out, tuple | list) and len(out) == len(op.grads):
        return {k: v for k, v in zip(op.grads, out, strict=True) if v is not None}
    return {}


def _call(
    impl: Implementation, case: Case, function: str, layout: str
) -> tuple[dict[str, Any], list[Any], list[Any]]:
    """Call ``function`` on fresh copies in ``layout``: ``(outputs, originals, arguments after the call)``."""
    from .tests.values import fresh

    originals = case.forward_args() if function == case.op.forward else case.backward_args()
    args = [fresh(a, layout) for a in originals]
    out = impl.functions[function](*args, **case.kwargs())
    return _named(case, function, out), originals, args


def _aliases(value: np.ndarray, arg: np.ndarray, name: str) -> bool:
    """An output shares memory with input ``name``: here, or in the sandbox worker that ran the
    implementation (``convcheck.sandbox`` marks such outputs with ``aliased_input``)."""
    return bool(np.shares_memory(value, arg)) or getattr(value, "aliased_input", None) == name


def observe(impl: Implementation, case: Case) -> Observation:
    """Run every function the implementation provides for ``case``'s operation, watching it."""
    obs = Observation()
    op = case.op
    for function in op.functions:
        if not impl.provides(function):
            continue
        arg_names = list(op.inputs) if function == op.forward else ["dy", *op.inputs]
        try:
            outputs, originals, args = _call(impl, case, function, case.layout)
        except Exception as e:
            obs.raised[function] = f"{type(e).__name__}: {e}"
            continue
        obs.outputs.update(outputs)
        for name, before, after in zip(arg_names, originals, args, strict=True):
            if before is not None and not np.array_equal(before, after, equal_nan=True):
                obs.modified.append(f"{function} modified its input {name}")
            for oname, value in outputs.items():
                if isinstance(value, np.ndarray) and after is not None and _aliases(value, after, name):
                    obs.aliased.append(f"{function}'s output {oname} shares memory with its input {name}")
        for i in range(REPEATS):
            try:
                again = _call(impl, case, function, case.layout)[0]
            except Exception:
                continue
            while len(obs.repeats) <= i:
                obs.repeats.append({})
            obs.repeats[i].update(again)
        if case.layout != "contiguous":
            try:
                plain = _call(impl, case, function, "contiguous")[0]
            except Exception:
                continue
            obs.contiguous = {**(obs.contiguous or {}), **plain}
    return obs


# --------------------------------------------------------------------------- the right answer


def absolute(case: Case) -> Case:
    """``case`` on absolute values: the error scale ``S`` of the tolerance policy.

    Max pooling keeps the real ``x`` so that the same cells win; its ``dy`` is made absolute.
    """
    arrays = {k: (None if v is None else np.abs(v)) for k, v in case.inputs.items()}
    if case.op.family == "max_pool":
        arrays["x"] = case.x
    return with_inputs(case, dy=None if case.dy is None else np.abs(case.dy), **arrays)


@dataclass
class Reference:
    """The right outputs of a case, their error scales and reduction lengths."""

    case: Case
    expected: dict[str, np.ndarray]
    abs_sum: dict[str, np.ndarray]
    accumulate: str | None = None
    """The dtype the implementation declares it keeps sums in (``None``: the case's dtype)."""

    def k(self, name: str) -> int:
        return self.case.op.reduction_lengths(self.case.shapes(), self.case.params)[name]

    def agree(self, name: str, got: Any, want: np.ndarray, scale_s: np.ndarray, factor: float = 1.0) -> bool:
        """``got`` equals ``want`` within the policy's bound at the case's dtype (shapes must agree)."""
        g = _numeric(got, want.shape)
        if g is None:
            return False
        comp = tolerance.compare(
            name,
            g,
            want,
            scale_s,
            self.k(name),
            self.case.dtype,
            scale=factor,
            accumulate=self.accumulate,
            gradual_underflow=self.case.op.magnitude is None,  # as the properties compare
        )
        return comp.passed

    def within_storage_sums(self, name: str, got: Any) -> bool:
        """``got`` is right within the bound of sums kept in the case's (half) dtype itself."""
        g = _numeric(got, self.expected[name].shape)
        if g is None:
            return False
        k = self.k(name)
        return tolerance.compare(name, g, self.expected[name], self.abs_sum[name], k, self.case.dtype).passed


def _numeric(got: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    """``got`` as a float64 array if it is a numeric array (or scalar) of ``shape``, else ``None``."""
    try:
        g = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    kind = np.asarray(got).dtype
    if g.shape != shape or not (np.issubdtype(kind, np.number) or dtypes.is_half(kind)):
        return None
    return g


def reference(case: Case, semantics: Mapping[str, Any], accumulate: str | None = None) -> Reference:
    """The oracle's outputs on ``case``, and their error scales: the oracle on the absolute values,
    or the spec's magnitudes where the operation defines them; ``accumulate`` is the declared
    accumulation dtype the bound assumes (the case's dtype when ``None``)."""
    expected = mistakes.outputs(case, semantics)
    if case.op.magnitude is not None:
        abs_sum = {name: case.magnitude(name) for name in expected}
    else:
        abs_sum = mistakes.outputs(absolute(case), semantics)
    return Reference(case, expected, abs_sum, accumulate)


# --------------------------------------------------------------------------- behaviours


@dataclass(frozen=True)
class Symptom:
    """A behavioural mistake: ``detect`` returns what was seen, or ``None``."""

    slug: str
    explanation: str
    detect: Callable[[Observation, Reference], str | None]


def _modified(obs: Observation, ref: Reference) -> str | None:
    return "; ".join(obs.modified) or None


def _aliased(obs: Observation, ref: Reference) -> str | None:
    return "; ".join(obs.aliased) or None


def _promoted(obs: Observation, ref: Reference) -> str | None:
    if ref.case.dtype != "float32":
        return None
    # A loss's scalar may be any real type (the contract fixes the dtype of arrays only).
    wide = [
        k
        for k, v in obs.outputs.items()
        if k != "loss" and isinstance(v, np.ndarray) and v.dtype == np.float64
    ]
    return f"{', '.join(wide)} came back float64 for float32 inputs" if wide else None


def _storage_sums(obs: Observation, ref: Reference) -> list[str]:
    """Outputs of a half-precision case declared to accumulate in float32 that are wrong under that
    bound and right under the bound of sums kept in the storage dtype."""
    if not dtypes.is_half(ref.case.dtype) or ref.accumulate in (None, ref.case.dtype):
        return []
    return [
        k
        for k, v in obs.outputs.items()
        if k in ref.expected
        and not ref.agree(k, v, ref.expected[k], ref.abs_sum[k])
        and ref.within_storage_sums(k, v)
    ]


def _accumulated_in_storage(obs: Observation, ref: Reference) -> str | None:
    names = _storage_sums(obs, ref)
    if not names:
        return None
    return (
        f"{', '.join(names)} err(s) as much as sums rounded to {ref.case.dtype} at every step, "
        f"beyond the declared {ref.accumulate} accumulation"
    )


def _layout_dependent(obs: Observation, ref: Reference) -> str | None:
    if obs.contiguous is None:
        return None
    for name, plain in obs.contiguous.items():
        got = obs.outputs.get(name)
        want = ref.expected.get(name)
        if got is None or want is None:
            continue
        s = ref.abs_sum[name]
        if ref.agree(name, plain, want, s) and not ref.agree(name, got, want, s):
            return f"{name} is right for contiguous inputs and wrong for {ref.case.layout} ones"
    return None


def _varies(obs: Observation) -> list[str]:
    """Outputs that differ between repeated calls on identical inputs."""
    names = []
    for name, first in obs.outputs.items():
        for again in obs.repeats:
            other = again.get(name)
            if other is None or not isinstance(first, np.ndarray) or not isinstance(other, np.ndarray):
                continue
            if first.shape != other.shape or not np.array_equal(first, other, equal_nan=True):
                names.append(name)
                break
    return names


def _uninitialised(obs: Observation, ref: Reference) -> str | None:
    """Varying outputs that are wrong: outside the bound, or nonzero where every term of the sum is
    zero (``S = 0``), which no summation order produces: leftover bits such as 4.7e-310. Or, in a
    convolution or dense layer, NaN or inf that no evaluation of the sum can produce (``_leftover_nan``):
    leftover NaN stays NaN whatever is added to it, so repeated calls can agree bit for bit."""
    for name in _varies(obs):
        want = ref.expected.get(name)
        calls = [obs.outputs[name], *(r[name] for r in obs.repeats if name in r)]
        if want is not None and any(not ref.agree(name, c, want, ref.abs_sum[name]) for c in calls):
            return f"{name} differs from call to call on identical inputs, beyond rounding"
        if want is not None and any(_nonzero_from_zeros(c, want, ref.abs_sum[name]) for c in calls):
            return f"{name} differs from call to call and is nonzero where every term it sums is zero"
    return _leftover_nan(obs, ref)


def _leftover_nan(obs: Observation, ref: Reference) -> str | None:
    """NaN or inf in a convolution's or dense layer's output for finite inputs where no partial sum of
    a correct evaluation can overflow (``K S`` within range): a sum of finite products then has no
    way to make them, so they were in the accumulator before the sum began."""
    if ref.case.op.family not in ("conv", "linear"):
        return None
    if not finite_inputs(ref.case):
        return None
    for name, got in obs.outputs.items():
        want = ref.expected.get(name)
        g = None if want is None else _numeric(got, want.shape)
        if g is None or want is None:
            continue
        possible = tolerance.overflow_possible(
            ref.abs_sum[name], want, ref.k(name), ref.case.dtype, ref.accumulate
        )
        bad = ~np.isfinite(g) & np.isfinite(want) & ~possible
        if bad.any():
            return (
                f"{name} has {int(bad.sum())} NaN or inf of {bad.size} for finite inputs whose sums cannot "
                "overflow: values left in the accumulator before the sum began"
            )
    return None


def _nonzero_from_zeros(got: Any, want: np.ndarray, scale: np.ndarray) -> bool:
    """Whether ``got`` is nonzero at an element whose every summed term is zero (``S == 0``)."""
    if not isinstance(got, np.ndarray) or got.shape != want.shape or np.shape(scale) != want.shape:
        return False
    empty = np.asarray(scale) == 0
    return bool(np.any(empty & (got != 0) & np.isfinite(got)))


def _reordered(obs: Observation, ref: Reference) -> str | None:
    varying = _varies(obs)
    return f"{', '.join(varying)} differ(s) bitwise from call to call, within rounding" if varying else None


SYMPTOMS: tuple[Symptom, ...] = (
    Symptom(
        "input_modified_in_place",
        "an input array is changed by the call (the contract forbids modifying inputs)",
        _modified,
    ),
    Symptom(
        "output_aliases_input",
        "an output is a view of (or the same array as) an input; outputs must be fresh arrays",
        _aliased,
    ),
    Symptom(
        "float32_promoted_to_float64",
        "float32 inputs come back as float64 outputs (computed in float64, never cast back)",
        _promoted,
    ),
    Symptom(
        "accumulated_in_storage_dtype",
        "half-precision sums kept in float16/bfloat16 (every partial sum rounded), while float32 "
        "accumulation is declared: keep the accumulator in float32 and round the result once",
        _accumulated_in_storage,
    ),
    Symptom(
        "uninitialised_accumulator",
        "results change from call to call and are wrong: an accumulator from np.empty, or other leftover state",
        _uninitialised,
    ),
    Symptom(
        "noncontiguous_input_misread",
        "the answer depends on the memory layout: strides assumed C-contiguous",
        _layout_dependent,
    ),
    Symptom(
        "nondeterministic_summation_order",
        "results change bitwise from call to call, though each is within tolerance (threads, atomics)",
        _reordered,
    ),
)


CONTRADICTED_BY = {"nondeterministic_summation_order": "uninitialised_accumulator"}
"""A behaviour left out when the one it names is seen: results that change within rounding cannot be
told from results that change and are wrong (the second is seen, the first is then not so)."""


def unreplayed(found: Diagnosis, wrong: bool) -> Diagnosis:
    """The diagnosis of a failure that passed when hypothesis replayed its input. After a wrong
    output (outside the bound, NaN, the wrong shape) that is itself the uninitialised-state
    symptom: the same input gave a wrong answer, then a right one. Calls made while diagnosing
    may all land within rounding, which alone reads as a reordered summation."""
    if not wrong or found.slug not in (None, "nondeterministic_summation_order"):
        return found
    symptom = next(s for s in SYMPTOMS if s.slug == "uninitialised_accumulator")
    seen = "the same input gave a wrong output, then passed when replayed"
    explanation = f"{symptom.explanation} ({seen})"
    cause = Cause(symptom.slug, "behaviour", explanation, seen=seen)
    return Diagnosis(symptom.slug, explanation, tested=found.tested, causes=(cause,))


def _non_finite(obs: Observation, ref: Reference) -> str | None:
    """Outputs holding NaN or inf where the right answer is finite, for finite inputs."""
    if not finite_inputs(ref.case):
        return None
    seen = []
    for name, got in obs.outputs.items():
        want = ref.expected.get(name)
        g = None if want is None else _numeric(got, want.shape)
        if g is None or want is None:
            continue
        bad = ~np.isfinite(g) & np.isfinite(want)
        if bad.any():
            seen.append(f"{name} has {int(bad.sum())} NaN or inf of {bad.size}")
    return "; ".join(seen) or None


FALLBACKS: tuple[Symptom, ...] = (
    Symptom(
        "non_finite_output",
        "NaN or inf for finite inputs where the right answer is finite: an intermediate overflows (exp of "
        "a large argument, log of 0, inf - inf); evaluate a stable form",
        _non_finite,
    ),
)
"""Behaviours named only when no catalogue entry explains the failure more precisely."""


# --------------------------------------------------------------------------- the environment

ENVIRONMENT: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (
        "python2_division_in_indices",
        (
            "slice indices must be integers",
            "only integers, slices",
            "object cannot be interpreted as an integer",
            "cannot be safely interpreted as an integer",
        ),
        "environment: code written for Python 2, where / of two ints gave an int; in Python 3 it gives a "
        "float, which cannot index, slice or size an array; use // for output sizes and indices",
    ),
    (
        "int_of_an_array",
        (
            "only length-1 arrays can be converted",
            "only 0-dimensional arrays can be converted",
            "only size-1 arrays can be converted",
        ),
        "environment: int() or float() of an array that is not a single number (NumPy 2 accepts only "
        "0-d arrays); take the element you mean (a[0], a.item()) or keep working with arrays",
    ),
    (
        "numpy_removed_alias",
        (
            "module 'numpy' has no attribute",
            "was removed in the numpy 2.0 release",
            "unexpected keyword argument",
        ),
        "environment: a NumPy name or keyword that this NumPy no longer has: np.int, np.float, np.bool "
        "(removed in 1.24: use int, float, bool or np.int64, np.float64), np.float_, np.NaN, np.product "
        "(removed in 2.0: np.float64, np.nan, np.prod), or a keyword a function dropped",
    ),
)
"""Failures that are not mistakes in the layer's arithmetic but code written for another Python or
NumPy: ``(slug, fragments of the exception message, explanation with the fix)``."""


def environment_cause(text: str) -> Diagnosis | None:
    """The environment problem an exception's text shows (see ``ENVIRONMENT``), or ``None``."""
    low = text.lower()
    for slug, fragments, explanation in ENVIRONMENT:
        for fragment in fragments:
            if fragment.lower() in low:
                return Diagnosis(slug, f"{explanation} (raised: {_raised_line(text, fragment)})")
    return None


def _raised_line(text: str, fragment: str) -> str:
    """The line of ``text`` holding ``fragment`` (the exception's own line), trimmed."""
    for line in text.splitlines():
        if fragment.lower() in line.lower():
            return line.strip().removeprefix("E").strip()[:160]
    return fragment


# --------------------------------------------------------------------------- value mistakes


def _prediction_matches(
    obs: Observation,
    ref: Reference,
    predicted: Mapping[str, np.ndarray],
    scale: Mapping[str, np.ndarray],
    output: str | None,
) -> bool:
    """Whether a variant is visible on the case and reproduces the implementation's outputs."""
    keys = [k for k in predicted if k in obs.outputs]
    if not keys or (output is not None and output not in keys):
        return False
    visible = [k for k in keys if not _same(ref, k, predicted[k], scale.get(k))]
    if (output is not None and output not in visible) or not visible:
        return False
    for k in keys:
        s = scale.get(k)
        if s is None or s.shape != predicted[k].shape:
            s = np.abs(predicted[k])
        if not _reproduces(ref, k, obs.outputs[k], predicted[k], s):
            return False
    return True


def _reproduces(ref: Reference, name: str, got: Any, predicted: np.ndarray, s: np.ndarray) -> bool:
    """``got`` is what the prediction says: non-finite exactly where the prediction is (NaN and inf
    alike, as which one comes out depends on the order of the mistaken operations), and within
    ``MATCH_SCALE`` times the bound everywhere else."""
    finite = np.isfinite(predicted)
    if finite.all():
        return ref.agree(name, got, predicted, s, MATCH_SCALE)
    g = _numeric(got, predicted.shape)
    if g is None or np.isfinite(g[~finite]).any():
        return False
    return not finite.any() or ref.agree(name, g[finite], predicted[finite], s[finite], MATCH_SCALE)


def _same(ref: Reference, name: str, predicted: np.ndarray, s: np.ndarray | None) -> bool:
    """The prediction cannot be told from the right answer at the case's precision."""
    want = ref.expected.get(name)
    if want is None or predicted.shape != want.shape:
        return False
    if not np.array_equal(np.isfinite(predicted), np.isfinite(want)):
        return False  # NaN or inf where the right answer has none (or the other way round)
    scale_s = ref.abs_sum[name] if s is None or s.shape != want.shape else np.maximum(s, ref.abs_sum[name])
    return ref.agree(name, predicted, want, np.where(np.isfinite(scale_s), scale_s, 0.0))


def _match(
    mistake: mistakes.Mistake, obs: Observation, ref: Reference, sem: Mapping[str, Any], output: str | None
) -> set[str] | None:
    """The outputs of the first variant of ``mistake`` that reproduces the implementation on
    ``ref.case``, or ``None`` when no variant does."""
    variants = mistake.variants(ref.case, sem)
    if not variants:
        return None
    scales = _scales(mistake, ref, sem, variants)
    for variant, scale in zip(variants, scales, strict=True):
        if _prediction_matches(obs, ref, variant, scale, output):
            return {k for k in variant if k in obs.outputs}
    return None


def _scales(
    mistake: mistakes.Mistake, ref: Reference, sem: Mapping[str, Any], variants: list[mistakes.Outputs]
) -> list[mistakes.Outputs]:
    """``S`` for each variant's outputs: the mistake on the case's absolute values, or, for an operation
    whose ``S`` the spec defines (and where absolute values would change the answer), the larger of the
    right answer's ``S`` and the prediction's own size."""
    if ref.case.op.magnitude is None:
        scales = mistake.variants(absolute(ref.case), sem)
        if len(scales) == len(variants):
            return scales
    out = []
    for var in variants:
        scale = {}
        for k, v in var.items():
            size = np.where(np.isfinite(v), np.abs(v), 0.0)
            right = ref.abs_sum.get(k)
            scale[k] = np.maximum(size, right) if right is not None and right.shape == v.shape else size
        out.append(scale)
    return out


def _wrong_outputs(obs: Observation, ref: Reference) -> set[str]:
    """The outputs the implementation gets wrong on the case (shape or values)."""
    return {
        k
        for k, v in obs.outputs.items()
        if k in ref.expected and not ref.agree(k, v, ref.expected[k], ref.abs_sum[k])
    }


def _consistent(mistake: mistakes.Mistake, obs: Observation, ref: Reference, sem: Mapping[str, Any]) -> bool:
    """On a sibling case: the mistake reproduces the implementation, or it cannot show and the
    implementation is right there."""
    if _match(mistake, obs, ref, sem, None) is not None:
        return True
    shown = any(
        not _same(ref, k, v, None)
        for var in mistake.variants(ref.case, sem)
        for k, v in var.items()
        if k in obs.outputs
    )
    if shown:
        return False
    return all(
        ref.agree(k, obs.outputs[k], ref.expected[k], ref.abs_sum[k])
        for k in obs.outputs
        if k in ref.expected
    )


def siblings(case: Case) -> list[Case]:
    """Cases next to ``case`` that tell similar mistakes apart: each boolean hyper-parameter
    toggled, the padding mirrored on every axis, and the padding widened by 2 on every side (a
    crop that is only wrong at zero padding against one hard-coded for a padding); same shapes,
    values family and seed."""
    from .tests.values import make_case

    p = case.params
    changes: list[dict[str, Any]] = [{k: not v} for k, v in p.kwargs().items() if isinstance(v, bool)]
    padding = p.kwargs().get("padding", ())
    mirrored = tuple(side for lo, hi in zip(padding[::2], padding[1::2], strict=True) for side in (hi, lo))
    if mirrored != padding:
        changes.append({"padding": mirrored})
    if padding:
        changes.append({"padding": tuple(side + 2 for side in padding)})
    out = []
    for change in changes:
        try:
            params = dataclasses.replace(p, **change)
            out.append(
                make_case(
                    case.op_name, params, case.shapes(), case.dtype, case.family, case.seed, case.layout
                )
            )
        except InvalidConfiguration:
            continue
    return out


def repeated_batch(case: Case) -> Case:
    """``case`` with its batch repeated twice: every input of a loss, a layer's ``x`` and ``dy`` (the
    weights are shared by the samples)."""
    batched = case.op.inputs if case.op.is_loss else ("x", "dy")
    arrays = {
        k: np.concatenate([v, v])
        for k, v in (*case.inputs.items(), ("dy", case.dy))
        if k in batched and v is not None
    }
    return with_inputs(case, **arrays)


def separating_inputs(case: Case) -> list[Case]:
    """The case with inputs chosen to tell apart mistakes its own values cannot: a random ``dy`` in
    place of the case's (a one-hot ``dy`` hides where the other windows' gradients go), then that
    ``dy`` with ``x`` distinct and all negative (a zero padding then wins, and no value ties), and
    distinct and all positive. Deterministic: seeded by the case's seed."""
    rng = np.random.default_rng(case.seed)
    dy = {} if case.dy is None else {"dy": rng.standard_normal(case.dy.shape).astype(case.dy.dtype)}
    out = [with_inputs(case, **dy)] if dy else []
    x = case.inputs.get("x")
    if x is not None and dtypes.is_float(x.dtype) and "x" in case.op.inputs and not case.op.is_loss:
        ranks = rng.permutation(x.size).reshape(x.shape) + 1.0
        out += [with_inputs(case, x=(sign * ranks).astype(x.dtype), **dy) for sign in (-1.0, 1.0)]
    return out


def probes(case: Case) -> list[Case]:
    """Every case tried, in order, to separate candidates: the siblings, then the separating inputs."""
    return [*siblings(case), *separating_inputs(case)]


@dataclass(frozen=True)
class Fit:
    """A catalogue mistake (or two composed) that reproduces the implementation on the case."""

    mistake: mistakes.Mistake
    explains: dict[str, float]
    changes_output: bool
    order: int
    parts: tuple[tuple[str, float], ...] = ()

    def key(self) -> tuple[bool, float]:
        """What ranks fits: changing the failing output first, then explaining more of the error."""
        share = sum(self.explains.values()) / len(self.explains) if self.explains else 0.0
        return (not self.changes_output, -round(share, 6))

    def complete(self) -> bool:
        """It explains every wrong output whole."""
        return bool(self.explains) and all(v == 1.0 for v in self.explains.values())

    def cause(self) -> Cause:
        kind = "combination" if self.parts else "mistake"
        return Cause(
            self.mistake.slug, kind, self.mistake.explanation, tuple(self.explains.items()), self.parts
        )


def fit(
    mistake: mistakes.Mistake,
    obs: Observation,
    ref: Reference,
    sem: Mapping[str, Any],
    output: str | None,
    wrong: set[str],
    order: int = 0,
) -> Fit | None:
    """How ``mistake`` accounts for the implementation's outputs on ``ref.case``: its variant that
    reproduces every output it predicts, preferring one that changes the failing ``output`` and then
    one explaining more wrong outputs; ``None`` when no variant reproduces them."""
    variants = mistake.variants(ref.case, sem)
    if not variants:
        return None
    best: Fit | None = None
    for variant, scale in zip(variants, _scales(mistake, ref, sem, variants), strict=True):
        if not _prediction_matches(obs, ref, variant, scale, None):
            continue
        keys = {k for k in variant if k in obs.outputs}
        changes = output is None or (
            output in keys and not _same(ref, output, variant[output], scale.get(output))
        )
        explains = {k: 1.0 if k in keys else 0.0 for k in _ordered(ref, wrong)}
        found = Fit(mistake, explains, changes, order)
        if best is None or found.key() < best.key():
            best = found
    return best


def _ordered(ref: Reference, names: set[str]) -> list[str]:
    """``names`` in the order the right answer lists its outputs."""
    return [k for k in ref.expected if k in names]


def share_alone(
    mistake: mistakes.Mistake, obs: Observation, ref: Reference, sem: Mapping[str, Any], wrong: set[str]
) -> float:
    """The largest mean share of the wrong outputs' error that one variant of ``mistake`` removes
    (``1 - sum|got - predicted| / sum|got - expected|``, at least 0), reproducing or not."""
    best = 0.0
    for variant in mistake.variants(ref.case, sem):
        shares = [_removed(obs.outputs[k], ref.expected[k], variant.get(k)) for k in _ordered(ref, wrong)]
        best = max(best, sum(shares) / len(shares) if shares else 0.0)
    return best


def _removed(got: Any, want: np.ndarray, predicted: np.ndarray | None) -> float:
    """The share of ``sum|got - want|`` that replacing ``want`` by ``predicted`` removes (finite cells)."""
    g = _numeric(got, want.shape)
    if g is None or predicted is None or predicted.shape != want.shape:
        return 0.0
    cells = np.isfinite(g) & np.isfinite(want) & np.isfinite(predicted)
    error = float(np.abs(g - want)[cells].sum())
    if error == 0.0:
        return 0.0
    return float(np.clip(1.0 - np.abs(g - predicted)[cells].sum() / error, 0.0, 1.0))


def combinations(
    obs: Observation, ref: Reference, sem: Mapping[str, Any], output: str | None, wrong: set[str]
) -> tuple[list[Fit], int]:
    """Pairs of catalogue mistakes that, composed (``mistakes.composed``), explain every wrong output
    whole, each with the share its parts explain alone; and how many pairs were tested."""
    catalogue = mistakes.for_operation(ref.case.op_name)
    found, tested = [], 0
    for i, first in enumerate(catalogue):
        for second in catalogue:
            both = mistakes.composed(first, second)
            if both is None:
                continue
            tested += 1
            got = fit(both, obs, ref, sem, output, wrong, order=i)
            if got is None or not got.complete() or not got.changes_output:
                continue
            parts = tuple((m.slug, share_alone(m, obs, ref, sem, wrong)) for m in (first, second))
            found.append(dataclasses.replace(got, parts=parts))
    return found, tested


def _in_case_dtype(obs: Observation, dtype: str) -> Observation:
    """``obs`` with its floating-point outputs cast to the case's dtype: value mistakes are tested on
    the values, whatever dtype they came back in (a promotion is a behaviour of its own)."""
    cast = {
        k: v.astype(dtype) if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.dtype != dtype else v
        for k, v in obs.outputs.items()
    }
    return dataclasses.replace(obs, outputs=cast)


def _outputs_on(impl: Implementation, case: Case, names: set[str]) -> Observation:
    """The implementation's outputs on ``case``: one call of each function producing one of ``names``."""
    op = case.op
    functions = {op.forward if (op.is_loss or name == "y") else op.backward for name in names}
    obs = Observation()
    for function in op.functions:
        if function in functions and impl.provides(function):
            try:
                obs.outputs.update(_call(impl, case, function, case.layout)[0])
            except Exception as e:
                obs.raised[function] = f"{type(e).__name__}: {e}"
    return _in_case_dtype(obs, case.dtype)


def _tied(fits: list[Fit]) -> list[Fit]:
    """The fits ranked first together (same key): the case cannot separate them."""
    return [f for f in fits if f.key() == fits[0].key()] if fits else []


def separate(
    fits: list[Fit], impl: Implementation, case: Case, sem: Mapping[str, Any]
) -> tuple[list[Fit], int, tuple[str, ...]]:
    """Probe the implementation until one of the top-ranked fits is left: on each probe (``probes``),
    keep the tied fits consistent with it (all of them if none is). Returns the fits, the number of
    probes run and the slugs still tied (empty when one is left)."""
    ranked = sorted(fits, key=lambda f: (f.key(), f.order))
    tied, rest = _tied(ranked), ranked[len(_tied(ranked)) :]
    runs = 0
    for probe in probes(case) if len(tied) > 1 else []:
        needed = {k for f in tied for var in f.mistake.variants(case, sem) for k in var}
        try:
            obs = _outputs_on(impl, probe, needed)
            ref = reference(probe, sem)
        except Exception:
            continue
        runs += 1
        tied = [f for f in tied if _consistent(f.mistake, obs, ref, sem)] or tied
        if len(tied) < 2:
            break
    undecided = tuple(f.mistake.slug for f in tied) if len(tied) > 1 else ()
    return [*tied, *rest], runs, undecided


def behaviour_explains(slug: str, obs: Observation, ref: Reference, wrong: set[str]) -> dict[str, float]:
    """The wrong outputs a behaviour accounts for whole: those right for contiguous inputs (a layout
    misread) or changing from call to call (leftover state); the other behaviours explain no value."""
    if slug == "noncontiguous_input_misread" and obs.contiguous is not None:
        fixed = {
            k
            for k, v in obs.contiguous.items()
            if k in wrong and ref.agree(k, v, ref.expected[k], ref.abs_sum[k])
        }
    elif slug == "uninitialised_accumulator":
        fixed = set(_varies(obs)) & wrong
    elif slug == "accumulated_in_storage_dtype":
        fixed = set(_storage_sums(obs, ref)) & wrong
    else:
        fixed = set()
    return {k: 1.0 if k in fixed else 0.0 for k in _ordered(ref, wrong)}


# --------------------------------------------------------------------------- entry point


def semantics_of(case: Case, caps: Capabilities) -> dict[str, Any]:
    """The declared semantic choices (convention, tie rule) the right answer follows."""
    return caps.semantics(case.op)


def diagnose(impl: Implementation, case: Case, caps: Capabilities, output: str | None = None) -> Diagnosis:
    """Name the known mistake that explains ``impl``'s failure on ``case``, if one does.

    ``output`` is the failing output (``y``, ``dx``, ...) when the failing
    check compared one; a value mistake must then change and reproduce it.
    Never raises: a problem while diagnosing is reported as the explanation.
    """
    try:
        # An overflow shows as the inf or NaN it gives (in the implementation, or in comparing with it),
        # never as a floating-point warning that a strict warnings filter turns into an error.
        with np.errstate(all="ignore"):
            return _diagnose(impl, case, caps, output)
    except Exception as e:  # a diagnosis must never hide the failure it explains
        return Diagnosis(None, f"the diagnosis itself failed: {type(e).__name__}: {e}")


def _diagnose(
    impl: Implementation, case: Case, caps: Capabilities, output: str | None, repeat: bool = True
) -> Diagnosis:
    sem = semantics_of(case, caps)
    obs = observe(impl, case)
    ref = reference(case, sem, dtypes.accumulation_dtype(case.dtype, caps.accumulate))
    values = _in_case_dtype(obs, case.dtype)
    wrong = _wrong_outputs(values, ref)
    tested = 0
    behaviours: list[Cause] = []
    for symptom in SYMPTOMS:
        tested += 1
        seen = symptom.detect(obs, ref)
        if seen and not any(b.slug == CONTRADICTED_BY.get(symptom.slug) for b in behaviours):
            explains = behaviour_explains(symptom.slug, obs, ref, wrong)
            explanation = f"{symptom.explanation} ({seen})"
            behaviours.append(
                Cause(symptom.slug, "behaviour", explanation, tuple(explains.items()), seen=seen)
            )
    fits: list[Fit] = []
    for order, mistake in enumerate(mistakes.for_operation(case.op_name)):
        tested += 1
        found = fit(mistake, values, ref, sem, output, wrong, order)
        if found is not None:
            fits.append(found)
    if wrong and not any(f.complete() for f in fits):
        pairs, count = combinations(values, ref, sem, output, wrong)
        tested += count
        fits += pairs
    if not behaviours and not any(f.changes_output for f in fits):
        return _unexplained(impl, case, caps, output, obs, ref, wrong, tested, repeat)
    named_first = min((f.key() for f in fits), default=None)
    if named_first is not None and all((False, -round(b.share(), 6)) > named_first for b in behaviours):
        fits, runs, undecided = separate(fits, impl, case, sem)  # a fit is named: it must stand alone
    else:
        runs, undecided = 0, ()
    causes = sorted(
        [*behaviours, *(f.cause() for f in fits)],
        key=lambda c: (not _changes(c, fits), -round(c.share(), 6), _tie_rank(c)),
    )
    top = causes[0]
    others = tuple(c.slug for c in causes[1:])
    return Diagnosis(top.slug, top.explanation, others, tested, tuple(causes), undecided, runs)


INFERRED_BEHAVIOURS = frozenset({"accumulated_in_storage_dtype"})
"""Behaviours read off a tolerance bound (right under a looser one), not seen in the outputs."""


def _tie_rank(cause: Cause) -> int:
    """Among causes explaining as much: a behaviour seen in the outputs first, then a mistake that
    reproduces them, then a behaviour only inferred from a bound (a catalogue mistake that predicts
    the very values, such as a float16 sum overflowing, says more than "sums were kept in float16")."""
    if cause.kind != "behaviour":
        return 1
    return 2 if cause.slug in INFERRED_BEHAVIOURS else 0


def _changes(cause: Cause, fits: list[Fit]) -> bool:
    """Whether a cause accounts for the failing output (every behaviour does: it is seen, not predicted)."""
    return cause.kind == "behaviour" or any(f.mistake.slug == cause.slug and f.changes_output for f in fits)


def _unexplained(
    impl: Implementation,
    case: Case,
    caps: Capabilities,
    output: str | None,
    obs: Observation,
    ref: Reference,
    wrong: set[str],
    tested: int,
    repeat: bool,
) -> Diagnosis:
    """No catalogue mistake or behaviour explains the case: a fallback behaviour, the case with its
    batch repeated twice, an environment problem the raised exception shows, or no known mistake."""
    for symptom in FALLBACKS:
        tested += 1
        seen = symptom.detect(obs, ref)
        if seen:
            explanation = f"{symptom.explanation} ({seen})"
            cause = Cause(symptom.slug, "behaviour", explanation, seen=seen)
            return Diagnosis(symptom.slug, explanation, tested=tested, causes=(cause,))
    where = "on this case"
    if repeat and not wrong and not obs.raised:
        again = _diagnose(impl, repeated_batch(case), caps, output, repeat=False)
        tested += again.tested
        if again.slug is not None:
            seen = "seen on this case with its batch repeated twice; the case itself comes out right"
            return dataclasses.replace(again, explanation=f"{again.explanation} ({seen})", tested=tested)
        where += " and on it with its batch repeated twice"
    for error in obs.raised.values():
        found = environment_cause(error)
        if found is not None:
            return dataclasses.replace(found, tested=tested)
    raised = "; ".join(f"{f} raised {e}" for f, e in obs.raised.items())
    why = f"{tested} hypotheses tested {where}" + (f"; {raised}" if raised else "")
    return Diagnosis(None, why, tested=tested)

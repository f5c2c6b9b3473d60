"""What one conformance test records while it runs: examples, values, errors and its failure.

A ``Recorder`` lives for one test (the ``record`` fixture of the pytest
plug-in). The test notes every example (``case``) and every comparison with
the tolerance policy (``comparison``); the failure sites of ``tests/checks.py``
note the failing example and its diagnosis (``failure``), reaching the
recorder of the running test through ``current()``. At teardown the recorder
becomes one JSON document (``to_dict``) that travels in the test report's
``user_properties``, so it crosses from pytest-xdist workers to the controller,
where reports are written.

A check may fail in several distinct ways (``convcheck.failure_keys``): hypothesis then replays
each way's shrunk example as a final one, and every one is kept (``failures``, smallest first),
each with its own key, counterexample, message and diagnosis. Two kept failures are one entry when
they have the same key, or when the diagnosis names the same catalogue mistake for both (one
mistake breaking ``dx`` and ``dw``): the entry then lists every output it broke (``outputs``).
``failure`` stays the one a single-failure reader shows: the smallest failure noted by a check
(``tests/checks.py::fail``), else ``None`` (the code under test raised).

Errors are kept per ``(output, dtype)``: the tests draw both dtypes inside one
hypothesis test, and a float32 error ratio says nothing about float64.

The hyper-parameter values a test exercised (``values``) are JSON texts
(``"[1, 2]"``, ``"true"``), so that a reader decodes them with ``json.loads``;
labels (``dtype``, ``values``, ``layout``, ``padding_kind``, ``ties``, ``bias``)
are plain strings.

A test that does not apply skips through ``skip(kind, reason)``: the kind
travels with the result as a typed field (``SKIP_KINDS``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from . import interrupts, pairs

if TYPE_CHECKING:
    from .spec import Capabilities

RATIO_EDGES: tuple[float, ...] = tuple(x / 2 for x in range(-20, 7))
"""``log10`` edges of the error-ratio histogram: ``1e-10`` to ``1e3`` in half decades.

Bin ``0`` counts ratios below the first edge (but above zero), bin ``i`` those
in ``[edge[i-1], edge[i])``, the last bin those at or above the last edge;
ratios of exactly zero (bitwise-equal outputs) are counted apart as ``zeros``.
"""

SKIP_KINDS = ("missing", "unsupported", "not covered")
"""Why a check did not run: the implementation lacks a function it needs (``missing``), declared
a feature or dtype unsupported (``unsupported``), or no oracle follows its declared semantics
(``not covered``). The first two make the result ``unsupported``, the last ``skipped``."""

SKIP_KIND_ATTRIBUTE = "convcheck_skip_kind"
"""The attribute of pytest's skip exception that carries the kind to the plug-in's report hook."""


def skip(kind: str, reason: str) -> NoReturn:
    """Skip the running test for ``reason``, of one of ``SKIP_KINDS``."""
    import pytest

    if kind not in SKIP_KINDS:
        raise ValueError(f"skip kind {kind!r} is not one of {SKIP_KINDS}")
    exc = pytest.skip.Exception(reason)
    setattr(exc, SKIP_KIND_ATTRIBUTE, kind)
    raise exc


def value_text(value: Any) -> str:
    """A hyper-parameter value as the coverage records it: JSON text (tuples as lists)."""
    return json.dumps(_plain(value))


EMBED_LIMIT = 4096
"""Largest array (in elements) whose values a counterexample carries verbatim."""


def ratio_bin(ratio: float) -> int:
    """The histogram bin of a positive error ratio (see ``RATIO_EDGES``)."""
    if math.isnan(ratio) or math.isinf(ratio):
        return len(RATIO_EDGES)
    lg = math.log10(ratio)
    for i, edge in enumerate(RATIO_EDGES):
        if lg < edge:
            return i
    return len(RATIO_EDGES)


class OutputStats:
    """Worst errors of one output (``y``, ``dx``, ...) in one dtype over a test's comparisons."""

    def __init__(self) -> None:
        self.comparisons = 0
        self.mistrusted = 0
        self.failed = 0
        self.error_ratio = 0.0
        self.max_abs = 0.0
        self.max_rel = 0.0
        self.max_ulp = 0
        self.k_max = 0
        self.modes: set[str] = set()
        self.overrides: set[str] = set()
        self.zeros = 0
        self.histogram = [0] * (len(RATIO_EDGES) + 1)
        self.elements = 0
        self.aggregate_judged = 0

    def add(self, comp: Any) -> None:
        """Fold one ``spec.tolerance.Comparison`` in."""
        self.comparisons += 1
        self.elements += comp.size
        self.aggregate_judged += int(comp.aggregate_judged)
        self.mistrusted += int(comp.mistrusted)
        self.failed += int(not comp.passed)
        self.error_ratio = max(self.error_ratio, comp.error_ratio)
        self.max_abs = max(self.max_abs, comp.max_abs)
        self.max_rel = max(self.max_rel, comp.max_rel)
        self.max_ulp = max(self.max_ulp, comp.max_ulp)
        self.k_max = max(self.k_max, comp.k)
        self.modes.add(comp.mode)
        if comp.override:
            self.overrides.add(comp.override)
        if comp.error_ratio == 0:
            self.zeros += 1
        else:
            self.histogram[ratio_bin(comp.error_ratio)] += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "comparisons": self.comparisons,
            "mistrusted": self.mistrusted,
            "failed": self.failed,
            "error_ratio": self.error_ratio,
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "max_ulp": self.max_ulp,
            "k_max": self.k_max,
            "modes": sorted(self.modes),
            "overrides": sorted(self.overrides),
            "zeros": self.zeros,
            "histogram": self.histogram,
            "elements": self.elements,
            "aggregate_judged": self.aggregate_judged,
        }


_SHARED = ("caps", "_last", "unreplayed")
"""Recorder attributes that ``Recorder.paused`` restores by reference: the capabilities, and cases
(with the diagnosis function of ``unreplayed``) that are replaced, never changed in place."""


class Recorder:
    """Per-test record of what was exercised: examples, hyper-parameter values, errors, failure."""

    def __init__(self, caps: Capabilities | None = None) -> None:
        self.caps = caps  # the capabilities the run honours (diagnosis follows their semantics)
        self.examples = 0
        self.values: dict[str, set[str]] = defaultdict(set)
        self.worst: dict[str, float] = {}
        self.mistrusted = 0
        self.dtype_examples: dict[str, int] = defaultdict(int)
        self.outputs: dict[tuple[str, str], OutputStats] = {}
        self.failed_dtypes: set[str] = set()
        self.failing_cases: dict[str, dict[str, Any]] = {}
        self.last_case: dict[str, Any] | None = None
        self.final_failures: list[dict[str, Any]] = []
        """Every final failure, in the order hypothesis replayed them (``failures`` merges them)."""
        self.final_cases: list[Any] = []
        """The cases of hypothesis's final replays, in order (``note_raised`` pairs them with what
        was raised)."""
        self.unreplayed: tuple[Any, str | None, str, Callable[[], Any]] | None = None
        """The latest failing example that was not hypothesis's final one: its case, output, message
        and a function diagnosing it (``settle_unreplayed``)."""
        self.kinks: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._last: Any = None
        self.pair_limits: dict[str, str] = {}
        self.unimplemented: dict[str, Any] | None = None
        """The first ``NotImplementedError`` of the check (``not_implemented``) and its counts."""
        self._unimplemented_examples: set[int] = set()
        self.excluded = 0
        """Drawn cases the declared ``supports`` predicate left out (``Capabilities.excluded``)."""
        self.excluded_example: str | None = None

    def exclude(self, case_text: str, reason: str) -> None:
        """Note a drawn case the declared predicate left out, and the first such case with its reason."""
        self.excluded += 1
        if self.excluded_example is None:
            self.excluded_example = f"{case_text}: {reason}"

    def excluded_line(self) -> str:
        """``declared by the predicate: N of M examples, e.g. <case>: <reason>`` (M counts the drawn
        cases: those that ran and those left out)."""
        drawn = self.excluded + self.examples
        return f"declared by the predicate: {self.excluded} of {drawn} examples, e.g. {self.excluded_example}"

    def case(self, case: Any) -> None:
        """Note one example's configuration (called once per hypothesis example); no example starts
        after a Ctrl-C (``convcheck.interrupts``)."""
        interrupts.raise_if_interrupted()
        self.examples += 1
        self.dtype_examples[case.dtype] += 1
        self._last = case
        if _in_final_replay():
            self.final_cases.append(case)
        for k, v in case.kwargs().items():
            self.values[k].add(value_text(v))
        p = case.params
        if hasattr(p, "padding_kind"):
            self.values["padding_kind"].add(p.padding_kind)
        self.values["dtype"].add(case.dtype)
        self.values["values"].add(case.family)
        self.values["layout"].add(case.layout)
        if "ties" in case.notes:
            self.values["ties"].add("tied" if case.notes["ties"] else "no ties")
        if case.inputs.get("b", 0) is None:
            self.values["bias"].add("None")
        elif "b" in case.inputs:
            self.values["bias"].add("array")
        if pairs.applies(case.op_name):  # which pairs of coarse features the draws reach (convcheck.pairs)
            self.values["pairs"].update(pairs.reached(pairs.values_of(case)))
            if self.caps is not None:
                possible = pairs.possible(case.op_name, self.caps, self.pair_limits)
                self.values["pairs_possible"].update(possible)

    def limit_pairs(self, feature: str, value: str) -> None:
        """The property draws only ``feature=value`` (batch independence needs ``N >= 2``): the pairs
        with another value of that feature are not possible here (``convcheck.pairs``)."""
        self.pair_limits[feature] = value

    def comparison(self, comp: Any) -> None:
        """Note one comparison under the tolerance policy (``spec.tolerance.Comparison``)."""
        self.worst[comp.name] = max(self.worst.get(comp.name, 0.0), comp.error_ratio)
        self.mistrusted += int(comp.mistrusted)
        key = (comp.name, comp.dtype or "unknown")
        self.outputs.setdefault(key, OutputStats()).add(comp)

    def run(self, dtype: str, **values: Any) -> None:
        """Note one run of a check that draws no case (a whole-network check): its dtype and the
        values it used, for the coverage listing."""
        self.examples += 1
        self.dtype_examples[dtype] += 1
        self.values["dtype"].add(dtype)
        for name, value in values.items():
            self.values[name].add(value_text(value))

    def failed_run(self, dtype: str, *, output: str | None, message: str, **details: Any) -> None:
        """Note that a check without a case failed: no counterexample and no diagnosis, only the
        message and ``details`` (a network check's structured result, say)."""
        self.failed_dtypes.add(dtype)
        self.final_failures.append(
            {
                "key": ["AssertionError", output or "-", "values"],
                "dtype": dtype,
                "output": output,
                "counterexample": None,
                "diagnosis": None,
                "message": message,
                **details,
            }
        )

    def failure(
        self,
        case: Any,
        *,
        output: str | None,
        diagnosis: Any,
        final: bool,
        message: str,
        key: tuple[str, ...] | None = None,
    ) -> None:
        """Note a failing example; ``final`` marks hypothesis's last (shrunk) one of the failure
        ``key`` (``convcheck.failure_keys``)."""
        self.failed_dtypes.add(case.dtype)
        self.failing_cases[case.dtype] = case_spec(case)  # the latest, so the most shrunk, per dtype
        if final:
            self.final_failures.append(
                {
                    "key": list(key) if key else None,
                    "dtype": case.dtype,
                    "output": output,
                    "counterexample": case_spec(case),
                    "diagnosis": None if diagnosis is None else diagnosis.to_dict(),
                    "message": message,
                }
            )

    def note_raised(self, error: BaseException) -> None:
        """After the test: note each final failure that no check noted (the code under test raised,
        hung or crashed), with the case of the final replay that raised it. ``error`` is what the
        test raised: one exception, or hypothesis's group of its distinct failures. Exceptions
        convcheck did not classify are noted only from such a group (a lone one is shown as today)."""
        from .failure_keys import innermost_own_frame, key_of, raised_key

        group = isinstance(error, BaseExceptionGroup) and not _is_flaky(error)
        errors: list[BaseException] = (
            list(error.exceptions) if isinstance(error, BaseExceptionGroup) and group else [error]
        )
        noted = {tuple(f["key"]) for f in self.final_failures if f.get("key")}
        for i, exc in enumerate(errors):
            if isinstance(exc, BaseExceptionGroup):
                continue
            key = key_of(exc)
            if key is None and not group:
                continue
            if key is None:
                import traceback

                where = innermost_own_frame(traceback.extract_tb(exc.__traceback__))
                key = raised_key(type(exc), type(exc).__name__, where)
            if key in noted:
                continue
            noted.add(key)
            case = getattr(exc, "convcheck_case", None)
            if case is None:
                case = self.final_cases[i] if len(self.final_cases) == len(errors) else self._last
            self.final_failures.append(_raised_entry(exc, key, case))
            if case is not None:
                self.failed_dtypes.add(case.dtype)

    @property
    def final_failure(self) -> dict[str, Any] | None:
        """The failure a single-failure reader shows (``failure`` in ``to_dict``)."""
        return primary(self.failures())

    def failures(self) -> list[dict[str, Any]]:
        """The distinct final failures, smallest first (see the module docstring)."""
        return distinct(self.final_failures)

    def settle_unreplayed(self) -> None:
        """For a check that failed without a final example: hypothesis found a failure, but the
        same input passed when it was replayed (a flaky failure), so nothing was noted. Note the
        last failing example instead, diagnosed now, and say why it is the one shown."""
        if self.final_failures or self.unreplayed is None:
            return
        case, output, message, diagnose = self.unreplayed
        diagnosis = diagnose()
        note = (
            "hypothesis could not replay this failure: the same input passed the next time, so the "
            "result is not a function of the input alone"
        )
        entry = {
            "key": None,
            "dtype": case.dtype,
            "output": output,
            "counterexample": case_spec(case),
            "diagnosis": diagnosis.to_dict(),
            "message": f"{message}\n  {diagnosis.line()}\n  {note}",
            "unreplayed": True,
        }
        self.final_failures.append(entry)

    def not_implemented(self, fname: str, message: str) -> None:
        """Note that ``fname`` raised ``NotImplementedError`` on the current example
        (``convcheck.unsupported_calls``): counted per call and per example, the first kept."""
        if self.unimplemented is None:
            first = None if self._last is None else self._last.describe()
            self.unimplemented = {"count": 0, "function": fname, "first_case": first, "message": message}
        self.unimplemented["count"] += 1
        self._unimplemented_examples.add(self.examples)

    def not_implemented_info(self) -> dict[str, Any] | None:
        """``{count, examples, function, first_case, message}`` or ``None`` when nothing raised
        ``NotImplementedError``: ``count`` calls, on ``examples`` distinct examples."""
        if self.unimplemented is None:
            return None
        return {**self.unimplemented, "examples": len(self._unimplemented_examples)}

    def kink(self, verdict: dict[str, Any], line: str, where: str) -> None:
        """Note a convention or a kink defect that the run's contract does not fail (the course
        contract's notes and warnings, ``spec.contracts``): once per (kind, operation, rule), counted."""
        key = (verdict["kind"], verdict["op"], verdict["rule"])
        entry = self.kinks.setdefault(key, {**verdict, "line": line, "first_case": where, "examples": 0})
        entry["examples"] += 1

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Note nothing while the block runs: whatever the block notes (examples, values, comparisons,
        failures) is forgotten when it ends, so that trial runs of a property's body on other cases
        (``convcheck.tests.shrink``) leave the record as it was."""
        saved = dict(vars(self))
        vars(self).update({k: copy.deepcopy(v) for k, v in saved.items() if k not in _SHARED})
        try:  # the block notes into copies; the originals come back untouched
            yield
        finally:
            vars(self).clear()
            vars(self).update(saved)

    def to_dict(self) -> dict[str, Any]:
        by_dtype: dict[str, dict[str, Any]] = {}
        for dtype, n in self.dtype_examples.items():
            by_dtype[dtype] = {"examples": n, "outputs": {}}
        for (name, dtype), stats in sorted(self.outputs.items()):
            entry = by_dtype.setdefault(dtype, {"examples": 0, "outputs": {}})
            entry["outputs"][name] = stats.to_dict()
        return {
            "examples": self.examples,
            "values": {k: sorted(v) for k, v in self.values.items()},
            "worst_error_ratio": self.worst,
            "mistrusted": self.mistrusted,
            "by_dtype": by_dtype,
            "failed_dtypes": sorted(self.failed_dtypes),
            "failing_cases": self.failing_cases,
            "last_case": None if self._last is None else case_spec(self._last, embed=False),
            "failure": self.final_failure,
            "failures": self.failures(),
            "kinks": list(self.kinks.values()),
            "not_implemented": self.not_implemented_info(),
            **({"declared_by_predicate": self.excluded_line()} if self.excluded else {}),
        }


def _in_final_replay() -> bool:
    """Whether hypothesis is replaying a shrunk failing example for the last time."""
    from hypothesis.control import current_build_context, currently_in_test_context

    return currently_in_test_context() and current_build_context().is_final


def _is_flaky(error: BaseException) -> bool:
    """Hypothesis's flaky-replay group (one failure that did not fail again), not its distinct ones."""
    from hypothesis.errors import FlakyFailure

    return isinstance(error, FlakyFailure)


def _raised_entry(exc: BaseException, key: tuple[str, ...], case: Any) -> dict[str, Any]:
    """A failure entry for an exception no check noted: its case, type, place and text."""
    import traceback

    text = "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
    raised = getattr(exc, "raised", None) or {}
    return {
        "key": list(key),
        "dtype": None if case is None else case.dtype,
        "output": None,
        "counterexample": None if case is None else case_spec(case),
        "diagnosis": None,
        "message": text,
        "raised": {"type": raised.get("type") or type(exc).__name__, "where": raised.get("where")},
    }


def failure_size(entry: dict[str, Any]) -> int:
    """How large a failure's counterexample is (elements over every input); huge without one."""
    spec = entry.get("counterexample") or {}
    if not spec:
        return 1 << 60
    size = 0
    for shape in (spec.get("shapes") or {}).values():
        n = 1
        for s in shape or ():
            n *= int(s)
        size += n
    return size


def distinct(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Final failures as distinct entries, smallest counterexample first: one per key, and one per
    diagnosed catalogue mistake (its ``outputs`` naming every output it broke)."""
    out: list[dict[str, Any]] = []
    by_key: dict[tuple[str, ...], dict[str, Any]] = {}
    by_slug: dict[str, dict[str, Any]] = {}
    for entry in sorted(entries, key=failure_size):
        entry = {**entry, "outputs": [entry["output"]] if entry.get("output") else []}
        key = tuple(entry["key"]) if entry.get("key") else None
        slug = (entry.get("diagnosis") or {}).get("slug")
        kept = (by_key.get(key) if key else None) or (by_slug.get(slug) if slug else None)
        if kept is not None:
            kept["outputs"] += [o for o in entry["outputs"] if o not in kept["outputs"]]
            continue
        out.append(entry)
        if key:
            by_key[key] = entry
        if slug:
            by_slug[slug] = entry
    return out


def primary(failures: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The failure a single-failure reader shows: the smallest one a check noted, else ``None``."""
    return next((f for f in failures if not f.get("raised")), None)


_CURRENT: list[Recorder] = []


@contextlib.contextmanager
def active(recorder: Recorder) -> Iterator[Recorder]:
    """Make ``recorder`` the one ``current()`` returns while the test runs."""
    _CURRENT.append(recorder)
    try:
        yield recorder
    finally:
        _CURRENT.remove(recorder)


def current() -> Recorder | None:
    """The recorder of the running test, or ``None`` outside a recorded test."""
    return _CURRENT[-1] if _CURRENT else None


# --------------------------------------------------------------------------- counterexamples


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively (JSON has no tuples)."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def case_spec(case: Any, embed: bool = True) -> dict[str, Any]:
    """A JSON description of ``case`` from which ``case_from_spec`` rebuilds it exactly.

    The description is what ``make_case`` needs (operation, hyper-parameters,
    shapes, dtype, value family, seed, layout). Arrays that differ from what
    ``make_case`` draws (a property's own ``dy``, a probe, a moved input) are
    carried verbatim under ``arrays`` when ``embed`` and small enough.
    """
    spec: dict[str, Any] = {
        "op": case.op_name,
        "params_type": type(case.params).__name__,
        "params": {k: _plain(v) for k, v in case.kwargs().items()},
        "shapes": {k: (None if v is None else list(v)) for k, v in case.shapes().items()},
        "dtype": case.dtype,
        "family": case.family,
        "seed": int(case.seed),
        "layout": case.layout,
        "ties": case.notes.get("ties"),
        "description": case.describe(),
        "arrays": {},
    }
    if embed:
        spec["arrays"], spec["arrays_omitted"] = _differing_arrays(case)
    return spec


def _differing_arrays(case: Any) -> tuple[dict[str, Any], list[str]]:
    """Arrays of ``case`` that ``make_case`` would not rebuild, as nested lists (small ones only)."""
    from convcheck.tests.values import make_case

    try:
        rebuilt = make_case(
            case.op_name, case.params, case.shapes(), case.dtype, case.family, case.seed, case.layout
        )
        theirs = {**rebuilt.inputs, "dy": rebuilt.dy}
    except Exception:  # a case no longer valid on its own: carry everything
        theirs = {}
    arrays: dict[str, Any] = {}
    omitted: list[str] = []
    for name, a in {**case.inputs, "dy": case.dy}.items():
        if a is None:
            continue
        other = theirs.get(name)
        if other is not None and other.shape == a.shape and np.array_equal(other, a, equal_nan=True):
            continue
        if a.size > EMBED_LIMIT:
            omitted.append(name)
        else:
            arrays[name] = np.asarray(a, dtype=np.float64).tolist()
    return arrays, omitted


def case_from_spec(spec: dict[str, Any]) -> Any:
    """Rebuild the case that ``case_spec`` described (arrays carried verbatim included)."""
    from convcheck.spec import params as params_mod
    from convcheck.spec.case import with_inputs
    from convcheck.tests.values import make_case

    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec["params"].items()}
    params = getattr(params_mod, spec["params_type"])(**kwargs)
    shapes = {k: (None if v is None else tuple(v)) for k, v in spec["shapes"].items()}
    case = make_case(
        spec["op"], params, shapes, spec["dtype"], spec["family"], seed=spec["seed"], layout=spec["layout"]
    )
    arrays = {k: np.asarray(v, dtype=spec["dtype"]) for k, v in (spec.get("arrays") or {}).items()}
    return with_inputs(case, **arrays) if arrays else case

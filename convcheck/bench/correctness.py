"""The correctness check of every benchmarked call: a fast wrong answer is never reported as fast.

Each function of each entry is run once on the entry's inputs and compared,
output by output (``y``; or ``dx``, ``dw``, ``db``), with the float64 oracle
under the tolerance policy (``spec.tolerance``), exactly as the conformance
suite compares (``convcheck.tests.checks``). The oracle is PyTorch's
(``oracles.torch_oracle``) unless the implementation declares a semantic
option it does not compute (a max-pool tie rule other than ``first``); then
it is SciPy's.

An implementation with a ``synchronize`` hook is synchronised after the call
and before its arrays are read; device arrays (CuPy's ``.get()``, a torch
tensor's ``.cpu()``) are brought to the host first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convcheck.impls.registry import Implementation
from convcheck.oracles import ORACLES
from convcheck.spec.case import Case
from convcheck.tests import checks


@dataclass
class Verdict:
    """The outcome of one function's check: ``status`` is ``pass``, ``fail`` or ``error``."""

    status: str
    oracle: str
    message: str = ""
    outputs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "oracle": self.oracle,
            "message": self.message,
            "outputs": self.outputs,
        }


def to_host(value: Any) -> Any:
    """A NumPy view of a result: CuPy (``.get()``) and torch tensors (``.cpu().numpy()``) are copied over.

    Tuples and lists are converted element by element; anything else is returned as it is.
    """
    if isinstance(value, tuple | list):
        return type(value)(to_host(v) for v in value)
    if isinstance(value, np.ndarray) or value is None:
        return value
    module = type(value).__module__.split(".")[0]
    if module == "cupy" and hasattr(value, "get"):
        return value.get()
    if module == "torch" and hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return value


def host_view(impl: Implementation) -> Implementation:
    """``impl`` with every function synchronised (its hook, if any) and its results brought to the host."""
    sync = impl.capabilities.synchronize

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            out = fn(*args, **kwargs)
            if sync is not None:
                sync()
            return to_host(out)

        return call

    return dataclasses.replace(impl, functions={n: wrap(f) for n, f in impl.functions.items()})


def oracle_for(case: Case, impl: Implementation) -> str:
    """``torch`` when it computes the declared semantics, else ``scipy`` (which computes them all)."""
    sem = checks.semantics(case, impl.capabilities)
    return "torch" if ORACLES["torch"].covers(case.op_name, sem) else "scipy"


def _summary(name: str, comp: Any) -> str:
    return (
        f"{name}: error ratio {comp.error_ratio:.3g} > 1 under the tolerance policy "
        f"({comp.mismatches} / {comp.size} elements off, max abs error {comp.max_abs:.3g}, "
        f"worst at {comp.worst_index}: got {comp.worst_got!r}, expected {comp.worst_expected!r})"
        if comp.error_ratio > 1
        else f"{name}: systematic error (bias {comp.bias:.3g} > {comp.bias_limit:.3g} or "
        f"variance {comp.variance:.3g} > {comp.variance_limit:.3g})"
    )


def check(impl: Implementation, function_name: str, case: Case) -> Verdict:
    """Run ``function_name`` of ``impl`` on ``case`` and compare every output with the oracle."""
    oracle = oracle_for(case, impl)
    caps = impl.capabilities
    host = host_view(impl)
    op = case.op
    try:
        if function_name == op.forward:
            got = {"y": checks.call_forward(host, case)}
            expected: dict[str, Any] = {"y": checks.oracle_forward(oracle, case, caps)}
            abs_sum: dict[str, Any] = {"y": checks.oracle_forward(oracle, case, caps, absolute=True)}
        else:
            got = checks.call_backward(host, case)
            expected = checks.oracle_backward(oracle, case, caps)
            abs_sum = checks.oracle_backward(oracle, case, caps, absolute=True)
    except Exception as e:  # the implementation raised, or broke the contract
        return Verdict("error", oracle, f"{function_name} raised {type(e).__name__}: {e}")
    outputs, problems = [], []
    for name, value in got.items():
        if value is None:
            continue
        comp = checks.compare(case, name, value, expected[name], abs_sum[name], caps)
        outputs.append(
            {
                "name": name,
                "passed": comp.passed,
                "error_ratio": comp.error_ratio,
                "max_abs": comp.max_abs,
                "max_ulp": comp.max_ulp,
                "mismatches": comp.mismatches,
                "size": comp.size,
            }
        )
        if not comp.passed:
            problems.append(_summary(name, comp))
    if problems:
        return Verdict("fail", oracle, "; ".join(problems), outputs)
    return Verdict("pass", oracle, "", outputs)


__all__ = ["Verdict", "check", "host_view", "oracle_for", "to_host"]

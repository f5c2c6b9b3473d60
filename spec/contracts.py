"""The two contracts a run checks against, and how a failure at a kink is classified.

ReLU and max-pool are not differentiable everywhere: ReLU at ``x = 0``, max-pool
where a window's maximum is tied. There any *subgradient* is a defensible
answer: ReLU'(0) anywhere in ``[0, 1]``, and for a tied window any convex
combination of its gradient over the tied maxima (all to the first, all to the
last, split evenly, ...). The library contract picks one (PyTorch's: ReLU'(0) =
0, the first maximum); a course assignment never says which. So every failing
check at a kink is classified (``Verdict``):

- ``defect``: wrong at a differentiable point or on a generic input; always a failure.
- ``convention``: differs from the rule only at a kink, and is a valid subgradient there.
- ``kink defect``: wrong only at kinks, and not a subgradient (each tied maximum given
  the window's whole gradient).
- ``non-finite``: NaN or an infinity in the inputs or ``dy`` handled otherwise than the
  non-finite contract (``spec.nonfinite``): a max-pool mask multiplied by an infinite ``dy``
  (``inf * 0``), a NaN a window's maximum skips. A library must follow it; a course leaves it open.

Two contracts, one per run, stated in every report:

- ``library`` (the default of ``convcheck run`` on a contract module): PyTorch's exact
  rules. A convention or a kink defect is a failure whose message says what it is
  and how to declare a convention.
- ``course`` (the default for ``from_cs231n``-adapted code, whose declaration names it,
  and for ``convcheck grade``): conventions are notes, kink defects are warnings with an
  explanation of why they matter; neither fails. For code whose declaration names the
  course contract (the assignment's API, through ``from_cs231n``) the course's geometry
  applies too: convolution and pooling outputs whose sizes divide exactly
  (``geometry = "exact"``), as the assignment's output-size formula assumes.

Declared conventions (``CONVCHECK_CAPABILITIES``) are the contract under either:
``{"relu": {"derivative_at_zero": 1}}`` (a number in ``[0, 1]`` or a ``[lo, hi]`` range)
and ``{"max_pool2d": {"ties": "last"}}`` (``first``, ``last``, ``split``, ``any`` for any
valid subgradient, or ``all``, the kink defect, declared knowingly).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .capabilities import Capabilities
from .ops import OPERATIONS

CONTRACTS = ("library", "course")
"""The contracts a run may check against (``--contract``)."""

LIBRARY, COURSE = CONTRACTS

DEFECT, CONVENTION, KINK_DEFECT = "defect", "convention", "kink defect"
NONFINITE = "non-finite"
"""A verdict's kind for NaN or an infinity handled otherwise than the non-finite contract
(``spec.nonfinite``, PyTorch's): a failure under the library contract, a warning under the
course contract, since no course states what a layer does with NaN or an infinite gradient."""

CONVEX_TIE_RULES = ("first", "last", "split")
"""The tie rules that are each one valid subgradient (``any`` accepts every convex combination)."""

COURSE_DECLARATION: dict[str, dict[str, Any]] = {
    name: {"geometry": "exact"}
    for name, op in OPERATIONS.items()
    if any(f.name == "geometry" for f in op.features)
}
"""What the course contract adds to any declaration: the assignment's geometry on every window operation."""


def resolve(option: str | None, caps: Capabilities, default: str = LIBRARY) -> str:
    """The contract of a run: the option when given, else the one the declaration names
    (``"contract"``, which ``from_cs231n`` sets to ``course``), else ``default`` (the command's)."""
    contract = option or caps.contract or default
    if contract not in CONTRACTS:
        raise ValueError(f"contract={contract!r} must be one of {', '.join(CONTRACTS)}")
    return contract


def under(caps: Capabilities, contract: str) -> Capabilities:
    """``caps`` as the run honours it, naming the run's ``contract`` (``Capabilities.contract``).

    Under the course contract, code whose own declaration names the course contract (the
    assignment's API, ``from_cs231n``) is narrowed to the course's geometry too. A contract-form
    module checked or graded under the course contract keeps every geometry: its conventions at
    kinks become notes, but an output size it gets wrong is still a failure."""
    if contract != COURSE:
        return dataclasses.replace(caps, contract=LIBRARY)
    if caps.contract != COURSE:
        return dataclasses.replace(caps, contract=COURSE)
    features = {op: dict(values) for op, values in caps.features.items()}
    for op, values in COURSE_DECLARATION.items():
        features.setdefault(op, {}).update(values)
    return dataclasses.replace(caps, features=features, declared=True, contract=COURSE)


def oracle_semantics(semantics: Mapping[str, Any]) -> dict[str, Any]:
    """The semantic options an oracle is asked to follow for declared ``semantics``: the oracles
    compute the contract's ReLU'(0) = 0 and, for ``ties="any"``, the first maximum; the checks
    then accept at the kinks whatever the declaration allows (``relu_verdict``, ``tie_rule_verdict``)."""
    out = {k: v for k, v in semantics.items() if k != "derivative_at_zero"}
    if out.get("ties") == "any":
        out["ties"] = "first"
    return out


def summary_line(contract: str) -> str:
    """One line saying which contract a run checked and what that means."""
    if contract == COURSE:
        return (
            "contract: course (conventions at kinks are notes, kink defects are warnings; code adapted from "
            "the assignment's API: output sizes divide exactly; --contract library for PyTorch's exact rules)"
        )
    return (
        "contract: library (PyTorch's exact rules: ReLU'(0) = 0, ties to the first maximum; "
        "--contract course for a course's)"
    )


@dataclass(frozen=True)
class Verdict:
    """What a failing check at a kink is: ``kind`` (``convention`` or ``kink defect``; a plain
    defect has no verdict but its failure), the ``rule`` the implementation follows, an
    ``explanation``, and for a convention the ``declaration`` that makes it the contract."""

    kind: str
    op: str
    rule: str
    explanation: str
    declaration: dict[str, Any] | None = None

    def line(self, contract: str) -> str:
        """The line a report shows: under the library contract how to declare it (or why it is wrong),
        under the course contract the note or the warning."""
        head = f"{self.kind} ({self.op} {self.rule}): {self.explanation}"
        if self.kind == CONVENTION:
            how = f"declare it: CONVCHECK_CAPABILITIES = {json.dumps(self.declaration)}"
            if contract == LIBRARY:
                return f"{head}; {how}, or check under the course contract (--contract course)"
            return f"{head}; a note under the course contract ({how} to state it)"
        if contract == LIBRARY:
            return f"{head}; the course contract (--contract course) reports it as a warning"
        return f"{head}; a warning under the course contract"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- ReLU at 0


def zero_slopes(declared: Any) -> tuple[float, float]:
    """The derivatives at 0 a declaration accepts, as ``(lo, hi)``: a number ``d`` is ``(d, d)``."""
    if isinstance(declared, Sequence) and not isinstance(declared, str):
        lo, hi = declared
        return float(lo), float(hi)
    return float(declared), float(declared)


def relu_verdict(x: Any, dy: Any, dx: Any, declared: Any, slack: float) -> Verdict | None:
    """Classify a ReLU ``dx`` that differs from the contract only where ``x == 0`` (the caller has
    checked every other element): ``None`` when each slope ``dx / dy`` there lies in the declared
    range, a ``convention`` when it lies in ``[0, 1]``, else a ``kink defect``. ``slack`` absorbs
    the rounding of a slope such as 0.5."""
    import numpy as np

    at = np.asarray(x) == 0
    dy_at = np.asarray(dy, dtype=np.float64)[at]
    dx_at = np.asarray(dx, dtype=np.float64)[at]
    moving = dy_at != 0
    slopes = dx_at[moving] / dy_at[moving]
    still = bool(np.all(dx_at[~moving] == 0))
    if not still or np.any(slopes < -slack) or np.any(slopes > 1 + slack):
        bad = slopes[(slopes < -slack) | (slopes > 1 + slack)]
        shown = f"slope {float(bad[0]):g}" if bad.size else "a nonzero dx where dy == 0"
        return Verdict(
            KINK_DEFECT,
            "relu",
            "derivative_at_zero outside [0, 1]",
            f"at x == 0 dx is not dy * s for any s in [0, 1] ({shown}): not a subgradient of max(x, 0)",
        )
    lo, hi = zero_slopes(declared)
    if slopes.size == 0 or (slopes.min() >= lo - slack and slopes.max() <= hi + slack):
        return None
    seen = sorted({round(float(s), 6) for s in slopes})
    value: Any = seen[0] if len(seen) == 1 else [seen[0], seen[-1]]
    value = int(value) if isinstance(value, float) and value.is_integer() else value
    return Verdict(
        CONVENTION,
        "relu",
        f"derivative_at_zero={json.dumps(value)}",
        f"ReLU'(0) = {json.dumps(value)} is a valid subgradient (any value in [0, 1] is); the library "
        "contract takes 0, PyTorch's choice",
        {"relu": {"derivative_at_zero": value}},
    )


# --------------------------------------------------------------------------- max-pool ties

EVERY_MAX_WHY = (
    "each tied maximum received the window's whole gradient, so a window with k tied maxima hands on "
    "k times its gradient: not a subgradient, and dx no longer sums to dy. It matters in a network: "
    "after a ReLU, zeros tie in a max-pool window, and every-max routing multiplies their gradient by "
    "the number of zeros (which a ReLU passing the gradient at 0 carries on)"
)


def tie_rule_verdict(op_name: str, rule: str, declared: str) -> Verdict | None:
    """The verdict of a tied max-pool gradient that follows ``rule`` (``first``, ``last``, ``split``,
    ``any`` for another convex combination, or ``all``) under the ``declared`` tie rule: ``None``
    when the declaration accepts it."""
    if rule == declared or (declared == "any" and rule in (*CONVEX_TIE_RULES, "any")):
        return None
    if rule == "all":
        return Verdict(KINK_DEFECT, op_name, "ties='all'", EVERY_MAX_WHY)
    shown = {"any": "another convex combination of the tied maxima"}.get(rule, f"the {rule} rule")
    return Verdict(
        CONVENTION,
        op_name,
        f"ties={rule!r}",
        f"tied maxima follow {shown}: a valid subgradient (any convex combination of the window's gradient "
        "over its tied maxima is); the library contract gives it to the first maximum, as PyTorch does",
        {op_name: {"ties": rule}},
    )


def window_rule(
    got: Mapping[Any, float], tied: Sequence[Any], tol: float, prefer: str = "first"
) -> str | None:
    """Which rule one window's routed gradient (``cell: share`` of a unit gradient) follows over its
    ``tied`` maxima (in window order): ``first``, ``last``, ``split``, ``any`` (another convex
    combination), ``all`` (each tied maximum the whole gradient), or ``None`` (none: a defect).
    A single maximum given the whole gradient follows every rule: ``prefer`` (the declared one)."""
    if not set(got) <= set(tied):
        return None
    shares = [got.get(cell, 0.0) for cell in tied]
    if len(tied) == 1 and abs(shares[0] - 1.0) <= tol:
        return prefer
    if len(tied) > 1 and all(abs(s - 1.0) <= tol for s in shares):
        return "all"
    if any(s < -tol for s in shares) or abs(sum(shares) - 1.0) > tol * len(tied):
        return None
    for rule, want in (
        ("first", [1.0] + [0.0] * (len(tied) - 1)),
        ("last", [0.0] * (len(tied) - 1) + [1.0]),
        ("split", [1.0 / len(tied)] * len(tied)),
    ):
        if all(abs(s - w) <= tol for s, w in zip(shares, want, strict=True)):
            return rule
    return "any"


__all__ = [
    "COURSE",
    "CONTRACTS",
    "CONVENTION",
    "DEFECT",
    "KINK_DEFECT",
    "LIBRARY",
    "Verdict",
    "relu_verdict",
    "resolve",
    "summary_line",
    "tie_rule_verdict",
    "under",
    "window_rule",
    "zero_slopes",
]

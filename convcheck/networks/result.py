"""What a network check found: every comparison, the first bad layer, the SGD step, as data and as text."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .tolerance import SAFETY

COLUMNS = (
    ("y", "forward", "y"),
    ("dx", "backward", "dx"),
    ("dw", "backward", "dw"),
    ("db", "backward", "db"),
    ("w+", "step", "w"),
    ("b+", "step", "b"),
    ("y+", "step", "y"),
)
"""The text table's columns: ``(title, stage, quantity)``; the loss's ``loss`` and ``dz`` sit under ``y`` and ``dx``."""

LEGEND = (
    "y: the layer's output (the loss value on the loss row); dx: the gradient it passes down (dz on the loss "
    "row); dw, db: its parameter gradients; w+, b+, y+: its parameters and output after one SGD step (the loss "
    "after the step on the loss row)"
)


@dataclass(frozen=True)
class Row:
    """One comparison with PyTorch: a quantity of a layer (or of the loss) at one stage of the walk.

    ``rel_error`` is the norm-wise relative error, ``ratio`` its quotient by the
    bound (``ok`` when at most 1), ``max_abs`` the largest element-wise error;
    ``note`` says more about a disagreement (a constant factor, a call that failed).
    """

    label: str
    op: str
    function: str
    stage: str
    quantity: str
    rel_error: float
    ratio: float
    ok: bool
    max_abs: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class FirstBad:
    """The first layer whose result disagrees, walking forward, then backward from the loss, then the step."""

    label: str
    op: str
    function: str
    stage: str
    quantity: str
    hint: str


@dataclass(frozen=True)
class Step:
    """One SGD step, ``w <- w - lr * dw``: the loss before and after it on both sides."""

    lr: float
    loss_before: float | None
    loss_before_expected: float
    loss_after: float | None
    loss_after_expected: float
    ok: bool


@dataclass
class NetworkResult:
    """The verdict of one network in one dtype: ``passed``, ``failed`` or ``unsupported`` (with the reason).

    ``rows`` are in walk order (forward from the input, backward from the loss,
    then the step); ``first_bad`` is the first row that disagrees, as a layer
    and a one-line hint; ``bound`` is the norm-wise relative error a correct
    implementation stays below and ``chain`` the ``K`` it is made of.
    """

    network: str
    dtype: str
    status: str
    impl: str = ""
    reason: str = ""
    missing: tuple[str, ...] = ()
    batch: int = 0
    seed: int = 0
    parameters: int = 0
    chain: int = 0
    bound: float = 0.0
    loss: float | None = None
    loss_expected: float | None = None
    rows: list[Row] = field(default_factory=list)
    first_bad: FirstBad | None = None
    step: Step | None = None
    seconds: float = 0.0
    inputs: str = "seeded"
    """``seeded`` (the seeded batch and weights) or ``kink`` (``build.kink_inputs``: a zero sample through
    a bias-free first layer, so a ReLU sits at its kink and max-pool windows tie)."""
    override: str | None = None
    """The user's tolerance override that set ``bound`` (``spec.tolerance.Override.describe``), if any."""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def headline(self) -> str:
        inputs = ", a zero sample at the kinks" if self.inputs == "kink" else ""
        where = f"{self.network} ({self.dtype}, batch {self.batch}, seed {self.seed}{inputs}) on {self.impl or '?'}"
        if self.status == "unsupported":
            return f"{where}: unsupported: {self.reason}"
        if self.first_bad is None:
            return f"{where}: {self.status.upper()}"
        return f"{where}: {self.status.upper()} at {self.first_bad.label} ({self.first_bad.function})"

    def table(self) -> list[str]:
        """The error ratios as a layer x quantity table, ``!`` after each disagreement."""
        labels: list[tuple[str, str]] = []
        cells: dict[tuple[str, str, str], Row] = {}
        for row in self.rows:
            if (row.label, row.op) not in labels:
                labels.append((row.label, row.op))
            cells[(row.label, row.stage, _column_quantity(row.quantity))] = row
        wl = max([5, *(len(label) for label, _ in labels)])
        wo = max([2, *(len(op) for _, op in labels)])
        out = [f"{'layer':<{wl}}  {'op':<{wo}}  " + "  ".join(f"{t:>9}" for t, _, _ in COLUMNS)]
        for label, op in labels:
            texts = [_cell(cells.get((label, stage, q))) for _, stage, q in COLUMNS]
            out.append(f"{label:<{wl}}  {op:<{wo}}  " + "  ".join(f"{t:>9}" for t in texts))
        return out

    def report(self) -> str:
        """Headline, losses, the table and the localisation: what a failing check's message shows."""
        lines = [self.headline()]
        if self.status == "unsupported":
            return lines[0]
        lines.append(
            f"  loss: got {_num(self.loss)}, expected {_num(self.loss_expected)} (PyTorch float64 autograd)"
        )
        if self.step is not None:
            lines.append(
                f"  after one SGD step (lr {self.step.lr:g}): got {_num(self.step.loss_after)}, "
                f"expected {_num(self.step.loss_after_expected)}"
            )
        rule = f"{SAFETY:g} K (u + u64), K = {self.chain}"
        if self.override is not None:
            rule += f"; tolerance override {self.override}"
        lines.append(
            f"  error ratio = norm-wise relative error / {self.bound:.2g} ({rule}); below 1 agrees, "
            "'!' marks a disagreement"
        )
        lines += [f"  {line}" for line in self.table()]
        lines.append(f"  ({LEGEND})")
        if self.first_bad is not None:
            lines.append(f"  first bad layer: {self.first_bad.hint}")
        later = [r for r in self.rows if not r.ok][1:]  # the first is the first bad layer
        lines += [f"  also: {r.label} {r.stage} {r.quantity}: {r.note}" for r in later if r.note][:3]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly (non-finite numbers stay floats; report.json writes them as strings)."""
        d = asdict(self)
        d["missing"] = list(self.missing)
        return d


def _column_quantity(quantity: str) -> str:
    """Where a quantity goes in the table: the loss value under ``y``, ``dz`` under ``dx``."""
    return {"loss": "y", "dz": "dx"}.get(quantity, quantity)


def _cell(row: Row | None) -> str:
    if row is None:
        return "-"
    if row.note.startswith("error:"):
        return "error!"
    text = "inf" if math.isinf(row.ratio) else "0" if row.ratio == 0 else f"{row.ratio:.1e}"
    return text if row.ok else text + "!"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.9g}"

"""Which layer is to blame: the first row that disagrees, in walk order, and a one-line hint.

Walk order (``compare``) makes the first disagreement the culprit. Forward,
every layer's input is the output of the layer before it, already found
right; so the first output that disagrees was computed wrongly from right
inputs, by that layer's forward function. Backward, a layer's backward takes
the gradient arriving at its output (the loss's ``dz``, or the ``dx`` of the
layer after it) and its forward input, both already found right; so the first
``dw``, ``db`` or ``dx`` that disagrees is that layer's backward function's
doing, and a ``dz`` that disagrees is the loss's. A mistake further down is
not hidden by this: it only comes later in the walk. After the SGD step the
same forward walk runs again on the updated parameters; a layer that agreed
before the step and disagrees after it, on right inputs and right updated
weights, keeps state between calls.
"""

from __future__ import annotations

from ..spec.networks import Network
from .result import FirstBad, Row
from .run import LOSS_LABEL


def first_bad(net: Network, rows: list[Row]) -> FirstBad | None:
    """The first row that disagrees, with its hint; ``None`` when every row agrees."""
    for i, row in enumerate(rows):
        if not row.ok:
            return FirstBad(
                row.label, row.op, row.function, row.stage, row.quantity, hint(net, row, rows[:i])
            )
    return None


def _neighbours(net: Network, label: str) -> tuple[str, str]:
    """Where a layer's input comes from and where the gradient arriving at its output comes from."""
    labels = net.labels()
    i = labels.index(label)
    source = "the batch" if i == 0 else f"the output of {labels[i - 1]}"
    arriving = "from the loss" if i == len(labels) - 1 else f"from {labels[i + 1]}"
    return source, arriving


def hint(net: Network, row: Row, before: list[Row]) -> str:
    """``"<label> (<function>): <what disagrees> while <what it was computed from> is right: look at ..."``."""
    head = f"{row.label} ({row.function})"
    if row.note.startswith("error: "):
        return f"{head}: {row.note.removeprefix('error: ')}"
    note = f"; {row.note}" if row.note else ""
    after_step = row.stage == "step"
    if row.label == LOSS_LABEL:
        logits = f"the logits (the output of {net.labels()[-1]})"
        if row.quantity == "dz":
            what = f"dz disagrees while the loss value and {logits} are right"
            return f"{head}: {what}{note}: look at the gradient {row.function} returns"
        when = "after the SGD step, " if after_step else ""
        return (
            f"{head}: {when}the loss value disagrees while {logits} are right{note}: look at {row.function}"
        )
    source, arriving = _neighbours(net, row.label)
    if row.quantity in ("w", "b"):
        return (
            f"{row.label}: the SGD update of {row.quantity} disagrees although d{row.quantity} agreed"
            f"{note}: the checker's own step; report it"
        )
    if after_step:
        stale = any(r.label == row.label and r.stage == "forward" and r.ok for r in before)
        why = "; before the step it agreed" if stale else ""
        return (
            f"{head}: after the SGD step its output disagrees while its input ({source}) and its updated "
            f"parameters are right{why}{note}: does {row.function} keep state between calls (cached weights)?"
        )
    if row.stage == "forward":
        return f"{head}: its output y disagrees while its input ({source}) is right{note}: look at {row.function}"
    if row.quantity == "dx":
        labels = net.labels()
        i = labels.index(row.label)
        to = "the input" if i == 0 else labels[i - 1]
        what = f"dx, the gradient it passes to {to}, disagrees"
    else:
        what = f"{row.quantity} disagrees"
    return f"{head}: {what} while the gradient arriving {arriving} is right{note}: look at {row.function}"

"""Standalone reproduction scripts, one per failed record, written next to the report.

A script loads the implementation, rebuilds the failing (shrunk) case with
``make_case`` from its description (no hypothesis, no pytest), puts back any
array the check had made itself (a probe's one-hot ``dy``, say), then calls
the implementation the way the suite does (fresh copies in the case's memory
layout) and prints, for every output, what the oracle expects against what
came back: the arrays when small, the worst element, the error ratio under
the tolerance policy, and whether the inputs were modified or the dtype
changed. It leaves ``case``, ``got`` and ``expected`` defined, so a student
can paste it into a notebook and keep digging; run as a script it exits 1
when it shows a mismatch.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import REPRO_DIR

if TYPE_CHECKING:
    from ..impls.registry import Implementation
    from ..spec import Capabilities

SCRIPT = '''\
"""convcheck reproduction: {check} ({record_dtype}) on {impl_name}.

Property {prop} ({direction}) failed:
{message}
{diagnosis}

Standalone (no hypothesis, no pytest): run `python {filename}`, or paste it into
a notebook; `case`, `got` and `expected` stay defined for inspection.
"""

import numpy as np
from convcheck import oracles
from convcheck.impls.registry import load
from convcheck.spec import tolerance
from convcheck.spec.case import with_inputs
from convcheck.spec.params import {params_type}
from convcheck.tests.values import fresh, make_case

np.set_printoptions(precision=6, linewidth=120)

impl = load({impl_spec!r})
case = make_case(
    {op!r},
    {params},
    {shapes!r},
    {dtype!r},
    {family!r},
    seed={seed},
    layout={layout!r},
)
{arrays}
SEMANTICS = {semantics!r}  # the declared conventions the right answer follows
ALGORITHM = {algorithm!r}  # a non-direct algorithm (fft, winograd) is judged norm-wise
EXACT = {exact!r}  # integer data and a direct algorithm: the answer must match bit for bit
FUNCTIONS = {functions!r}


def call_implementation(function):
    """Call as the suite does: fresh copies of the inputs, in the case's memory layout."""
    originals = case.forward_args() if function == case.op.forward else case.backward_args()
    args = [fresh(a, case.layout) for a in originals]
    out = impl.functions[function](*args, **case.kwargs())
    names = ["dy", *case.op.inputs] if function == case.op.backward else list(case.op.inputs)
    changed = [n for n, a, b in zip(names, originals, args) if a is not None and not np.array_equal(a, b)]
    return out, changed


def call_oracle(function, absolute=False):
    """The oracle's float64 answer; with ``absolute``, on |inputs| (the policy's error scale S)."""
    args = case.forward_args() if function == case.op.forward else case.backward_args()
    if absolute:
        args = [None if a is None else np.abs(a) for a in args]
        if case.op_name == "max_pool2d" and function == case.op.backward:
            args[1] = case.x  # the same cells win
    return oracles.call("scipy", function, *args, semantics=SEMANTICS, **case.kwargs())


def by_name(function, out):
    if case.op.is_loss:
        return {{"loss": np.asarray(out[0]), "dz": out[1]}}
    if function == case.op.forward:
        return {{"y": out}}
    if len(case.op.grads) == 1:
        return {{case.op.grads[0]: out}}
    return dict(zip(case.op.grads, out))


print(case.describe())
got, expected, problems = {{}}, {{}}, []
for function in FUNCTIONS:
    out, changed = call_implementation(function)
    for name in changed:
        problems.append(f"{{function}} modified its input {{name}} in place")
    got.update(by_name(function, out))
    expected.update(by_name(function, call_oracle(function)))
    if case.op.is_loss:  # the spec's magnitudes: a loss is not a sum of products
        scale = {{name: case.magnitude(name) for name in case.op.outputs}}
    else:
        scale = by_name(function, call_oracle(function, absolute=True))
    for name in by_name(function, out):
        g, e = got[name], expected[name]
        print(f"\\n--- {{function}} -> {{name}}")
        if e is None or g is None:
            print(f"got {{g!r}}, expected {{e!r}}")
            if (e is None) != (g is None):
                problems.append(f"{{name}}: got {{type(g).__name__}}, expected {{type(e).__name__}}")
            continue
        g = np.asarray(g)
        if g.dtype != case.dtype and name != "loss":  # a loss may be a Python float
            problems.append(f"{{name}}.dtype is {{g.dtype}}, expected {{case.dtype}}")
        if g.shape != e.shape:
            print(f"shape: got {{g.shape}}, expected {{e.shape}}")
            problems.append(f"{{name}}.shape is {{g.shape}}, expected {{e.shape}}")
            continue
        if e.size <= 64:
            print(f"expected =\\n{{e}}\\ngot      =\\n{{g}}\\ndifference (got - expected) =\\n{{g - e}}")
        k = case.op.reduction_lengths(case.shapes(), case.params)[name]
        comp = tolerance.compare(name, g, e, scale[name], k, case.dtype, exact=EXACT, algorithm=ALGORITHM)
        print(
            f"error ratio {{comp.error_ratio:.3g}} ({{comp.mode}} bound; a correct implementation stays below 1), "
            f"max abs {{comp.max_abs:.3g}}, max rel {{comp.max_rel:.3g}}, max ULP {{comp.max_ulp}}; "
            f"worst at {{comp.worst_index}}: got {{comp.worst_got!r}}, expected {{comp.worst_expected!r}}"
        )
        if not comp.passed:
            problems.append(f"{{name}} differs from the oracle: error ratio {{comp.error_ratio:.3g}} > 1")

print()
print("MISMATCH:" if problems else "no mismatch against the oracle on this case", *problems, sep="\\n  ")
if __name__ == "__main__":
    raise SystemExit(1 if problems else 0)
'''


def script_name(record: dict[str, Any]) -> str:
    """A file name for a record's script: its check id, made safe for any file system."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", record["id"]).strip("_")
    return f"{stem}.py"


def _commented(text: str, width: int = 110, limit: int = 16) -> str:
    """The failure message for the docstring: up to its reproduction snippet, lines cut at ``width``."""
    lines: list[str] = []
    for line in (text or "").strip().splitlines():
        if line.strip().startswith(("reproduce:", "Falsifying example")) or len(lines) == limit:
            break
        lines.append(line if len(line) <= width else line[: width - 3] + "...")
    body = "\n".join(lines).replace("\\", "\\\\").replace('"""', "'''")
    return textwrap.indent(body, "    ") if lines else "    (no message)"


def _arrays_block(spec: dict[str, Any]) -> str:
    """Statements putting back the arrays the check made itself (not drawn by make_case)."""
    arrays = spec.get("arrays") or {}
    lines = []
    if arrays:
        lines.append("# The check used these arrays of its own (make_case does not draw them):")
        for name, values in arrays.items():
            lines.append(f"case = with_inputs(case, {name}=np.array({values!r}, dtype={spec['dtype']!r}))")
    if spec.get("arrays_omitted"):
        lines.append(
            f"# NOTE: the check also used its own {', '.join(spec['arrays_omitted'])}, too large to embed here."
        )
    return "\n".join(lines)


def _functions(record: dict[str, Any], impl: Implementation, op: Any) -> list[str]:
    """The contract functions a record's failure concerns (those the implementation provides): the
    forward alone when the failing output is ``y``, which is how a backward-side property reports a
    wrong forward (``tests.checks.forward_at_fault``)."""
    d = record.get("direction", "")
    if d == "forward" or record.get("failing_output") == "y":
        wanted = [op.forward]
    else:
        wanted = [op.backward] if d.startswith("backward") else list(op.functions)
    return [f for f in wanted if impl.provides(f)] or [f for f in op.functions if impl.provides(f)]


def script(record: dict[str, Any], impl: Implementation, caps: Capabilities, filename: str) -> str:
    """The reproduction script of a failed record that carries a counterexample."""
    from ..spec import OPERATIONS

    spec = record["counterexample"]
    op = OPERATIONS[spec["op"]]
    params = ", ".join(f"{k}={tuple(v) if isinstance(v, list) else v!r}" for k, v in spec["params"].items())
    shapes = {k: (None if v is None else tuple(v)) for k, v in spec["shapes"].items()}
    semantics = caps.semantics(op)
    diag = record.get("diagnosis") or {}
    if diag.get("slug"):
        diagnosis = f"Likely cause: {diag['slug']}: {diag.get('explanation', '')}"
    elif diag:
        diagnosis = f"Likely cause: no known mistake matches ({diag.get('explanation', '')})"
    else:
        diagnosis = ""
    exact = bool(spec.get("family") in ("exact", "ties") and op.name in ("conv2d", "max_pool2d"))
    exact = (
        exact
        and caps.algorithm == "direct"
        and not (op.name == "max_pool2d" and semantics.get("ties") == "split")
    )
    impl_spec = str(Path(impl.source).resolve()) if impl.source.endswith(".py") else impl.name
    return SCRIPT.format(
        check=record["check"],
        record_dtype=record.get("dtype"),
        impl_name=impl.name,
        prop=record["property"],
        direction=record["direction"],
        message=_commented(record.get("message") or ""),
        diagnosis=textwrap.fill(diagnosis, 100) if diagnosis else "",
        filename=filename,
        params_type=spec["params_type"],
        impl_spec=impl_spec,
        op=spec["op"],
        params=f"{spec['params_type']}({params})",
        shapes=shapes,
        dtype=spec["dtype"],
        family=spec["family"],
        seed=spec["seed"],
        layout=spec["layout"],
        arrays=_arrays_block(spec),
        semantics=semantics,
        algorithm=caps.algorithm,
        exact=exact,
        functions=_functions(record, impl, op),
    )


def write(folder: Path, record: dict[str, Any], impl: Implementation, caps: Capabilities) -> str | None:
    """Write the record's script into ``folder/repro/``; return its path relative to ``folder``."""
    if not record.get("counterexample"):
        return None
    directory = folder / REPRO_DIR
    directory.mkdir(parents=True, exist_ok=True)
    name = script_name(record)
    path = directory / name
    path.write_text(script(record, impl, caps, f"{REPRO_DIR}/{name}"), encoding="utf-8")
    return f"{REPRO_DIR}/{name}"

"""Standalone reproduction scripts, one per failed record, written next to the report.

A script loads the implementation, rebuilds the failing (shrunk) case with
``make_case`` from its description (no hypothesis, no pytest), puts back any
array the check had made itself (a probe's one-hot ``dy``, say), then calls
the implementation the way the suite does (fresh copies in the case's memory
layout) and prints, for every output, what the oracle expects against what
came back: the arrays when small, the worst element, the error ratio under
the suite's own bound (exactness by ``spec.tolerance.exact_required``, the
error scale by ``spec.tolerance.error_scale``: the functions the suite calls),
and whether the inputs were modified or the dtype changed. The script is
rendered from ``templates/repro.py.j2``. It leaves ``case``, ``got`` and ``expected`` defined, so a student
can paste it into a notebook and keep digging; run as a script it exits 1
when it shows a mismatch.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

from ..diagnosis import line_of
from ..impls.registry import is_file_source
from . import REPRO_DIR, templating


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


def _functions(record: dict[str, Any], impl: Any, op: Any) -> list[str]:
    """The contract functions a record's failure concerns (those the implementation provides): the
    forward alone when the failing output is ``y``, which is how a backward-side property reports a
    wrong forward (``tests.checks.forward_at_fault``)."""
    d = record.get("direction", "")
    if d == "forward" or record.get("failing_output") == "y":
        wanted = [op.forward]
    else:
        wanted = [op.backward] if d.startswith("backward") else list(op.functions)
    return [f for f in wanted if impl.provides(f)] or [f for f in op.functions if impl.provides(f)]


def _capabilities(caps: Any) -> dict[str, Any]:
    """The declaration the run honoured, as the script rebuilds it (``spec.capabilities.parse``); a
    synchronisation hook is left out, since the script does not time anything."""
    return {k: v for k, v in caps.to_dict().items() if k != "synchronize"}


def script(record: dict[str, Any], impl: Any, caps: Any, filename: str) -> str:
    """The reproduction script of a failed record that carries a counterexample, rendered from
    ``templates/repro.py.j2``. The script decides exactness and the error scale with the suite's
    own functions (``spec.tolerance.exact_required`` and ``error_scale``), so its bound is the suite's."""
    from ..spec import OPERATIONS
    from ..spec.capabilities import FORWARD_ONLY_PROPERTIES

    spec = record["counterexample"]
    op = OPERATIONS[spec["op"]]
    params = ", ".join(f"{k}={tuple(v) if isinstance(v, list) else v!r}" for k, v in spec["params"].items())
    diag = record.get("diagnosis") or {}
    diagnosis = line_of(diag).replace("likely", "Likely", 1) if diag else ""
    env = templating.environment()
    env.filters["py"] = repr
    text = env.get_template("repro.py.j2").render(
        check=record["check"],
        record_dtype=record.get("dtype"),
        impl_name=impl.name,
        prop=record["property"],
        direction=record["direction"],
        message=_commented(record.get("message") or ""),
        diagnosis=textwrap.fill(diagnosis, 100) if diagnosis else "",
        filename=filename,
        params_type=spec["params_type"],
        impl_spec=str(Path(impl.source).resolve()) if is_file_source(impl.source) else impl.name,
        op=spec["op"],
        params=f"{spec['params_type']}({params})",
        shapes={k: (None if v is None else tuple(v)) for k, v in spec["shapes"].items()},
        dtype=spec["dtype"],
        family=spec["family"],
        seed=spec["seed"],
        layout=spec["layout"],
        ties=spec.get("ties"),
        arrays=spec.get("arrays") or {},
        arrays_omitted=spec.get("arrays_omitted") or [],
        capabilities=_capabilities(caps),
        capability_direction="forward" if record["property"] in FORWARD_ONLY_PROPERTIES else None,
        functions=_functions(record, impl, op),
    )
    return text + "\n"


def write(folder: Path, record: dict[str, Any], impl: Any, caps: Any) -> str | None:
    """Write the record's script into ``folder/repro/``; return its path relative to ``folder``."""
    if not record.get("counterexample"):
        return None
    directory = folder / REPRO_DIR
    directory.mkdir(parents=True, exist_ok=True)
    name = script_name(record)
    path = directory / name
    path.write_text(script(record, impl, caps, f"{REPRO_DIR}/{name}"), encoding="utf-8")
    return f"{REPRO_DIR}/{name}"

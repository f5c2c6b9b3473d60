"""A finished network check, noted in the running test's ``Recorder`` so results and reports carry it.

The recorder was made for generated cases; a network check has none, so its
numbers go in directly: one example in the check's dtype, one comparison per
row (``normwise`` mode, ``max_rel`` holding the norm-wise relative error, the
output named by the row's quantity, ``step`` for everything after the SGD
step), and on failure the message with the localisation, the structured
result under ``failure["network"]`` (report.json's record key ``network``)
and no counterexample or diagnosis: the localisation is the diagnosis.
"""

from __future__ import annotations

from typing import Any

from ..spec.tolerance import Comparison
from .result import NetworkResult, Row


def _output(row: Row) -> str:
    return "step" if row.stage == "step" else row.quantity


def comparison(row: Row, result: NetworkResult) -> Comparison:
    """One row as the tolerance policy's ``Comparison`` (norm-wise: one ratio for the whole array)."""
    return Comparison(
        name=_output(row),
        size=1,
        exact=False,
        mode="normwise",
        error_ratio=row.ratio,
        max_abs=row.max_abs,
        max_rel=row.rel_error,
        max_ulp=0,
        mismatches=0 if row.ok else 1,
        worst_index=(),
        worst_got=0.0,
        worst_expected=0.0,
        worst_bound=result.bound,
        dtype=result.dtype,
        k=result.chain,
    )


def record_result(recorder: Any, result: NetworkResult) -> None:
    """Note ``result`` (not an unsupported one) in ``recorder`` (``convcheck.recording.Recorder``)."""
    if result.status == "unsupported":
        return
    recorder.examples += 1
    recorder.dtype_examples[result.dtype] += 1
    recorder.values["dtype"].add(result.dtype)
    recorder.values["batch"].add(str(result.batch))
    recorder.values["seed"].add(str(result.seed))
    for row in result.rows:
        recorder.comparison(comparison(row, result))
    if result.passed:
        return
    bad = result.first_bad
    recorder.failed_dtypes.add(result.dtype)
    recorder.final_failure = {
        "dtype": result.dtype,
        "output": None if bad is None else f"{bad.label}.{bad.quantity}",
        "counterexample": None,
        "diagnosis": None,
        "message": result.report(),
        "network": result.to_dict(),
    }

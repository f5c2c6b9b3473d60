"""A finished network check, noted in the running test's ``Recorder`` so results and reports carry it.

A network check draws no case, so it is noted as a run (``Recorder.run``): one
example in the check's dtype, one comparison per
row (``normwise`` mode, ``max_rel`` holding the norm-wise relative error, the
output named by the row's quantity, ``step`` for everything after the SGD
step), and on failure (``Recorder.failed_run``) the message with the
localisation and the structured result under ``failure["network"]``
(report.json's record key ``network``), with no counterexample or diagnosis:
the localisation is the diagnosis.
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
    recorder.run(result.dtype, batch=result.batch, seed=result.seed)
    for row in result.rows:
        recorder.comparison(comparison(row, result))
    if result.passed:
        return
    bad = result.first_bad
    output = None if bad is None else f"{bad.label}.{bad.quantity}"
    recorder.failed_run(result.dtype, output=output, message=result.report(), network=result.to_dict())

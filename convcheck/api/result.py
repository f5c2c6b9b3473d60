"""``CheckResult``: what ``convcheck.check`` returns, built from the engine's results records.

Everything here is read from the records the convcheck pytest plugin collected
(``pytest_plugin.collected_results``), through the functions the CLI and the
reports use: ``summary.rows`` for the per-property table, ``grouping`` for the
failures (one per mistake), ``report.repro`` for the reproduction script,
``report.writer`` for the report folder. A failure's arrays are computed on
demand (``arrays``), by calling the implementation again: in a fresh isolated
worker when the run was isolated, in this process otherwise.
"""

from __future__ import annotations

import builtins
import os
import shutil
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from ..grouping import FailureGroup
    from .arrays import Arrays


@dataclass(frozen=True)
class PropertyResult:
    """One operation x property of the run: its verdict over every check (oracle, dtype, output)."""

    op: str
    property: str
    status: str
    checks: int
    passed_checks: int
    examples: int
    worst_error_ratio: float | None

    @builtins.property  # the field ``property`` hides the built-in in this class's body
    def passed(self) -> bool:
        return self.status == "passed"


class Failure:
    """One mistake (``grouping.FailureGroup``): every failed check it explains, shown by its
    smallest counterexample.

    ``op``, ``property``, ``check`` (the check's id), ``dtype``, ``message`` (what the check said),
    ``title`` and ``hint`` (the likely cause, when the diagnosis named one), ``diagnosis`` (the
    recorded dict), ``counterexample`` (the case description the suite rebuilds it from),
    ``properties`` (every property the mistake failed), ``repro`` (the reproduction script's text),
    ``key`` (how it differs from the check's other failures, ``convcheck.failure_keys``; a check
    that failed in several distinct ways gives one ``Failure`` per way).
    ``inputs``, ``expected`` and ``got`` are NumPy arrays by name, computed when first read."""

    def __init__(self, group: FailureGroup, owner: CheckResult) -> None:
        from ..grouping import failure_text

        first = group.first
        recorded = first.get("failure") or {}
        self.group = group
        self.record = first
        self.op: str = group.op
        self.property: str = first["property"]
        self.check: str = first["test"].split("::")[-1]
        self.dtype: str = first.get("dtype") or (self.counterexample or {}).get("dtype", "")
        self.title: str = group.title
        self.hint: str | None = group.cause
        self.diagnosis: dict[str, Any] | None = recorded.get("diagnosis")
        self.message: str = failure_text(first)
        self.properties: list[str] = group.properties()
        self.output: str | None = recorded.get("output")
        distinct = (first.get("failures") or [{}])[0]
        self.key: tuple[str, ...] | None = tuple(distinct["key"]) if distinct.get("key") else None
        """How convcheck told this failure from the check's others (``convcheck.failure_keys``)."""
        self._owner = weakref.ref(owner)
        self._arrays: Arrays | None = None

    @property
    def counterexample(self) -> dict[str, Any] | None:
        """The shrunk case's description (``recording.case_spec``), or ``None`` when none was recorded."""
        return (self.record.get("failure") or {}).get("counterexample") or self.record.get("last_case")

    @property
    def compared(self) -> bool:
        """Whether the failure is a comparison of outputs (its counterexample was recorded by it),
        rather than a call that raised, hung or crashed (then the counterexample is the last case
        the check ran, and computing the arrays calls the implementation on it again)."""
        return bool((self.record.get("failure") or {}).get("counterexample"))

    @property
    def shapes(self) -> dict[str, tuple[int, ...] | None]:
        spec = self.counterexample or {}
        return {k: (None if v is None else tuple(v)) for k, v in (spec.get("shapes") or {}).items()}

    @property
    def repro(self) -> str | None:
        """The standalone reproduction script, as ``--report`` writes it (``report.repro.script``)."""
        owner = self._owner()
        if owner is None or not self.counterexample:
            return None
        from ..report import repro

        record = self._report_record()
        if record is None or not record.get("counterexample"):
            return None
        return repro.script(
            record, owner.implementation, owner.capabilities, f"repro/{repro.script_name(record)}"
        )

    def _report_record(self) -> dict[str, Any] | None:
        from ..report import model

        records = model.records_of(self.record)
        failed = [r for r in records if r["status"] in ("failed", "error")]
        dtype = (self.record.get("failure") or {}).get("dtype")
        if not records:
            return None
        return next((r for r in failed if r["dtype"] == dtype), (failed or records)[0])

    def arrays(self) -> Arrays:
        """Inputs, expected and got of the counterexample (computed once, see ``api.arrays``)."""
        if self._arrays is None:
            owner = self._owner()
            if owner is None or not self.counterexample:
                raise ValueError(f"{self.op}:{self.property}: no counterexample was recorded, so no arrays")
            from .arrays import compute

            with owner.live_implementation() as impl:
                self._arrays = compute(self._report_record() or self.record, impl, owner.capabilities)
        return self._arrays

    @property
    def inputs(self) -> dict[str, np.ndarray]:
        return self.arrays().inputs

    @property
    def expected(self) -> dict[str, Any]:
        return self.arrays().expected

    @property
    def got(self) -> dict[str, Any]:
        return self.arrays().got

    def where(self) -> list[str] | None:
        """Where got and expected differ, one line per output (``None`` without a counterexample)."""
        from .display import where_they_differ

        return where_they_differ(self.arrays()) if self.counterexample else None

    def __repr__(self) -> str:
        return f"<Failure {self.op}:{self.property} {self.title!r} ({self.group.span()})>"


@dataclass
class CheckResult:
    """The outcome of ``convcheck.check``.

    ``passed`` (every check that applies passed), ``exit_code`` (``convcheck run``'s: 0, 1, 2 or
    3), ``seed`` and ``profile`` (rerunning with them draws the same cases), ``impl`` (the checked
    implementation's name), ``properties`` (one ``PropertyResult`` per operation x property),
    ``operations`` (operation -> worst status), ``failures`` (one ``Failure`` per mistake),
    ``coverage`` (per operation, the distinct values each hyper-parameter took), ``results`` (the
    raw per-check records, as ``--results`` writes them). ``write_report(dir)`` writes the same
    folder as ``convcheck run --report DIR``. It displays itself: text in a terminal, HTML in Jupyter.
    """

    impl: str
    source: str
    profile: str
    seed: int
    exit_code: int
    results: list[dict[str, Any]]
    implementation: Any = field(repr=False)
    capabilities: Any = field(repr=False)
    run_info: dict[str, Any] = field(default_factory=dict, repr=False)
    junit_xml: str | None = field(default=None, repr=False)
    isolation: str = "process"
    interrupted: bool = False
    first_result_s: float | None = None
    """Seconds from the start of the run to its first finished check."""
    _loader: Any = field(default=None, repr=False)
    _keep: list[Any] = field(default_factory=list, repr=False)
    _failures: list[Failure] | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    @property
    def properties(self) -> list[PropertyResult]:
        from ..summary import rows

        return [
            PropertyResult(
                r["op"],
                r["property"],
                r["status"],
                r["checks"],
                r["passed"],
                r["examples"],
                r["worst_error_ratio"],
            )
            for r in rows(self.results)
        ]

    @property
    def operations(self) -> dict[str, str]:
        from ..summary import group_status

        by_op: dict[str, list[str]] = {}
        for p in self.properties:
            by_op.setdefault(p.op, []).append(p.status)
        return {op: group_status(statuses) for op, statuses in by_op.items()}

    @property
    def failures(self) -> list[Failure]:
        if self._failures is None:
            from ..grouping import failure_groups

            self._failures = [Failure(g, self) for g in failure_groups(self.results)]
        return self._failures

    @property
    def coverage(self) -> dict[str, dict[str, list[str]]]:
        from ..summary import coverage

        return {
            op: {k: sorted(v) for k, v in params.items()}
            for (_, op), params in coverage(self.results).items()
        }

    def compute_arrays(self, failures: list[Failure]) -> None:
        """Compute the arrays of ``failures`` with one load of the implementation (one worker); a
        failure whose arrays cannot be computed keeps none (its ``arrays()`` then raises)."""
        from .arrays import compute

        todo = [f for f in failures if f._arrays is None and f.counterexample]
        if not todo:
            return
        with self.live_implementation() as impl:
            for f in todo:
                try:
                    f._arrays = compute(f._report_record() or f.record, impl, self.capabilities)
                except Exception:
                    continue

    def live_implementation(self) -> Any:
        """A context manager giving the implementation, loaded again to be called (``api.check``)."""
        return self._loader()

    def write_report(self, folder: str | os.PathLike[str]) -> Path:
        """Write report.json, report.md, report.html, junit.xml and repro/ into ``folder``: the same
        folder ``convcheck run --report DIR`` writes (``report.writer``, fed the same records).
        A captured module is copied in too (``impl/``), and the scripts load that copy. Returns
        the folder."""
        from ..report import model
        from ..report.writer import ReportWriter

        folder = Path(folder).expanduser().resolve()
        folder.mkdir(parents=True, exist_ok=True)
        impl = self.implementation
        module_file = next((k for k in self._keep if isinstance(k, str) and k.endswith(".py")), None)
        if module_file is not None:  # the captured module lives in a temporary folder: copy it along
            (folder / "impl").mkdir(exist_ok=True)
            copied = folder / "impl" / Path(module_file).name
            shutil.copyfile(module_file, copied)
            import dataclasses

            impl = dataclasses.replace(impl, source=str(copied), extras=dict(impl.extras))
        strict = bool(self.run_info.get("strict"))
        writer = ReportWriter(
            folder, model.new_document(impl, dict(self.run_info), strict), impl, self.capabilities
        )
        for entry in self.results:
            writer.add(entry)
        writer.finish("interrupted" if self.interrupted else "complete")
        if self.junit_xml and Path(self.junit_xml).is_file():
            shutil.copyfile(self.junit_xml, folder / "junit.xml")
        return folder

    def __str__(self) -> str:
        from .display import text

        return text(self)

    def __repr__(self) -> str:
        return self.__str__()

    def _repr_html_(self) -> str:
        from .display import html

        return html(self)


__all__ = ["CheckResult", "Failure", "PropertyResult"]

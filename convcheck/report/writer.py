"""Keeping a report folder up to date while the run goes, and rendering it at the end.

``ReportWriter`` owns one folder and one document. Every finished check adds
its records and is followed by an *atomic* rewrite of report.json (written
to a temporary file in the same folder, then ``os.replace``d over the old
one), so whatever happens to the run (Ctrl-C, a crash, a killed worker) the
folder holds a valid report of the checks that finished, with
``"status": "running"`` (or ``"interrupted"``) telling that it is partial.
Reproduction scripts are written as failures arrive. At the end the document
is marked ``complete``, a benchmark found in the folder (bench.json) is
embedded, and report.md and report.html are rendered.

``ReportPlugin`` is the pytest side: registered by the convcheck plug-in on
the controller only (never on pytest-xdist workers), it feeds each finished
result to the writer of its implementation.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic import write_text_atomic
from ..impls.registry import is_file_source
from . import REPORT_HTML, REPORT_JSON, REPORT_MD, model, repro

if TYPE_CHECKING:
    from ..impls.registry import Implementation
    from ..spec import Capabilities

atomic_write = write_text_atomic
"""Re-exported for the report modules (``writer.atomic_write``)."""


def dump(document: dict[str, Any]) -> str:
    """report.json's text: strict JSON (non-finite numbers as strings), stable key order."""
    return json.dumps(model.finite(document), indent=1, allow_nan=False) + "\n"


class ReportWriter:
    """One report folder: the document in memory, written out after every change."""

    def __init__(
        self, folder: str | Path, document: dict[str, Any], impl: Implementation, caps: Capabilities
    ) -> None:
        self.folder = Path(folder)
        self.document = document
        self.impl = impl
        self.caps = caps
        self.folder.mkdir(parents=True, exist_ok=True)
        # A benchmark is embedded only if bench.json was already there, unchanged, before the run:
        # the code under test must not be able to slip one in while it runs.
        self._bench_before = _fingerprint(self.folder / "bench.json")
        self.save()

    @property
    def path(self) -> Path:
        return self.folder / REPORT_JSON

    def save(self) -> None:
        atomic_write(self.path, dump(self.document))

    def add(self, entry: dict[str, Any]) -> None:
        """Fold in one finished test result and rewrite report.json."""
        records = model.records_of(entry)
        for rec in records:
            if rec["status"] in ("failed", "error"):
                self._reproduction(rec)
        doc = self.document
        doc["records"].extend(records)
        model.merge_coverage(doc["coverage"], entry)
        doc["summary"] = model.summary(doc["records"], doc["status"])
        self.save()

    def _reproduction(self, rec: dict[str, Any]) -> None:
        """The record's reproduction, and each of its distinct failures' (their own script when
        there are several)."""
        rec["reproduction"] = self._reproduce(rec)
        found = rec.get("failures") or []
        for i, failure in enumerate(found, 1):
            if len(found) == 1:
                failure["reproduction"] = rec["reproduction"]
                continue
            own = {
                **rec,
                "id": f"{rec['id']}-{i}",
                "counterexample": failure.get("counterexample"),
                "failing_output": failure.get("output"),
                "message": failure.get("message"),
                "diagnosis": failure.get("diagnosis"),
            }
            failure["reproduction"] = self._reproduce(own)

    def _reproduce(self, rec: dict[str, Any]) -> dict[str, Any]:
        """``{script, command, rerun}`` for one failure shaped as a record."""
        script = repro.write(self.folder, rec, self.impl, self.caps)
        run = self.document.get("run", {})
        rerun = [
            "convcheck",
            "run",
            "--impl",
            self.impl.source,
            "--ops",
            rec["op"],
            "-k",
            rec["test"].split("::")[-1],
        ]
        if run.get("profile"):
            rerun += ["--profile", run["profile"]]
        if run.get("seed") is not None:
            rerun += ["--seed", str(run["seed"])]
        command = f"python {shlex.quote(str(self.folder / script))}" if script else None
        if rec.get("network"):
            command = network_command(self.impl, rec)
        return {"script": script, "command": command, "rerun": shlex.join(rerun)}

    def finish(self, status: str) -> None:
        """Mark the run ``complete`` or ``interrupted``, embed a benchmark, render md and html."""
        from . import bench

        doc = self.document
        doc["status"] = status
        doc["finished"] = model.now()
        doc["summary"] = model.summary(doc["records"], status)
        section = bench.read(self.folder)
        if section is not None and _fingerprint(self.folder / "bench.json") != self._bench_before:
            section = None
        if section is not None:
            doc["benchmark"] = section
        self.save()
        render(self.folder, doc)


def network_command(impl: Implementation, rec: dict[str, Any]) -> str:
    """A one-line rerun of a whole-network check without pytest, printing its table and localisation."""
    net = rec["network"]
    spec = str(Path(impl.source).resolve()) if is_file_source(impl.source) else impl.name
    code = (  # JSON strings are double-quoted Python literals: no quotes to escape inside shlex's single ones
        "from convcheck.impls.registry import load; from convcheck.networks import check_network; "
        f"print(check_network(load({json.dumps(spec)}), {json.dumps(net['network'])}, "
        f"dtype={json.dumps(net['dtype'])}, seed={net['seed']}, batch={net['batch']}).report())"
    )
    return f"python -c {shlex.quote(code)}"


def _fingerprint(path: Path) -> str | None:
    """SHA-256 of a file's bytes, or ``None`` when it does not exist."""
    import hashlib

    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def render(folder: Path, document: dict[str, Any]) -> None:
    """Write report.md and report.html for ``document`` into ``folder``."""
    from . import html, markdown

    atomic_write(folder / REPORT_MD, markdown.render(document))
    atomic_write(folder / REPORT_HTML, html.render(document, folder))


def load(path: str | Path) -> dict[str, Any]:
    """A report.json (or the report.json of a folder), as a document."""
    p = Path(path)
    if p.is_dir():
        p = p / REPORT_JSON
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise ValueError(f"{p}: cannot be read: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: not valid JSON: {e.msg} at line {e.lineno}") from None
    if not isinstance(doc, dict) or doc.get("format") != model.FORMAT:
        raise ValueError(f'{p}: not a convcheck report (no "format": {model.FORMAT!r})')
    return doc


# --------------------------------------------------------------------------- pytest side


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


class ReportPlugin:
    """Registered on the controller: one ``ReportWriter`` per implementation checked."""

    def __init__(
        self,
        config: Any,
        folder: str,
        impls: list[Any],
        profile: str,
        seed: int | None,
        expected: list[Any] | None = None,
    ) -> None:
        from ..spec import FULL

        strict = bool(config.getoption("strict_contract"))
        run = run_info(config, profile, seed)
        root = Path(folder)
        self.writers: dict[str, ReportWriter] = {}
        self.expected = expected or []  # the --xfails entries (convcheck.xfails)
        self.results: dict[str, list[dict[str, Any]]] = {}
        for impl in impls:
            where = root if len(impls) == 1 else root / _safe(impl.name)
            caps = FULL if strict else impl.capabilities
            self.writers[impl.name] = ReportWriter(where, model.new_document(impl, run, strict), impl, caps)

    def add(self, entry: dict[str, Any]) -> None:
        writer = self.writers.get(entry.get("impl", ""))
        if writer is None and len(self.writers) == 1:
            writer = next(iter(self.writers.values()))
        if writer is not None:
            writer.add(entry)
            self.results.setdefault(writer.impl.name, []).append(entry)

    def pytest_sessionfinish(self, session: Any, exitstatus: int) -> None:
        import pytest

        from .. import xfails

        status = "interrupted" if exitstatus == pytest.ExitCode.INTERRUPTED else "complete"
        for name, writer in self.writers.items():
            if self.expected:  # the three kinds under the expected-failures file
                verdict = xfails.classify(self.expected, self.results.get(name, []))
                writer.document["xfails"] = verdict.to_dict()
            writer.finish(status)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for writer in self.writers.values():
            terminalreporter.write_line(
                f"convcheck: report written to {writer.folder}/ ({REPORT_HTML}, {REPORT_MD}, {REPORT_JSON})"
            )


def run_info(config: Any, profile: str, seed: int | None) -> dict[str, Any]:
    """How the run was made: profile, examples, seed, operations, workers, command line."""
    from hypothesis import settings

    from ..options import DERANDOMISED

    active = settings()
    return {
        "profile": profile,
        "max_examples": active.max_examples,
        "derandomize": bool(active.derandomize) or profile in DERANDOMISED,
        "seed": seed,
        "ops": list(config.getoption("ops").split(",")) if config.getoption("ops") else None,
        "workers": config.getoption("numprocesses", default=None),
        "select": config.getoption("keyword", default="") or None,
        "strict": bool(config.getoption("strict_contract")),
        "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "pytest_args": [str(a) for a in config.invocation_params.args],
    }

"""Grading's link to the results database (``convcheck.results_db``): one run of ``convcheck grade``.

``GradeStore.start`` opens ``OUT/results.sqlite`` and appends a run. With
``--resume``, ``resume`` links to the run the units an earlier run recorded for
the same student, code hash, convcheck version, profile, seed and settings, and
returns the submissions still to grade. ``record`` writes each finished
outcome, with its ``results.jsonl``, in one transaction; ``outcomes`` reads
back the run's verdicts, from which the summary and the final table are made.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import threading
from pathlib import Path
from typing import Any

from .. import __version__
from ..results_db import DB_NAME, ResultsDB, UnitKey, code_hash, settings_key
from .batch import GradeSettings
from .discover import Submission
from .outcome import Outcome, read_results

_OUTCOME_FIELDS = {f.name for f in dataclasses.fields(Outcome)}


def run_settings(settings: GradeSettings) -> dict[str, Any]:
    """Everything besides the code, convcheck's version, the profile and the seed that changes a grade."""
    opts = settings.options
    rubric = settings.rubric
    return {
        "max_examples": opts.max_examples,
        "ops": list(opts.ops),
        "strict": opts.strict,
        "contract": opts.contract,
        "submission_timeout": opts.submission_timeout,
        "passthrough": {k: v for k, v in opts.passthrough.items() if k != "--seed"},
        "rubric": settings_key(
            {
                "weights": rubric.weights,
                "features": rubric.features,
                "credit": rubric.credit,
                "strict": rubric.strict,
            }
        ),
    }


def unit_hash(sub: Submission) -> str:
    """What identifies the code a unit checks: the SHA-256 of its files, and of the library release it
    checks when it is a framework's adapter (a new torch is other code under the same adapter)."""
    files = code_hash(sub.path)
    if not sub.library:
        return files
    return hashlib.sha256(f"{files}\0{sub.library}".encode()).hexdigest()


def outcome_of(data: dict[str, Any]) -> Outcome:
    """The ``Outcome`` a unit's ``outcome`` JSON holds."""
    return Outcome(**{k: v for k, v in data.items() if k in _OUTCOME_FIELDS})


class GradeStore:
    """One grading run in the results database; its methods may be called from any thread, one at a time."""

    def __init__(
        self, db: ResultsDB, run_id: int, settings: GradeSettings, submissions: list[Submission]
    ) -> None:
        self.db = db
        self.run_id = run_id
        self.out = settings.out
        self._lock = threading.Lock()
        seed = settings.options.passthrough.get("--seed", "")
        skey = settings_key(run_settings(settings))
        profile = settings.options.profile
        self.keys = {
            s.student: UnitKey(s.student, unit_hash(s), __version__, profile, seed, skey) for s in submissions
        }
        self.entries = {s.student: str(s.entry) if s.entry else None for s in submissions}

    @classmethod
    def start(
        cls, settings: GradeSettings, submissions: list[Submission], resume: bool, command: str = "grade"
    ) -> GradeStore:
        """Open ``OUT/results.sqlite`` (``ResultsDBError`` if unusable) and append a run of ``command``
        (``grade``, ``scoreboard``) in state ``running``."""
        db = ResultsDB.open(settings.out / DB_NAME)
        seed = settings.options.passthrough.get("--seed", "")
        run_id = db.start_run(
            command, __version__, settings.options.profile, seed, run_settings(settings), resume, sys.argv[1:]
        )
        return cls(db, run_id, settings, submissions)

    def resume(self, submissions: list[Submission]) -> tuple[list[Submission], list[Outcome]]:
        """Link the units already recorded for these submissions to this run; the submissions left to
        grade, and the verdicts of those skipped."""
        with self._lock:
            found = {s.student: self.db.recorded(self.keys[s.student]) for s in submissions}
            self.db.reuse(self.run_id, [u for u in found.values() if u is not None])
        todo = [s for s in submissions if found[s.student] is None]
        return todo, self.outcomes()

    def record(self, outcome: Outcome) -> None:
        """Write one finished submission (verdict and results) unless this run holds it already."""
        results = read_results(self.out / outcome.student / "results.jsonl")
        key, entry = self.keys[outcome.student], self.entries.get(outcome.student)
        with self._lock:
            if outcome.student not in self.db.run_names(self.run_id):
                self.db.record_unit(self.run_id, key, outcome.to_dict(), results, entry)

    def outcomes(self) -> list[Outcome]:
        """The verdicts of this run's summary, sorted by student."""
        with self._lock:
            return [outcome_of(d) for d in self.db.run_outcomes(self.run_id)]

    def finish(self, interrupted: bool) -> None:
        """Mark the run ``interrupted`` or ``finished`` and close the database."""
        with self._lock:
            self.db.finish_run(self.run_id, "interrupted" if interrupted else "finished")
            self.db.close()

    @property
    def path(self) -> Path:
        """The database file."""
        return self.db.path

"""The results database: one SQLite file (``OUT/results.sqlite``) holding every graded unit's results.

A *unit* is one implementation or submission checked once: its verdict, and one
row per check (a conformance test) and dtype of its ``results.jsonl``. Each unit
is written in one transaction as soon as it finishes, in WAL journal mode, so a
grader stopped at any moment (Ctrl-C, SIGKILL) loses at most the units in
flight, and what was committed stays readable. Runs are appended, never
overwritten: each ``convcheck grade`` into the folder is a new row of ``runs``.

Schema (version ``SCHEMA_VERSION``, kept in ``meta``):

``meta(key, value)``
    ``schema_version``; a file with a larger one was written by a newer convcheck and is refused.
``runs(run_id, command, convcheck_version, profile, seed, settings, started, finished, state, resumed, argv)``
    one row per run; ``settings`` is the JSON of everything else that changes results (operations,
    example count, contract, rubric, passed-through limits); ``state`` is ``running``, ``finished``
    or ``interrupted`` (a run killed outright stays ``running`` with no ``finished`` time).
``units(unit_id, run_id, name, entry, code_hash, convcheck_version, profile, seed, settings_key, status,
score, message, checks, seconds, recorded_at, outcome)``
    one row per unit checked, ``run_id`` being the run that checked it; ``code_hash`` is
    ``code_hash()`` of the submission's files; ``status`` is the grading status
    (``convcheck.grading.outcome``) or ``infrastructure error``; ``outcome`` is the verdict's JSON.
``run_units(run_id, unit_id, reused)``
    the units a run's summary holds: those it checked (``reused=0``) and, with ``--resume``,
    those an earlier run had recorded for the same key (``reused=1``).
``results(unit_id, check_id, test, op, property, dtype, status, dtype_failed, error_ratio,
counterexample, message, duration, examples)``
    one row per check and dtype (``dtype`` is ``''`` for a check that records none; a check listed
    twice keeps its last entry); ``check_id`` names the check whatever the implementation
    (``test_forward[conv2d-scipy]``), ``test`` is pytest's id;
    ``status`` is the check's, ``dtype_failed`` whether this dtype failed it, ``error_ratio`` the
    worst error ratio of its outputs in this dtype, ``counterexample`` the JSON list of this
    dtype's failures (key, output, case, message, diagnosis slug).

A unit is *recorded* for a key (name, code hash, convcheck version, profile, seed, settings) when
some unit with that key has a status other than ``RETRY_STATUSES``; ``--resume`` skips those.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
DB_NAME = "results.sqlite"
RETRY_STATUSES = ("grader error", "infrastructure error")
"""Unit statuses that say nothing of the code checked: ``--resume`` checks such a unit again."""

_SQLITE_MAGIC = b"SQLite format 3\x00"
_SKIPPED_NAMES = ("__pycache__", ".ipynb_checkpoints")

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    run_id INTEGER PRIMARY KEY, command TEXT NOT NULL, convcheck_version TEXT NOT NULL,
    profile TEXT NOT NULL, seed TEXT NOT NULL, settings TEXT NOT NULL, started TEXT NOT NULL,
    finished TEXT, state TEXT NOT NULL, resumed INTEGER NOT NULL, argv TEXT NOT NULL
);
CREATE TABLE units (
    unit_id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(run_id),
    name TEXT NOT NULL, entry TEXT, code_hash TEXT NOT NULL, convcheck_version TEXT NOT NULL,
    profile TEXT NOT NULL, seed TEXT NOT NULL, settings_key TEXT NOT NULL, status TEXT NOT NULL,
    score REAL, message TEXT NOT NULL, checks INTEGER NOT NULL, seconds REAL NOT NULL,
    recorded_at TEXT NOT NULL, outcome TEXT NOT NULL
);
CREATE INDEX units_key ON units (name, code_hash, convcheck_version, profile, seed, settings_key);
CREATE TABLE run_units (
    run_id INTEGER NOT NULL REFERENCES runs(run_id), unit_id INTEGER NOT NULL REFERENCES units(unit_id),
    reused INTEGER NOT NULL, PRIMARY KEY (run_id, unit_id)
);
CREATE TABLE results (
    unit_id INTEGER NOT NULL REFERENCES units(unit_id), check_id TEXT NOT NULL, test TEXT NOT NULL,
    op TEXT NOT NULL,
    property TEXT NOT NULL, dtype TEXT NOT NULL, status TEXT NOT NULL, dtype_failed INTEGER NOT NULL,
    error_ratio REAL, counterexample TEXT, message TEXT NOT NULL, duration REAL, examples INTEGER,
    PRIMARY KEY (unit_id, check_id, dtype)
);
CREATE INDEX results_property ON results (op, property, status);
"""


class ResultsDBError(Exception):
    """A results database that cannot be used (not SQLite, a newer schema): a one-line message."""


@dataclass(frozen=True)
class UnitKey:
    """What makes two checks of a unit the same: the code, convcheck and the settings it ran under."""

    name: str
    code_hash: str
    convcheck_version: str
    profile: str
    seed: str
    settings_key: str


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def settings_key(settings: dict[str, Any]) -> str:
    """A short stable digest of a run's settings (their canonical JSON)."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _files_of(path: Path) -> list[Path]:
    """The files a submission consists of, sorted: the file itself, or a folder's files (caches aside)."""
    if not path.is_dir():
        return [path]
    return sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and not any(part in _SKIPPED_NAMES for part in p.relative_to(path).parts)
    )


def code_hash(path: Path) -> str:
    """The SHA-256 of a submission's files: each file's path relative to ``path`` and its bytes, in
    sorted order, so the same files give the same hash wherever they lie (a missing file hashes as empty)."""
    digest = hashlib.sha256()
    for file in _files_of(path):
        rel = file.name if file == path else file.relative_to(path).as_posix()
        try:
            data = file.read_bytes()
        except OSError:
            data = b""
        digest.update(f"{rel}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


# --------------------------------------------------------------------------- rows from results.jsonl


def _worst_ratio(outputs: dict[str, Any]) -> float | None:
    ratios = [o.get("error_ratio") for o in outputs.values() if isinstance(o, dict)]
    found = [float(r) for r in ratios if isinstance(r, (int, float))]
    return max(found) if found else None


def _failures_in(entry: dict[str, Any], dtype: str) -> list[dict[str, Any]]:
    """The check's failures in ``dtype`` as the counterexample column keeps them."""
    out = []
    for f in entry.get("failures") or []:
        if dtype and f.get("dtype") not in (dtype, None):
            continue
        case = f.get("counterexample") or {}
        out.append(
            {
                "key": f.get("key"),
                "output": f.get("output"),
                "case": case.get("description") if isinstance(case, dict) else case,
                "message": f.get("message"),
                "diagnosis": (f.get("diagnosis") or {}).get("slug"),
            }
        )
    if not out and dtype in (entry.get("failing_cases") or {}):
        out.append({"case": entry["failing_cases"][dtype].get("description")})
    return out


def result_rows(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per dtype of one ``results.jsonl`` entry (one row with dtype ``''`` when it records none)."""
    by_dtype = entry.get("by_dtype") or {}
    dtypes = sorted(by_dtype) or [entry.get("dtype") or ""]
    failed_dtypes = set(entry.get("failed_dtypes") or [])
    rows = []
    for dtype in dtypes:
        failed = entry.get("status") in ("failed", "error") and (dtype in failed_dtypes or not failed_dtypes)
        outputs = (by_dtype.get(dtype) or {}).get("outputs") or {}
        ratio = (
            _worst_ratio(outputs)
            if by_dtype
            else _worst_ratio(
                {k: {"error_ratio": v} for k, v in (entry.get("worst_error_ratio") or {}).items()}
            )
        )
        failures = _failures_in(entry, dtype) if failed else []
        rows.append(
            {
                "check_id": entry.get("check") or entry.get("test") or "",
                "test": entry.get("test") or "",
                "op": entry.get("op") or "",
                "property": entry.get("property") or "",
                "dtype": dtype,
                "status": entry.get("status") or "",
                "dtype_failed": int(failed),
                "error_ratio": ratio,
                "counterexample": json.dumps(failures) if failures else None,
                "message": (entry.get("message") or "") if failed else "",
                "duration": entry.get("duration"),
                "examples": (by_dtype.get(dtype) or {}).get("examples", entry.get("examples")),
            }
        )
    return rows


# --------------------------------------------------------------------------- the database


def _check_file(path: Path) -> None:
    """Raise ``ResultsDBError`` when ``path`` exists, is not empty and is not an SQLite file."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        return
    except OSError as e:
        raise ResultsDBError(f"{path}: cannot be read ({e.strerror})") from None
    if head and head != _SQLITE_MAGIC:
        raise ResultsDBError(
            f"{path} is not a convcheck results database (not an SQLite file); "
            "move it away or choose another output folder"
        )


class ResultsDB:
    """An open results database (see the module docstring); use ``ResultsDB.open``."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path, readonly: bool = False) -> ResultsDB:
        """Open (or, unless ``readonly``, create) the database at ``path``.

        Raises ``ResultsDBError`` for a file that is not SQLite, not convcheck's, or of a newer schema;
        such a file is left as it was.
        """
        _check_file(path)
        if readonly and not path.is_file():
            raise ResultsDBError(f"{path}: no such results database; give the results.sqlite a grading wrote")
        uri = f"{path.resolve().as_uri()}?mode={'ro' if readonly else 'rwc'}"
        # callers serialise their use (``GradeStore`` holds a lock), so a callback on any thread may write
        conn = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None, check_same_thread=False)
        db = cls(conn, path)
        try:
            db._check_schema(create=not readonly)
        except sqlite3.DatabaseError as e:
            conn.close()
            raise ResultsDBError(f"{path} is not a usable results database ({e}); move it away") from None
        except ResultsDBError:
            conn.close()
            raise
        return db

    def _check_schema(self, create: bool) -> None:
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables and create:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            with self.transaction():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
                self.conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            return
        if "meta" not in tables:
            raise ResultsDBError(
                f"{self.path} is an SQLite file but not a convcheck results database; "
                "move it away or choose another output folder"
            )
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(row[0]) if row and str(row[0]).isdigit() else -1
        if version > SCHEMA_VERSION:
            raise ResultsDBError(
                f"{self.path} has schema version {version}, newer than this convcheck reads "
                f"({SCHEMA_VERSION}); upgrade convcheck or choose another output folder"
            )
        if version != SCHEMA_VERSION:
            raise ResultsDBError(f"{self.path} has no valid schema_version in its meta table; move it away")
        if create:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction: committed whole at the end, rolled back whole on any exception."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()

    # ----------------------------------------------------------------------- runs

    def start_run(
        self,
        command: str,
        version: str,
        profile: str,
        seed: str,
        settings: dict[str, Any],
        resumed: bool,
        argv: list[str],
    ) -> int:
        """Append a run in state ``running``; its id."""
        with self.transaction():
            cur = self.conn.execute(
                "INSERT INTO runs (command, convcheck_version, profile, seed, settings, started, finished, state,"
                " resumed, argv) VALUES (?, ?, ?, ?, ?, ?, NULL, 'running', ?, ?)",
                (command, version, profile, seed, json.dumps(settings, sort_keys=True), _now(), int(resumed),
                 json.dumps(argv)),
            )  # fmt: skip
        return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, state: str) -> None:
        """Mark a run ``finished`` or ``interrupted``, with the time."""
        with self.transaction():
            self.conn.execute("UPDATE runs SET finished=?, state=? WHERE run_id=?", (_now(), state, run_id))

    # ----------------------------------------------------------------------- units

    def recorded(self, key: UnitKey) -> int | None:
        """The latest unit recorded for ``key`` whose status is not one to retry, or ``None``."""
        row = self.conn.execute(
            "SELECT unit_id FROM units WHERE name=? AND code_hash=? AND convcheck_version=? AND profile=?"
            f" AND seed=? AND settings_key=? AND status NOT IN ({','.join('?' * len(RETRY_STATUSES))})"
            " ORDER BY unit_id DESC LIMIT 1",
            (key.name, key.code_hash, key.convcheck_version, key.profile, key.seed, key.settings_key,
             *RETRY_STATUSES),
        ).fetchone()  # fmt: skip
        return int(row[0]) if row else None

    def reuse(self, run_id: int, unit_ids: Iterable[int]) -> None:
        """Add earlier units to a run's summary, in one transaction."""
        with self.transaction():
            self.conn.executemany(
                "INSERT OR IGNORE INTO run_units VALUES (?, ?, 1)", [(run_id, u) for u in unit_ids]
            )

    def record_unit(
        self,
        run_id: int,
        key: UnitKey,
        outcome: dict[str, Any],
        results: list[dict[str, Any]],
        entry: str | None,
    ) -> int:
        """Write one finished unit (its verdict ``outcome`` and its ``results.jsonl`` entries) in one
        transaction, linked to ``run_id``; the unit's id."""
        with self.transaction():
            cur = self.conn.execute(
                "INSERT INTO units (run_id, name, entry, code_hash, convcheck_version, profile, seed, settings_key,"
                " status, score, message, checks, seconds, recorded_at, outcome)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, key.name, entry, key.code_hash, key.convcheck_version, key.profile, key.seed,
                 key.settings_key, outcome.get("status", ""), outcome.get("score"), outcome.get("message", ""),
                 int(outcome.get("checks") or 0), float(outcome.get("seconds") or 0.0), _now(),
                 json.dumps(outcome, sort_keys=True)),
            )  # fmt: skip
            unit_id = int(cur.lastrowid or 0)
            self.conn.execute("INSERT INTO run_units VALUES (?, ?, 0)", (run_id, unit_id))
            rows = [row for e in results for row in result_rows(e)]
            self.conn.executemany(
                "INSERT OR REPLACE INTO results VALUES (:unit_id, :check_id, :test, :op, :property, :dtype, :status,"
                " :dtype_failed, :error_ratio, :counterexample, :message, :duration, :examples)",
                [{**row, "unit_id": unit_id} for row in rows],
            )
        return unit_id

    def run_outcomes(self, run_id: int) -> list[dict[str, Any]]:
        """The verdicts (``outcome`` JSON) of every unit in a run's summary, sorted by name."""
        rows = self.conn.execute(
            "SELECT u.outcome FROM run_units r JOIN units u USING (unit_id) WHERE r.run_id=? ORDER BY u.name",
            (run_id,),
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def run_names(self, run_id: int) -> set[str]:
        """The names of the units in a run's summary."""
        rows = self.conn.execute(
            "SELECT u.name FROM run_units r JOIN units u USING (unit_id) WHERE r.run_id=?", (run_id,)
        )
        return {r[0] for r in rows}

    # ----------------------------------------------------------------------- queries

    def latest_run(self) -> int | None:
        """The last run that holds at least one unit, or ``None``."""
        row = self.conn.execute("SELECT MAX(run_id) FROM run_units").fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def failing(self, prop: str, run_id: int | None) -> list[sqlite3.Row]:
        """The units (of ``run_id``, or of every run when ``None``) failing ``prop`` (``property`` or
        ``op:property``): one row per unit and check, with its failed dtypes and worst error ratio."""
        op, _, name = prop.rpartition(":")
        where = "res.property=?" + (" AND res.op=?" if op else "")
        params: list[Any] = [name, op] if op else [name]
        scope = ""
        if run_id is not None:
            scope = " AND u.unit_id IN (SELECT unit_id FROM run_units WHERE run_id=?)"
            params.append(run_id)
        self.conn.row_factory = sqlite3.Row
        return self.conn.execute(
            "SELECT u.name, u.code_hash, u.run_id, res.op, res.property, res.check_id,"
            " group_concat(CASE WHEN res.dtype_failed THEN res.dtype END, ',') AS dtypes,"
            " MAX(res.error_ratio) AS ratio, MIN(res.counterexample) AS counterexample"
            f" FROM results res JOIN units u USING (unit_id) WHERE {where} AND res.dtype_failed=1{scope}"
            " GROUP BY u.unit_id, res.check_id ORDER BY u.name, u.unit_id, res.check_id",
            params,
        ).fetchall()

    def worst_ratios(self, run_id: int) -> dict[tuple[str, str], float]:
        """``(name, "op:property") -> worst error ratio`` over the checks of a run's units."""
        rows = self.conn.execute(
            "SELECT u.name, res.op || ':' || res.property, MAX(res.error_ratio) FROM results res"
            " JOIN run_units r USING (unit_id) JOIN units u USING (unit_id)"
            " WHERE r.run_id=? AND res.error_ratio IS NOT NULL GROUP BY u.unit_id, res.op, res.property",
            (run_id,),
        )
        return {(name, item): float(ratio) for name, item, ratio in rows}

    def history(self, name: str) -> list[sqlite3.Row]:
        """Every unit recorded under ``name``, oldest first, with its failing checks counted."""
        self.conn.row_factory = sqlite3.Row
        return self.conn.execute(
            "SELECT u.unit_id, u.run_id, r.started, u.convcheck_version, u.profile, u.seed, u.code_hash,"
            " u.status, u.score, (SELECT COUNT(DISTINCT check_id) FROM results WHERE unit_id=u.unit_id"
            " AND dtype_failed=1) AS failing, (SELECT group_concat(DISTINCT op || ':' || property) FROM results"
            " WHERE unit_id=u.unit_id AND dtype_failed=1) AS properties"
            " FROM units u JOIN runs r USING (run_id) WHERE u.name=? ORDER BY u.unit_id",
            (name,),
        ).fetchall()

"""``convcheck report query DB``: questions to a results database (``convcheck.results_db``).

* ``--failing PROPERTY`` (``forward`` or ``conv2d:forward``): the submissions that fail it, one
  line per submission and check, with the dtypes that failed, the worst error ratio and the
  smallest counterexample; from the latest run, or every run with ``--all-runs``.
* ``--history NAME``: every result recorded for one implementation or submission, oldest first:
  the run, convcheck's version, profile, seed, code hash, status, score and failing properties.
* ``--scoreboard``: the latest run side by side: a column per submission, its score, then a row
  per graded item with its status (and the worst error ratio of a property's checks).

Output is a plain-text table (``convcheck.tables.terminal``). Exit status: 0 (whether or not
anything matched), 2 when the database cannot be used.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.markup import escape

from ..results_db import DB_NAME, ResultsDB, ResultsDBError
from ..tables import RIGHT, terminal

EXIT_OK, EXIT_USAGE = 0, 2
HASH_SHOWN = 12
CASE_LIMIT = 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``report query`` options."""
    parser.add_argument("db", metavar="DB", help=f"a {DB_NAME} (or the grading folder that holds it)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--failing", metavar="PROPERTY", help="the submissions failing PROPERTY (forward, or conv2d:forward)"
    )
    what.add_argument(
        "--history", metavar="NAME", help="one implementation's results across runs and code versions"
    )
    what.add_argument(
        "--scoreboard", action="store_true", help="the latest run: every graded item per submission"
    )
    parser.add_argument(
        "--all-runs", action="store_true", help="with --failing: every run, not only the latest"
    )


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


def _case(counterexample: str | None) -> str:
    """The first failure's case description, cut to ``CASE_LIMIT`` characters."""
    failures: list[dict[str, Any]] = json.loads(counterexample) if counterexample else []
    text = next((str(f["case"]) for f in failures if f.get("case")), "")
    return text if len(text) <= CASE_LIMIT else text[: CASE_LIMIT - 3] + "..."


def failing_lines(db: ResultsDB, prop: str, all_runs: bool) -> list[str]:
    """The table of units failing ``prop``, or a line saying none does."""
    run_id = None if all_runs else db.latest_run()
    rows = db.failing(prop, run_id)
    scope = "any run" if all_runs else f"run {run_id}"
    if not rows:
        return [f"no submission fails {prop} in {scope}"]
    body = [
        [r["name"], r["run_id"], r["code_hash"][:HASH_SHOWN], f"{r['op']}:{r['property']}", r["check_id"],
         r["dtypes"] or "", _ratio(r["ratio"]), _case(r["counterexample"])]
        for r in rows
    ]  # fmt: skip
    header = [
        "name",
        "graded in run",
        "code",
        "property",
        "check",
        "failed dtypes",
        "worst ratio",
        "counterexample",
    ]
    names = len({r["name"] for r in rows})
    return [
        f"{names} submission(s) fail {prop} in {scope}",
        *terminal(header, _plain(body), justify=_right(header, 6)),
    ]


def _plain(rows: list[list[Any]]) -> list[list[str]]:
    """Cells as text shown as it is (a check id's ``[...]`` is not taken for style markup)."""
    return [[escape(str(c)) for c in row] for row in rows]


def _right(header: list[str], *columns: int) -> list[str]:
    return [RIGHT if i in columns else "left" for i in range(len(header))]


def history_lines(db: ResultsDB, name: str) -> list[str]:
    """The table of every unit recorded under ``name``, or a line saying there is none."""
    rows = db.history(name)
    if not rows:
        return [f"nothing recorded for {name}"]
    body = [
        [r["run_id"], r["started"], r["convcheck_version"], r["profile"], r["seed"], r["code_hash"][:HASH_SHOWN],
         r["status"], "" if r["score"] is None else f"{r['score']:.2f}", r["properties"] or ""]
        for r in rows
    ]  # fmt: skip
    header = ["run", "started", "convcheck", "profile", "seed", "code", "status", "score", "failing"]
    return terminal(header, _plain(body), justify=_right(header, 0, 7))


def scoreboard_lines(db: ResultsDB) -> list[str]:
    """The latest run's units side by side: score, status, then each graded item's status (worst ratio)."""
    run_id = db.latest_run()
    outcomes = db.run_outcomes(run_id) if run_id is not None else []
    if run_id is None or not outcomes:
        return ["no run holds a graded submission yet"]
    ratios = db.worst_ratios(run_id)
    names = [o["student"] for o in outcomes]
    items = list(dict.fromkeys(k for o in outcomes for k in o.get("items", {})))
    body = [["score", *(f"{o['score']:.2f}" for o in outcomes)], ["status", *(o["status"] for o in outcomes)]]
    for item in items:
        cells = []
        for o in outcomes:
            ratio = ratios.get((o["student"], item))
            status = o.get("items", {}).get(item, "not_run")
            shown = ratio is not None and status in ("failed", "passed")
            cells.append(status + (f" ({_ratio(ratio)})" if shown else ""))
        body.append([item, *cells])
    return [f"run {run_id}", *terminal(["item", *names], _plain(body))]


def _answer(db: ResultsDB, args: argparse.Namespace) -> list[str]:
    if args.failing:
        return failing_lines(db, args.failing, args.all_runs)
    if args.history:
        return history_lines(db, args.history)
    return scoreboard_lines(db)


def run(args: argparse.Namespace) -> int:
    """Answer one query; the exit status."""
    path = Path(args.db)
    path = path / DB_NAME if path.is_dir() else path
    try:
        db = ResultsDB.open(path, readonly=True)
    except ResultsDBError as e:
        print(f"convcheck: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        lines = _answer(db, args)
    finally:
        db.close()
    print("\n".join(lines))
    return EXIT_OK

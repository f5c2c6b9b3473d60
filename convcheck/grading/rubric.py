"""The grading rubric: how much each checked group is worth, and what partial outcomes earn.

A rubric is a TOML file (``.toml``, read with ``tomllib``) or a JSON file
(``.json``) with the same structure. ``default_rubric.toml``, shipped in this
package, is used when ``convcheck grade`` gets no ``--rubric``; copy it to start
your own. Every table but ``weights`` is optional::

    [weights.conv2d]          # one table per operation: property = weight (a number >= 0)
    forward = 3
    backward = 3
    hygiene = 1               # a property left out of the table is not graded

    [weights.max_pool2d]
    forward = 2
    max_routing = 2

    [features.conv2d]         # optional: what declaring a feature unsupported costs
    dilation = 0.5            # weight of "conv2d.dilation is supported"

    [credit]                  # what a group earns when it neither passed (1) nor failed (0)
    unsupported = 0.0         # declared unsupported (a dtype, or a feature above)
    missing = 0.0             # the contract function is not defined
    skipped = 0.0             # nothing could be checked (no oracle follows the declared semantics)
    not_run = 0.0             # no result: the run ended before reaching the group

    [options]
    strict = false            # true: run with --strict, checking the full contract whatever is declared

Property names are those of the suite (``convcheck.grading.properties``):
``forward``, ``backward``, ``shapes_dtypes``, ``adjoint``, ``finite_differences``,
``linearity``, ``batch_independence``, ``hygiene`` for every operation, ``nonfinite`` and ``sweep``
for convolution and pooling, plus
``bias_gradient`` and ``worked_examples`` (conv2d), ``max_routing`` and
``worked_examples`` (max_pool2d), ``avg_spreading`` (avg_pool2d). Feature names
are those of a capabilities declaration (``stride``, ``padding``, ``dilation``,
``groups``, ``convention``, ``ceil_mode``, ``ties``, ``exclude_pad``).

Score: every graded item (a property group, or a feature) earns ``weight *
credit``; the score is their sum over the total weight, times 100. A group's
credit is 1 when it passed, 0 when it failed or errored, and the ``[credit]``
value of its status otherwise. A feature item earns 1 unless the submission
declares the feature unsupported or different (``credit.unsupported``); when
none of the operation's checks ran, it earns what the operation's groups earn
(``missing`` for an operation not implemented). Under ``strict = true`` the
features table is not used: the property groups then check the full contract.
When grading is narrowed to some operations (``--ops``), only their items count.

Anything else (an unknown table, operation, property or feature, a weight
that is not a number >= 0, a credit outside [0, 1], no weight at all) is an
error naming the offending key, raised as ``RubricError``.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..spec import OPERATIONS
from .properties import suite_groups

CREDIT_DEFAULTS = {"unsupported": 0.0, "missing": 0.0, "skipped": 0.0, "not_run": 0.0}
"""Configurable credits, by group status; ``passed`` earns 1 and ``failed``/``error`` 0, always."""

FIXED_CREDIT = {"passed": 1.0, "failed": 0.0, "error": 0.0}
_TABLES = ("weights", "features", "credit", "options")
_OPTIONS = {"strict": bool}


class RubricError(ValueError):
    """A rubric file that cannot be read or does not follow the format in this module's docstring."""


@dataclass(frozen=True)
class Rubric:
    """A validated rubric.

    ``weights`` maps ``"op:property"`` to its weight, ``features`` maps
    ``"op.feature"`` to its weight, ``credit`` maps every group status to its credit.
    """

    weights: dict[str, float]
    features: dict[str, float]
    credit: dict[str, float]
    strict: bool
    source: str

    def items(self, ops: list[str] | None = None) -> dict[str, float]:
        """Every graded item (groups, then features unless strict) of the given operations, with its weight."""
        keep = set(ops or suite_groups())
        out = {k: w for k, w in self.weights.items() if k.split(":")[0] in keep}
        if not self.strict:
            out.update({k: w for k, w in self.features.items() if k.split(".")[0] in keep})
        return out

    def total(self, ops: list[str] | None = None) -> float:
        """The total weight of the items of the given operations (what a score is normalised by)."""
        return sum(self.items(ops).values())


def default_rubric_path() -> Path:
    """Where the shipped default rubric lives."""
    return Path(str(resources.files(__package__).joinpath("default_rubric.toml")))


def _read(path: Path) -> dict[str, Any]:
    """The raw mapping of a TOML or JSON rubric file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise RubricError(f"cannot read rubric {path}: {e.strerror or e}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise RubricError(f"rubric {path} is not valid {kind}: {e}") from None
    if not isinstance(data, dict):
        raise RubricError(f"rubric {path} must be a table (a JSON object), got {type(data).__name__}")
    return data


def _number(where: str, value: Any, low: float, high: float) -> float:
    """``value`` as a float in ``[low, high]``, or a ``RubricError`` naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RubricError(f"{where} = {value!r} must be a number")
    if not low <= value <= high:
        bounds = f"at least {low:g}" if math.isinf(high) else f"between {low:g} and {high:g}"
        raise RubricError(f"{where} = {value!r} must be {bounds}")
    return float(value)


def _table(where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RubricError(f"{where} must be a table of name = value, got {value!r}")
    return value


def _known(where: str, name: str, known: tuple[str, ...] | list[str], what: str) -> None:
    if name not in known:
        raise RubricError(f"{where}: unknown {what} {name!r}; known: {', '.join(known)}")


def _weights(data: dict[str, Any]) -> dict[str, float]:
    """``"op:property" -> weight`` from the ``weights`` table, checked against the suite's groups."""
    groups = suite_groups()
    out: dict[str, float] = {}
    for op, props in _table("weights", data.get("weights", {})).items():
        _known("weights", op, list(groups), "operation or network")
        for prop, weight in _table(f"weights.{op}", props).items():
            _known(f"weights.{op}", prop, groups[op], f"property of {op}")
            out[f"{op}:{prop}"] = _number(f"weights.{op}.{prop}", weight, 0.0, math.inf)
    return out


def _features(data: dict[str, Any]) -> dict[str, float]:
    """``"op.feature" -> weight`` from the optional ``features`` table."""
    out: dict[str, float] = {}
    for op, feats in _table("features", data.get("features", {})).items():
        _known("features", op, list(OPERATIONS), "operation")
        names = [f.name for f in OPERATIONS[op].features]
        for name, weight in _table(f"features.{op}", feats).items():
            _known(f"features.{op}", name, names, f"feature of {op}")
            out[f"{op}.{name}"] = _number(f"features.{op}.{name}", weight, 0.0, math.inf)
    return out


def _credit(data: dict[str, Any]) -> dict[str, float]:
    """Every status's credit: the fixed ones and the ``credit`` table over the defaults."""
    out = {**FIXED_CREDIT, **CREDIT_DEFAULTS}
    for status, value in _table("credit", data.get("credit", {})).items():
        _known("credit", status, list(CREDIT_DEFAULTS), "status (passed earns 1, failed and error 0)")
        out[status] = _number(f"credit.{status}", value, 0.0, 1.0)
    return out


def _strict(data: dict[str, Any]) -> bool:
    options = _table("options", data.get("options", {}))
    for name, value in options.items():
        _known("options", name, list(_OPTIONS), "option")
        if not isinstance(value, _OPTIONS[name]):
            raise RubricError(f"options.{name} = {value!r} must be true or false")
    return bool(options.get("strict", False))


def parse_rubric(data: dict[str, Any], source: str = "<rubric>") -> Rubric:
    """Validate a rubric's raw mapping (as read from TOML or JSON); ``RubricError`` names any mistake."""
    try:
        for key in data:
            _known("rubric", key, _TABLES, "table")
        rubric = Rubric(_weights(data), _features(data), _credit(data), _strict(data), source)
        if rubric.total() <= 0:
            raise RubricError(
                "the weights table gives no weight to any property; give at least one a weight > 0"
            )
    except RubricError as e:
        raise RubricError(f"rubric {source}: {e}") from None
    return rubric


def load_rubric(path: Path | None = None) -> Rubric:
    """The rubric in ``path`` (TOML, or JSON by its ``.json`` suffix), or the shipped default."""
    path = path or default_rubric_path()
    return parse_rubric(_read(path), str(path))

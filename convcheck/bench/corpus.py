"""Loading and validating benchmark corpora (the format is documented in ``convcheck.corpus``).

A corpus file is checked in three passes, and every problem is reported with
the file, the entry (its ``id`` and its position ``entries[i]``) and the field:

1. it must be JSON;
2. it must follow ``corpus.schema.json`` (types, required and unknown fields,
   the fields each operation takes);
3. each entry must be a valid configuration of its operation by the spec
   (``spec.conv`` / ``spec.pool``), ids must be unique, and a ``series`` value
   must agree with the shape it describes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convcheck.corpus import DIRECTORY, SCHEMA_PATH
from convcheck.spec import OPERATIONS, InvalidConfiguration, UsageError
from convcheck.spec.params import AvgPool2dParams, Conv2dParams, MaxPool2dParams, WindowParams

FORMAT = "convcheck-corpus"
VERSION = 1

OP_FIELDS: dict[str, tuple[str, ...]] = {
    "conv2d": ("out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias"),
    "max_pool2d": ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "avg_pool2d": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
}
"""The hyper-parameter fields each operation's entries must give, and the only ones they may."""

COMMON_FIELDS = ("id", "op", "input", "batch", "source")
"""Fields every entry gives (``count``, ``series`` and ``note`` are optional)."""

MAX_PROBLEMS = 20
"""At most this many problems are listed for one file."""


class CorpusError(UsageError):
    """A corpus cannot be found or is malformed.

    The message names the file, the entry and the field, says what was found
    and what is expected; fix the file (or pick another ``--corpus``).
    """


@dataclass(frozen=True)
class Series:
    """The place of an entry on a scaling curve: ``dimension`` takes ``value`` on curve ``name``."""

    name: str
    dimension: str
    value: int


@dataclass(frozen=True)
class Entry:
    """One layer of a corpus: an operation, its input shape (without batch) and hyper-parameters."""

    corpus: str
    id: str
    op: str
    input: tuple[int, int, int]
    batch: int
    params: WindowParams
    source: str
    kernel_size: tuple[int, int]
    out_channels: int | None = None
    bias: bool = False
    count: int = 1
    series: Series | None = None

    @property
    def key(self) -> str:
        """``corpus/id``, unique across corpora."""
        return f"{self.corpus}/{self.id}"

    def batch_for(self, override: int | None) -> int:
        """The batch to run: ``override`` if given, except on a batch curve, where the batch is measured."""
        if override is None or (self.series is not None and self.series.dimension == "batch"):
            return self.batch
        return override

    def shapes(self, batch: int) -> dict[str, tuple[int, ...] | None]:
        """The operation's input shapes at ``batch``: ``x`` (N, C, H, W), and ``w``, ``b`` for conv2d."""
        x = (batch, *self.input)
        if self.op != "conv2d":
            return {"x": x}
        assert self.out_channels is not None and isinstance(self.params, Conv2dParams)
        c_per_group = self.input[0] // self.params.groups
        w = (self.out_channels, c_per_group, *self.kernel_size)
        return {"x": x, "w": w, "b": (self.out_channels,) if self.bias else None}

    def output_shape(self, batch: int) -> tuple[int, ...]:
        """Shape of ``y`` at ``batch``."""
        return OPERATIONS[self.op].output_shape(self.shapes(batch), self.params)

    def describe(self) -> str:
        """A short one-line description: ``conv2d 64x56x56 -> 256, 1x1 s1 p0 g1``."""
        c, h, w = self.input
        kh, kw = self.kernel_size
        s = self.params.stride
        pad = self.params.padding
        stride = f"s{s[0]}" if s[0] == s[1] else f"s{s[0]}x{s[1]}"
        padding = f"p{pad[0]}" if len(set(pad)) == 1 else "p" + ",".join(map(str, pad))
        text = f"{self.op} {c}x{h}x{w}"
        if self.out_channels is not None:
            text += f" -> {self.out_channels}"
        text += f", {kh}x{kw} {stride} {padding}"
        if isinstance(self.params, Conv2dParams) and self.params.groups > 1:
            text += f" g{self.params.groups}"
        return text


@dataclass(frozen=True)
class Corpus:
    """A loaded corpus file."""

    name: str
    version: int
    title: str
    description: str
    source: str
    path: str
    entries: tuple[Entry, ...]
    network: str | None = None
    """The ``spec/networks.py`` network whose conv and pool layers are the first entries, if named."""

    def info(self) -> dict[str, Any]:
        """What a report records about the corpus (everything but the entries)."""
        return {
            "name": self.name,
            "version": self.version,
            "title": self.title,
            "description": self.description,
            "source": self.source,
            "file": self.path,
            "entries": len(self.entries),
        }


# --------------------------------------------------------------------------- finding files


def shipped() -> list[str]:
    """Names of the corpora shipped with convcheck (the ``*.json`` files in ``convcheck.corpus``)."""
    return sorted(p.stem for p in DIRECTORY.glob("*.json") if p.name != SCHEMA_PATH.name)


def resolve(name: str) -> Path:
    """The file of a shipped corpus ``name``, or ``name`` itself when it is an existing file."""
    if name in shipped():
        return DIRECTORY / f"{name}.json"
    path = Path(name)
    if path.is_file():
        return path
    raise CorpusError(
        f"no corpus {name!r}: not a shipped corpus ({', '.join(shipped())}) and not an existing file; "
        "give a shipped name or the path of a .json corpus file"
    )


def load(name: str) -> Corpus:
    """Load and validate a shipped corpus by name, or a corpus file by path; raise ``CorpusError``."""
    path = resolve(name)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise CorpusError(f"{path}: cannot be read: {e.strerror}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise CorpusError(f"{path}: not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
    return parse(doc, str(path))


def load_many(names: Iterable[str]) -> list[Corpus]:
    """Load several corpora; a name given twice is loaded once; two corpora may not share a name."""
    corpora: dict[str, Corpus] = {}
    for name in names:
        corpus = load(name)
        other = corpora.get(corpus.name)
        if other is not None and other.path != corpus.path:
            raise CorpusError(f"{corpus.path}: name {corpus.name!r} is already used by {other.path}")
        corpora[corpus.name] = corpus
    return list(corpora.values())


# --------------------------------------------------------------------------- validation


@functools.cache
def _validator() -> Any:
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def parse(doc: Any, where: str) -> Corpus:
    """Validate a decoded corpus document and build the ``Corpus``; ``where`` names it in errors."""
    problems = schema_problems(doc)
    if not problems:
        problems = semantic_problems(doc)
    if problems:
        raise CorpusError(_join(where, problems))
    entries = tuple(_entry(doc["name"], raw) for raw in doc["entries"])
    return Corpus(
        name=doc["name"],
        version=doc["version"],
        title=doc.get("title", doc["name"]),
        description=doc["description"],
        source=doc["source"],
        path=where,
        entries=entries,
        network=doc.get("network"),
    )


def _join(where: str, problems: Sequence[str]) -> str:
    if len(problems) == 1:
        return f"{where}: {problems[0]}"
    shown = problems[:MAX_PROBLEMS]
    more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
    return f"{where}: {len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in shown) + more


def schema_problems(doc: Any) -> list[str]:
    """One readable message per schema violation, in file order (at most one per field)."""
    errors = sorted(_validator().iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    messages: list[str] = []
    for error in errors:
        text = _schema_message(error, doc)
        if text not in messages:
            messages.append(text)
    return messages


def _entry_label(doc: Any, index: int) -> str:
    """``entry 'conv1' (entries[2])``, or ``entries[2]`` when the entry has no usable id."""
    raw = doc["entries"][index]
    if isinstance(raw, dict) and isinstance(raw.get("id"), str) and raw["id"]:
        return f"entry {raw['id']!r} (entries[{index}])"
    return f"entries[{index}]"


def _location(doc: Any, path: list[Any]) -> tuple[str, list[str]]:
    """The entry label (or ``""`` at the top level) and the field path below it."""
    if len(path) >= 2 and path[0] == "entries" and isinstance(path[1], int):
        return _entry_label(doc, path[1]) + ", ", [str(p) for p in path[2:] if not isinstance(p, int)]
    return "", [str(p) for p in path if not isinstance(p, int)]


def _expected(field_path: list[str], in_entry: bool) -> str:
    """The schema's description of a field: what the file should have there."""
    schema = _validator().schema
    node = schema["$defs"]["entry"] if in_entry else schema
    for name in field_path:
        node = node.get("properties", {}).get(name, {})
    return node.get("description", "")


def _schema_message(error: Any, doc: Any) -> str:
    """Translate one ``jsonschema`` error into ``entry 'x' (entries[i]), field 'f': ...``."""
    path = list(error.absolute_path)
    where, fields = _location(doc, path)
    in_entry = bool(where)
    op = error.instance.get("op") if isinstance(error.instance, dict) else None
    if error.validator == "required":
        missing = [".".join([*fields, f]) for f in error.validator_value if f not in error.instance]
        what = (
            f"field {missing[0]!r} is" if len(missing) == 1 else f"fields {', '.join(map(repr, missing))} are"
        )
        need = ""
        if in_entry and len(fields) == 0:
            need = f"; {op} entries give " if op in OP_FIELDS else "; every entry gives "
            need += ", ".join((*COMMON_FIELDS, *OP_FIELDS.get(op or "", ())))
        return f"{where}{what} missing{need}"
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(known))
        name = ".".join([*fields, extra[0]])
        return f"{where}field {name!r} is not a corpus field; the known fields here are {', '.join(known)}"
    if error.schema is False and in_entry:
        return _not_applicable(doc["entries"][path[1]], where)
    if not path and error.validator == "type":
        return (
            f"the file holds a JSON {_json_type(doc)}, but a corpus is a JSON object with the fields "
            "format, version, name, description, source and entries"
        )
    name = ".".join(fields)
    expected = _expected(fields, in_entry) or error.message
    got = _shorten(json.dumps(_value_at(doc, path)))
    label = f"field {name!r}" if name else "the file"
    return f"{where}{label}: got {got}; expected {expected}"


def _not_applicable(raw: dict[str, Any], where: str) -> str:
    """Message for an entry giving a hyper-parameter its operation does not take."""
    op = raw["op"]
    other = sorted({f for fields in OP_FIELDS.values() for f in fields} - set(OP_FIELDS[op]))
    extra = [f for f in raw if f in other]
    return f"{where}field {extra[0]!r} does not apply to {op}; its hyper-parameters are {', '.join(OP_FIELDS[op])}"


def _value_at(doc: Any, path: list[Any]) -> Any:
    """The value of the field at ``path``; an error inside a list (``stride[1]``) shows the whole list."""
    in_entry = len(path) >= 2 and path[0] == "entries" and isinstance(path[1], int)
    node = doc["entries"][path[1]] if in_entry else doc
    for part in path[2:] if in_entry else path:
        if isinstance(part, int):
            break
        node = node[part]
    return node


def _json_type(value: Any) -> str:
    """JSON's name for the type of a decoded value."""
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}
    return names.get(type(value), "null")


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def semantic_problems(doc: dict[str, Any]) -> list[str]:
    """Problems the schema cannot see: duplicate ids, invalid configurations, inconsistent series."""
    problems: list[str] = []
    first_index: dict[str, int] = {}
    for i, raw in enumerate(doc["entries"]):
        label = _entry_label(doc, i)
        if raw["id"] in first_index:
            problems.append(
                f"{label}, field 'id': {raw['id']!r} is already used by entries[{first_index[raw['id']]}]; ids must be unique"
            )
        first_index.setdefault(raw["id"], i)
        entry = _entry(doc["name"], raw, label)
        try:
            OPERATIONS[entry.op].check(entry.shapes(entry.batch), entry.params)
        except InvalidConfiguration as e:
            problems.append(f"{label}: not a valid {entry.op} configuration: {e}")
        if entry.series is not None:
            problem = _series_problem(entry)
            if problem:
                problems.append(f"{label}, field 'series.value': {problem}")
    return problems


def _series_problem(entry: Entry) -> str | None:
    """Why ``entry.series.value`` disagrees with the shape it claims to describe, or ``None``."""
    assert entry.series is not None
    dim, value = entry.series.dimension, entry.series.value
    c, h, w = entry.input
    actual = {
        "spatial": (h, w),
        "channels": (c,),
        "batch": (entry.batch,),
        "kernel": entry.kernel_size,
    }[dim]
    if value in actual:
        return None
    what = {"spatial": "H or W", "channels": "C", "batch": "batch", "kernel": "KH or KW"}[dim]
    return f"got {value} on a {dim!r} curve, but the entry's {what} is {' / '.join(map(str, actual))}"


def _entry(corpus: str, raw: dict[str, Any], label: str = "") -> Entry:
    """Build an ``Entry`` from a schema-valid raw entry (``InvalidConfiguration`` names ``label``)."""
    op = raw["op"]
    common = {"stride": tuple(raw["stride"]), "padding": tuple(raw["padding"])}
    try:
        params: WindowParams
        if op == "conv2d":
            params = Conv2dParams(dilation=tuple(raw["dilation"]), groups=raw["groups"], **common)
        elif op == "max_pool2d":
            params = MaxPool2dParams(
                kernel_size=tuple(raw["kernel_size"]),
                dilation=tuple(raw["dilation"]),
                ceil_mode=raw["ceil_mode"],
                **common,
            )
        else:
            params = AvgPool2dParams(
                kernel_size=tuple(raw["kernel_size"]),
                ceil_mode=raw["ceil_mode"],
                count_include_pad=raw["count_include_pad"],
                **common,
            )
    except InvalidConfiguration as e:  # the schema already rules these out; kept for safety
        raise CorpusError(f"{label}: {e}") from None
    series = raw.get("series")
    return Entry(
        corpus=corpus,
        id=raw["id"],
        op=op,
        input=tuple(raw["input"]),
        batch=raw["batch"],
        params=params,
        source=raw["source"],
        kernel_size=tuple(raw["kernel_size"]),
        out_channels=raw.get("out_channels"),
        bias=bool(raw.get("bias", False)),
        count=raw.get("count", 1),
        series=None if series is None else Series(series["name"], series["dimension"], series["value"]),
    )


__all__ = [
    "COMMON_FIELDS",
    "FORMAT",
    "OP_FIELDS",
    "VERSION",
    "Corpus",
    "CorpusError",
    "Entry",
    "Series",
    "load",
    "load_many",
    "parse",
    "resolve",
    "shipped",
]

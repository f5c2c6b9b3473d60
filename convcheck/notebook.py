"""A Jupyter notebook file as a Python module: its code cells, in order, run as "Restart & Run All" would.

``read_notebook(path)`` reads a ``.ipynb`` file with nbformat (as version 4)
and keeps its code cells, top to bottom. What only IPython understands is
dropped, each with a ``Note`` for the student's feedback:

- a line magic (``%matplotlib inline``), a shell escape (``!pip install ...``), an
  assignment from either (``files = !ls``, ``t = %timeit -o f()``), a help query
  (``np.pad?``) and any line calling ``get_ipython()``: the line becomes ``pass``
  (same indentation), so every other line keeps its number within its cell. A cell
  that parses as Python as it stands keeps every line but its ``get_ipython()`` ones
  (a line starting with ``%`` inside brackets or a string is Python's);
- a cell magic (a cell whose first line starts with ``%%``, e.g. ``%%time``): the whole cell;
- a cell the author marks as not for checking (slow plotting, loading a data set):
  the tag ``skip-convcheck`` in its metadata tags (Jupyter: View > Cell Toolbar > Tags),
  or a first line ``# convcheck: skip``;
- a statement that runs ``convcheck.check`` (a student checks the notebook from within,
  then submits it), and every later statement that reads a name only such statements
  made (``result.failures[0]``): made ``pass``, with a note; checked as the code under
  test, the notebook is not checked again from inside the worker.

Cells are numbered as the student sees them: ``code cell N`` is the N-th code cell
from the top, counting code cells only (markdown cells are not counted), which is
the ``In [N]`` Jupyter shows after "Restart & Run All".

``run_into(path, module)`` compiles every kept cell first (a syntax error anywhere
is reported before any cell runs, as for a ``.py`` file) and then executes them in
order in the module's namespace. Each cell is compiled under its own file name,
``"<path>, code cell N"``, registered with ``linecache``: every traceback, whether
raised while importing or later inside a checked function, names the cell and the
line within it, with the line's text, without any mapping afterwards.

Every problem is a ``NotebookError`` (a ``ContractError``: a usage error, exit
status 2) whose first line names the file and, where there is one, the cell.
"""

from __future__ import annotations

import ast
import json
import linecache
import re
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .spec import ContractError

SUFFIX = ".ipynb"
SKIP_TAGS = frozenset({"skip-convcheck", "convcheck-skip"})
"""Metadata tags that leave a cell out of the module."""
SKIP_COMMENT = re.compile(r"^#\s*convcheck:\s*skip\b", re.IGNORECASE)
"""A first line that leaves its cell out of the module."""
TRACEBACK_FRAMES = 8
"""Most frames of a failing cell's traceback shown in its error."""

_ASSIGNED_MAGIC = re.compile(r"^[A-Za-z_][\w.]*(\s*,\s*[A-Za-z_][\w.]*)*\s*=\s*[!%]")
"""``x = !ls`` or ``t = %timeit -o f()``: IPython's assignment from a shell escape or a magic."""
_HELP = re.compile(r"^\?{1,2}\s*[\w.]+$|^[\w.]+\s*\?{1,2}$")
"""``?np.pad`` or ``np.pad??``: IPython's help query."""


class NotebookError(ContractError):
    """A notebook that cannot be turned into a module: unreadable, not a notebook, no code,
    a syntax error in a cell, or a cell that raised while running."""


@dataclass(frozen=True)
class Note:
    """Something dropped from the notebook: where (code cell, line in it; ``None``: the whole cell) and what."""

    cell: int
    line: int | None
    text: str

    def __str__(self) -> str:
        where = f"code cell {self.cell}" + (f", line {self.line}" if self.line else "")
        return f"{where}: {self.text}"


@dataclass(frozen=True)
class CodeCell:
    """One kept code cell: its number among the code cells (from 1) and its source, magics made ``pass``."""

    number: int
    source: str


@dataclass(frozen=True)
class Notebook:
    """A notebook read for running: its path, the code cells kept, and the notes on what was dropped."""

    path: Path
    cells: tuple[CodeCell, ...]
    notes: tuple[Note, ...]

    def filename(self, cell: CodeCell) -> str:
        """The file name a cell's code is compiled under (what tracebacks show)."""
        return cell_filename(self.path, cell.number)


def cell_filename(path: Path, number: int) -> str:
    """``"<path>, code cell N"``: the name under which code cell ``number`` of ``path`` runs."""
    return f"{path}, code cell {number}"


# --------------------------------------------------------------------------- reading


def _json(path: Path) -> Any:
    """The file's JSON value; ``NotebookError`` when it cannot be read or is not JSON."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise NotebookError(f"{path} is not a notebook: it is not UTF-8 text") from None
    except OSError as e:
        raise NotebookError(f"cannot read {path}: {e.strerror or e}") from None
    if not text.strip():
        raise NotebookError(
            f"{path} is empty (no JSON at all), not a notebook; save the notebook again in Jupyter "
            "(File > Save) and submit the saved .ipynb file"
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise NotebookError(
            f"{path} is not a notebook: it is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); "
            "it may be truncated or edited by hand: open it in Jupyter and save it again, or download it again"
        ) from None


def _nbformat_node(path: Path, data: Any) -> Any:
    """The notebook as nbformat's version-4 node; ``NotebookError`` when it is not a valid notebook."""
    try:
        import nbformat
    except ImportError:
        raise NotebookError(
            f"cannot read {path}: reading notebooks needs nbformat, which is not installed; "
            "python -m pip install nbformat"
        ) from None

    if not isinstance(data, dict) or not isinstance(data.get("cells", data.get("worksheets")), list):
        raise NotebookError(
            f'{path} is not a Jupyter notebook: expected a JSON object with a "cells" list, '
            f"got {type(data).__name__ if not isinstance(data, dict) else 'an object without one'}"
        )
    try:
        with warnings.catch_warnings():  # missing cell ids and the like: nbformat fixes them, quietly
            warnings.simplefilter("ignore")
            return nbformat.reads(json.dumps(data), as_version=4)
    except Exception as e:  # nbformat's validation and conversion errors, of several types
        first = (str(getattr(e, "message", "")) or str(e)).strip().splitlines()
        raise NotebookError(
            f"{path} is not a valid notebook: {first[0] if first else type(e).__name__}; "
            "open it in Jupyter and save it again"
        ) from None


def _skip_reason(cell: Any, lines: list[str]) -> str | None:
    """Why the author left the cell out (its tag, or its first line), or ``None``."""
    tags = set((cell.get("metadata") or {}).get("tags") or [])
    if SKIP_TAGS & tags:
        return f"tagged {sorted(SKIP_TAGS & tags)[0]}"
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    return f"its first line is `{first}`" if SKIP_COMMENT.match(first) else None


def _is_python(source: str) -> bool:
    """Whether the cell parses as Python as it is (then only its ``get_ipython()`` lines are IPython's:
    a line starting with ``%`` inside brackets or a string is Python's, not a magic)."""
    try:
        ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return True


def _ipython_only(line: str, python: bool) -> str | None:
    """What kind of IPython-only line ``line`` is (for the note), or ``None`` for a Python line;
    ``python``: the whole cell parses as Python."""
    code = line.strip()
    if "get_ipython()" in code and not code.startswith("#"):
        return "get_ipython() call"
    if python:
        return None
    if code.startswith("!"):
        return "shell command"
    if code.startswith("%"):
        return "IPython magic"
    if _ASSIGNED_MAGIC.match(code):
        return "IPython magic or shell command"
    if _HELP.match(code):
        return "IPython help query"
    return None


def _kept_source(number: int, lines: list[str], notes: list[Note]) -> str | None:
    """The cell's source with each IPython-only line made ``pass`` (a note for each); ``None`` when no
    Python is left."""
    out, has_code, parses = [], False, _is_python("\n".join(lines))
    for i, line in enumerate(lines, start=1):
        kind = _ipython_only(line, parses)
        if kind is None:
            out.append(line)
            has_code = has_code or bool(line.strip())
            continue
        notes.append(Note(number, i, f"dropped the {kind} `{line.strip()}`: it runs only in Jupyter"))
        indent = line[: len(line) - len(line.lstrip())]
        out.append(f"{indent}pass")
    return "\n".join(out) + "\n" if has_code else None


def _cells(path: Path, node: Any, notes: list[Note]) -> tuple[CodeCell, ...]:
    cells = node.get("cells") or []
    code_cells = [c for c in cells if c.get("cell_type") == "code"]
    if not code_cells:
        raise NotebookError(
            f"{path} holds no code cell ({len(cells)} cell(s) in all); write the contract functions, "
            "e.g. conv2d_forward(x, w, b, *, stride, padding, dilation, groups), in code cells"
        )
    kept = []
    for number, cell in enumerate(code_cells, start=1):
        source = cell.get("source") or ""
        source = "".join(source) if isinstance(source, list) else str(source)
        lines = source.splitlines()
        if not any(ln.strip() for ln in lines):
            continue
        reason = _skip_reason(cell, lines)
        if reason:
            notes.append(Note(number, None, f"skipped the whole cell: {reason}"))
            continue
        first = next(ln.strip() for ln in lines if ln.strip())
        if first.startswith("%%"):
            magic = first.split()[0]
            notes.append(
                Note(number, None, f"dropped the whole cell: it starts with the cell magic `{magic}`")
            )
            continue
        source = _kept_source(number, lines, notes)
        if source is not None:
            kept.append(CodeCell(number, source))
    kept = _without_self_checks(kept, notes)
    if not kept:
        raise NotebookError(
            f"{path} holds no code to run: its {len(code_cells)} code cell(s) are empty, skipped or only "
            "IPython magics; write the contract functions in code cells"
        )
    return tuple(kept)


def _top_level_names(tree: ast.Module) -> tuple[set[str], set[str]]:
    """``(read, bound)``: the names a cell reads and binds when it runs, not counting the bodies of the
    functions it defines (those read their globals only when called)."""
    read: set[str] = set()
    bound: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            bound.add(getattr(node, "name", ""))
            for inner in [*getattr(node, "decorator_list", []), *node.args.defaults, *node.args.kw_defaults]:
                if inner is not None:
                    visit(inner)
            return
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ClassDef):
            bound.add(node.name)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return read, bound - {""}


def _runs_a_check(tree: ast.AST) -> bool:
    """Whether the code calls ``convcheck.check`` (a name bound by ``from convcheck import check`` is
    followed by the caller, ``_check_aliases``)."""
    return any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "check"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "convcheck"
        for node in ast.walk(tree)
    )


def _check_aliases(tree: ast.AST) -> set[str]:
    """The names ``from convcheck import check [as name]`` binds in the code."""
    return {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "convcheck"
        for alias in node.names
        if alias.name == "check"
    }


def _without_self_checks(cells: list[CodeCell], notes: list[Note]) -> list[CodeCell]:
    """The cells with every top-level statement that runs convcheck on the notebook itself made
    ``pass``, and so every later statement that reads what such a statement made
    (``result.failures[0]``), each with a note; a cell left with no code is left out.

    A student checks a notebook from one of its cells (``convcheck.check(globals())``) and then
    submits it: run as the code under test, that statement would start a second, nested check of
    the same code inside the worker, and the statements reading its result would follow it.
    Statements, not whole cells: a cell that defines a layer and then checks it keeps the layer.
    """
    kept: list[CodeCell] = []
    made: set[str] = set()
    check_names: set[str] = set()
    for cell in cells:
        try:
            tree = ast.parse(cell.source)
        except (SyntaxError, ValueError):
            kept.append(cell)  # compiling reports it, with its cell number
            continue
        lines = cell.source.splitlines()
        has_code = False
        for stmt in tree.body:
            check_names |= _check_aliases(stmt)
            read, bound = _top_level_names(ast.Module(body=[stmt], type_ignores=[]))
            uses = sorted(read & made)
            calls = _runs_a_check(stmt) or bool(read & check_names)
            if not calls and not uses:
                made -= bound
                has_code = True
                continue
            made |= bound
            first, last = stmt.lineno, stmt.end_lineno or stmt.lineno
            why = (
                "it runs convcheck.check, and a notebook checked by convcheck is not checked again from within"
                if calls
                else f"it reads {', '.join(f'`{n}`' for n in uses)}, made by a statement left out before it"
            )
            shown = lines[first - 1].strip()
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            notes.append(Note(cell.number, first, f"left out `{shown}`: {why}"))
            lines[first - 1 : last] = ["pass"] + [""] * (last - first)
        if has_code:
            kept.append(CodeCell(cell.number, "\n".join(lines) + "\n"))
        else:
            notes.append(Note(cell.number, None, "left out the whole cell: nothing in it is left to run"))
    return kept


def read_notebook(path: Path | str) -> Notebook:
    """Read ``path`` as a notebook: the code cells to run and the notes on what was dropped.

    Raises ``NotebookError`` (one line naming the file) when the file cannot be
    read, is not JSON, is not a valid notebook, or holds no code to run.
    """
    path = Path(path)
    node = _nbformat_node(path, _json(path))
    notes: list[Note] = []
    cells = _cells(path, node, notes)
    return Notebook(path, cells, tuple(notes))


def notes_of(path: Path | str) -> list[str]:
    """The notes on what running the notebook at ``path`` drops, one line each; ``[]`` for a file that
    is not a notebook, or a notebook that cannot be read (loading it reports why)."""
    if Path(path).suffix.lower() != SUFFIX:
        return []
    try:
        return [str(note) for note in read_notebook(path).notes]
    except NotebookError:
        return []


# --------------------------------------------------------------------------- running


def _compile(nb: Notebook, cell: CodeCell) -> Any:
    """The cell's code object, registered with ``linecache`` so tracebacks show its lines."""
    filename = nb.filename(cell)
    lines = cell.source.splitlines(keepends=True)
    linecache.cache[filename] = (len(cell.source), None, lines, filename)  # no mtime: never re-read
    try:
        return compile(cell.source, filename, "exec", dont_inherit=True)
    except SyntaxError as e:
        text = f": {e.text.strip()}" if e.text and e.text.strip() else ""
        raise NotebookError(
            f"{nb.path}: code cell {cell.number}, line {e.lineno}: syntax error: {e.msg}{text}"
        ) from None


def _cell_traceback(exc: BaseException) -> str:
    """The traceback of an exception a cell raised, from the cell's frame on (this module's left out)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    lines = traceback.format_list(frames[-TRACEBACK_FRAMES:])
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


def run_into(path: Path | str, module: ModuleType) -> Notebook:
    """Run the notebook's kept code cells, in order, in ``module``'s namespace; return the notebook read.

    Every cell is compiled before any runs. Raises ``NotebookError`` for an
    unreadable notebook, a syntax error (``code cell N, line L``) or a cell that
    raised: ``code cell N raised TypeError: ...``, then its traceback, indented,
    whose frames name the cells and lines.
    """
    nb = read_notebook(path)
    module.__file__ = str(nb.path)
    compiled = [(cell, _compile(nb, cell)) for cell in nb.cells]
    for cell, code in compiled:
        try:
            exec(code, module.__dict__)
        except Exception as e:
            first = traceback.format_exception_only(type(e), e)[-1].strip()
            tb = "\n".join(f"    {line}" for line in _cell_traceback(e).splitlines())
            raise NotebookError(
                f"{nb.path}: code cell {cell.number} raised {first}\n  traceback:\n{tb}"
            ) from None
    return nb

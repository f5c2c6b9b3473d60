"""Finding the students in a submissions folder, and each one's entry module.

Every entry of the folder is one student, except hidden ones (names starting
with ``.`` or ``_``, such as ``.DS_Store`` or ``__pycache__``):

- ``alice.py``: the student ``alice``, whose entry module is that file;
- ``carol.ipynb``: the student ``carol``, whose notebook's code cells are run as the
  entry module (``convcheck.notebook``);
- ``bob/``: the student ``bob``; the entry module is ``bob/submission.py``, else
  ``bob/submission.ipynb``, else the folder's only top-level ``.py`` file
  (``__init__.py`` aside), else its only top-level notebook. Short of a file named
  ``submission``, a ``.py`` file wins over a notebook: a notebook beside ``layers.py``
  usually imports it (CS231n's layout); a notebook that imports its own ``helpers.py``
  is named ``submission.ipynb``. Other files in the folder are helpers the entry
  module may import.

Anything else (an archive, a folder with no or several candidate modules) is still a student, with a ``problem`` that says what was found and
what to do; it is graded 0 and reported, never skipped silently. When entries
share a student name (``alice.py`` beside ``alice/`` or ``alice.txt``), files
keep their suffix as their name (``alice.py``) so that every one is graded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ENTRY_NAME = "submission.py"
"""The entry module of a folder-style submission when it holds several ``.py`` files."""
NOTEBOOK_ENTRY_NAME = "submission.ipynb"
"""The entry notebook of a folder-style submission with no ``.py`` file and several notebooks."""
ENTRY_SUFFIXES = (".py", ".ipynb")
"""Files that are a submission by themselves: a module, or a notebook run as one."""

_HINTS = {
    ".zip": "unpack the archive into a folder",
    ".tar": "unpack the archive into a folder",
    ".gz": "unpack the archive into a folder",
    ".tgz": "unpack the archive into a folder",
}


@dataclass(frozen=True)
class Submission:
    """One student's submission: their name, the entry module to load, or why there is none."""

    student: str
    path: Path
    entry: Path | None
    problem: str | None = None
    impl: str | None = None
    """What ``convcheck run --impl`` is given when it is not ``entry`` (a shipped implementation's name)."""
    library: str | None = None
    """``name==version`` of the library a framework adapter checks (part of what the results database
    matches on ``--resume``)."""


def _is_hidden(path: Path) -> bool:
    return path.name.startswith((".", "_"))


def _folder_entry(folder: Path) -> tuple[Path | None, str | None]:
    """The entry module of a folder-style submission, or the problem that prevents choosing one."""
    for name in (ENTRY_NAME, NOTEBOOK_ENTRY_NAME):
        if (folder / name).is_file():
            return folder / name, None
    modules = sorted(p for p in folder.glob("*.py") if p.is_file() and p.name != "__init__.py")
    if len(modules) == 1:
        return modules[0], None
    if modules:
        names = ", ".join(p.name for p in modules)
        return None, (
            f"{folder.name}/ holds {len(modules)} top-level .py files ({names}) and no {ENTRY_NAME}; "
            f"name the module that defines the contract functions {ENTRY_NAME} (or a notebook {NOTEBOOK_ENTRY_NAME})"
        )
    return _notebook_entry(folder)


def _notebook_entry(folder: Path) -> tuple[Path | None, str | None]:
    """The entry notebook of a folder with no top-level ``.py`` file, or the problem."""
    notebooks = sorted(p for p in folder.glob("*.ipynb") if p.is_file())
    if len(notebooks) == 1:
        return notebooks[0], None
    if notebooks:
        names = ", ".join(p.name for p in notebooks)
        return None, (
            f"{folder.name}/ holds {len(notebooks)} notebooks ({names}), no .py file and no "
            f"{NOTEBOOK_ENTRY_NAME}; name the notebook that defines the contract functions {NOTEBOOK_ENTRY_NAME}"
        )
    deeper = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.py"))
    where = (
        f" (found {', '.join(deeper[:3])} deeper; move the entry module to the top level)" if deeper else ""
    )
    return None, f"{folder.name}/ holds no top-level .py file or notebook; expected {ENTRY_NAME}{where}"


def _file_problem(path: Path) -> str | None:
    """Why a top-level file is not a gradable submission, or ``None`` for a ``.py`` file or a notebook."""
    if path.suffix in ENTRY_SUFFIXES:
        return None
    hint = _HINTS.get(path.suffix.lower(), "submit a .py file, a notebook (.ipynb) or a folder holding one")
    return f"{path.name} is not a .py file, a notebook or a folder; {hint}"


def _submission(path: Path, student: str) -> Submission:
    if path.is_dir():
        entry, problem = _folder_entry(path)
    else:
        problem = _file_problem(path)
        entry = None if problem else path
    if entry is not None and "," in str(entry.resolve()):
        entry, problem = (
            None,
            f"{path.name}: the path holds a comma, which --impl reads as a separator; rename it",
        )
    return Submission(student, path, entry.resolve() if entry else None, problem)


def discover(folder: Path) -> list[Submission]:
    """Every student in ``folder``, sorted by name, with their entry module or their problem.

    Raises ``NotADirectoryError`` when ``folder`` is not a folder.
    """
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder; give the folder that holds the submissions")
    entries = sorted(p for p in folder.iterdir() if not _is_hidden(p))
    short = [p.name if p.is_dir() else p.stem for p in entries]
    out = []
    for path, name in zip(entries, short, strict=True):
        # alice.py beside alice/ (or alice.txt): a file keeps its suffix so that every student is distinct
        student = path.name if short.count(name) > 1 and not path.is_dir() else name
        out.append(_submission(path, student))
    return sorted(out, key=lambda s: s.student)

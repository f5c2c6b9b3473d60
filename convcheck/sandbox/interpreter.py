"""The interpreter the implementation runs under: convcheck's own, or the one ``--python`` names.

``--python PATH`` (``convcheck run``, ``grade``, ``bench``, the pytest plug-in) or the
``CONVCHECK_PYTHON`` variable (the flag wins) starts the isolated worker with another Python: the
implementation's own environment, which needs only the standard library and NumPy, never
convcheck, SciPy, torch or hypothesis. Before the first worker starts, ``probe`` runs the
interpreter once on a script that any Python can parse and reads its versions back; what makes it
unusable is one ``UsageError`` line naming the path and what is missing (the CLI exits 2).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass

from ..spec import UsageError

ENV_VAR = "CONVCHECK_PYTHON"
MIN_PYTHON = (3, 9)
MIN_NUMPY = (1, 21)
PROBE_TIMEOUT_S = 60.0

_MARK = "convcheck-probe"
_PROBE = f"""
import sys, platform
try:
    import numpy
    found = numpy.__version__
except Exception as e:
    found = "!" + type(e).__name__ + ": " + str(e).splitlines()[0] if str(e) else "!" + type(e).__name__
sys.stdout.write("{_MARK}\\t%d.%d.%d\\t%s\\t%s\\n" % (sys.version_info[0], sys.version_info[1],
                 sys.version_info[2], found, platform.platform()))
"""
"""Prints one tab-separated line: the Python version, NumPy's version (or ``!`` and why it did not
import) and the platform. Python 2 can parse it too, so an old interpreter is named as too old."""


@dataclass(frozen=True)
class Interpreter:
    """A usable interpreter: its path as given (made absolute) and what the probe read."""

    path: str
    python: str
    numpy: str
    platform: str


def requested(cli_value: str | None = None) -> str | None:
    """The interpreter asked for: the option, else ``CONVCHECK_PYTHON``, else ``None`` (convcheck's own)."""
    value = cli_value or os.environ.get(ENV_VAR, "")
    return value.strip() or None


def _version(text: str) -> tuple[int, ...]:
    """``'1.23.5'`` -> ``(1, 23, 5)``; pre-release suffixes (``'2.0.0rc1'``) cut at the first non-digit."""
    parts = []
    for piece in text.split(".")[:3]:
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _located(given: str) -> str:
    """``given`` as an absolute path: a bare name (``python3.9``) is looked up on ``PATH``.

    Symbolic links are kept: a virtual environment's ``bin/python`` is a link, and resolving it
    would leave the environment."""
    if os.sep not in given:
        found = shutil.which(given)
        if found:
            return os.path.abspath(found)
    return os.path.abspath(os.path.expanduser(given))


def _unusable(given: str, what: str) -> UsageError:
    """The one-line error, naming where the interpreter came from: ``CONVCHECK_PYTHON`` when the
    variable holds it (and no flag said otherwise), else ``--python``."""
    named_by = f"{ENV_VAR}=" if os.environ.get(ENV_VAR, "").strip() == given else "--python "
    return UsageError(f"{named_by}{given}: {what}")


@functools.cache
def probe(given: str) -> Interpreter:
    """Run ``given`` once and check it can host the worker; ``UsageError`` (one line) if not."""
    path = _located(given)
    if not os.path.exists(path):
        raise _unusable(given, "no such file; give the path of a Python 3.9+ interpreter with NumPy 1.21+")
    if os.path.isdir(path):
        raise _unusable(
            given, f"is a folder; give the interpreter in it, e.g. {os.path.join(path, 'bin', 'python')}"
        )
    if not os.access(path, os.X_OK):
        raise _unusable(
            given, "is not executable; give the Python interpreter itself (e.g. .venv/bin/python)"
        )
    try:
        done = subprocess.run(
            [path, "-I", "-c", _PROBE],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            errors="replace",
        )
    except subprocess.TimeoutExpired:
        raise _unusable(
            given, f"did not answer within {PROBE_TIMEOUT_S:g} s; is it a Python interpreter?"
        ) from None
    except OSError as e:
        raise _unusable(given, f"cannot be run ({e.strerror}); it is not a Python interpreter") from None
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith(_MARK + "\t")), None)
    if line is None:
        said = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or ["nothing"])[-1]
        raise _unusable(
            given,
            f"is not a usable Python interpreter (exit status {done.returncode}, it said: {said[:200]})",
        )
    _, python, numpy, where = line.split("\t", 3)
    if _version(python) < MIN_PYTHON:
        raise _unusable(given, f"is Python {python}; the worker needs Python 3.9 or newer")
    install = f'install it there: {path} -m pip install "numpy>=1.21"'
    if numpy.startswith("!"):
        raise _unusable(given, f"its Python {python} has no usable NumPy ({numpy[1:]}); {install}")
    if _version(numpy) < MIN_NUMPY:
        raise _unusable(given, f"its NumPy is {numpy}; the worker needs NumPy 1.21 or newer; {install}")
    return Interpreter(path, python, numpy, where.strip())


__all__ = ["ENV_VAR", "MIN_NUMPY", "MIN_PYTHON", "Interpreter", "probe", "requested"]

"""Telling the distinct failures of one check apart: a key per failure, and a class per key.

Hypothesis counts two failures of a property as two bugs when their exceptions differ in type
object, or in the file and line they were raised from. Every failure convcheck finds is raised
from one line (``tests/checks.py::fail``) and every exception of sandboxed code under test from
one line of ``convcheck/sandbox/client.py``, so to hypothesis they would all be one bug. Instead,
each failure is classified by a key, and raised as an instance of a subclass of its exception
class made for that key (``keyed_class``): one subclass per ``(class, key)``, cached, with the
class's own name, qualified name and module, so messages and ``except``/``isinstance`` read the
same. Hypothesis then shrinks and reports each key on its own (``report_multiple_bugs``).

A key is a hashable tuple that starts with the exception class's name:

* a failed check: ``(class, output, kind)``, the output (``y``, ``dx``, ``dw``, ``db``, ``loss``,
  ``dz``; ``-`` when none) and the kind of failure (``KINDS``);
* the code under test raised: ``(class, "raised", exception type, "file.py:function")``, the
  place being the innermost frame of the implementation's own code;
* a hang, a crash or a broken limit: ``(class, kind, function)``, the sandbox's kind
  (``timeout``, ``crash``, ``memory``, ...) and the contract function called.

Geometric features (padding, stride, ...) never enter a key: one defect showing in several
regions stays one report. Every keyed exception carries its key as ``convcheck_key``;
``(type(e), e.convcheck_key)`` tells two failures apart.
"""

from __future__ import annotations

from typing import Any, TypeVar

KEY_ATTRIBUTE = "convcheck_key"
"""The attribute holding an exception's key (on its class, and on the instance once tagged)."""

Key = tuple[str, ...]
"""A failure's key (see the module docstring)."""

KINDS = {
    "values": "values outside the tolerance",
    "type": "wrong type",
    "shape": "wrong shape",
    "dtype": "wrong dtype",
    "non-finite": "NaN or inf",
    "structure": "wrong number or kind of outputs",
    "in place": "an input modified in place",
    "aliasing": "an output sharing memory with an input",
    "nondeterminism": "not deterministic",
    "layout": "depends on the memory layout",
}
"""The kinds of a failed check, with how a reader names them; a kink's kinds are ``kink <verdict>``."""

E = TypeVar("E", bound=BaseException)

_CLASSES: dict[tuple[type[BaseException], Key], type[BaseException]] = {}


def keyed_class(base: type[E], key: Key) -> type[E]:
    """The subclass of ``base`` for ``key``: the same object for the same pair, named as ``base``,
    with ``convcheck_key`` set to ``key``. A keyed class given as ``base`` stands for its own base."""
    base = getattr(base, "_convcheck_base", base)
    found = _CLASSES.get((base, key))
    if found is None:
        namespace = {
            "__qualname__": base.__qualname__,
            "__module__": base.__module__,
            "__doc__": base.__doc__,
            KEY_ATTRIBUTE: key,
            "_convcheck_base": base,
        }
        found = type(base.__name__, (base,), namespace)
        _CLASSES[(base, key)] = found
    return found  # type: ignore[return-value]  # a subclass of base, built by type()


def key_of(exc: BaseException) -> Key | None:
    """The key of an exception convcheck classified, else ``None``."""
    key = getattr(exc, KEY_ATTRIBUTE, None)
    return tuple(key) if isinstance(key, (tuple, list)) else None


def check_key(exc_class: type[BaseException], output: str | None, kind: str) -> Key:
    """The key of a failed check: its class, the failing output (``-`` when none) and the kind."""
    return (exc_class.__name__, output or "-", kind)


def raised_key(exc_class: type[BaseException], raised_type: str, where: str | None) -> Key:
    """The key of an exception the code under test raised, by type and place in its own code."""
    return (exc_class.__name__, "raised", raised_type, where or "?")


def sandbox_key(exc_class: type[BaseException], kind: str, function: str) -> Key:
    """The key of a hang, crash or broken limit of ``function`` (``kind`` as the sandbox names it)."""
    return (exc_class.__name__, kind, function)


def describe(key: Any) -> str:
    """A key in words for a heading: ``dw: values outside the tolerance``, ``raised IndexError at
    impl.py:conv2d_backward``, ``timeout in conv2d_forward``; ``""`` for no key."""
    if not key:
        return ""
    key = tuple(key)
    if len(key) == 4 and key[1] == "raised":
        return f"raised {key[2]} at {key[3]}"
    if len(key) == 3 and key[0] == "SandboxFailure":
        return f"{key[1]} in {key[2]}"
    if len(key) == 3:
        output, kind = key[1], key[2]
        words = KINDS.get(kind, kind)
        return words if output == "-" else f"{output}: {words}"
    return " ".join(str(k) for k in key)


def innermost_own_frame(frames: list[Any]) -> str | None:
    """``file.py:function`` of the innermost traceback frame (``FrameSummary`` items) in the
    implementation's own code, not in an installed library (NumPy's internals); else the innermost."""
    own = [f for f in frames if "site-packages" not in f.filename and "/lib/python3" not in f.filename]
    chosen = (own or frames)[-1] if frames else None
    if chosen is None:
        return None
    return f"{chosen.filename.replace(chr(92), '/').rsplit('/', 1)[-1]}:{chosen.name}"

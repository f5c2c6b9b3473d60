"""``NotImplementedError`` from a contract function: unsupported at this case, not a failure.

A library that handles only part of the contract may raise ``NotImplementedError``
for the cases it does not handle (``dilation > 1``, say) instead of declaring the
feature unsupported. Unless the run is ``--strict``, the pytest plug-in wraps
every contract function of the implementation (``wrap``) so that such a call
notes the case on the running test's recorder (``Recorder.not_implemented``)
and raises ``UnsupportedCase``:

* inside a hypothesis example, ``UnsupportedCase`` is hypothesis's own
  rejection (``UnsatisfiedAssumption``): the example neither fails nor counts
  as checked;
* the small-scope sweep skips that case and goes on;
* anywhere else (a worked example, a network check) the check ends
  ``unsupported``.

A check whose every example was unsupported this way ends ``unsupported``
(``finish``) rather than passed or ``Unsatisfiable``; one where only some were
passes, and its result carries ``not_implemented: {count, examples, function,
first_case, message}``, which ``lines`` turns into the summary's notes. Under
``--strict`` nothing is wrapped: the exception fails the check, as any other.
The exception crosses from the sandbox worker as ``SandboxFailure.raised``
(``not_implemented`` true for any subclass of ``NotImplementedError``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NoReturn

from hypothesis.errors import UnsatisfiedAssumption

from . import recording


class UnsupportedCase(UnsatisfiedAssumption):
    """The implementation raised ``NotImplementedError`` on this case: the case is unsupported."""


def not_implemented_message(exc: BaseException) -> str | None:
    """What a ``NotImplementedError`` said (its text, or its type's name when empty), whether raised
    in this process or in the sandbox worker; ``None`` for any other exception."""
    raised = getattr(exc, "raised", None)
    if isinstance(raised, dict) and raised.get("not_implemented"):
        return str(raised.get("message") or raised.get("type") or "NotImplementedError")
    if isinstance(exc, NotImplementedError):
        return str(exc) or type(exc).__name__
    return None


def tolerant(fname: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (the contract function ``fname``), with ``NotImplementedError`` turned into
    ``UnsupportedCase`` after noting it (see the module's docstring)."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            message = not_implemented_message(e)
            if message is None:
                raise
            unsupported_here(fname, message)

    return call


def unsupported_here(fname: str, message: str) -> NoReturn:
    """Note on the running test's recorder that ``fname`` does not handle its current case, and
    raise ``UnsupportedCase``."""
    rec = recording.current()
    if rec is not None:
        rec.not_implemented(fname, message)
    raise UnsupportedCase(f"{fname} raised NotImplementedError: {message}")


def wrap(impl: Any) -> None:
    """Make every contract function of ``impl`` ``tolerant``, in place."""
    impl.functions = {name: tolerant(name, fn) for name, fn in impl.functions.items()}


def skip_reason(info: dict[str, Any]) -> str:
    """Why a check whose every example raised ``NotImplementedError`` is unsupported."""
    return (
        f"{info['function']} raised NotImplementedError on every example ({info['examples']}), "
        f"first on {info['first_case'] or 'its first call'}: {info['message']} (--strict fails it)"
    )


def finish(rec: recording.Recorder, error: BaseException | None) -> None:
    """At the end of a check's call: skip it as ``unsupported`` when every example it ran raised
    ``NotImplementedError`` (``error``: what the call raised, ``None`` if it passed; hypothesis's
    ``Unsatisfiable`` when it rejected them all, ``UnsupportedCase`` outside hypothesis)."""
    info = rec.not_implemented_info()
    if info is None:
        return
    from hypothesis.errors import Unsatisfiable

    everything = info["examples"] >= max(rec.examples, 1)
    if isinstance(error, UnsupportedCase | Unsatisfiable) or (error is None and everything):
        recording.skip("unsupported", skip_reason(info))


def lines(results: list[dict[str, Any]]) -> list[str]:
    """The summary's notes on ``NotImplementedError``: one per check that met it on every example (it
    is ``unsupported``), and one per function for the checks that met it on some (they still ran),
    with the examples added up, the checks named and the first check's case and message."""
    out = []
    some: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        info = r.get("not_implemented")
        if not info:
            continue
        if r.get("status") == "unsupported":
            out.append(f"  unsupported: {_check(r)}: {skip_reason(info)}")
        else:
            some.setdefault(info["function"], []).append(r)
    out += [_note(function, checks) for function, checks in some.items()]
    return ["", "unsupported at some cases (NotImplementedError):", *out] if out else []


def _check(result: dict[str, Any]) -> str:
    return str(result.get("check", result.get("test", "")))


CHECKS_NAMED = 3
"""How many checks a note names before ``...``."""


def _note(function: str, checks: list[dict[str, Any]]) -> str:
    """``note: F raised NotImplementedError on N of M examples of CHECK`` (or ``in K checks (A, B, ...)``),
    with the first case and the message."""
    raised = sum(r["not_implemented"]["examples"] for r in checks)
    examples = sum(r.get("examples", 0) for r in checks)
    names = [_check(r) for r in checks]
    if len(names) == 1:
        where = f"of {names[0]}"
    else:
        shown = ", ".join(names[:CHECKS_NAMED]) + (", ..." if len(names) > CHECKS_NAMED else "")
        where = f"in {len(names)} checks ({shown})"
    first = checks[0]["not_implemented"]
    return (
        f"  note: {function} raised NotImplementedError on {raised} of {examples} examples {where} "
        f"(unsupported at these cases, first {first['first_case']}: {first['message']}; --strict fails them)"
    )

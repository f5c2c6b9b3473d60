"""Isolated execution of the code under test: a spawned worker per implementation.

``load(spec, limits, python)`` returns an ``Implementation`` whose functions run in the
worker (``client``), with arrays crossing by value (``wire``) under per-call
wall-clock, memory and CPU limits (``limits``), under convcheck's interpreter or the one
``python`` names (``interpreter``, ``bundle``).

The names below are imported on first use: the worker imports this package too, under an
interpreter that may lack what the client needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import Sandbox, SandboxFailure, load
    from .limits import Limits

_EXPORTS = {"Limits": "limits", "Sandbox": "client", "SandboxFailure": "client", "load": "client"}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Limits", "Sandbox", "SandboxFailure", "load"]

"""Isolated execution of the code under test: a spawned worker per implementation.

``load(spec, limits)`` returns an ``Implementation`` whose functions run in the
worker (``client``), with arrays crossing by value (``wire``) under per-call
wall-clock, memory and CPU limits (``limits``).
"""

from .client import Sandbox, SandboxFailure, load
from .limits import Limits

__all__ = ["Limits", "Sandbox", "SandboxFailure", "load"]

"""The Python API: ``convcheck.check(target, ...) -> CheckResult`` (see docs/api.md).

``check`` runs the conformance suite on one implementation with the same engine
as ``convcheck run`` (``convcheck.engine``). One module per idea: ``check``
(the call: options, target, isolation), ``target`` (what was given, turned into
an ``--impl`` name), ``capture`` (functions of a notebook written into a module
the isolated worker imports), ``inprocess`` (``isolation="none"``: the per-call
timeout in this process), ``state`` (the caller's process settings, restored),
``progress`` (verdicts while it runs), ``result`` (``CheckResult``, ``Failure``),
``arrays`` (a failure's inputs, expected and got), ``display`` (text and HTML),
``errors``.
"""

from .errors import InvalidOption, MisspeltName, NoContractFunctions, NotCapturable, UnusableTarget
from .result import CheckResult, Failure, PropertyResult
from .run import check

__all__ = [
    "CheckResult",
    "Failure",
    "InvalidOption",
    "MisspeltName",
    "NoContractFunctions",
    "NotCapturable",
    "PropertyResult",
    "UnusableTarget",
    "check",
]

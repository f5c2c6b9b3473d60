"""The errors ``convcheck.check`` raises about what it was given, before anything runs.

Each is both a convcheck error (``spec.errors``: ``ConvcheckError``,
``ContractError``, ``UsageError``) and the built-in error a Python caller
expects (``ValueError`` for a bad value, ``TypeError`` for a target of an
unusable type), so ``except ValueError`` works. Every message names the
offending key or option and says what to do.
"""

from __future__ import annotations

from ..spec.errors import ContractError, ConvcheckError, UsageError


class NoContractFunctions(ContractError, ValueError):
    """The target exposes none of the contract functions (nor CS231n-style ones)."""


class MisspeltName(ContractError, ValueError):
    """A key or attribute of the target is close to a contract function name but is not one."""


class NotCapturable(ContractError, ValueError):
    """A function (or a global it uses) cannot be sent to the isolated worker: no source that
    stands alone, or a value that cannot be written down. ``isolation="none"`` runs it in place."""


class UnusableTarget(ConvcheckError, TypeError):
    """The target is of a type ``check`` cannot take (not a path, name, module, mapping or object)."""


class InvalidOption(UsageError, ValueError):
    """A keyword argument of ``check`` has a value the run cannot use."""


class InvalidTarget(ContractError, ValueError):
    """The implementation cannot be loaded or breaks the contract (what ``convcheck run`` rejects
    with exit status 2: a missing file, an import that raises, a function missing a keyword, a
    malformed ``CONVCHECK_CAPABILITIES``)."""


def as_api_error(error: ConvcheckError) -> ConvcheckError:
    """``error`` as the API raises it: a ``ValueError`` or ``TypeError`` subclass, same message."""
    if isinstance(error, ValueError | TypeError):
        return error
    if isinstance(error, ContractError):
        return InvalidTarget(str(error))
    return InvalidOption(str(error))


__all__ = [
    "InvalidOption",
    "InvalidTarget",
    "as_api_error",
    "MisspeltName",
    "NoContractFunctions",
    "NotCapturable",
    "UnusableTarget",
]

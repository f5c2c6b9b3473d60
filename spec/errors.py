"""The exceptions convcheck raises about configurations, contracts and declarations.

Every message names the offending value as ``name=value``, says what was expected
and, where there is one, what to do about it.
"""

from __future__ import annotations


class ConvcheckError(Exception):
    """Root of every error convcheck raises on purpose."""


class InvalidConfiguration(ConvcheckError, ValueError):
    """A hyper-parameter combination lies outside the spec.

    The spec defines which configurations are valid (see ``spec.conv`` and
    ``spec.pool``); no oracle and no implementation is ever called outside them.
    """


class ContractError(ConvcheckError):
    """An implementation does not follow the plug-in contract.

    Raised when a module is registered (missing functions, wrong keyword
    arguments), so a run never stops halfway through on a malformed plug-in.
    """


class CapabilityError(ContractError):
    """A capabilities declaration is malformed (unknown key, bad value)."""


class UsageError(ConvcheckError):
    """A command-line or configuration mistake by the person running convcheck."""

"""What is right: operator definitions, validity rules, shapes, capabilities and tolerances.

A thin façade; the facts live in one module per idea (``conv``, ``pool``,
``shapes``, ``params``, ``ops``, ``capabilities``, ``tolerance``).
"""

from .capabilities import FULL, Capabilities
from .capabilities import parse as parse_capabilities
from .errors import (
    CapabilityError,
    ContractError,
    ConvcheckError,
    InvalidConfiguration,
    UsageError,
)
from .ops import DTYPES, FUNCTION_NAMES, OPERATIONS, Feature, Operation, operation_of
from .params import AvgPool2dParams, Conv2dParams, MaxPool2dParams, Params

__all__ = [
    "DTYPES",
    "FULL",
    "FUNCTION_NAMES",
    "OPERATIONS",
    "AvgPool2dParams",
    "Capabilities",
    "CapabilityError",
    "ContractError",
    "Conv2dParams",
    "ConvcheckError",
    "Feature",
    "InvalidConfiguration",
    "MaxPool2dParams",
    "Operation",
    "Params",
    "UsageError",
    "operation_of",
    "parse_capabilities",
]

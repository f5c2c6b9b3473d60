"""What is right: operator definitions, validity rules, shapes, capabilities and tolerances.

A thin façade; the facts live in one module per idea (``conv``, ``pool``,
``activation``, ``dense``, ``loss``, ``networks``, ``shapes``, ``params``,
``ops``, ``capabilities``, ``tolerance``).
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
from .params import (
    AvgPool1dParams,
    AvgPool2dParams,
    AvgPool3dParams,
    Conv1dParams,
    Conv2dParams,
    Conv3dParams,
    MaxPool1dParams,
    MaxPool2dParams,
    MaxPool3dParams,
    NoParams,
    Params,
)

__all__ = [
    "DTYPES",
    "FULL",
    "FUNCTION_NAMES",
    "OPERATIONS",
    "AvgPool1dParams",
    "AvgPool2dParams",
    "AvgPool3dParams",
    "Capabilities",
    "CapabilityError",
    "ContractError",
    "Conv1dParams",
    "Conv2dParams",
    "Conv3dParams",
    "ConvcheckError",
    "Feature",
    "InvalidConfiguration",
    "MaxPool1dParams",
    "MaxPool2dParams",
    "MaxPool3dParams",
    "NoParams",
    "Operation",
    "Params",
    "UsageError",
    "operation_of",
    "parse_capabilities",
]

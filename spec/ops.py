"""The operation registry: every fact about an operation that the suite reads.

Strategies, oracles, properties, the plug-in loader and the CLI all iterate over
``OPERATIONS``; adding an operation means adding an entry here (and its oracle),
not editing the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import conv, pool
from .params import AvgPool2dParams, Conv2dParams, MaxPool2dParams, Params

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Feature:
    """A part of the contract an implementation may declare unsupported or different.

    ``choices`` lists the values a capabilities declaration may give, the
    contract's own value first. ``kind`` is ``"support"`` when the choices are
    ordered levels (a case needing level ``i`` runs only if the declared level
    is ``>= i``) or ``"semantics"`` when a choice changes the expected answer
    (the oracles follow the declared value). ``required`` maps a case's
    parameters to the level (support) it needs; semantic features have none.
    """

    name: str
    doc: str
    choices: tuple[Any, ...]
    kind: str = "support"
    required: Callable[[Any], Any] | None = None

    @property
    def full(self) -> Any:
        """The value the full contract demands."""
        return self.choices[-1] if self.kind == "support" else self.choices[0]


@dataclass(frozen=True)
class Operation:
    """One contract operation: its functions, arrays, hyper-parameters and rules."""

    name: str
    forward: str
    backward: str
    inputs: tuple[str, ...]
    grads: tuple[str, ...]
    params_type: type
    hyperparameters: tuple[str, ...]
    features: tuple[Feature, ...]
    doc: str

    @property
    def functions(self) -> tuple[str, str]:
        return (self.forward, self.backward)

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def check(self, shapes: dict[str, Shape | None], params: Params) -> None:
        """Raise ``InvalidConfiguration`` unless the configuration is valid."""
        if self.name == "conv2d":
            conv.check(shapes["x"], shapes["w"], shapes.get("b"), params)  # type: ignore[arg-type]
        else:
            pool.check(shapes["x"], params)  # type: ignore[arg-type]

    def output_shape(self, shapes: dict[str, Shape | None], params: Params) -> Shape:
        """Shape of ``y`` (and so of ``dy``)."""
        if self.name == "conv2d":
            return conv.output_shape(shapes["x"], shapes["w"], params)  # type: ignore[arg-type]
        return pool.output_shape(shapes["x"], params)  # type: ignore[arg-type]

    def reduction_lengths(self, shapes: dict[str, Shape | None], params: Params) -> dict[str, int]:
        """``K`` per output (``y`` and each gradient) for the tolerance policy."""
        if self.name == "conv2d":
            return conv.reduction_lengths(shapes["x"], shapes["w"], params)  # type: ignore[arg-type]
        return pool.reduction_lengths(shapes["x"], params)  # type: ignore[arg-type]


def _any_above_one(pair: tuple[int, int]) -> bool:
    return max(pair) > 1


PADDING = Feature(
    "padding",
    "padding supported, each level including the ones before: 'none', 'uniform' (one int for all "
    "four sides), 'symmetric' (top == bottom, left == right) or 'asymmetric' (the contract)",
    ("none", "uniform", "symmetric", "asymmetric"),
    required=lambda p: p.padding_kind,
)
STRIDE = Feature(
    "stride",
    "strides supported: 'unit' (1, 1) only, 'uniform' (h == w) or 'any' (the contract)",
    ("unit", "uniform", "any"),
    required=lambda p: p.stride_kind,
)
DILATION = Feature(
    "dilation", "dilation other than 1", (False, True), required=lambda p: _any_above_one(p.dilation)
)
CEIL_MODE = Feature("ceil_mode", "ceil_mode=True", (False, True), required=lambda p: bool(p.ceil_mode))

CONV2D = Operation(
    name="conv2d",
    forward="conv2d_forward",
    backward="conv2d_backward",
    inputs=("x", "w", "b"),
    grads=("dx", "dw", "db"),
    params_type=Conv2dParams,
    hyperparameters=("stride", "padding", "dilation", "groups"),
    features=(
        STRIDE,
        PADDING,
        DILATION,
        Feature("groups", "groups other than 1", (False, True), required=lambda p: p.groups > 1),
        Feature(
            "convention",
            "'cross-correlation' (PyTorch, the contract) or 'convolution' (kernel flipped 180 degrees)",
            ("cross-correlation", "convolution"),
            kind="semantics",
        ),
    ),
    doc=conv.__doc__ or "",
)

MAX_POOL2D = Operation(
    name="max_pool2d",
    forward="max_pool2d_forward",
    backward="max_pool2d_backward",
    inputs=("x",),
    grads=("dx",),
    params_type=MaxPool2dParams,
    hyperparameters=("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    features=(
        STRIDE,
        PADDING,
        DILATION,
        CEIL_MODE,
        Feature(
            "ties",
            "where a tied window's gradient goes: 'first' maximum (the contract), 'last', or 'split' evenly",
            pool.TIE_RULES,
            kind="semantics",
        ),
    ),
    doc=pool.__doc__ or "",
)

AVG_POOL2D = Operation(
    name="avg_pool2d",
    forward="avg_pool2d_forward",
    backward="avg_pool2d_backward",
    inputs=("x",),
    grads=("dx",),
    params_type=AvgPool2dParams,
    hyperparameters=("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
    features=(
        STRIDE,
        PADDING,
        CEIL_MODE,
        Feature(
            "exclude_pad",
            "count_include_pad=False (divide by the real cells only)",
            (False, True),
            required=lambda p: not p.count_include_pad,
        ),
    ),
    doc=pool.__doc__ or "",
)

OPERATIONS: dict[str, Operation] = {op.name: op for op in (CONV2D, MAX_POOL2D, AVG_POOL2D)}

DTYPES = ("float32", "float64")
"""Dtypes of the contract; a declaration may narrow them."""

ALGORITHMS = ("direct", "fft", "winograd")
"""How an implementation computes convolutions; only ``direct`` promises exact
results on exact-integer data."""

FUNCTION_NAMES: tuple[str, ...] = tuple(n for op in OPERATIONS.values() for n in op.functions)


def operation_of(function_name: str) -> Operation:
    """The operation a contract function belongs to."""
    for op in OPERATIONS.values():
        if function_name in op.functions:
            return op
    raise KeyError(function_name)

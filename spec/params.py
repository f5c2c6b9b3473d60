"""Hyper-parameter records for each operation, as the contract passes them.

Every field is a tuple (or an int for ``groups``, a bool for the flags), exactly
the keyword arguments an implementation receives: ``stride``, ``dilation`` and
``kernel_size`` are ``(h, w)``; ``padding`` is ``(top, bottom, left, right)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .errors import InvalidConfiguration


def _check_pair(name: str, value: Any, minimum: int) -> None:
    if not (isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value)):
        raise InvalidConfiguration(f"{name}={value!r} must be a tuple of two ints (h, w)")
    if min(value) < minimum:
        raise InvalidConfiguration(f"{name}={value!r} must have entries >= {minimum}")


def _check_padding(value: Any) -> None:
    if not (isinstance(value, tuple) and len(value) == 4 and all(isinstance(v, int) for v in value)):
        raise InvalidConfiguration(
            f"padding={value!r} must be a tuple of four ints (top, bottom, left, right)"
        )
    if min(value) < 0:
        raise InvalidConfiguration(f"padding={value!r} must be non-negative")


class _Params:
    """Shared behaviour: keyword arguments for the contract, and padding kinds."""

    padding: tuple[int, int, int, int]

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments an implementation receives, by contract name."""
        return asdict(self)  # type: ignore[call-overload]

    @property
    def padding_kind(self) -> str:
        """``"none"``, ``"uniform"`` (all four equal, a single int ``pad``),
        ``"symmetric"`` (top == bottom and left == right) or ``"asymmetric"``."""
        t, b, l, r = self.padding
        if not any(self.padding):
            return "none"
        if t == b == l == r:
            return "uniform"
        return "symmetric" if (t == b and l == r) else "asymmetric"

    @property
    def stride_kind(self) -> str:
        """``"unit"`` (1, 1), ``"uniform"`` (h == w, a single int) or ``"any"``."""
        sh, sw = self.stride  # type: ignore[attr-defined]
        if sh == sw == 1:
            return "unit"
        return "uniform" if sh == sw else "any"

    @property
    def pads_h(self) -> tuple[int, int]:
        return self.padding[0], self.padding[1]

    @property
    def pads_w(self) -> tuple[int, int]:
        return self.padding[2], self.padding[3]


@dataclass(frozen=True)
class Conv2dParams(_Params):
    """``conv2d`` hyper-parameters: stride, padding, dilation, groups."""

    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def __post_init__(self) -> None:
        _check_pair("stride", self.stride, 1)
        _check_padding(self.padding)
        _check_pair("dilation", self.dilation, 1)
        if not isinstance(self.groups, int) or self.groups < 1:
            raise InvalidConfiguration(f"groups={self.groups!r} must be a positive int")


@dataclass(frozen=True)
class MaxPool2dParams(_Params):
    """``max_pool2d`` hyper-parameters."""

    kernel_size: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    ceil_mode: bool = False

    def __post_init__(self) -> None:
        _check_pair("kernel_size", self.kernel_size, 1)
        _check_pair("stride", self.stride, 1)
        _check_padding(self.padding)
        _check_pair("dilation", self.dilation, 1)


@dataclass(frozen=True)
class AvgPool2dParams(_Params):
    """``avg_pool2d`` hyper-parameters (no dilation, as in PyTorch)."""

    kernel_size: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    ceil_mode: bool = False
    count_include_pad: bool = True

    def __post_init__(self) -> None:
        _check_pair("kernel_size", self.kernel_size, 1)
        _check_pair("stride", self.stride, 1)
        _check_padding(self.padding)

    @property
    def dilation(self) -> tuple[int, int]:
        """Average pooling has no dilation; shared window code reads ``(1, 1)``."""
        return (1, 1)


Params = Conv2dParams | MaxPool2dParams | AvgPool2dParams

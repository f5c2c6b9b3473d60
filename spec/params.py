"""Hyper-parameter records for each operation, as the contract passes them.

Every field is a tuple (or an int for ``groups``, a bool for the flags), exactly
the keyword arguments an implementation receives. ``stride``, ``dilation`` and
``kernel_size`` hold one entry per spatial axis in axis order (``(l,)`` in 1-D,
``(h, w)`` in 2-D, ``(d, h, w)`` in 3-D); ``padding`` holds a ``(low, high)``
pair per spatial axis, flattened in axis order: ``(top, bottom, left, right)``
in 2-D, ``(front, back, top, bottom, left, right)`` in 3-D.

The records of one family (``ConvParams``, ``MaxPoolParams``, ``AvgPoolParams``)
differ across dimensions only in ``NDIM`` and their defaults; the layers with no
hyper-parameters (activations, ``linear``, ``flatten``, losses) take ``NoParams``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from .errors import InvalidConfiguration

AXIS_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
"""Names of the spatial axes, for messages."""


def padding_kind(padding: Sequence[int]) -> str:
    """``"none"``, ``"uniform"`` (every side equal, a single int ``pad``), ``"symmetric"``
    (low == high on every axis) or ``"asymmetric"``, for ``(low, high)`` pairs per spatial
    axis in any number of dimensions."""
    padding = tuple(padding)
    if not any(padding):
        return "none"
    if len(set(padding)) == 1:
        return "uniform"
    pairs = zip(padding[::2], padding[1::2])
    return "symmetric" if all(lo == hi for lo, hi in pairs) else "asymmetric"


def _check_tuple(name: str, value: Any, length: int, minimum: int, what: str) -> None:
    if not (isinstance(value, tuple) and len(value) == length and all(isinstance(v, int) for v in value)):
        raise InvalidConfiguration(f"{name}={value!r} must be a tuple of {length} ints ({what})")
    if value and min(value) < minimum:
        raise InvalidConfiguration(f"{name}={value!r} must have entries >= {minimum}")


@dataclass(frozen=True)
class Params:
    """Shared behaviour: keyword arguments for the contract, and the kinds of padding and stride."""

    NDIM: ClassVar[int] = 0

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments an implementation receives, by contract name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}  # immutable values: no deep copy


@dataclass(frozen=True)
class NoParams(Params):
    """The layers without hyper-parameters: activations, ``linear``, ``flatten`` and the losses."""


class WindowParams(Params):
    """Behaviour shared by the sliding-window records (convolution and pooling over ``NDIM`` axes)."""

    stride: tuple[int, ...]
    padding: tuple[int, ...]
    if TYPE_CHECKING:  # a field of the convolution and max-pooling records, all ones for average pooling

        @property
        def dilation(self) -> tuple[int, ...]: ...

    def _check_windows(self) -> None:
        axes = ", ".join(a.lower() for a in AXIS_NAMES[self.NDIM])
        _check_tuple("stride", self.stride, self.NDIM, 1, axes)
        pads = ", ".join(f"{a.lower()}_low, {a.lower()}_high" for a in AXIS_NAMES[self.NDIM])
        _check_tuple("padding", self.padding, 2 * self.NDIM, 0, pads)
        _check_tuple("dilation", self.dilation, self.NDIM, 1, axes)

    def pads(self, axis: int) -> tuple[int, int]:
        """``(low, high)`` padding of spatial axis ``axis``."""
        return self.padding[2 * axis], self.padding[2 * axis + 1]

    @property
    def padding_kind(self) -> str:
        """The padding's kind (see ``padding_kind``)."""
        return padding_kind(self.padding)

    @property
    def stride_kind(self) -> str:
        """``"unit"`` (all 1), ``"uniform"`` (all axes equal, a single int) or ``"any"``."""
        if all(s == 1 for s in self.stride):
            return "unit"
        return "uniform" if len(set(self.stride)) == 1 else "any"

    @property
    def pads_h(self) -> tuple[int, int]:
        """``(top, bottom)``: the second-to-last spatial axis (2-D and 3-D only)."""
        if self.NDIM < 2:
            raise AttributeError(f"{type(self).__name__} has one spatial axis: use pads(0)")
        return self.pads(self.NDIM - 2)

    @property
    def pads_w(self) -> tuple[int, int]:
        """``(left, right)``: the last spatial axis."""
        return self.pads(self.NDIM - 1)


@dataclass(frozen=True)
class ConvParams(WindowParams):
    """Convolution hyper-parameters: stride, padding, dilation, groups."""

    stride: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()
    dilation: tuple[int, ...] = ()
    groups: int = 1

    def __post_init__(self) -> None:
        self._check_windows()
        if not isinstance(self.groups, int) or self.groups < 1:
            raise InvalidConfiguration(f"groups={self.groups!r} must be a positive int")


@dataclass(frozen=True)
class MaxPoolParams(WindowParams):
    """Max-pooling hyper-parameters."""

    kernel_size: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()
    dilation: tuple[int, ...] = ()
    ceil_mode: bool | str = False
    """``True`` for PyTorch's ceil rule; ``"cover_all"`` (``spec.shapes.COVER_ALL``) for Chainer's, in
    a run whose implementation declares it (the implementation receives ``True``)."""

    def __post_init__(self) -> None:
        _check_tuple("kernel_size", self.kernel_size, self.NDIM, 1, "one per spatial axis")
        self._check_windows()

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments an implementation receives: ``ceil_mode=True`` for a ``cover_all``
        record (the declared rule says what ``True`` means)."""
        kwargs = super().kwargs()
        if isinstance(self.ceil_mode, str):
            kwargs["ceil_mode"] = True
        return kwargs


@dataclass(frozen=True)
class AvgPoolParams(WindowParams):
    """Average-pooling hyper-parameters (no dilation, as in PyTorch)."""

    kernel_size: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()
    ceil_mode: bool = False
    count_include_pad: bool = True

    def __post_init__(self) -> None:
        _check_tuple("kernel_size", self.kernel_size, self.NDIM, 1, "one per spatial axis")
        self._check_windows()

    @property
    def dilation(self) -> tuple[int, ...]:
        """Average pooling has no dilation; shared window code reads all ones."""
        return (1,) * self.NDIM


_W = TypeVar("_W", bound=WindowParams)

_DIMENSIONED: list[type[WindowParams]] = []
"""The records ``_dimensioned`` made, in the order they are defined."""


def _dimensioned(ndim: int, **defaults: tuple[int, ...]) -> Callable[[type[_W]], type[_W]]:
    """Make the decorated subclass of a window record the frozen dataclass for ``ndim`` spatial axes,
    with that dimension's ``defaults`` and a docstring saying so."""

    def make(cls: type[_W]) -> type[_W]:
        base_doc = cls.__mro__[1].__doc__ or ""
        cls.NDIM = ndim
        cls.__annotations__ = dict.fromkeys(defaults, tuple[int, ...])
        for name, value in defaults.items():
            setattr(cls, name, value)
        axes = "axes" if ndim > 1 else "axis"
        cls.__doc__ = f"{base_doc.split(chr(10))[0].rstrip('.')} over {ndim} spatial {axes}."
        record = dataclass(frozen=True)(cls)
        _DIMENSIONED.append(record)
        return record

    return make


def _defaults(ndim: int, kernel: bool) -> dict[str, tuple[int, ...]]:
    out = {"kernel_size": (2,) * ndim} if kernel else {}
    out["stride"] = (2 if kernel else 1,) * ndim
    out["padding"] = (0,) * (2 * ndim)
    return out


@_dimensioned(1, **_defaults(1, False), dilation=(1,))
class Conv1dParams(ConvParams): ...


@_dimensioned(2, **_defaults(2, False), dilation=(1, 1))
class Conv2dParams(ConvParams): ...


@_dimensioned(3, **_defaults(3, False), dilation=(1, 1, 1))
class Conv3dParams(ConvParams): ...


@_dimensioned(1, **_defaults(1, True), dilation=(1,))
class MaxPool1dParams(MaxPoolParams): ...


@_dimensioned(2, **_defaults(2, True), dilation=(1, 1))
class MaxPool2dParams(MaxPoolParams): ...


@_dimensioned(3, **_defaults(3, True), dilation=(1, 1, 1))
class MaxPool3dParams(MaxPoolParams): ...


@_dimensioned(1, **_defaults(1, True))
class AvgPool1dParams(AvgPoolParams): ...


@_dimensioned(2, **_defaults(2, True))
class AvgPool2dParams(AvgPoolParams): ...


@_dimensioned(3, **_defaults(3, True))
class AvgPool3dParams(AvgPoolParams): ...


_RECORDS: list[type[Params]] = [NoParams, *_DIMENSIONED]
PARAMS_TYPE_BY_NAME: dict[str, type[Params]] = {cls.__name__: cls for cls in _RECORDS}
"""Every concrete record by class name (reproduction scripts and reports name them)."""

"""Half precision by widening: a contract function called on float16 or bfloat16 arrays computes
in float32 and rounds each result once to the input's dtype.

This is what a BLAS or cuDNN half kernel does (products of two half numbers are exact in float32,
sums are kept there), so an implementation wrapped here declares ``"accumulate": "float32"``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

import numpy as np

from convcheck.spec.dtypes import is_half
from convcheck.spec.ops import FUNCTION_NAMES


def _half_dtype(args: Iterable[Any]) -> np.dtype | None:
    """The half dtype of the first half-precision array among ``args``, or ``None``."""
    return next((a.dtype for a in args if isinstance(a, np.ndarray) and is_half(a.dtype)), None)


def _narrow(result: Any, dtype: np.dtype) -> Any:
    """``result`` (an array, ``None`` or a tuple of them) with every float array rounded to ``dtype``."""
    if isinstance(result, tuple):
        return tuple(_narrow(r, dtype) for r in result)
    if isinstance(result, np.ndarray) and result.dtype.kind == "f":
        return result.astype(dtype)
    return result


def in_float32(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` computing half-precision inputs in float32, its results rounded once to their dtype;
    other dtypes are passed through untouched."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        half = _half_dtype(args)
        if half is None:
            return fn(*args, **kwargs)
        wide = [a.astype(np.float32) if isinstance(a, np.ndarray) and is_half(a.dtype) else a for a in args]
        return _narrow(fn(*wide, **kwargs), half)

    return wrapper


def widen_contract(namespace: MutableMapping[str, Any]) -> None:
    """Wrap every contract function defined in ``namespace`` (a module's ``globals()``) with
    ``in_float32``."""
    for name in FUNCTION_NAMES:
        if callable(namespace.get(name)):
            namespace[name] = in_float32(namespace[name])

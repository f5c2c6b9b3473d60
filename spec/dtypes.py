"""The storage dtypes of the contract and the facts the tolerance policy needs about each.

``float16`` is NumPy's IEEE half; ``bfloat16`` comes from ``ml_dtypes`` (importing this
module registers it with NumPy, so ``np.dtype("bfloat16")`` works everywhere after it).
The half dtypes store inputs and outputs only: an implementation may accumulate in a
wider format and declares which (``accumulate`` in its capabilities).
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    import ml_dtypes
except ImportError:  # a worker under --python whose environment has only NumPy: no bfloat16 there
    ml_dtypes = None  # type: ignore[assignment]

FULL_DTYPES = ("float32", "float64")
"""The single and double precision dtypes: what a declaration without ``dtypes`` supports."""

HALF_DTYPES = ("float16", "bfloat16")
"""The 16-bit storage dtypes."""

DTYPES = (*HALF_DTYPES, *FULL_DTYPES)
"""Every dtype of the contract, narrowest first."""

DEFAULT_ACCUMULATE = "float32"
"""Accumulation precision assumed when a declaration does not state one: float32 for the
half dtypes (what every BLAS and cuDNN half kernel does); float32 and float64 always
accumulate in themselves."""

ACCUMULATE_CHOICES = ("float32", "storage")
"""What ``accumulate`` may declare: float32 sums, or sums kept in the storage dtype."""


def numpy_dtype(dtype: str | np.dtype) -> np.dtype:
    """The NumPy dtype of a contract dtype name (``bfloat16`` is ``ml_dtypes.bfloat16``)."""
    if str(dtype) == "bfloat16":
        if ml_dtypes is None:
            raise TypeError(
                "bfloat16 needs the ml_dtypes package, which this environment lacks; "
                "install it (pip install ml_dtypes) or check the other dtypes"
            )
        bf16: np.dtype = np.dtype(ml_dtypes.bfloat16)
        return bf16
    return np.dtype(dtype)


def finfo(dtype: str | np.dtype) -> Any:
    """``ml_dtypes.finfo`` (NumPy's ``finfo`` does not know bfloat16)."""
    if str(dtype) != "bfloat16":
        return np.finfo(numpy_dtype(dtype))
    return ml_dtypes.finfo(numpy_dtype(dtype))  # type: ignore[no-untyped-call]


def is_float(dtype: np.dtype) -> bool:
    """Whether a NumPy dtype holds floating-point numbers (``bfloat16`` included, whose kind is ``V``)."""
    return dtype.kind in "fc" or is_half(dtype)


def is_half(dtype: str | np.dtype) -> bool:
    """Whether ``dtype`` is one of the 16-bit storage dtypes."""
    return str(dtype) in HALF_DTYPES


def unit_roundoff(dtype: str | np.dtype) -> float:
    """``u``: half the distance from 1 to the next float (``2**-11`` for float16, ``2**-8`` for
    bfloat16, ``2**-24`` for float32, ``2**-53`` for float64)."""
    return float(finfo(dtype).eps) / 2


def tiny(dtype: str | np.dtype) -> float:
    """The smallest normal number of ``dtype`` (``2**-14`` for float16, ``2**-126`` for bfloat16
    and float32, ``2**-1022`` for float64): below it values are subnormal and lose precision."""
    return float(finfo(dtype).smallest_normal)


def largest(dtype: str | np.dtype) -> float:
    """The largest finite number of ``dtype`` (65504 for float16)."""
    return float(finfo(dtype).max)


def bits_dtype(dtype: str | np.dtype) -> np.dtype:
    """The signed integer dtype of the same width, for bit-pattern views."""
    return np.dtype(f"int{numpy_dtype(dtype).itemsize * 8}")


def accumulation_dtype(storage: str, declared: str = DEFAULT_ACCUMULATE) -> str:
    """The dtype sums are kept in: the storage dtype itself for float32 and float64; for a half
    dtype, ``float32`` or the storage dtype as the declaration's ``accumulate`` says."""
    if not is_half(storage) or declared == "storage":
        return str(numpy_dtype(storage))
    return declared


def round_to(values: np.ndarray, dtype: str | np.dtype) -> np.ndarray:
    """``values`` rounded once (to nearest) to ``dtype`` and returned as float64."""
    rounded: np.ndarray = np.asarray(values, np.float64).astype(numpy_dtype(dtype)).astype(np.float64)
    return rounded

"""The memory guard: refuse an entry whose arrays would not fit, instead of swapping the machine to death.

``estimate`` is a deliberately generous upper estimate of what one entry
needs at its peak, in bytes, from its array sizes (in elements):

* ``io``: the inputs ``x, w, b, dy`` and the outputs ``y, dx, dw, db``;
* ``cols``: one im2col buffer ``N * C_in * KH * KW * OH * OW`` for conv2d
  (what a straightforward implementation allocates; 0 for pooling);
* ``largest``: the largest single array.

::

    bytes = itemsize * (3 * io + cols) + 8 * CHECK_COPIES * largest

The first term covers the implementation's and PyTorch's arrays alive
together (inputs shared, two sets of outputs, autograd's saved tensors); the
second the correctness check, which holds the float64 oracle result, the
oracle on absolute values, the result as float64 and the tolerance policy's
temporaries for the largest output.

The limit defaults to ``DEFAULT_FRACTION`` of the memory available when the
run starts (``MemAvailable`` in ``/proc/meminfo``, else the physical memory);
``--memory-limit`` sets it (``512M``, ``8G``, ``1.5T`` or bytes).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from ..spec.shapes import required
from .corpus import Entry

CHECK_COPIES = 12
"""Float64 arrays of the largest output's size alive during the correctness check."""

DEFAULT_FRACTION = 0.5
"""Share of the available memory an entry may use by default."""

_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


@dataclass(frozen=True)
class Limit:
    """A memory limit in bytes and where it comes from (for messages)."""

    bytes: int
    why: str


def _numel(shape: tuple[int, ...] | None) -> int:
    return 0 if shape is None else int(np.prod(shape, dtype=np.int64))


def estimate(entry: Entry, batch: int, dtype: str) -> int:
    """Upper estimate of the bytes ``entry`` needs at ``batch`` (module docstring)."""
    shapes = entry.shapes(batch)
    y = entry.output_shape(batch)
    inputs = sum(_numel(s) for s in shapes.values())
    sizes = [_numel(s) for s in (*shapes.values(), y)]
    io = 2 * inputs + 2 * _numel(y)  # inputs and their gradients; y and dy
    cols = 0
    if entry.op == "conv2d":
        n, c_in = required(shapes, "x")[:2]
        kh, kw = entry.kernel_size
        cols = n * c_in * kh * kw * y[2] * y[3]
    itemsize = np.dtype(dtype).itemsize
    return itemsize * (3 * io + cols) + 8 * CHECK_COPIES * max(sizes)


def available_bytes() -> int | None:
    """Memory available now (``MemAvailable``), else the physical memory, else ``None``."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def default_limit() -> Limit:
    """``DEFAULT_FRACTION`` of the available memory (4 GiB when it cannot be read)."""
    avail = available_bytes()
    if avail is None:
        return Limit(4 * 2**30, "the default of 4 GiB (the available memory cannot be read)")
    return Limit(int(avail * DEFAULT_FRACTION), f"half the {format_bytes(avail)} available")


def parse_size(text: str) -> int:
    """``"512M"``, ``"8G"``, ``"1.5T"``, ``"4096"`` -> bytes (binary units); ``ValueError`` otherwise."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    if not m:
        raise ValueError(f"memory size {text!r} must be a number with an optional unit K, M, G or T, e.g. 8G")
    value = float(m.group(1)) * _UNITS[m.group(2)]
    if value < 1:
        raise ValueError(f"memory size {text!r} must be at least one byte")
    return int(value)


def format_bytes(n: float) -> str:
    """``1536 -> '1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


__all__ = [
    "CHECK_COPIES",
    "DEFAULT_FRACTION",
    "Limit",
    "available_bytes",
    "default_limit",
    "estimate",
    "format_bytes",
    "parse_size",
]

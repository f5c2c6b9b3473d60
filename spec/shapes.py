"""Output-size and window rules shared by convolution and pooling, one spatial axis at a time.

Notation for one axis: input length ``n``, kernel length ``k``, stride ``s``,
padding ``lo`` before and ``hi`` after the input, dilation ``d``. The
*effective* kernel length is ``d*(k-1) + 1``; window ``o`` starts at padded
coordinate ``o*s`` and reads input cells ``o*s - lo + j*d`` for ``j < k``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import InvalidConfiguration


def effective_kernel(k: int, d: int) -> int:
    """Length covered by a dilated kernel: ``d*(k-1) + 1``."""
    return d * (k - 1) + 1


def conv_out_size(n: int, k: int, s: int, lo: int, hi: int, d: int) -> int:
    """Convolution output length: ``floor((n + lo + hi - d*(k-1) - 1) / s) + 1``.

    May be zero or negative for a kernel longer than the padded input; the
    validity rules in ``spec.conv`` reject those configurations.
    """
    return (n + lo + hi - effective_kernel(k, d)) // s + 1


def divides_exactly(n: int, k: int, s: int, lo: int, hi: int, d: int) -> bool:
    """Whether the windows tile the padded axis exactly: ``(n + lo + hi - d*(k-1) - 1) % s == 0``.

    Then the output-size formula is an integer without rounding (floor and ceil agree),
    which is the geometry the CS231n assignment's layers assume (``geometry = "exact"``).
    """
    return (n + lo + hi - effective_kernel(k, d)) % s == 0


COVER_ALL = "cover_all"
"""The ``ceil_mode`` value of a max-pool record whose implementation declares Chainer's ceil rule
(``{"max_pool2d": {"ceil_rule": "cover_all"}}``); the implementation itself receives ``True``."""


def pool_out_size(n: int, k: int, s: int, lo: int, hi: int, d: int, ceil_mode: bool | str) -> int:
    """Pooling output length, PyTorch's rule with the padding made explicit.

    ``floor`` (or ``ceil`` when ``ceil_mode``) of ``(n + lo + hi - d*(k-1) - 1) / s``,
    plus one. With ``ceil_mode`` the last window may hang over the padded end, but
    it must *start* inside the input or the leading padding: if
    ``(out - 1) * s >= n + lo`` that window is dropped. For symmetric padding this
    is exactly ``torch.nn.functional.max_pool2d``'s output size.

    ``ceil_mode = COVER_ALL`` is Chainer's ``cover_all`` instead: ``ceil`` of the same quotient, plus
    one, with no window dropped (``get_conv_outsize(size, k, s, p, cover_all=True)`` is
    ``(size + 2p - k_eff + s - 1) // s + 1``), so the last window may start in the high padding or
    past it.
    """
    span = n + lo + hi - effective_kernel(k, d)
    if ceil_mode == COVER_ALL:
        return -(-span // s) + 1
    if ceil_mode:
        out = -(-span // s) + 1
        if (out - 1) * s >= n + lo:
            out -= 1
    else:
        out = span // s + 1
    return out


def window_cells(o: int, k: int, s: int, lo: int, d: int) -> list[int]:
    """Input coordinates (possibly outside ``[0, n)``) read by window ``o``."""
    start = o * s - lo
    return [start + j * d for j in range(k)]


def windows_all_touch_input(n: int, k: int, s: int, lo: int, d: int, out: int) -> bool:
    """True when every one of the ``out`` windows reads at least one real input cell.

    A max-pool window lying wholly in padding has no defined value (its maximum
    is -inf) and no cell to route its gradient to; the spec rules it out.
    """
    return all(any(0 <= c < n for c in window_cells(o, k, s, lo, d)) for o in range(out))


def avg_divisor(o: int, n: int, k: int, s: int, lo: int, hi: int, count_include_pad: bool) -> int:
    """The divisor of average-pool window ``o`` on one axis (PyTorch's rule).

    The window ``[o*s - lo, o*s - lo + k)`` is first clipped to the padded extent
    ``[-lo, n + hi)`` (so a ``ceil_mode`` overhang past the padding never counts);
    with ``count_include_pad`` that clipped length is the divisor, otherwise the
    length after clipping further to the real input ``[0, n)``. The N-d divisor is
    the product of the axes' divisors.
    """
    start = o * s - lo
    end = min(start + k, n + hi)
    if count_include_pad:
        return end - start
    return min(end, n) - max(start, 0)


def ceil_div(a: int, b: int) -> int:
    """``ceil(a / b)`` for integers."""
    return -(-a // b)


__all__ = [
    "avg_divisor",
    "ceil_div",
    "conv_out_size",
    "effective_kernel",
    "pool_out_size",
    "window_cells",
    "windows_all_touch_input",
    "COVER_ALL",
]


def required(shapes: Mapping[str, tuple[int, ...] | None], name: str) -> tuple[int, ...]:
    """``shapes[name]``, an array the operation cannot do without (its validity check has passed)."""
    shape = shapes[name]
    if shape is None:
        raise InvalidConfiguration(f"{name} is required")
    return shape


def at(*parts: Any) -> tuple[Any, ...]:
    """The index tuple ``parts`` (``at(..., *slices)``): written ``(..., *slices)``, mypy types it a
    tuple of ``object``, which numpy's and torch's indexing stubs reject."""
    return parts

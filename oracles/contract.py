"""The contract's per-dimension function names, built from an oracle's N-d functions.

An oracle computes each family (convolution, max pooling, average pooling)
once, for any number of spatial axes, from a hyper-parameter record. The
contract names one function per dimension with keyword-only hyper-parameters
(``conv1d_forward(x, w, b, *, stride, padding, dilation, groups)``, ...). The
factories here make those functions for a dimension: they build the
dimension's record (validated by its constructor) and call the N-d function.
They hold no arithmetic, so both oracles use them and stay independent where
it matters. Their signatures are written out in full because
``convcheck.oracles.call`` reads them to decide which semantic options
(``convention``, ``ties``) a function takes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from convcheck.spec.ops import PARAMS_TYPES

Ints = tuple[int, ...]

CROSS_CORRELATION = "cross-correlation"
"""The contract's convolution convention (the default of the ``convention`` option)."""


def as_contract(
    family: str, ndim: int, how: str, module: str, forward: Callable[..., Any], backward: Callable[..., Any]
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``forward`` and ``backward`` named as the contract's ``{family}{ndim}d_forward``/``_backward``.

    Sets ``__name__``, ``__qualname__`` and ``__module__`` (so that a function
    a factory made reads, and pickles, as one defined in ``module``) and a
    one-line docstring naming the dimension and ``how`` computes it (``{ndim}``
    in ``how`` stands for the dimension).
    """
    for fn, direction in ((forward, "forward"), (backward, "backward")):
        fn.__name__ = fn.__qualname__ = f"{family}{ndim}d_{direction}"
        fn.__module__ = module
        fn.__doc__ = f"``{family}_{direction}`` in {ndim}-D, by {how.format(ndim=ndim)}."
    return forward, backward


def max_pool_functions(
    ndim: int, forward_nd: Callable[..., Any], backward_nd: Callable[..., Any], how: str
) -> tuple[Callable[..., np.ndarray], Callable[..., np.ndarray]]:
    """``max_pool{ndim}d_forward`` and ``max_pool{ndim}d_backward`` with the contract's signatures.

    Each builds the dimension's record (``MaxPool1dParams``, ...; validated by
    its constructor) and calls the N-d ``forward_nd(x, p)`` or
    ``backward_nd(dy, x, p, ties)``. ``how`` names what computes them, for the
    docstrings. The functions belong to the module of ``forward_nd``; each oracle
    calls this with its own.
    """
    params_type = PARAMS_TYPES["max_pool"][ndim]

    def record(kernel_size: Ints, stride: Ints, padding: Ints, dilation: Ints, ceil_mode: bool) -> Any:
        return params_type(
            kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode
        )

    def forward(
        x: np.ndarray, *, kernel_size: Ints, stride: Ints, padding: Ints, dilation: Ints, ceil_mode: bool
    ) -> np.ndarray:
        return forward_nd(x, record(kernel_size, stride, padding, dilation, ceil_mode))

    def backward(
        dy: np.ndarray,
        x: np.ndarray,
        *,
        kernel_size: Ints,
        stride: Ints,
        padding: Ints,
        dilation: Ints,
        ceil_mode: bool,
        ties: str = "first",
    ) -> np.ndarray:
        return backward_nd(dy, x, record(kernel_size, stride, padding, dilation, ceil_mode), ties)

    return as_contract("max_pool", ndim, how, forward_nd.__module__, forward, backward)


def avg_pool_functions(
    ndim: int, forward_nd: Callable[..., Any], backward_nd: Callable[..., Any], how: str
) -> tuple[Callable[..., np.ndarray], Callable[..., np.ndarray]]:
    """``avg_pool{ndim}d_forward`` and ``avg_pool{ndim}d_backward`` with the contract's signatures.

    Each builds the dimension's record (``AvgPool1dParams``, ...; validated by
    its constructor) and calls the N-d ``forward_nd(x, p)`` or
    ``backward_nd(dy, x, p)``. ``how`` names what computes them, for the
    docstrings. The functions belong to the module of ``forward_nd``; each oracle
    calls this with its own.
    """
    params_type = PARAMS_TYPES["avg_pool"][ndim]

    def record(
        kernel_size: Ints, stride: Ints, padding: Ints, ceil_mode: bool, count_include_pad: bool
    ) -> Any:
        return params_type(
            kernel_size=kernel_size,
            stride=stride,
            padding=padding,
            ceil_mode=ceil_mode,
            count_include_pad=count_include_pad,
        )

    def forward(
        x: np.ndarray,
        *,
        kernel_size: Ints,
        stride: Ints,
        padding: Ints,
        ceil_mode: bool,
        count_include_pad: bool,
    ) -> np.ndarray:
        return forward_nd(x, record(kernel_size, stride, padding, ceil_mode, count_include_pad))

    def backward(
        dy: np.ndarray,
        x: np.ndarray,
        *,
        kernel_size: Ints,
        stride: Ints,
        padding: Ints,
        ceil_mode: bool,
        count_include_pad: bool,
    ) -> np.ndarray:
        return backward_nd(dy, x, record(kernel_size, stride, padding, ceil_mode, count_include_pad))

    return as_contract("avg_pool", ndim, how, forward_nd.__module__, forward, backward)


def conv_functions(
    ndim: int, forward_nd: Callable[..., Any], backward_nd: Callable[..., Any], how: str
) -> tuple[Callable[..., np.ndarray], Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray | None]]]:
    """``conv{ndim}d_forward`` and ``conv{ndim}d_backward`` with the contract's signatures.

    Each builds the dimension's record (``Conv1dParams``, ...; validated by its
    constructor) and calls the N-d ``forward_nd(x, w, b, p, convention)`` or
    ``backward_nd(dy, x, w, b, p, convention)``. ``how`` names what computes
    them, for the docstrings. The functions belong to the module of
    ``forward_nd``; each oracle calls this with its own.
    """
    params_type = PARAMS_TYPES["conv"][ndim]

    def forward(
        x: np.ndarray,
        w: np.ndarray,
        b: np.ndarray | None,
        *,
        stride: Ints,
        padding: Ints,
        dilation: Ints,
        groups: int,
        convention: str = CROSS_CORRELATION,
    ) -> np.ndarray:
        p = params_type(stride=stride, padding=padding, dilation=dilation, groups=groups)
        return forward_nd(x, w, b, p, convention)

    def backward(
        dy: np.ndarray,
        x: np.ndarray,
        w: np.ndarray,
        b: np.ndarray | None,
        *,
        stride: Ints,
        padding: Ints,
        dilation: Ints,
        groups: int,
        convention: str = CROSS_CORRELATION,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        p = params_type(stride=stride, padding=padding, dilation=dilation, groups=groups)
        return backward_nd(dy, x, w, b, p, convention)

    return as_contract("conv", ndim, how, forward_nd.__module__, forward, backward)

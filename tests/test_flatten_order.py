"""Property: flatten keeps the contract's order, ``y[n] = x[n].ravel()`` (channel slowest, the
last spatial axis fastest: PyTorch's ``torch.flatten(x, 1)``), and its backward is the inverse
reshape, ``dx = dy.reshape(x.shape)``, bit for bit.

Values are distinct, so any other order shows; when the order is channels-last
(``N, H, W, C``, TensorFlow's and NumPy image code's habit) the message says so.
"""

import numpy as np
import pytest
from hypothesis import given

from convcheck.spec import OPERATIONS

from . import checks
from .strategies import cases


def _order_hint(x: np.ndarray, got: np.ndarray) -> str:
    """Name a recognisable wrong order, or say what the right one is."""
    if x.ndim > 2 and np.array_equal(got, np.moveaxis(x, 1, -1).reshape(x.shape[0], -1)):
        return "it is in channels-last order (x transposed to N, H, W, C before reshaping)"
    if np.array_equal(got, x.reshape(x.shape[0], -1, order="F")):
        return "it is in Fortran (column-major) order"
    return "the contract's order is C order, channel slowest: y[n] = x[n].ravel()"


def _inverse_hint(dy: np.ndarray, shape: tuple[int, ...], dx: np.ndarray) -> str:
    """Name a recognisable wrong inverse order, or say what the right one is."""
    if dx.shape != shape:
        return f"dx.shape={dx.shape}"
    if len(shape) > 2:
        channels_last = np.moveaxis(dy.reshape(shape[0], *shape[2:], shape[1]), -1, 1)
        if np.array_equal(dx, channels_last):
            return "it undoes a channels-last flatten (dy reshaped to N, H, W, C, then transposed)"
    return "the contract's inverse is dx = dy.reshape(x.shape) in C order"


@pytest.mark.conformance("flatten_order")
def test_flatten_order(impl, caps, op_name, record):
    op = OPERATIONS[op_name]
    checks.require(impl, op.forward, op.backward)

    @given(case=cases(op_name, caps, families_=("distinct",)))
    @checks.shrinks_further
    def check(case):
        record.case(case)
        x, dy = case.x, case.dy
        y = checks.call_forward(impl, case)
        expected = x.reshape(x.shape[0], -1)
        checks.ensure(
            np.array_equal(y, expected),
            f"{op.forward} y is not x[n].ravel() for each sample: {_order_hint(x, y)} [{case.describe()}]\n"
            + checks.reproduction(case, impl),
            case=case,
            impl=impl,
            output="y",
        )
        dx = checks.call_backward(impl, case)["dx"]
        checks.ensure(
            np.array_equal(dx, dy.reshape(x.shape)),
            f"{op.backward} dx is not dy reshaped to x.shape={x.shape} in C order: "
            f"{_inverse_hint(dy, x.shape, dx)} [{case.describe()}]\n" + checks.reproduction(case, impl),
            case=case,
            impl=impl,
            output="dx",
        )

    check()

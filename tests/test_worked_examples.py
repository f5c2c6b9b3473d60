"""The course's worked examples, as explicit examples (shared/course-notes).

Each expected value comes from the course's own derivation, written out as the
notes write it, not from an oracle.
"""

import numpy as np
import pytest
from scipy.signal import convolve2d

from convcheck.spec.params import Conv2dParams, MaxPool2dParams

from . import checks
from .values import fresh

FOUR_BY_FOUR = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], dtype=np.float64)
MAGIC = np.array(
    [[17, 24, 1, 8, 15], [23, 5, 7, 14, 16], [4, 6, 13, 20, 22], [10, 12, 19, 21, 3], [11, 18, 25, 2, 9]],
    dtype=np.float64,
)
KERNEL = np.array([[1, 3, 1], [0, 5, 0], [2, 1, 2]], dtype=np.float64)


def _call(impl, fname, *arrays, **kwargs):
    """Call with fresh copies; the outputs must be arrays (``db`` may be ``None``)."""
    out = impl.functions[fname](*[fresh(a) for a in arrays], **kwargs)
    for value in out if isinstance(out, tuple) else (out,):
        checks.ensure(
            value is None or isinstance(value, np.ndarray),
            f"{fname} returned a {checks.type_name(value)}, but should return numpy arrays",
        )
    return out


@pytest.mark.conformance("worked_examples", ops=("max_pool2d",))
def test_max_pool_4x4(impl):
    """Lecture 000: 2x2 windows, stride 2 give [[6, 8], [3, 4]]; each window's gradient goes to its
    winner (6 at (1, 1), 8 at (1, 3), 3 at (2, 0), 4 at (3, 3))."""
    checks.require(impl, "max_pool2d_forward", "max_pool2d_backward")
    kw = MaxPool2dParams((2, 2), (2, 2)).kwargs()
    x = FOUR_BY_FOUR[None, None]
    y = _call(impl, "max_pool2d_forward", x, **kw)
    np.testing.assert_array_equal(y[0, 0], [[6, 8], [3, 4]], err_msg="max_pool2d_forward on the 4x4 example")
    dy = np.array([[10.0, 20.0], [30.0, 40.0]])[None, None]
    dx = _call(impl, "max_pool2d_backward", dy, x, **kw)
    expected = np.zeros((4, 4))
    for (i, j), g in zip([(1, 1), (1, 3), (2, 0), (3, 3)], [10, 20, 30, 40], strict=True):
        expected[i, j] = g
    np.testing.assert_array_equal(
        dx[0, 0], expected, err_msg="max_pool2d_backward routing on the 4x4 example"
    )


@pytest.mark.conformance("worked_examples", ops=("conv2d",), direction="forward")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_full_convolution_of_magic_square(impl, caps, dtype):
    """Lecture 003: the full convolution of the 5x5 magic square with [[1,3,1],[0,5,0],[2,1,2]].

    A full convolution is a cross-correlation with the kernel rotated by 180
    degrees and ``k - 1 = 2`` zeros of padding on every side.
    """
    checks.require(impl, "conv2d_forward")
    checks.require_dtype(caps, dtype, "this example")
    convention = caps.value("conv2d", "convention")
    w = KERNEL[::-1, ::-1] if convention == "cross-correlation" else KERNEL
    x, kw = MAGIC[None, None], Conv2dParams(padding=(2, 2, 2, 2)).kwargs()
    if not caps.supports("conv2d", "padding", "uniform"):  # the same zeros, put there by hand
        x, kw = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2))), Conv2dParams().kwargs()
    y = _call(impl, "conv2d_forward", x.astype(dtype), w[None, None].astype(dtype), None, **kw)
    np.testing.assert_array_equal(y[0, 0], convolve2d(MAGIC, KERNEL, mode="full"))


@pytest.mark.conformance("worked_examples", ops=("conv2d",), direction="backward")
def test_dw_db_term_by_term(impl, caps):
    """Lecture 002: a 3x3 input, a 2x2 kernel, ``z = conv(x, w) + b`` (2x2); dL/dw and dL/db
    written term by term: ``dw11 = dz11 x11 + dz12 x12 + dz21 x21 + dz22 x22`` and so on,
    ``db = dz11 + dz12 + dz21 + dz22``."""
    checks.require(impl, "conv2d_backward")
    x = np.arange(1.0, 10.0).reshape(3, 3)
    w = np.array([[1.0, -1.0], [2.0, 0.5]])
    dz = np.array([[1.0, -2.0], [3.0, 0.5]])
    (x11, x12, x13), (x21, x22, x23), (x31, x32, x33) = x
    (d11, d12), (d21, d22) = dz
    dw_expected = [
        [d11 * x11 + d12 * x12 + d21 * x21 + d22 * x22, d11 * x12 + d12 * x13 + d21 * x22 + d22 * x23],
        [d11 * x21 + d12 * x22 + d21 * x31 + d22 * x32, d11 * x22 + d12 * x23 + d21 * x32 + d22 * x33],
    ]
    db_expected = d11 + d12 + d21 + d22
    dtype = caps.dtypes[-1]
    _, dw, db = _call(
        impl,
        "conv2d_backward",
        dz[None, None].astype(dtype),
        x[None, None].astype(dtype),
        w[None, None].astype(dtype),
        np.zeros(1, dtype),
        **Conv2dParams().kwargs(),
    )
    if caps.value("conv2d", "convention") == "convolution":
        dw = dw[..., ::-1, ::-1]
    np.testing.assert_array_equal(dw[0, 0], dw_expected, err_msg="dw of the 3x3 / 2x2 example")
    np.testing.assert_array_equal(db, [db_expected], err_msg="db of the 3x3 / 2x2 example")


@pytest.mark.conformance("worked_examples", ops=("conv2d",), direction="forward")
def test_32x32x3_six_filters(impl, caps):
    """Lecture 000: a 32x32x3 input and six 5x5x3 filters give a 28x28x6 output ((32 - 5)/1 + 1 = 28)."""
    checks.require(impl, "conv2d_forward")
    dtype = caps.dtypes[0]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 32, 32)).astype(dtype)
    w = rng.standard_normal((6, 3, 5, 5)).astype(dtype)
    y = _call(impl, "conv2d_forward", x, w, np.zeros(6, dtype), **Conv2dParams().kwargs())
    assert y.shape == (1, 6, 28, 28), f"y.shape={y.shape}, but should be (1, 6, 28, 28)"

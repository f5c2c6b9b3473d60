"""Meta-tests of the FLOP formulas against an independent count: loops that do the work and count it.

Each brute-force loop computes the real result (checked against the float64
oracle, so the loop is the operation and not a paraphrase of the formula) and
counts one multiply-add per product, or one visit per pooling-window cell.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from convcheck import oracles
from convcheck.bench import corpus, flops
from convcheck.spec.params import AvgPool2dParams, Conv2dParams, MaxPool2dParams

CONV_CASES = [
    # (x shape, w shape, params)
    ((1, 1, 6, 6), (1, 1, 3, 3), Conv2dParams()),
    ((2, 3, 7, 6), (4, 3, 3, 2), Conv2dParams(stride=(2, 1), padding=(1, 0, 2, 1))),
    ((2, 4, 9, 8), (6, 2, 2, 3), Conv2dParams(stride=(1, 2), dilation=(2, 1), groups=2)),
    ((1, 6, 5, 5), (6, 1, 3, 3), Conv2dParams(padding=(1, 1, 1, 1), groups=6)),
]


def _conv_by_loops(
    x: np.ndarray, w: np.ndarray, p: Conv2dParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """``y``, ``dx``, ``dw`` by explicit loops over outputs and taps (``dy`` = ones), and the products counted."""
    n, _, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    t, b, l, r = p.padding
    (sh, sw), (dh, dw_), g = p.stride, p.dilation, p.groups
    xp = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)))
    oh = (h + t + b - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + l + r - dw_ * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, c_out, oh, ow))
    dxp = np.zeros_like(xp)
    dwt = np.zeros_like(w)
    counts = {"forward": 0, "dx": 0, "dw": 0}
    dy = np.ones_like(y)
    for bi, co, i, j in itertools.product(range(n), range(c_out), range(oh), range(ow)):
        group = co // (c_out // g)
        for c, a, e in itertools.product(range(cg), range(kh), range(kw)):
            row, col, ci = i * sh + a * dh, j * sw + e * dw_, group * cg + c
            y[bi, co, i, j] += xp[bi, ci, row, col] * w[co, c, a, e]
            counts["forward"] += 1
            dxp[bi, ci, row, col] += dy[bi, co, i, j] * w[co, c, a, e]
            counts["dx"] += 1
            dwt[co, c, a, e] += dy[bi, co, i, j] * xp[bi, ci, row, col]
            counts["dw"] += 1
    dx = dxp[:, :, t : t + h, l : l + wd]
    return y, dx, dwt, counts


@pytest.mark.parametrize(("x_shape", "w_shape", "params"), CONV_CASES)
def test_conv_flops_match_counted_products(x_shape, w_shape, params: Conv2dParams) -> None:
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    y, dx, dw, counts = _conv_by_loops(x, w, params)
    kw = params.kwargs()
    np.testing.assert_allclose(y, oracles.call("torch", "conv2d_forward", x, w, None, **kw), atol=1e-12)
    odx, odw, _ = oracles.call("torch", "conv2d_backward", np.ones_like(y), x, w, None, **kw)
    np.testing.assert_allclose(dx, odx, atol=1e-12)
    np.testing.assert_allclose(dw, odw, atol=1e-12)
    shapes = {"x": x_shape, "w": w_shape, "b": (w_shape[0],)}
    assert flops.count("conv2d_forward", shapes, params) == 2 * counts["forward"]
    assert flops.count("conv2d_backward", shapes, params) == 2 * (counts["dx"] + counts["dw"])


POOL_CASES = [
    ("max_pool2d", (1, 1, 4, 4), MaxPool2dParams((2, 2), (2, 2))),
    ("max_pool2d", (2, 3, 7, 6), MaxPool2dParams((3, 2), (2, 1), (1, 1, 1, 0), (1, 2), ceil_mode=True)),
    ("avg_pool2d", (2, 2, 7, 7), AvgPool2dParams((3, 3), (2, 2), (1, 1, 1, 1), ceil_mode=True)),
    ("avg_pool2d", (1, 3, 7, 7), AvgPool2dParams((7, 7), (1, 1))),
]


def _pool_by_loops(op: str, x: np.ndarray, p) -> tuple[np.ndarray, int, int]:
    """The pooled output by visiting every cell of every window (padding as -inf or 0), cells and windows counted."""
    from convcheck.spec import pool
    from convcheck.spec.shapes import avg_divisor

    n, c, h, w = x.shape
    oh, ow = pool.output_spatial(x.shape, p)
    (kh, kw), (sh, sw), (dh, dw) = p.kernel_size, p.stride, p.dilation
    t, _, l, _ = p.padding
    y = np.zeros((n, c, oh, ow))
    cells = windows = 0
    for bi, ci, i, j in itertools.product(range(n), range(c), range(oh), range(ow)):
        windows += 1
        best, total = -np.inf, 0.0
        for a, e in itertools.product(range(kh), range(kw)):
            cells += 1
            row, col = i * sh + a * dh - t, j * sw + e * dw - l
            inside = 0 <= row < h and 0 <= col < w
            value = x[bi, ci, row, col] if inside else None
            if value is not None:
                best, total = max(best, value), total + value
        if op == "max_pool2d":
            y[bi, ci, i, j] = best
        else:
            b, r, cip = p.padding[1], p.padding[3], p.count_include_pad
            divisor = avg_divisor(i, h, kh, sh, t, b, cip) * avg_divisor(j, w, kw, sw, l, r, cip)
            y[bi, ci, i, j] = total / divisor
    return y, cells, windows


@pytest.mark.parametrize(("op", "x_shape", "params"), POOL_CASES)
def test_pool_flops_match_visited_cells(op: str, x_shape, params) -> None:
    x = np.random.default_rng(1).standard_normal(x_shape)
    y, cells, windows = _pool_by_loops(op, x, params)
    np.testing.assert_allclose(y, oracles.call("torch", f"{op}_forward", x, **params.kwargs()), atol=1e-12)
    shapes = {"x": x_shape}
    forward_expected = cells if op == "max_pool2d" else cells + windows
    assert flops.count(f"{op}_forward", shapes, params) == forward_expected
    assert flops.count(f"{op}_backward", shapes, params) == cells + windows


def test_published_network_totals() -> None:
    """Forward multiply-adds of the conv layers at batch 1 agree with the published figures."""

    def gmacs(name: str) -> float:
        c = corpus.load(name)
        total = sum(
            e.count * flops.count("conv2d_forward", e.shapes(1), e.params)
            for e in c.entries
            if e.op == "conv2d"
        )
        return total / 2 / 1e9

    assert gmacs("vgg16") == pytest.approx(15.35, rel=0.01)  # Simonyan & Zisserman: 15.5 G with the FC layers
    assert gmacs("resnet50") == pytest.approx(
        3.8, rel=0.02
    )  # He et al., Table 1: 3.8 x 10^9 FLOPs (multiply-adds)


def test_formula_by_hand() -> None:
    """ResNet-50 conv1 at batch 8: 2 * 8 * 64 * 112 * 112 * 3 * 7 * 7."""
    e = corpus.load("resnet50").entries[0]
    assert flops.count("conv2d_forward", e.shapes(8), e.params) == 2 * 8 * 64 * 112 * 112 * 3 * 7 * 7
    assert flops.count("conv2d_backward", e.shapes(8), e.params) == 4 * 8 * 64 * 112 * 112 * 3 * 7 * 7

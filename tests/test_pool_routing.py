"""Properties 9 and 10: where pooling sends each window's gradient.

Each example probes a few windows with a one-hot ``dy`` (1 at that window,
0 elsewhere), so the resulting ``dx`` shows exactly where that one window's
gradient went:

- max-pool: to one maximum of the window, chosen by the declared tie rule
  (``first`` in row-major window order by contract; ``last``; or ``split``
  evenly), and nowhere else;
- avg-pool: ``1 / divisor`` on every real cell of the window (PyTorch's divisor
  rule, ``spec.shapes.avg_divisor``), and nowhere else.

With the example's full ``dy``, the total gradient is conserved: each window
hands on exactly its ``dy`` (max) or ``dy * real cells / divisor`` (avg).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convcheck.spec import pool, shapes, tolerance
from convcheck.spec.case import with_inputs

from . import checks
from .strategies import cases
from .values import pool_windows

probes = st.lists(st.integers(0, 2**20), min_size=1, max_size=3)


def _window_cells(case, i, j):
    """Input ``(h, w)`` of each tap of output window ``(i, j)``, row-major, in or out of the input."""
    p = case.params
    (kh, kw), (sh, sw), (dh, dw) = p.kernel_size, p.stride, p.dilation
    return [
        (i * sh - p.padding[0] + a * dh, j * sw - p.padding[2] + e * dw) for a in range(kh) for e in range(kw)
    ]


def _probe_repro(case, impl, index):
    """Reproduction of a probe: the case, then its one-hot ``dy``."""
    return checks.reproduction(
        case,
        impl,
        "    import numpy as np\n    from convcheck.spec.case import with_inputs\n"
        f"    dy = np.zeros_like(case.dy); dy[{index}] = 1; case = with_inputs(case, dy=dy)\n",
    )


def _probe(case, flat):
    n, c, i, j = np.unravel_index(flat % case.dy.size, case.dy.shape)
    dy = np.zeros_like(case.dy)
    dy[n, c, i, j] = 1
    return (int(n), int(c), int(i), int(j)), with_inputs(case, dy=dy)


def _nonzero(dx, n, c):
    return {(int(h), int(w)): float(dx[n, c, h, w]) for h, w in zip(*np.nonzero(dx[n, c]), strict=True)}


@pytest.mark.conformance("max_routing", ops=("max_pool2d",))
def test_max_pool_routing(impl, caps, record):
    checks.require(impl, "max_pool2d_backward")
    rule = caps.value("max_pool2d", "ties")

    @given(case=cases("max_pool2d", caps, families_=("ties", "distinct", "zeros", "normal")), picks=probes)
    def check(case, picks):
        record.case(case)
        windows = pool_windows(case.x.astype(np.float64), case.params)
        for flat in picks:
            (n, c, i, j), probe = _probe(case, flat)
            dx = checks.call_backward(impl, probe)["dx"]
            values = windows[n, c, i, j]
            cells = _window_cells(case, i, j)
            tied = [cells[t] for t in np.flatnonzero(values == values.max())]
            if rule == "split":
                expected = {cell: 1.0 / len(tied) for cell in tied}
            else:
                expected = {tied[0] if rule == "first" else tied[-1]: 1.0}
            got = _nonzero(dx, n, c)
            others = np.count_nonzero(dx) - len(got)
            ok = (
                others == 0
                and got.keys() == expected.keys()
                and all(
                    abs(got[k] - v) <= 4 * tolerance.unit_roundoff(case.dtype) for k, v in expected.items()
                )
            )
            checks.ensure(
                ok,
                f"max_pool2d_backward routed window (n={n}, c={c}, oh={i}, ow={j})'s gradient 1 to "
                f"{got} (cell: value){' and to other channels' if others else ''}; the window's maximum "
                f"{float(values.max())!r} is at cells {tied}, so under the {rule!r} tie rule it should go to {expected} "
                f"[{case.describe()}]\n" + _probe_repro(case, impl, (n, c, i, j)),
                case=probe,
                impl=impl,
                output="dx",
            )
        _assert_conserved(impl, case, caps, np.ones(case.dy.shape))

    check()


def _assert_conserved(impl, case, caps, share):
    """Sum of dx per (n, c) equals the sum over windows of dy times each window's ``share``."""
    __tracebackhide__ = True
    dx = checks.call_backward(impl, case)["dx"].astype(np.float64)
    dy = case.dy.astype(np.float64)
    got = dx.sum(axis=(2, 3))
    expected = (dy * share).sum(axis=(2, 3))
    scale = (np.abs(dy) * share).sum(axis=(2, 3))
    comp = checks.within(case, "dx", got, expected, scale, caps, factor=2.0)
    checks.assert_matches(
        case, f"{case.op.backward}: total gradient per channel not conserved:", comp, got, expected, impl
    )


def _avg_divisors(case):
    """``(OH, OW)`` divisors and real-cell counts of every avg-pool window, from the spec's rule."""
    p = case.params
    _, _, h, w = case.x.shape
    oh, ow = pool.output_hw(case.x.shape, p)
    (kh, kw), (sh, sw) = p.kernel_size, p.stride
    t, b, l, r = p.padding
    div_h = [shapes.avg_divisor(o, h, kh, sh, t, b, p.count_include_pad) for o in range(oh)]
    div_w = [shapes.avg_divisor(o, w, kw, sw, l, r, p.count_include_pad) for o in range(ow)]
    real_h = [shapes.avg_divisor(o, h, kh, sh, t, b, False) for o in range(oh)]
    real_w = [shapes.avg_divisor(o, w, kw, sw, l, r, False) for o in range(ow)]
    return np.outer(div_h, div_w), np.outer(real_h, real_w)


@pytest.mark.conformance("avg_spreading", ops=("avg_pool2d",))
def test_avg_pool_spreading(impl, caps, record):
    checks.require(impl, "avg_pool2d_backward")

    @given(case=cases("avg_pool2d", caps), picks=probes)
    def check(case, picks):
        record.case(case)
        divisors, real = _avg_divisors(case)
        _, _, h, w = case.x.shape
        for flat in picks:
            (n, c, i, j), probe = _probe(case, flat)
            dx = checks.call_backward(impl, probe)["dx"]
            cells = [(a, e) for a, e in _window_cells(case, i, j) if 0 <= a < h and 0 <= e < w]
            share = 1.0 / divisors[i, j]
            got = _nonzero(dx, n, c)
            others = np.count_nonzero(dx) - len(got)
            ok = (
                others == 0
                and set(got) == set(cells)
                and all(
                    abs(v - share) <= 4 * tolerance.unit_roundoff(case.dtype) * share for v in got.values()
                )
            )
            checks.ensure(
                ok,
                f"avg_pool2d_backward spread window (n={n}, c={c}, oh={i}, ow={j})'s gradient 1 as {got} "
                f"(cell: value){' and to other channels' if others else ''}; it should be 1/{divisors[i, j]} = "
                f"{share:.6g} on each of the window's {len(cells)} real cells {cells} (divisor rule: "
                f"count_include_pad={case.params.count_include_pad}, ceil_mode={case.params.ceil_mode}) "
                f"[{case.describe()}]\n" + _probe_repro(case, impl, (n, c, i, j)),
                case=probe,
                impl=impl,
                output="dx",
            )
        _assert_conserved(impl, case, caps, np.broadcast_to(real / divisors, case.dy.shape))

    check()

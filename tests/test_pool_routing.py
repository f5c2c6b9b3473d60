"""Properties 9 and 10: where pooling sends each window's gradient.

Each example probes a few windows with a one-hot ``dy`` (1 at that window,
0 elsewhere), so the resulting ``dx`` shows exactly where that one window's
gradient went:

- max-pool: to the window's maxima by the declared tie rule (``first`` in
  row-major window order by contract; ``last``; ``split`` evenly; ``any``
  convex combination; ``all``), and nowhere else. Another valid rule is a
  convention and every-max routing a kink defect (``spec.contracts``): failures
  under the library contract, a note and a warning under the course one;
- avg-pool: ``1 / divisor`` on every real cell of the window (PyTorch's divisor
  rule, ``spec.shapes.avg_divisor``), and nowhere else.

With the example's full ``dy``, the total gradient is conserved: each window
hands on exactly its ``dy`` (max) or ``dy * real cells / divisor`` (avg).
"""

import numpy as np
import pytest
from hypothesis import given

from convcheck.spec import OPERATIONS, contracts, pool, shapes, tolerance
from convcheck.spec.case import with_inputs

from . import checks
from .strategies import cases, probes
from .values import pool_windows


def _window_cells(case, out):
    """Input coordinates of each tap of the output window at spatial index ``out``, in row-major
    window order, in or out of the input."""
    p = case.params
    starts = [o * s - p.pads(a)[0] for a, (o, s) in enumerate(zip(out, p.stride, strict=True))]
    return [
        tuple(st + t * d for st, t, d in zip(starts, tap, p.dilation, strict=True))
        for tap in np.ndindex(*p.kernel_size)
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
    """A one-hot ``dy`` at flat index ``flat``: ``((n, c, out), case)`` with ``out`` the spatial index."""
    index = tuple(int(i) for i in np.unravel_index(flat % case.dy.size, case.dy.shape))
    dy = np.zeros_like(case.dy)
    dy[index] = 1
    return (index[0], index[1], index[2:]), with_inputs(case, dy=dy)


def _nonzero(dx, n, c):
    return {tuple(int(i) for i in cell): float(dx[(n, c, *cell)]) for cell in np.argwhere(dx[n, c])}


def _inside(cell, spatial):
    return all(0 <= i < size for i, size in zip(cell, spatial, strict=True))


@pytest.mark.conformance("max_routing")
def test_max_pool_routing(impl, caps, contract, op_name, record):
    op = OPERATIONS[op_name]
    checks.require(impl, op.backward)
    rule = caps.value(op, "ties")
    pad_value = caps.value(op, "pad_value")
    padding_competes = pad_value != -np.inf  # a declared finite pad value: padded cells may win

    @given(case=cases(op_name, caps, families_=("ties", "distinct", "zeros", "normal")), picks=probes)
    @checks.shrinks_further
    def check(case, picks):
        record.case(case)
        windows = pool_windows(case.x.astype(np.float64), case.params, pad_value)
        every_max = rule == "all"  # each tied maximum the whole gradient: nothing is conserved
        # a padded winner's share is dropped: nothing is conserved where the padding can win
        padded_won = padding_competes and (any(case.params.padding) or bool(case.params.ceil_mode))
        for flat in picks:
            (n, c, out), probe = _probe(case, flat)
            dx = checks.call_backward(impl, probe)["dx"]
            values = windows[(n, c, *out)]
            cells = _window_cells(case, out)
            tied = [cells[t] for t in np.flatnonzero(values == values.max())]
            if padding_competes and not all(_inside(cell, case.x.shape[2:]) for cell in tied):
                continue  # a padded maximum's share is dropped: the oracle checks cover it
            got = _nonzero(dx, n, c)
            others = np.count_nonzero(dx) - len(got)
            found = (
                None
                if others
                else contracts.window_rule(got, tied, 4 * tolerance.unit_roundoff(case.dtype), rule)
            )
            verdict = None if found is None else contracts.tie_rule_verdict(op.name, found, rule)
            message = (
                f"{op.backward} routed window (n={n}, c={c}, out={out})'s gradient 1 to "
                f"{got} (cell: value){' and to other channels' if others else ''}; the window's maximum "
                f"{float(values.max())!r} is at cells {tied}, so under the {rule!r} tie rule it should go to "
                f"{_expected_routing(rule, tied)} [{case.describe()}]\n"
                + _probe_repro(case, impl, (n, c, *out))
            )
            if found is not None and verdict is not None:  # a convention or a kink defect (spec.contracts)
                checks.at_kink(probe, impl, verdict, contract, message, output="dx")
                every_max = every_max or found == "all"
                continue
            checks.ensure(found is not None, message, case=probe, impl=impl, output="dx")
        if not every_max and case.notes.get("ties"):  # every-max routing hides in a tied window not probed
            why = (
                f"{op.backward}: total gradient per channel not conserved in a tied case [{case.describe()}]"
            )
            every_max = checks.excused_at_kink(case, impl, caps, contract, why)
        if not every_max and not padded_won:
            _assert_conserved(impl, case, caps, np.ones(case.dy.shape))

    check()


def _expected_routing(rule, tied):
    """Where the declared tie ``rule`` sends a unit window gradient over the ``tied`` maxima (in order)."""
    if rule == "split":
        return {cell: 1.0 / len(tied) for cell in tied}
    if rule == "all":
        return dict.fromkeys(tied, 1.0)
    if rule == "any":
        return f"shares >= 0 summing to 1 over {tied}"
    return {tied[0] if rule == "first" else tied[-1]: 1.0}


def _assert_conserved(impl, case, caps, share):
    """Sum of dx per (n, c) equals the sum over windows of dy times each window's ``share``."""
    __tracebackhide__ = True
    dx = checks.call_backward(impl, case)["dx"].astype(np.float64)
    dy = case.dy.astype(np.float64)
    spatial = tuple(range(2, dy.ndim))
    got = dx.sum(axis=spatial)
    expected = (dy * share).sum(axis=spatial)
    scale = (np.abs(dy) * share).sum(axis=spatial)
    comp = checks.within(case, "dx", got, expected, scale, caps, factor=2.0)
    checks.assert_matches(
        case, f"{case.op.backward}: total gradient per channel not conserved:", comp, got, expected, impl
    )


def _avg_divisors(case):
    """Divisors and real-cell counts of every avg-pool window (shape ``out``), from the spec's
    per-axis rule: the N-d divisor is the product of the axes' divisors."""
    p = case.params
    out = pool.output_spatial(case.x.shape, p)
    axes = list(enumerate(zip(out, case.x.shape[2:], p.kernel_size, p.stride, strict=True)))
    div = [
        [shapes.avg_divisor(o, n, k, s, *p.pads(a), p.count_include_pad) for o in range(m)]
        for a, (m, n, k, s) in axes
    ]
    real = [[shapes.avg_divisor(o, n, k, s, *p.pads(a), False) for o in range(m)] for a, (m, n, k, s) in axes]
    return _outer(div), _outer(real)


def _outer(per_axis):
    grid = np.ones(())
    for values in per_axis:
        grid = np.multiply.outer(grid, np.asarray(values, dtype=np.float64))
    return grid


@pytest.mark.conformance("avg_spreading")
def test_avg_pool_spreading(impl, caps, op_name, record):
    op = OPERATIONS[op_name]
    checks.require(impl, op.backward)

    @given(case=cases(op_name, caps), picks=probes)
    @checks.shrinks_further
    def check(case, picks):
        record.case(case)
        divisors, real = _avg_divisors(case)
        spatial = case.x.shape[2:]
        for flat in picks:
            (n, c, out), probe = _probe(case, flat)
            dx = checks.call_backward(impl, probe)["dx"]
            cells = [cell for cell in _window_cells(case, out) if _inside(cell, spatial)]
            divisor = divisors[out]
            share = 1.0 / divisor
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
                f"{op.backward} spread window (n={n}, c={c}, out={out})'s gradient 1 as {got} "
                f"(cell: value){' and to other channels' if others else ''}; it should be 1/{divisor:g} = "
                f"{share:.6g} on each of the window's {len(cells)} real cells {cells} (divisor rule: "
                f"count_include_pad={case.params.count_include_pad}, ceil_mode={case.params.ceil_mode}) "
                f"[{case.describe()}]\n" + _probe_repro(case, impl, (n, c, *out)),
                case=probe,
                impl=impl,
                output="dx",
            )
        _assert_conserved(impl, case, caps, np.broadcast_to(real / divisors, case.dy.shape))

    check()

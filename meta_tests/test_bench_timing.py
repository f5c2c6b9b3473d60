"""Meta-tests of the benchmark's statistics and timing loop (with a fake clock, so they are exact)."""

from __future__ import annotations

import gc
import math
import statistics

import numpy as np
import pytest

from convcheck.bench import stats, timing


class FakeClock:
    """A clock that only moves when a fake workload says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def work(self, seconds: float):
        def fn() -> None:
            self.now += seconds

        return fn


# --------------------------------------------------------------------------- statistics


def test_quantiles_by_hand() -> None:
    s = [1.0, 2.0, 3.0, 4.0]
    assert stats.quantile(s, 0.0) == 1.0 and stats.quantile(s, 1.0) == 4.0
    assert stats.quantile(s, 0.5) == 2.5  # halfway between the middle two
    assert stats.quantile(s, 0.25) == 1.75  # p = 0.75 between s[0] and s[1]
    assert stats.quantile([7.0], 0.5) == 7.0


def _type7(s: list[float], q: float) -> float:
    """The definition in ``convcheck.bench.stats``: ``s[i] + (p - i) * (s[i+1] - s[i])``, ``p = q (n - 1)``."""
    p = q * (len(s) - 1)
    i = math.floor(p)
    return s[-1] if i + 1 >= len(s) else s[i] + (p - i) * (s[i + 1] - s[i])


@pytest.mark.parametrize(
    "samples",
    [
        [1.0, 2.0, 3.0, 4.0],
        [3.0, 1.0, 2.0],
        [5.0, 1.0, 3.0, 2.0, 4.0, 100.0],
        [0.5, 0.25, 8.0, 1.0, 2.0, 16.0, 4.0],
    ],
)
def test_quartiles_are_the_documented_definition_exactly(samples) -> None:
    """On samples whose interpolation rounds nothing, the quartiles equal the docstring's formula and
    ``statistics.quantiles(method="inclusive")`` bit for bit."""
    s = sorted(samples)
    ours = [stats.quantile(s, q) for q in (0.25, 0.5, 0.75)]
    assert ours == [_type7(s, q) for q in (0.25, 0.5, 0.75)]
    assert ours == statistics.quantiles(s, n=4, method="inclusive")


def test_quantiles_agree_with_the_definition_on_random_samples() -> None:
    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 10, 101):
        s = sorted(float(v) for v in rng.exponential(size=n))
        for q in (0.0, 0.25, 0.5, 0.75, 1.0):
            assert stats.quantile(s, q) == pytest.approx(_type7(s, q), rel=4e-16, abs=0)  # one rounding apart


def test_summarize() -> None:
    st = stats.summarize([5.0, 1.0, 3.0, 2.0, 4.0, 100.0], number=3)
    assert (st.runs, st.number, st.calls) == (6, 3, 18)
    assert (st.min, st.max, st.median) == (1.0, 100.0, 3.5)
    assert (st.q1, st.q3, st.iqr) == (2.25, 4.75, 2.5)  # the outlier moves neither
    assert st.mean == pytest.approx(115 / 6)
    d = st.to_dict()
    assert d["iqr"] == 2.5 and stats.Stats.from_dict(d) == st


def test_statistics_refuse_nothing() -> None:
    with pytest.raises(ValueError, match="zero samples"):
        stats.summarize([])
    with pytest.raises(ValueError, match=r"q=1.5 must lie in \[0, 1\]"):
        stats.quantile([1.0], 1.5)


def test_loglog_slope() -> None:
    xs = [1e3, 1e4, 1e5, 1e6]
    slope, intercept = stats.loglog_slope(xs, [2e-9 * x**0.8 for x in xs])
    assert slope == pytest.approx(0.8) and intercept == pytest.approx(math.log10(2e-9))
    with pytest.raises(ValueError, match="two distinct positive x"):
        stats.loglog_slope([5.0, 5.0], [1.0, 2.0])


# --------------------------------------------------------------------------- timing loop


POLICY = timing.Policy(min_time=0.1, min_runs=3, max_runs=1000, warmup_time=0.02, block_time=1e-3)


def test_slow_calls_one_per_block_until_min_time() -> None:
    clock = FakeClock()
    st = timing.measure(clock.work(0.01), policy=POLICY, clock=clock)
    assert (st.number, st.runs) == (1, 10)  # ceil(0.1 s / 0.01 s)
    assert st.median == pytest.approx(0.01) and st.iqr == pytest.approx(0.0)


def test_fast_calls_are_grouped_into_blocks() -> None:
    clock = FakeClock()  # powers of two keep the fake clock's sums exact
    policy = timing.Policy(min_time=2**-3, min_runs=3, warmup_time=2**-6, block_time=2**-10)
    st = timing.measure(clock.work(2**-14), policy=policy, clock=clock)
    assert (st.number, st.runs) == (16, 128)  # 16 calls make a block; 128 blocks make min_time
    assert st.median == 2**-14


def test_min_and_max_runs_bound_the_count() -> None:
    clock = FakeClock()
    assert timing.measure(clock.work(1.0), policy=POLICY, clock=clock).runs == 3
    capped = timing.Policy(min_time=10.0, min_runs=3, max_runs=7, warmup_time=0.0, block_time=1e-3)
    assert timing.measure(clock.work(0.01), policy=capped, clock=clock).runs == 7


def test_warmup_calls_are_not_measured() -> None:
    clock = FakeClock()
    durations = iter([5.0, 5.0] + [0.01] * 10_000)  # two slow first calls (warm-up), then steady

    def fn() -> None:
        clock.now += next(durations)

    policy = timing.Policy(min_time=0.1, min_runs=3, warmup_time=6.0, block_time=1e-3)
    st = timing.measure(fn, policy=policy, clock=clock)
    assert st.max == pytest.approx(0.01) and st.number == 1


def test_interleaved_targets_alternate_blocks() -> None:
    clock = FakeClock()
    order: list[str] = []

    def target(name: str, seconds: float) -> timing.Target:
        def fn() -> None:
            order.append(name)
            clock.now += seconds

        return timing.Target(fn)

    policy = timing.Policy(min_time=0.05, min_runs=3, warmup_time=0.0, block_time=1e-3)
    result = timing.measure_interleaved({"a": target("a", 0.01), "b": target("b", 0.025)}, policy, clock)
    assert (result["a"].runs, result["b"].runs) == (5, 3)
    measured = order[2:]  # one calibration call each first
    assert measured == ["a", "b", "a", "b", "a", "b", "a", "a"]


def test_gc_is_off_while_timing_and_restored() -> None:
    seen: list[bool] = []
    clock = FakeClock()

    def fn() -> None:
        seen.append(gc.isenabled())
        clock.now += 0.01

    assert gc.isenabled()
    timing.measure(fn, policy=POLICY, clock=clock)
    assert seen and not any(seen)
    assert gc.isenabled()
    gc.disable()
    try:
        timing.measure(fn, policy=POLICY, clock=clock)
        assert not gc.isenabled()  # a caller's choice is left alone
    finally:
        gc.enable()


def test_synchronize_brackets_every_block() -> None:
    log: list[str] = []
    clock = FakeClock()

    def read() -> float:
        log.append("clock")
        return clock()

    block = timing.time_block(
        timing.Target(lambda: log.append("call"), lambda: log.append("sync")), number=2, clock=read
    )
    assert block == 0.0
    assert log == ["sync", "clock", "call", "call", "sync", "clock"]


def test_policy_is_validated() -> None:
    with pytest.raises(ValueError, match="min_runs=0"):
        timing.Policy(min_runs=0)
    with pytest.raises(ValueError, match="block_time=0"):
        timing.Policy(block_time=0)

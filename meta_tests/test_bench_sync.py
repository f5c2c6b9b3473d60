"""Meta-tests of the synchronisation hook, with a fake accelerator so that CPU-only CI covers the path.

The fake device behaves like a CUDA stream: a call queues its work on a
worker thread and returns at once with an output array the worker fills in
``LATENCY`` seconds later; ``synchronize()`` waits until the queue is empty.
Without the hook the timing loop measures only the queueing (far too short)
and the correctness check reads unfilled arrays; with the hook declared in
``CONVCHECK_CAPABILITIES`` both are right.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from convcheck.bench import corpus, runner, timing
from convcheck.impls import registry
from convcheck.spec import CapabilityError, parse_capabilities

LATENCY = 0.03

FAKE_DEVICE = textwrap.dedent(
    '''
    """A pretend accelerator: conv2d computed later on a worker thread."""
    import queue
    import threading
    import time

    import numpy as np
    from convcheck.impls import numpy_reference as ref
    from convcheck.spec import conv
    from convcheck.spec.params import Conv2dParams

    LATENCY = {latency}


    class Device:
        def __init__(self):
            self.jobs = queue.Queue()
            threading.Thread(target=self._work, daemon=True).start()

        def _work(self):
            while True:
                outputs, compute = self.jobs.get()
                time.sleep(LATENCY)
                for out, value in zip(outputs, compute()):
                    if out is not None:
                        out[...] = value
                self.jobs.task_done()

        def submit(self, outputs, compute):
            self.jobs.put((outputs, compute))

        def synchronize(self):
            self.jobs.join()


    DEVICE = Device()


    def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
        x, w, b = (None if a is None else np.array(a) for a in (x, w, b))
        kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        y = np.zeros(conv.output_shape(x.shape, w.shape, Conv2dParams(**kw)), x.dtype)
        DEVICE.submit([y], lambda: [ref.conv2d_forward(x, w, b, **kw)])
        return y


    def conv2d_backward(dy, x, w, b, *, stride, padding, dilation, groups):
        dy, x, w, b = (None if a is None else np.array(a) for a in (dy, x, w, b))
        kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        out = [np.zeros_like(x), np.zeros_like(w), None if b is None else np.zeros_like(b)]
        DEVICE.submit(out, lambda: ref.conv2d_backward(dy, x, w, b, **kw))
        return tuple(out)


    CONVCHECK_CAPABILITIES = {declaration}
    '''
)

NO_WAIT = timing.Policy(min_time=0.0, min_runs=3, max_runs=3, warmup_time=0.0, block_time=1e-6)
"""One call per block, three blocks: few queued jobs, so the device drains quickly."""


def _load(tmp_path: Path, name: str, declaration: str) -> registry.Implementation:
    path = tmp_path / f"{name}.py"
    path.write_text(FAKE_DEVICE.format(latency=LATENCY, declaration=declaration))
    return registry.load(str(path))


@pytest.fixture(scope="module")
def devices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, registry.Implementation]:
    tmp = tmp_path_factory.mktemp("fake_device")
    return {
        "with_hook": _load(tmp, "fake_synced", '{"synchronize": DEVICE.synchronize}'),
        "without_hook": _load(tmp, "fake_unsynced", "{}"),
    }


def _toy_conv() -> runner.Planned:
    entry = corpus.load("course_toy").entries[0]
    return runner.Planned(entry, 2, 0)


def test_declared_hook_is_on_the_capabilities(devices) -> None:
    caps = devices["with_hook"].capabilities
    assert caps.synchronize is not None and caps.synchronize.__name__ == "synchronize"
    assert caps.to_dict()["synchronize"].endswith("Device.synchronize")
    assert caps.unsupported() == []
    assert devices["without_hook"].capabilities.synchronize is None


def test_timing_without_the_hook_is_too_short(devices) -> None:
    impl = devices["without_hook"]
    case = runner.build_case(_toy_conv().entry, 2, runner.Settings())
    fn = impl.functions["conv2d_forward"]
    try:
        st = timing.measure(lambda: fn(*case.forward_args(), **case.kwargs()), policy=NO_WAIT)
    finally:
        impl_device_sync(impl)
    assert st.median < LATENCY / 5


def impl_device_sync(impl: registry.Implementation) -> None:
    """Drain the fake device of an implementation loaded without the hook (its module's DEVICE)."""
    import sys

    module = next(
        m
        for m in sys.modules.values()
        if getattr(m, "conv2d_forward", None) is impl.functions["conv2d_forward"]
    )
    module.DEVICE.synchronize()


def test_timing_with_the_hook_waits_for_the_device(devices) -> None:
    impl = devices["with_hook"]
    case = runner.build_case(_toy_conv().entry, 2, runner.Settings())
    fn = impl.functions["conv2d_forward"]
    st = timing.measure(
        lambda: fn(*case.forward_args(), **case.kwargs()), impl.capabilities.synchronize, NO_WAIT
    )
    assert st.min >= LATENCY


def test_runner_checks_and_times_through_the_hook(devices) -> None:
    """With the hook the results are read after the device is done (pass) and every call is billed."""
    result = runner.run_entry(
        devices["with_hook"], _toy_conv(), runner.Settings(policy=NO_WAIT), torch_threads=1
    )
    assert [f.status for f in result.functions] == ["ok", "ok"]
    assert all(f.impl is not None and f.impl.min >= LATENCY for f in result.functions)
    assert all(f.ratio is not None for f in result.functions)


def test_runner_without_the_hook_reads_unfinished_results(devices) -> None:
    """Without the hook the check sees the arrays before the device filled them: wrong, and not timed."""
    impl = devices["without_hook"]
    try:
        result = runner.run_entry(impl, _toy_conv(), runner.Settings(policy=NO_WAIT), torch_threads=1)
    finally:
        impl_device_sync(impl)
    assert [f.status for f in result.functions] == ["wrong", "wrong"]
    assert all(f.impl is None for f in result.functions)


def test_hook_as_dotted_path() -> None:
    caps = parse_capabilities({"synchronize": "torch.cuda.synchronize"})
    import torch

    assert caps.synchronize is torch.cuda.synchronize
    assert caps.to_dict()["synchronize"] == "torch.cuda.synchronize"
    assert caps.unsupported() == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "no_such_module.sync",
            "CONVCHECK_CAPABILITIES['synchronize']='no_such_module.sync' cannot be resolved: no module "
            "'no_such_module' can be imported; give a callable or a dotted path such as 'torch.cuda.synchronize'",
        ),
        (
            "torch.cuda.no_such_function",
            "CONVCHECK_CAPABILITIES['synchronize']='torch.cuda.no_such_function' cannot be resolved: "
            "torch.cuda has no attribute 'no_such_function'",
        ),
        (
            "math.pi",
            "CONVCHECK_CAPABILITIES['synchronize']='math.pi' names a float, not a function to call",
        ),
        (
            42,
            "CONVCHECK_CAPABILITIES['synchronize']=42 must be a callable or a dotted path such as "
            "'torch.cuda.synchronize'",
        ),
    ],
)
def test_bad_hook_is_refused_at_load(value: object, message: str) -> None:
    with pytest.raises(CapabilityError) as info:
        parse_capabilities({"synchronize": value})
    assert str(info.value) == message

"""Diagnosis: every shipped buggy implementation gets its own mistake named, and nothing else does.

End to end, one pytest session (two xdist workers, the derandomised ``ci``
profile) runs, for each buggy implementation of the 2-D core, the first check
that its ``EXPECTED_FAILURES`` names; the failure's diagnosis (carried to the
controller in the results) must be the module's ``DIAGNOSIS``. The buggy
implementations of the other operations are diagnosed directly on a case
built here where they fail (``DIRECT_CASES``: large logits for the unstable
losses, exact zeros for the ReLU kink, ...), in both dtypes. Catalogue
entries that no shipped implementation makes are tested on small "student"
implementations written here, and correct implementations must never get a
diagnosis.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.signal import convolve2d

from convcheck.diagnosis import diagnose, observe, reference
from convcheck.impls.buggy import BUGGY
from convcheck.impls.registry import from_namespace, load
from convcheck.oracles import numpy_pool, scipy_oracle
from convcheck.spec.ops import CORE
from convcheck.spec.params import AvgPool2dParams, Conv2dParams, Conv3dParams, MaxPool2dParams, NoParams
from convcheck.tests.values import make_case

SUITE = Path(__file__).resolve().parents[1] / "tests"
TEST_OF_PROPERTY = {
    "forward": "test_forward",
    "backward": "test_backward",
    "adjoint": "test_adjoint",
    "finite_differences": "test_finite_differences",
    "batch_independence": "test_batch_independence",
    "bias_gradient": "test_bias_gradient",
    "max_routing": "test_max_pool_routing",
    "avg_spreading": "test_avg_pool_spreading",
    "hygiene": "test_hygiene",
    "shapes_dtypes": "test_shapes_dtypes",
    "linearity": "test_linearity",
    "sweep": "test_sweep",
    "nonfinite": "test_nonfinite",
}


def _module(bug: str):
    return importlib.import_module(f"convcheck.impls.buggy.{bug}")


END_TO_END = tuple(
    b
    for b in BUGGY
    if _module(b).EXPECTED_FAILURES[0].split(":")[0] in CORE and _module(b).DIAGNOSIS is not None
)
"""The buggy implementations of the 2-D core, diagnosed on the suite's own shrunk failures."""
RAISING = tuple(b for b in BUGGY if _module(b).DIAGNOSIS is None)
"""Buggy implementations that raise rather than return a wrong value: no mistake to name."""


def _selection() -> str:
    """A ``-k`` expression: each buggy implementation with the first check it must fail (both oracle
    comparisons of it: they draw different cases, and either may be the one that meets the bug)."""
    parts = []
    for bug in END_TO_END:
        op, prop = _module(bug).EXPECTED_FAILURES[0].split(":")
        parts.append(f"({bug} and {TEST_OF_PROPERTY[prop]} and {op})")
    return " or ".join(parts)


@pytest.fixture(scope="module")
def suite_results(tmp_path_factory) -> list[dict]:
    """Results of one session checking every buggy implementation on its first expected failure."""
    results = tmp_path_factory.mktemp("diagnosis") / "results.jsonl"
    cmd = [
        sys.executable, "-m", "pytest", str(SUITE), "-p", "convcheck.pytest_plugin", "-p", "no:cacheprovider",
        "-q", "--no-header", "--rootdir", str(SUITE), "-c", os.devnull,
        "--impl", ",".join(f"buggy.{b}" for b in END_TO_END), "-k", _selection(), "-n", "2",
        "--convcheck-profile", "ci", "--convcheck-results", str(results),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
    return [json.loads(line) for line in results.read_text().splitlines() if line]


@pytest.mark.parametrize("bug", END_TO_END)
def test_buggy_implementation_gets_its_diagnosis(bug, suite_results):
    expected = _module(bug).DIAGNOSIS
    failed = [r for r in suite_results if r["impl"] == f"buggy.{bug}" and r["status"] in ("failed", "error")]
    assert failed, f"buggy.{bug}: its first expected failure did not fail"
    slugs = [((r.get("failure") or {}).get("diagnosis") or {}).get("slug") for r in failed]
    assert expected in slugs, f"buggy.{bug}: diagnosed {slugs}, expected {expected!r}"
    message = next(r["message"] for r, s in zip(failed, slugs, strict=True) if s == expected)
    assert f"likely cause: {expected}: " in message
    # A plant with coexisting mistakes names the others too, ranked after the first.
    causes = next(
        r["failure"]["diagnosis"]["causes"] for r, s in zip(failed, slugs, strict=True) if s == expected
    )
    named = [c["slug"] for c in causes]
    for also in getattr(_module(bug), "ALSO_DIAGNOSED", ()):
        assert also in named[1:], f"buggy.{bug}: {also!r} not named after {expected!r}: {named}"


# --------------------------------------------------------------------------- the other operations

DIRECT_CASES = {
    "conv3d_dx_depth_not_flipped": (
        "conv3d",
        Conv3dParams(stride=(1, 2, 1), padding=(1, 0, 0, 1, 1, 1)),
        {"x": (2, 2, 4, 5, 4), "w": (2, 2, 2, 2, 3), "b": (2,)},
        "normal",
        "dx",
    ),
    "relu_derivative_at_zero": ("relu", NoParams(), {"x": (2, 3, 4)}, "exact", "dx"),
    "tanh_backward_from_input": ("tanh", NoParams(), {"x": (2, 3, 4)}, "normal", "dx"),
    "linear_dw_batch_averaged": ("linear", NoParams(), {"x": (3, 4), "w": (2, 4), "b": (2,)}, "normal", "dw"),
    "flatten_wrong_order": ("flatten", NoParams(), {"x": (2, 3, 2, 2)}, "distinct", "y"),
    "softmax_grad_missing_batch_mean": (
        "softmax_cross_entropy",
        NoParams(),
        {"z": (3, 5), "labels": (3,)},
        "normal",
        "dz",
    ),
    "softmax_unstable_logsumexp": (
        "softmax_cross_entropy",
        NoParams(),
        {"z": (3, 5), "labels": (3,)},
        "large",
        "loss",
    ),
    "sigmoid_bce_unstable": (
        "sigmoid_binary_cross_entropy",
        NoParams(),
        {"z": (4, 3), "y": (4, 3)},
        "large",
        "loss",
    ),
}
"""Buggy implementations outside the 2-D core: ``(op, params, shapes, values family, failing output)``
of a case where each fails (the ``large`` family's logits overflow a naive log-sum-exp)."""


def test_every_buggy_implementation_is_diagnosed_somewhere():
    assert sorted(BUGGY) == sorted((*END_TO_END, *DIRECT_CASES, *RAISING))


def _direct_case(bug: str, dtype: str, layout: str = "contiguous"):
    op, params, shapes, family, output = DIRECT_CASES[bug]
    return make_case(op, params, shapes, dtype, family, seed=3, layout=layout), output


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bug", list(DIRECT_CASES))
def test_buggy_implementation_gets_its_diagnosis_on_a_failing_case(bug, dtype):
    impl = load(f"buggy.{bug}")
    case, output = _direct_case(bug, dtype)
    ref = reference(case, {})
    with np.errstate(all="ignore"):  # the unstable losses overflow on purpose
        got = observe(impl, case).outputs[output]
        right = ref.agree(output, got, ref.expected[output], ref.abs_sum[output])
    assert not right, f"buggy.{bug} is right on {case}"
    expected = _module(bug).DIAGNOSIS
    for failing in (output, None):  # as a check comparing that output reports it, and as any other check
        d = diagnose(impl, case, impl.capabilities, failing)
        assert d.slug == expected, f"buggy.{bug} ({dtype}, output {failing}): {d.line()}"
        assert d.line().startswith(f"likely cause: {expected}: ")


def test_a_mistake_hidden_by_a_batch_of_one_is_named_on_the_batch_repeated():
    """``loss_batch_mean`` shrinks to N = 1, where a dz missing its 1/N is right: the doubled batch shows it."""
    impl = load("buggy.softmax_grad_missing_batch_mean")
    case = make_case("softmax_cross_entropy", NoParams(), {"z": (1, 3), "labels": (1,)}, "float32", seed=0)
    d = diagnose(impl, case, impl.capabilities, "dz")
    assert d.slug == "dz_missing_batch_mean", d.line()
    assert "batch repeated twice" in d.explanation


# --------------------------------------------------------------------------- student implementations


def _in_input_dtype(fn):
    """The oracle function ``fn`` returning the dtype of its first array (the oracle returns float64)."""

    def wrapped(*arrays, **kwargs):
        out = fn(*arrays, **kwargs)
        dtype = arrays[0].dtype
        if isinstance(out, tuple):
            return tuple(None if o is None else o.astype(dtype) for o in out)
        return out.astype(dtype)

    return wrapped


def _student(name: str, **functions) -> object:
    """An implementation from the functions given (the rest borrowed from the scipy oracle)."""
    names = ("conv2d_forward", "conv2d_backward", "max_pool2d_forward", "max_pool2d_backward")
    names += ("avg_pool2d_forward", "avg_pool2d_backward")
    ns = {f: _in_input_dtype(getattr(scipy_oracle, f)) for f in names}
    ns.update(functions)
    return from_namespace(SimpleNamespace(**ns), name, name)


def _dx_valid_backward(dy, x, w, b, *, stride, padding, dilation, groups):
    """dx as the 'valid' convolution of dy with the kernel (stride 1, one group)."""
    n, c_in = x.shape[:2]
    rows = [[sum(convolve2d(dy[i, co], w[co, ci], mode="valid") for co in range(w.shape[0])) for ci in range(c_in)]
            for i in range(n)]  # fmt: skip
    dx = np.array(rows, dtype=x.dtype)
    _, dw, db = scipy_oracle.conv2d_backward(
        dy, x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    return dx, dw.astype(x.dtype), None if db is None else db.astype(x.dtype)


def _hw_swapped_forward(x, w, b, *, stride, padding, dilation, groups):
    """The (h, w) hyper-parameters read the wrong way round."""
    t, bottom, l, r = padding
    y = scipy_oracle.conv2d_forward(
        x, w, b, stride=stride[::-1], padding=(l, r, t, bottom), dilation=dilation[::-1], groups=groups
    )
    return y.astype(x.dtype)


def _always_counting_pad(x, *, kernel_size, stride, padding, ceil_mode, count_include_pad):
    """count_include_pad ignored: padding always counted."""
    y = numpy_pool.avg_pool2d_forward(
        x,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        ceil_mode=ceil_mode,
        count_include_pad=True,
    )
    return y.astype(x.dtype)


def _ceil_max_pool(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    """The output size always rounded up."""
    y = numpy_pool.max_pool2d_forward(
        x, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=True
    )
    return y.astype(x.dtype)


def _floor_max_pool(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    """The output size always rounded down: ``ceil_mode`` ignored."""
    y = numpy_pool.max_pool2d_forward(
        x, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=False
    )
    return y.astype(x.dtype)


def _sigmoid_backward_from_input(dy, x):
    """sigmoid' written for the output, s(1 - s), evaluated at the input."""
    return dy * x * (1 - x)


def _bce_dz_not_averaged(z, y):
    """The binary cross-entropy's dz without the 1/z.size of the mean."""
    loss, dz = scipy_oracle.sigmoid_binary_cross_entropy(z, y)
    return np.asarray(loss, dtype=z.dtype), (dz * z.size).astype(z.dtype)


def _overflowing_loss(z, labels):
    """A loss evaluated as log(sum(exp(z))) - z_label next to a right, stable dz: no catalogue mistake."""
    _, dz = scipy_oracle.softmax_cross_entropy(z, labels)
    naive = np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(z)), labels])
    return np.asarray(naive, dtype=z.dtype), dz.astype(z.dtype)


def _off_by_one_forward(x, w, b, *, stride, padding, dilation, groups):
    """A mistake not in the catalogue: every output one too large."""
    y = scipy_oracle.conv2d_forward(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return (y + 1).astype(x.dtype)


STUDENT_CASES = [
    (
        "dx_valid_not_full",
        {"conv2d_backward": _dx_valid_backward},
        ("conv2d", Conv2dParams(), {"x": (1, 2, 7, 7), "w": (2, 2, 3, 3), "b": (2,)}),
        "dx",
    ),
    (
        "h_w_swapped",
        {"conv2d_forward": _hw_swapped_forward},
        (
            "conv2d",
            Conv2dParams(stride=(2, 1), padding=(1, 1, 0, 0)),
            {"x": (1, 1, 7, 7), "w": (1, 1, 3, 3), "b": None},
        ),
        "y",
    ),
    (
        "avgpool_count_include_pad_ignored",
        {"avg_pool2d_forward": _always_counting_pad},
        ("avg_pool2d", AvgPool2dParams((3, 3), (2, 2), (1, 1, 1, 1), False, False), {"x": (1, 2, 6, 6)}),
        "y",
    ),
    (
        "output_size_ceil_not_floor",
        {"max_pool2d_forward": _ceil_max_pool},
        ("max_pool2d", MaxPool2dParams((2, 2), (2, 2)), {"x": (1, 1, 7, 7)}),
        "y",
    ),
    (
        "pool_ceil_mode_ignored",
        {"max_pool2d_forward": _floor_max_pool},
        ("max_pool2d", MaxPool2dParams((2, 2), (2, 2), ceil_mode=True), {"x": (1, 1, 7, 5)}),
        "y",
    ),
    (
        "derivative_of_output_applied_to_input",
        {"sigmoid_backward": _sigmoid_backward_from_input},
        ("sigmoid", NoParams(), {"x": (2, 5)}),
        "dx",
    ),
    (
        "dz_missing_batch_mean",
        {"sigmoid_binary_cross_entropy": _bce_dz_not_averaged},
        ("sigmoid_binary_cross_entropy", NoParams(), {"z": (4,), "y": (4,)}),
        "dz",
    ),
]


@pytest.mark.parametrize(
    ("slug", "functions", "config", "output"), STUDENT_CASES, ids=[c[0] for c in STUDENT_CASES]
)
def test_catalogue_entry_names_a_student_mistake(slug, functions, config, output):
    impl = _student(slug, **functions)
    op, params, shapes = config
    case = make_case(op, params, shapes, "float32", "normal", seed=3)
    assert diagnose(impl, case, impl.capabilities, output).slug == slug


def test_an_overflow_outside_the_catalogue_is_named_as_a_behaviour():
    impl = _student("overflowing_loss", softmax_cross_entropy=_overflowing_loss)
    case = make_case(
        "softmax_cross_entropy", NoParams(), {"z": (3, 4), "labels": (3,)}, "float32", "large", seed=1
    )
    d = diagnose(impl, case, impl.capabilities, "loss")
    assert d.slug == "non_finite_output", d.line()
    assert "loss has 1 NaN or inf of 1" in d.explanation


def test_a_mistake_outside_the_catalogue_is_not_named():
    impl = _student("off_by_one", conv2d_forward=_off_by_one_forward)
    case = make_case(
        "conv2d", Conv2dParams(), {"x": (1, 1, 5, 5), "w": (1, 1, 3, 3), "b": None}, "float64", seed=1
    )
    d = diagnose(impl, case, impl.capabilities, "y")
    assert d.slug is None
    assert d.line().startswith("likely cause: no known mistake matches (") and "hypotheses tested" in d.line()


CORRECT_CASES = [
    (
        "conv2d",
        Conv2dParams((2, 1), (1, 0, 2, 1), (1, 2), 2),
        {"x": (2, 4, 7, 8), "w": (4, 2, 3, 2), "b": (4,)},
    ),
    ("max_pool2d", MaxPool2dParams((3, 3), (1, 2), (1, 0, 1, 1), (1, 1), True), {"x": (2, 2, 7, 8)}),
    ("avg_pool2d", AvgPool2dParams((3, 3), (2, 2), (1, 0, 1, 1), True, False), {"x": (2, 2, 7, 8)}),
]


@pytest.mark.parametrize("impl_name", ["numpy_reference", "numpy_fast"])
@pytest.mark.parametrize("config", CORRECT_CASES, ids=[c[0] for c in CORRECT_CASES])
@pytest.mark.parametrize("family", ["normal", "ties"])
def test_correct_implementations_get_no_diagnosis(impl_name, config, family):
    impl = load(impl_name)
    op, params, shapes = config
    case = make_case(op, params, shapes, "float32", family, seed=5, layout="fortran")
    assert diagnose(impl, case, impl.capabilities).slug is None


@pytest.mark.parametrize("impl_name", ["numpy_reference", "numpy_fast"])
@pytest.mark.parametrize("bug", list(DIRECT_CASES))
def test_correct_implementations_get_no_diagnosis_where_a_buggy_one_does(impl_name, bug):
    impl = load(impl_name)
    case, _ = _direct_case(bug, "float32", layout="fortran")
    assert diagnose(impl, case, impl.capabilities).slug is None

"""The strategies draw only valid cases, honour capabilities, and reach every edge the issue names."""

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from convcheck import oracles
from convcheck.spec import FULL, OPERATIONS, parse_capabilities
from convcheck.spec.ops import geometry_of
from convcheck.spec.shapes import effective_kernel
from convcheck.tests.strategies import cases
from convcheck.tests.values import LAYOUTS, fresh


@pytest.mark.parametrize("operation", list(OPERATIONS))
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_every_drawn_case_is_valid(operation, data):
    case = data.draw(cases(operation, FULL))
    case.op.check(case.shapes(), case.params)  # raises InvalidConfiguration otherwise
    if case.op.is_loss:
        assert case.dy is None
    else:
        assert case.dy.shape == case.output_shape()
    labels = case.inputs.get("labels")
    if labels is not None:
        assert labels.dtype.kind == "i" and labels.min() >= 0 and labels.max() < case.x.shape[1]
    if "y" in case.inputs:
        assert np.all((case.inputs["y"] >= 0) & (case.inputs["y"] <= 1))
    assert all(a is None or a.dtype == case.dtype for k, a in case.inputs.items() if k != "labels")


NARROW = parse_capabilities(
    {
        "dtypes": ["float64"],
        "conv2d": {"stride": "uniform", "padding": "uniform", "dilation": False, "groups": False},
        "max_pool2d": {"padding": "none", "dilation": False, "ceil_mode": False},
        "avg_pool2d": {"exclude_pad": False, "ceil_mode": False, "stride": "unit"},
        "conv3d": {"stride": "uniform", "padding": "symmetric", "dilation": False, "groups": False},
        "max_pool1d": {"padding": "none", "dilation": False},
        "sigmoid_binary_cross_entropy": {"soft_targets": False},
    }
)


@pytest.mark.parametrize("operation", list(OPERATIONS))
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_declared_capabilities_narrow_the_draws(operation, data):
    case = data.draw(cases(operation, NARROW))
    p = case.params
    assert case.dtype == "float64"
    for feature in OPERATIONS[operation].features:
        if feature.kind == "support" and feature.required is not None:
            assert NARROW.supports(operation, feature.name, feature.required(p)), (feature.name, p)
    if operation == "sigmoid_binary_cross_entropy":  # hard targets only: 0 or 1
        assert case.family != "soft" and set(np.unique(case.inputs["y"])) <= {0.0, 1.0}


@pytest.mark.parametrize("operation", ["conv2d", "max_pool2d"])
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_exact_family_keeps_every_partial_sum_exact(operation, data):
    """Integer data whose absolute-value sums stay below 2**24: any summation order is exact in float32."""
    case = data.draw(cases(operation, FULL, families_=("exact", "ties")))
    args = [None if a is None else np.abs(a) for a in case.forward_args()]
    assert np.all(oracles.call("scipy", case.op.forward, *args, **case.kwargs()) < 2**24)
    for a in [*case.inputs.values(), case.dy]:
        assert a is None or np.array_equal(a, np.round(a))


@settings(max_examples=50, deadline=None)
@given(case=cases("conv2d", FULL, layouts_=LAYOUTS))
def test_layouts_change_memory_not_values(case):
    for a in case.forward_args():
        if a is None:
            continue
        b = fresh(a, case.layout)
        assert np.array_equal(a, b) and not np.shares_memory(a, b)
        if case.layout != "contiguous" and a.ndim == 4 and min(a.shape[1:]) > 1:
            assert not b.flags.c_contiguous


EDGES = {
    "stride larger than the kernel": ("conv2d", lambda c: c.params.stride[0] > c.inputs["w"].shape[2]),
    "asymmetric padding": ("conv2d", lambda c: c.params.padding_kind == "asymmetric"),
    "dilation": ("conv2d", lambda c: max(c.params.dilation) > 1),
    "groups": ("conv2d", lambda c: c.params.groups > 1),
    "kernel as large as the padded input": (
        "conv2d",
        lambda c: (
            effective_kernel(c.inputs["w"].shape[2], c.params.dilation[0])
            == c.x.shape[2] + sum(c.params.pads_h)
        ),
    ),
    "non-square kernel": ("conv2d", lambda c: c.inputs["w"].shape[2] != c.inputs["w"].shape[3]),
    "no bias": ("conv2d", lambda c: c.inputs["b"] is None),
    "batch of three": ("conv2d", lambda c: c.x.shape[0] == 3),
    "ceil_mode": ("max_pool2d", lambda c: c.params.ceil_mode),
    "max-pool ties": ("max_pool2d", lambda c: c.notes["ties"]),
    "max-pool dilation": ("max_pool2d", lambda c: max(c.params.dilation) > 1),
    "count_include_pad=False with padding": (
        "avg_pool2d",
        lambda c: not c.params.count_include_pad and any(c.params.padding),
    ),
    "avg ceil_mode overhang": (
        "avg_pool2d",
        lambda c: c.params.ceil_mode and c.params.padding_kind != "none",
    ),
    "float32": ("avg_pool2d", lambda c: c.dtype == "float32"),
}


@pytest.mark.parametrize("edge", list(EDGES))
def test_strategies_reach(edge):
    operation, condition = EDGES[edge]
    find(cases(operation, FULL), condition, settings=settings(max_examples=2000, database=None))


WINDOWED = [name for name, op in OPERATIONS.items() if op.ndim]
EXACT = parse_capabilities({name: {"geometry": "exact"} for name in WINDOWED})


@pytest.mark.parametrize("operation", WINDOWED)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_exact_geometry_draws_only_tiled_inputs(operation, data):
    """Under ``geometry = "exact"`` every spatial axis is tiled exactly by the windows (the spec's
    rule, ``geometry_of``), and the draws still reach strides above 1."""
    case = data.draw(cases(operation, EXACT))
    assert geometry_of(case.op, case.shapes(), case.params) == "exact", case.describe()


@pytest.mark.parametrize("operation", ["conv2d", "max_pool2d"])
def test_exact_geometry_still_draws_strides_that_skip_cells(operation):
    """Tiled inputs with stride 2 or more exist in the draws (the declaration narrows, not empties)."""
    find(cases(operation, EXACT), lambda c: min(c.params.stride) >= 2 and min(c.x.shape[2:]) >= 4)


@pytest.mark.parametrize("operation", ["conv2d", "max_pool2d"])
def test_full_geometry_draws_inputs_the_windows_do_not_tile(operation):
    """Without the declaration the draws include strides that leave cells unread."""
    find(cases(operation, FULL), lambda c: geometry_of(c.op, c.shapes(), c.params) == "any")

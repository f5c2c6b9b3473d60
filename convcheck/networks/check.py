"""Check one implementation on one spec network in one dtype, against PyTorch float64 autograd."""

from __future__ import annotations

import time
from dataclasses import replace

from ..impls.registry import Implementation
from ..spec import Capabilities
from ..spec.networks import NETWORKS, Network
from . import compare, localise
from .build import (
    Batch,
    Weights,
    cast_batch,
    cast_weights,
    init_weights,
    kink_inputs,
    make_batch,
    missing_functions,
    unsupported_features,
)
from .result import NetworkResult, Row, Step
from .run import CallProblem, Trace, backward, forward, sgd_step
from .tolerance import chain_length, overridden_bound

SEED = 0
BATCH = 4
"""Four samples: more than one, so a batch mean missing or applied twice shows, and small enough to be quick."""
LR = 0.1
"""The SGD step: large enough that the loss visibly moves, small enough that it goes down."""


def check_network(
    impl: Implementation,
    network: Network | str,
    *,
    dtype: str = "float64",
    caps: Capabilities | None = None,
    seed: int = SEED,
    batch: int = BATCH,
    lr: float = LR,
    weights: Weights | None = None,
    data: Batch | None = None,
    kink: bool = False,
) -> NetworkResult:
    """Run ``network`` with ``impl``'s layer functions in ``dtype`` and compare it with PyTorch.

    Compared: every layer's output, the loss, ``dz``, every gradient each layer
    passes down, every ``dw`` and ``db``, and one SGD step (the updated
    parameters, then every output and the loss recomputed on them). ``weights``
    and ``data`` replace the seeded ones (float64; they are rounded to
    ``dtype`` and PyTorch gets the rounded values); ``kink`` runs them through ``build.kink_inputs``
    (a zero sample, the first layer's bias zero: ReLUs at their kink, tied max-pool windows). The
    bound honours the user's tolerance overrides (``tolerance.overridden_bound``). The result is
    ``unsupported`` when ``impl`` lacks a function the network needs, or
    ``caps`` (default: its declaration) leaves out ``dtype`` or a feature a
    layer uses.
    """
    net = NETWORKS[network] if isinstance(network, str) else network
    caps = caps or impl.capabilities
    base = NetworkResult(net.name, dtype, "unsupported", impl.name, batch=batch, seed=seed)
    base.parameters = net.parameter_count()
    missing = missing_functions(impl, net)
    if missing:
        return replace(
            base, missing=tuple(missing), reason=f"{impl.name} does not provide {', '.join(missing)}"
        )
    if dtype not in caps.dtypes:
        return replace(
            base, reason=f"{net.name} in {dtype} needs {dtype}; declared dtypes are {list(caps.dtypes)}"
        )
    ruled_out = unsupported_features(caps, net)
    if ruled_out:
        return replace(base, reason="declared unsupported: " + "; ".join(ruled_out))
    started = time.perf_counter()
    weights = weights or init_weights(net, seed)
    data = data or make_batch(net, batch, seed)
    if kink:
        weights, data = kink_inputs(net, weights, data)
    data = cast_batch(data, dtype)
    limit, override = overridden_bound(net, data.size, dtype)
    rows, step = _compare(impl, net, cast_weights(weights, dtype), data, dtype, lr, caps, limit)
    bad = localise.first_bad(net, rows)
    return replace(
        base,
        status="passed" if bad is None else "failed",
        batch=data.size,
        chain=chain_length(net, data.size),
        bound=limit,
        inputs="kink" if kink else "seeded",
        override=override,
        loss=step.loss_before,
        loss_expected=step.loss_before_expected,
        rows=rows,
        first_bad=bad,
        step=step,
        seconds=time.perf_counter() - started,
    )


def _compare(
    impl: Implementation,
    net: Network,
    weights: Weights,
    data: Batch,
    dtype: str,
    lr: float,
    caps: Capabilities,
    limit: float,
) -> tuple[list[Row], Step]:
    """Both sides on the same (rounded) weights and batch: the rows in walk order, and the step's losses."""
    from ..oracles import torch_network  # torch loads when a check runs, not at collection

    conventions = {"conv2d": caps.value("conv2d", "convention")}
    ref_weights = cast_weights(weights, "float64")
    ref_data = cast_batch(data, "float64")
    ref = torch_network.forward_backward(net, ref_weights, ref_data.x, ref_data.targets, conventions)
    ref_grads = {label: {"d" + k: g for k, g in p.items()} for label, p in ref.param_grads.items()}
    ref_stepped = sgd_step(ref_weights, ref_grads, lr, "float64")
    ref_after = torch_network.loss_value(net, ref_stepped, ref_data.x, ref_data.targets, conventions)

    trace, after, stepped = Trace(), Trace(), None
    stage, problem = "forward", None
    try:
        forward(impl, net, weights, data, dtype, trace)
        stage = "backward"
        backward(impl, net, weights, dtype, trace)
        stage = "step"
        stepped = sgd_step(weights, trace.grads, lr, dtype)
        forward(impl, net, stepped, data, dtype, after)
    except CallProblem as e:
        problem = e

    m = compare.Measure(limit, data.size)
    rows = compare.forward_rows(m, net, trace, ref.activations, ref.loss)
    if stage != "forward":
        rows += compare.backward_rows(m, net, trace, ref)
    if stepped is not None:
        rows += compare.step_rows(m, net, stepped, ref_stepped, after, ref_after)
    if problem is not None:
        rows.append(compare.problem_row(problem, stage))
    step_ok = problem is None and all(r.ok for r in rows if r.stage == "step")
    return rows, Step(lr, trace.loss, ref.loss, after.loss, ref_after[0], step_ok)

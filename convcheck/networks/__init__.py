"""The whole-network check: an implementation's layer functions assembled into the course's networks.

For each spec network (``spec.networks.NETWORKS``: ``toy_cnn``, ``two_conv``,
``lenet5``) the checker builds deterministic weights and a batch from a seed,
runs the implementation's forward functions, loss, backward functions and one
SGD step (``run``), runs the same network built with ``torch.nn.functional``
in float64 (``convcheck.oracles.torch_network``), and compares every
activation, the loss, every gradient and the step (``compare``) under a
norm-wise bound derived from the network's reduction chain (``tolerance``).
When something disagrees it names the first layer to blame, walking forward,
then backward from the loss (``localise``).

    from convcheck.impls.registry import load
    from convcheck.networks import check_network

    result = check_network(load("numpy_reference"), "lenet5", dtype="float64")
    print(result.report())
"""

from __future__ import annotations

from .build import Batch, init_weights, make_batch
from .check import BATCH, LR, SEED, check_network
from .record import record_result
from .result import FirstBad, NetworkResult, Row, Step

__all__ = [
    "BATCH",
    "LR",
    "SEED",
    "Batch",
    "FirstBad",
    "NetworkResult",
    "Row",
    "Step",
    "check_network",
    "init_weights",
    "make_batch",
    "record_result",
]

"""Independent computations of the contract: the answers implementations are checked against.

Two oracles expose every contract function (``spec.ops.FUNCTION_NAMES``: conv,
max-pool and avg-pool in 1, 2 and 3-D, the activations, ``linear``, ``flatten``
and the two losses) with the contract's signatures: NumPy arrays in, positional;
hyper-parameters keyword-only; float64 arrays out (a loss as a 0-d array):

* ``scipy``: convolution by the textbook derivation on ``scipy.signal``
  (``scipy_oracle``), pooling by explicit NumPy sliding windows (``numpy_pool``),
  the other layers and the losses by the course's formulas in NumPy
  (``layers``). Covers every semantic option: both conv conventions, every
  max-pool tie rule, any max-pool padding value and both ceil rules.
* ``torch``: ``torch.nn.functional`` in float64 with autograd (``torch_oracle``).
  Covers both conventions, ``ties="first"``, the ``-inf`` max-pool padding and PyTorch's
  ceil rule only.

Semantic options (``convention`` for convolution, ``ties`` for max-pool
backward) are extra keyword arguments with the contract's value as default;
``call`` passes them only to the functions that take them. Oracle modules are
imported on first use, so importing this package does not import torch.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from convcheck.spec.ops import FUNCTION_NAMES, OPERATIONS

SEMANTIC_OPTIONS: frozenset[str] = frozenset(
    f.name for op in OPERATIONS.values() for f in op.features if f.kind == "semantics"
)
"""Names of the semantic options of every operation (``convention``, ``ties``)."""


@dataclass(frozen=True)
class Oracle:
    """An oracle: its name, the module holding its functions and what it covers.

    ``restricted`` maps a semantic option to the values this oracle computes;
    options not listed are covered for every value the spec allows.
    """

    name: str
    module_name: str
    restricted: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    @property
    def module(self) -> ModuleType:
        """The oracle's module, imported on first use."""
        return importlib.import_module(self.module_name)

    def function(self, function_name: str) -> Callable[..., Any]:
        """The contract function ``function_name`` (e.g. ``"conv2d_forward"``)."""
        if function_name not in FUNCTION_NAMES:
            raise KeyError(f"{function_name!r} is not a contract function; expected one of {FUNCTION_NAMES}")
        function: Callable[..., Any] = getattr(self.module, function_name)
        return function

    def covers(self, op_name: str, semantics: Mapping[str, Any] | None = None) -> bool:
        """Whether this oracle computes ``op_name`` under ``semantics``.

        Only ``op_name``'s semantic features are read from ``semantics``; an
        absent one means the contract's value.
        """
        semantics = semantics or {}
        for feature in OPERATIONS[op_name].features:
            if feature.kind != "semantics":
                continue
            value = semantics.get(feature.name, feature.full)
            if feature.name in self.restricted:
                if value not in self.restricted[feature.name]:
                    return False
            elif not feature.valid(value):
                return False
        return True


ORACLES: dict[str, Oracle] = {
    # Both compute ReLU'(0) = 0 only, and no oracle computes ties="any" (a set of answers): the checks
    # ask for the contract's answer there and judge the kinks themselves (spec.contracts.oracle_semantics).
    "scipy": Oracle(
        "scipy",
        "convcheck.oracles.scipy_oracle",
        restricted={"ties": ("first", "last", "split", "all"), "derivative_at_zero": (0,)},
    ),
    "torch": Oracle(
        "torch",
        "convcheck.oracles.torch_oracle",
        restricted={
            "ties": ("first",),
            "derivative_at_zero": (0,),
            "pad_value": (float("-inf"),),
            "ceil_rule": ("pytorch",),
        },
    ),
}


def call(
    oracle_name: str,
    function_name: str,
    *arrays: Any,
    semantics: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Call ``function_name`` of oracle ``oracle_name`` on ``arrays`` and hyper-parameters ``kwargs``.

    ``semantics`` (e.g. ``{"convention": "convolution", "ties": "split"}``) may
    hold the options of several operations; each function receives only those
    it takes. An oracle that does not compute a requested value raises
    ``NotImplementedError``; an unknown option name raises ``KeyError``.
    """
    semantics = dict(semantics or {})
    unknown = set(semantics) - SEMANTIC_OPTIONS
    if unknown:
        raise KeyError(
            f"unknown semantic options {sorted(unknown)}; expected some of {sorted(SEMANTIC_OPTIONS)}"
        )
    fn = ORACLES[oracle_name].function(function_name)
    accepted = _parameters(fn)
    options = {k: v for k, v in semantics.items() if k in accepted}
    return fn(*arrays, **kwargs, **options)


@functools.cache
def _parameters(fn: Callable[..., Any]) -> frozenset[str]:
    """The parameter names of an oracle function (read once: the sweep calls oracles thousands of times)."""
    return frozenset(inspect.signature(fn).parameters)


__all__ = ["ORACLES", "SEMANTIC_OPTIONS", "Oracle", "call"]

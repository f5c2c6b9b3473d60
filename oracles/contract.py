"""The contract's per-dimension functions, built from an oracle's N-d functions and the spec.

An oracle computes each family (convolution, max pooling, average pooling)
once, for any number of spatial axes, from a hyper-parameter record. The
contract names one function per dimension with keyword-only hyper-parameters
(``conv1d_forward(x, w, b, *, stride, padding, dilation, groups)``, ...).
``oracle_functions`` makes those functions for ``spec.ops.bind_contract``: each
builds its operation's record (``Operation.params_type``, validated by its
constructor) from the keyword arguments and calls the N-d function. They hold
no arithmetic, so both oracles use them and stay independent where it matters.

Every name in a made function's signature comes from the spec: the arrays from
``Operation.inputs`` (``dy`` first for a backward), the hyper-parameters from
the record's fields, and the semantic options (``convention``, ``ties``) from
the operation's semantic features that the N-d function takes, each defaulting
to the contract's value. ``convcheck.oracles.call`` reads the signature to
decide which semantic options a function takes.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from convcheck.spec.ops import NdFunctions, Operation, PerDimension

CROSS_CORRELATION = "cross-correlation"
"""The contract's convolution convention (the default of the ``convention`` option)."""

_KEYWORD = inspect.Parameter.KEYWORD_ONLY


def oracle_functions(how: Callable[[Operation], str]) -> PerDimension:
    """A ``per_dimension`` for ``spec.ops.bind_contract``: an operation's contract functions from N-d ones.

    The functions made for operation ``op`` read, and pickle, as ``op.forward``
    and ``op.backward`` of the module of the N-d forward, with a one-line
    docstring naming the dimension and ``how(op)``, what computes them.
    """

    def make(op: Operation, forward_nd: Callable[..., Any], backward_nd: Callable[..., Any]) -> NdFunctions:
        made = (
            _contract_function(op, forward_nd, op.inputs),
            _contract_function(op, backward_nd, ("dy", *op.inputs)),
        )
        for fn, name in zip(made, op.functions, strict=True):
            direction = name.rsplit("_", 1)[1]
            fn.__name__ = fn.__qualname__ = name
            fn.__module__ = forward_nd.__module__
            fn.__doc__ = f"``{op.family}_{direction}`` in {op.ndim}-D, by {how(op)}."
        return made

    return make


def _contract_function(op: Operation, nd: Callable[..., Any], arrays: tuple[str, ...]) -> Callable[..., Any]:
    """``nd(*arrays, record, **options)`` called with the contract's signature (see the module docstring).

    ``nd`` takes the arrays positionally, then the record, then by keyword the
    semantic options it computes (``convention``, ``ties``).
    """
    nd_signature = inspect.signature(nd)
    nd_parameters = list(nd_signature.parameters.values())
    semantic = {f.name: f.full for f in op.features if f.kind == "semantics"}
    options = [
        p.replace(kind=_KEYWORD, default=semantic[p.name]) for p in nd_parameters if p.name in semantic
    ]
    hints = typing.get_type_hints(op.params_type)
    signature = inspect.Signature(
        [
            *(p.replace(name=name) for p, name in zip(nd_parameters[: len(arrays)], arrays, strict=True)),
            *(inspect.Parameter(name, _KEYWORD, annotation=hints[name]) for name in op.hyperparameters),
            *options,
        ],
        return_annotation=nd_signature.return_annotation,
    )
    params_type, hyperparameters = op.params_type, op.hyperparameters

    def contract_function(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        given = bound.arguments
        record = params_type(**{name: given[name] for name in hyperparameters})
        return nd(*(given[name] for name in arrays), record, **{p.name: given[p.name] for p in options})

    # inspect.signature reads __signature__; mypy does not know the attribute on functions.
    contract_function.__dict__["__signature__"] = signature
    return contract_function

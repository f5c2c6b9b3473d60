"""The operation registry: every fact about an operation that the suite reads.

Strategies, oracles, properties, the plug-in loader and the CLI all iterate over
``OPERATIONS``; adding an operation means adding an entry here (and its oracle),
not editing the tests. Which properties check an operation is spec too
(``Operation.properties``): the pytest plug-in parametrizes each property over
the operations that list it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, fields
from typing import Any, Optional

from . import activation, conv, dense, dtypes, loss, pool
from .params import (
    PARAMS_TYPE_BY_NAME,
    AvgPoolParams,
    ConvParams,
    MaxPoolParams,
    NoParams,
    Params,
    WindowParams,
)
from .shapes import divides_exactly, required

Shape = tuple[int, ...]
Shapes = dict[str, Optional[Shape]]

LAYER_PROPERTIES = frozenset(
    {
        "forward",
        "backward",
        "shapes_dtypes",
        "linearity",
        "batch_independence",
        "finite_differences",
        "hygiene",
    }
)
"""Generic properties every layer (an operation with a forward and a backward) is checked by."""

LOSS_PROPERTIES = frozenset(
    {
        "loss_value",
        "loss_gradient",
        "loss_finite_differences",
        "loss_stability",
        "loss_batch_mean",
        "shapes_dtypes",
        "hygiene",
    }
)
"""Properties of the losses (one function returning the loss and its gradient)."""


@dataclass(frozen=True)
class Feature:
    """A part of the contract an implementation may declare unsupported or different.

    ``choices`` lists the values a capabilities declaration may give, the
    contract's own value first. ``kind`` is ``"support"`` when the choices are
    ordered levels (a case needing level ``i`` runs only if the declared level
    is ``>= i``) or ``"semantics"`` when a choice changes the expected answer
    (the oracles follow the declared value). ``required`` maps a case's
    parameters to the level (support) it needs; semantic features have none.
    ``accepts``, when given, replaces membership in ``choices`` as the test of a
    declared value (a number in a range, say; ``choices`` then lists examples).
    """

    name: str
    doc: str
    choices: tuple[Any, ...]
    kind: str = "support"
    required: Callable[[Any], Any] | None = None
    accepts: Callable[[Any], bool] | None = None

    def valid(self, value: Any) -> bool:
        """Whether a declaration may give ``value`` for this feature."""
        if self.accepts is not None:
            return self.accepts(value)
        return value in self.choices and type(value) is type(self.choices[0])

    @property
    def full(self) -> Any:
        """The value the full contract demands."""
        return self.choices[-1] if self.kind == "support" else self.choices[0]


@dataclass(frozen=True)
class Rules:
    """An operation's shape rules as three functions of ``(shapes, params)``."""

    check: Callable[[Shapes, Any], None]
    output_shape: Callable[[Shapes, Any], Shape]
    reduction_lengths: Callable[[Shapes, Any], dict[str, int]]


@dataclass(frozen=True)
class Operation:
    """One contract operation: its functions, arrays, hyper-parameters, rules and properties.

    ``family`` groups the operations that share definitions across dimensions
    (``conv``, ``max_pool``, ``avg_pool``) or names a standalone one (``relu``,
    ``linear``, ...); ``ndim`` is the number of spatial axes (0 for the rest).
    A *layer* has ``forward(*inputs) -> y`` and ``backward(dy, *inputs) -> grads``;
    a *loss* (``backward is None``) has one function ``forward(*inputs) -> (loss, dz)``.

    ``rules`` gives, from the input shapes and hyper-parameters, validity
    (``check`` raises ``InvalidConfiguration``), the output shape and the
    reduction length ``K`` per output. ``magnitude(output, inputs, dy, dtype)`` gives
    the tolerance policy's ``S`` from the float64 inputs where the oracle on
    absolute inputs would not (element-wise functions, losses); ``None`` means
    the oracle on absolute inputs. ``exact`` says when a direct implementation
    must match bit for bit: ``"always"`` (data movement and selection),
    ``"integer"`` (on exact-integer data) or ``"never"``. ``homogeneous`` marks
    a forward map positively homogeneous of degree one in each input (linear
    maps, max-pool, relu), for which the adjoint identity holds; ``kinked`` a
    piecewise-linear one whose finite differences must stay off the kinks;
    ``third_derivative`` bounds the third derivative, for the finite-difference
    truncation error.
    """

    name: str
    forward: str
    backward: str | None
    inputs: tuple[str, ...]
    grads: tuple[str, ...]
    params_type: type[Any]  # a Params dataclass; its constructor's keywords depend on the operation
    features: tuple[Feature, ...]
    doc: str
    family: str
    rules: Rules
    ndim: int = 0
    magnitude: Callable[[str, dict[str, Any], Any, str], Any] | None = None
    exact: str = "integer"
    homogeneous: bool = False
    kinked: bool = False
    third_derivative: float = 0.0
    properties: frozenset[str] = LAYER_PROPERTIES

    @property
    def hyperparameters(self) -> tuple[str, ...]:
        """The keyword arguments of this operation's functions: the fields of ``params_type``, in order."""
        return tuple(f.name for f in fields(self.params_type))

    @property
    def functions(self) -> tuple[str, ...]:
        return (self.forward,) if self.backward is None else (self.forward, self.backward)

    @property
    def is_loss(self) -> bool:
        return self.backward is None

    @property
    def outputs(self) -> tuple[str, ...]:
        """What the forward function returns: ``("y",)`` for a layer, ``("loss", "dz")`` for a loss."""
        return ("loss", *self.grads) if self.is_loss else ("y",)

    def signature(self, function_name: str) -> str:
        """The call form of one of this operation's functions, e.g. ``relu_backward(dy, x) -> dx``."""
        arrays = (["dy"] if function_name == self.backward else []) + list(self.inputs)
        keywords = f", *, {', '.join(self.hyperparameters)}" if self.hyperparameters else ""
        if self.is_loss:
            returns = f"({', '.join(self.outputs)})"
        elif function_name == self.forward:
            returns = "y"
        else:
            returns = self.grads[0] if len(self.grads) == 1 else f"({', '.join(self.grads)})"
        return f"{function_name}({', '.join(arrays)}{keywords}) -> {returns}"

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def check(self, shapes: Shapes, params: Params) -> None:
        """Raise ``InvalidConfiguration`` unless the configuration is valid."""
        self.rules.check(shapes, params)

    def output_shape(self, shapes: Shapes, params: Params) -> Shape:
        """Shape of ``y`` (and so of ``dy``); ``()`` for a loss."""
        return self.rules.output_shape(shapes, params)

    def reduction_lengths(self, shapes: Shapes, params: Params) -> dict[str, int]:
        """``K`` per output (``y`` or ``loss``, and each gradient) for the tolerance policy."""
        return self.rules.reduction_lengths(shapes, params)


def _any_above_one(values: tuple[int, ...]) -> bool:
    return max(values) > 1


PADDING = Feature(
    "padding",
    "padding supported, each level including the ones before: 'none', 'uniform' (one int for every "
    "side), 'symmetric' (low == high on each axis) or 'asymmetric' (the contract)",
    ("none", "uniform", "symmetric", "asymmetric"),
    required=lambda p: p.padding_kind,
)
STRIDE = Feature(
    "stride",
    "strides supported: 'unit' (all 1) only, 'uniform' (every axis equal) or 'any' (the contract)",
    ("unit", "uniform", "any"),
    required=lambda p: p.stride_kind,
)


def _dilation_level(dilation: tuple[int, ...]) -> bool | str:
    """The ``dilation`` level a case needs: ``False`` (all 1), ``"uniform"`` (every axis the same,
    above 1: a square dilation) or ``True`` (any)."""
    if not _any_above_one(dilation):
        return False
    return "uniform" if len(set(dilation)) == 1 else True


DILATION = Feature(
    "dilation",
    "dilation other than 1: False (none), 'uniform' (every axis equal: square dilations only) or True "
    "(any, the contract)",
    (False, "uniform", True),
    required=lambda p: _dilation_level(p.dilation),
    accepts=lambda v: any(v is c or (isinstance(c, str) and v == c) for c in (False, "uniform", True)),
)
GEOMETRY = Feature(
    "geometry",
    "output sizes: 'exact' (the windows tile every padded axis exactly, (size + pads - dilation*(k-1) - 1) "
    "% stride == 0, as the CS231n assignment's formula assumes) or 'any' (the contract: floor)",
    ("exact", "any"),
)
"""A support feature of a case's shapes, not of its hyper-parameters alone: ``geometry_of``
says which level a case needs (``required`` is ``None``)."""
KERNEL_SIZE = Feature(
    "kernel_size",
    "pooling windows: 'square' (every axis the same size) or 'any' (the contract)",
    ("square", "any"),
    required=lambda p: "square" if len(set(p.kernel_size)) == 1 else "any",
)
CEIL_MODE = Feature("ceil_mode", "ceil_mode=True", (False, True), required=lambda p: bool(p.ceil_mode))

GROUPS = Feature("groups", "groups other than 1", (False, True), required=lambda p: p.groups > 1)
CONVENTION = Feature(
    "convention",
    "'cross-correlation' (PyTorch, the contract) or 'convolution' (kernel flipped on every spatial axis)",
    ("cross-correlation", "convolution"),
    kind="semantics",
)
TIES = Feature(
    "ties",
    "where a tied window's gradient goes: 'first' maximum (the contract), 'last', 'split' evenly, 'any' "
    "valid subgradient (a convex combination), or 'all' (each tied maximum the whole gradient: not a "
    "subgradient, see spec/contracts.py)",
    pool.TIE_RULES,
    kind="semantics",
)
PAD_VALUE = Feature(
    "pad_value",
    "the value max pooling pads with: -inf (the contract: padding never wins) or a finite number, "
    "e.g. 0.0 (a window touching the padding yields max(real maximum, 0); a padded winner's gradient "
    "is dropped)",
    pool.MAX_PAD_VALUES,
    kind="semantics",
    accepts=pool.valid_pad_value,
)
CEIL_RULE = Feature(
    "ceil_rule",
    "what ceil_mode=True means: 'pytorch' (the contract: ceil, but the last window starts inside the "
    "input or the low padding) or 'cover_all' (Chainer's: (size + pads - k_eff + stride - 1) // stride "
    "+ 1, the last window may start in the high padding; spec.shapes.pool_out_size)",
    ("pytorch", "cover_all"),
    kind="semantics",
)
EXCLUDE_PAD = Feature(
    "exclude_pad",
    "count_include_pad=False (divide by the real cells only)",
    (False, True),
    required=lambda p: not p.count_include_pad,
)
DERIVATIVE_AT_ZERO = Feature(
    "derivative_at_zero",
    "ReLU'(0): 0 (the contract, PyTorch's), another number in [0, 1] (1: the gradient passes where x >= 0), "
    "or a [lo, hi] range of them (spec/contracts.py)",
    (0, 1),
    kind="semantics",
    accepts=activation.valid_derivative_at_zero,
)
SOFT_TARGETS = Feature("soft_targets", "targets anywhere in [0, 1], not only 0 or 1", (False, True))

CONV_RULES = Rules(
    lambda s, p: conv.check(required(s, "x"), required(s, "w"), s.get("b"), p),
    lambda s, p: conv.output_shape(required(s, "x"), required(s, "w"), p),
    lambda s, p: conv.reduction_lengths(required(s, "x"), required(s, "w"), p),
)
POOL_RULES = Rules(
    lambda s, p: pool.check(required(s, "x"), p),
    lambda s, p: pool.output_shape(required(s, "x"), p),
    lambda s, p: pool.reduction_lengths(required(s, "x"), p),
)


def _shape_only(
    check: Callable[[Shapes], None], shape: Callable[[Shapes], Shape], k: Callable[[Shapes], dict[str, int]]
) -> Rules:
    """Rules of an operation without hyper-parameters."""
    return Rules(lambda s, p: check(s), lambda s, p: shape(s), lambda s, p: k(s))


PARAMS_TYPE_BY_FAMILY_AND_NDIM: dict[str, dict[int, type[Params]]] = {
    family: {cls.NDIM: cls for cls in PARAMS_TYPE_BY_NAME.values() if issubclass(cls, base)}
    for family, base in (("conv", ConvParams), ("max_pool", MaxPoolParams), ("avg_pool", AvgPoolParams))
}
"""The hyper-parameter record of each window family (``conv``, ``max_pool``, ``avg_pool``) by number of
spatial axes."""


def _layer(name: str, family: str, extra_properties: set[str], **fields: Any) -> Operation:
    """A layer: ``{name}_forward`` and ``{name}_backward``, checked by every generic layer property
    and by ``extra_properties``."""
    return Operation(
        name=name,
        forward=f"{name}_forward",
        backward=f"{name}_backward",
        family=family,
        properties=LAYER_PROPERTIES | extra_properties,
        **fields,
    )


def _window(family: str, ndim: int, extra_properties: set[str], **fields: Any) -> Operation:
    """A convolution or pooling over ``ndim`` spatial axes (``conv2d``, ``max_pool3d``, ...): positively
    homogeneous, with the dimension's hyper-parameter record."""
    return _layer(
        f"{family}{ndim}d",
        family,
        extra_properties | {"adjoint", "sweep", "nonfinite"},
        params_type=PARAMS_TYPE_BY_FAMILY_AND_NDIM[family][ndim],
        ndim=ndim,
        homogeneous=True,
        **fields,
    )


def _conv(ndim: int) -> Operation:
    return _window(
        "conv",
        ndim,
        {"bias_gradient"},
        inputs=("x", "w", "b"),
        grads=("dx", "dw", "db"),
        features=(STRIDE, PADDING, DILATION, GROUPS, GEOMETRY, CONVENTION),
        doc=conv.__doc__ or "",
        rules=CONV_RULES,
    )


def _max_pool(ndim: int) -> Operation:
    return _window(
        "max_pool",
        ndim,
        {"max_routing"},
        inputs=("x",),
        grads=("dx",),
        features=(STRIDE, PADDING, DILATION, CEIL_MODE, GEOMETRY, TIES, PAD_VALUE, CEIL_RULE, KERNEL_SIZE),
        doc=pool.__doc__ or "",
        rules=POOL_RULES,
        kinked=True,
    )


def _avg_pool(ndim: int) -> Operation:
    return _window(
        "avg_pool",
        ndim,
        {"avg_spreading"},
        inputs=("x",),
        grads=("dx",),
        features=(STRIDE, PADDING, CEIL_MODE, EXCLUDE_PAD, GEOMETRY, KERNEL_SIZE),
        doc=pool.__doc__ or "",
        rules=POOL_RULES,
        exact="never",
    )


def _activation(name: str) -> Operation:
    roundings = activation.ROUNDINGS[name]
    relu = name == "relu"
    return _layer(
        name,
        name,
        {"adjoint", "relu_kink"} if relu else set(),
        inputs=("x",),
        grads=("dx",),
        params_type=NoParams,
        features=(DERIVATIVE_AT_ZERO,) if relu else (),
        doc=activation.__doc__ or "",
        rules=_shape_only(activation.check, activation.output_shape, lambda s: dict(roundings)),
        magnitude=lambda output, inputs, dy, dtype: activation.magnitude(
            name, output, inputs["x"], dy, dtype
        ),
        exact="always" if relu else "never",
        homogeneous=relu,
        kinked=relu,
        third_derivative=activation.THIRD_DERIVATIVE[name],
    )


LINEAR = _layer(
    "linear",
    "linear",
    {"adjoint", "bias_gradient"},
    inputs=("x", "w", "b"),
    grads=("dx", "dw", "db"),
    params_type=NoParams,
    features=(),
    doc=dense.__doc__ or "",
    rules=_shape_only(dense.linear_check, dense.linear_output_shape, dense.linear_reduction_lengths),
    homogeneous=True,
)

FLATTEN = _layer(
    "flatten",
    "flatten",
    {"adjoint", "flatten_order"},
    inputs=("x",),
    grads=("dx",),
    params_type=NoParams,
    features=(),
    doc=dense.__doc__ or "",
    rules=_shape_only(dense.flatten_check, dense.flatten_output_shape, lambda s: {"y": 0, "dx": 0}),
    exact="always",
    homogeneous=True,
)

SOFTMAX_CROSS_ENTROPY = Operation(
    name="softmax_cross_entropy",
    forward="softmax_cross_entropy",
    backward=None,
    inputs=("z", "labels"),
    grads=("dz",),
    params_type=NoParams,
    features=(),
    doc=loss.__doc__ or "",
    family="softmax_cross_entropy",
    rules=_shape_only(loss.softmax_check, lambda s: (), loss.softmax_reduction_lengths),
    magnitude=lambda output, inputs, dy, dtype: loss.softmax_magnitude(output, inputs["z"], inputs["labels"]),
    exact="never",
    properties=LOSS_PROPERTIES,
)

SIGMOID_BINARY_CROSS_ENTROPY = Operation(
    name="sigmoid_binary_cross_entropy",
    forward="sigmoid_binary_cross_entropy",
    backward=None,
    inputs=("z", "y"),
    grads=("dz",),
    params_type=NoParams,
    features=(SOFT_TARGETS,),
    doc=loss.__doc__ or "",
    family="sigmoid_binary_cross_entropy",
    rules=_shape_only(loss.bce_check, lambda s: (), loss.bce_reduction_lengths),
    magnitude=lambda output, inputs, dy, dtype: loss.bce_magnitude(output, inputs["z"], inputs["y"]),
    exact="never",
    properties=LOSS_PROPERTIES,
)

OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        _conv(2),
        _max_pool(2),
        _avg_pool(2),
        *(_activation(name) for name in activation.ACTIVATIONS),
        LINEAR,
        FLATTEN,
        SOFTMAX_CROSS_ENTROPY,
        SIGMOID_BINARY_CROSS_ENTROPY,
        *(make(ndim) for ndim in (1, 3) for make in (_conv, _max_pool, _avg_pool)),
    )
}
"""Every operation of the contract: the 2-D core first, then the layers around it, then 1-D and 3-D."""

CORE = ("conv2d", "max_pool2d", "avg_pool2d")
"""The 2-D core the benchmark corpus, the diagnosis catalogue and the worked examples are about."""

DTYPES = dtypes.DTYPES
"""Dtypes of the contract (``spec.dtypes``); a declaration may narrow them, and one without
``dtypes`` supports ``dtypes.FULL_DTYPES``."""

ALGORITHMS = ("direct", "fft", "winograd")
"""How an implementation computes convolutions; only ``direct`` promises exact
results on exact-integer data."""

FUNCTION_NAMES: tuple[str, ...] = tuple(n for op in OPERATIONS.values() for n in op.functions)


def geometry_of(op: Operation, shapes: Shapes, params: Params) -> str:
    """The ``geometry`` level a convolution or pooling case needs: ``"exact"`` when the windows tile
    every padded spatial axis exactly (``spec.shapes.divides_exactly``), else ``"any"``; ``"exact"``
    for an operation without windows."""
    if op.ndim == 0 or not isinstance(params, WindowParams):
        return "exact"
    x = required(shapes, "x")
    kernel = (
        params.kernel_size
        if isinstance(params, (MaxPoolParams, AvgPoolParams))
        else required(shapes, "w")[2:]
    )
    for a in range(op.ndim):
        lo, hi = params.pads(a)
        if not divides_exactly(x[2 + a], kernel[a], params.stride[a], lo, hi, params.dilation[a]):
            return "any"
    return "exact"


def operation_of(function_name: str) -> Operation:
    """The operation a contract function belongs to."""
    for op in OPERATIONS.values():
        if function_name in op.functions:
            return op
    raise KeyError(function_name)


NdFunctions = tuple[Callable[..., Any], Callable[..., Any]]
"""A family's ``(forward, backward)`` for any number of spatial axes."""

PerDimension = Callable[[Operation, Callable[..., Any], Callable[..., Any]], NdFunctions]
"""Makes one operation's ``(forward, backward)`` from its family's N-d pair."""


def contract_names(namespace: Mapping[str, Any]) -> list[str]:
    """The contract function names (``FUNCTION_NAMES``) that ``namespace`` defines, sorted."""
    return sorted(name for name in FUNCTION_NAMES if name in namespace)


WINDOW_FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(op.family for op in OPERATIONS.values() if op.ndim))
"""The families defined for any number of spatial axes: ``conv``, ``max_pool``, ``avg_pool``."""


def bind_contract(
    namespace: MutableMapping[str, Any],
    nd_functions: Mapping[str, NdFunctions] | None = None,
    per_dimension: PerDimension | None = None,
) -> list[str]:
    """Bind the per-dimension contract names of each family in ``nd_functions``; return the contract names.

    ``nd_functions`` maps a window family (``"conv"``, ``"max_pool"``, ``"avg_pool"``) to its N-d
    ``(forward, backward)``; by default, every family whose ``{family}_forward`` and
    ``{family}_backward`` ``namespace`` defines. Every operation of that family in ``OPERATIONS``
    (``conv1d``, ``conv2d``, ...) gets ``namespace[op.forward]`` and ``namespace[op.backward]``: the N-d
    functions themselves (the rank of ``x`` selects the dimension), or what ``per_dimension(op,
    forward, backward)`` makes of them. A module calls it with ``globals()`` and builds ``__all__``
    from the returned ``contract_names(namespace)``, which include the contract functions it defined
    or imported itself.
    """
    if nd_functions is None:
        nd_functions = {
            family: (namespace[f"{family}_forward"], namespace[f"{family}_backward"])
            for family in WINDOW_FAMILIES
            if f"{family}_forward" in namespace and f"{family}_backward" in namespace
        }
    for op in OPERATIONS.values():
        if op.family not in nd_functions:
            continue
        functions = nd_functions[op.family]
        if per_dimension is not None:
            functions = per_dimension(op, *functions)
        namespace.update(zip(op.functions, functions))
    return contract_names(namespace)

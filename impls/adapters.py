"""Adapters: turn code written against another API into a convcheck plug-in.

Two families:

* **CS231n-style cache functions** (``conv_forward_naive(x, w, b, conv_param)
  -> (out, cache)``, ``relu_forward(x) -> (out, cache)``, ``affine_forward``,
  ``softmax_loss(x, y) -> (loss, dx)`` and friends). ``cs231n_conv``,
  ``cs231n_max_pool`` (both for 1, 2 or 3 spatial axes), ``cs231n_activation``,
  ``cs231n_affine`` and ``cs231n_loss`` wrap one operation each;
  ``from_cs231n`` wraps a whole student module at once and adds
  ``CS231N_CAPABILITIES``, the declaration of what that API cannot express.
* **Forward-only autodiff code**: ``from_torch`` (and ``from_jax``) take forward
  functions written with framework ops, one per operation (``conv2d=...``,
  ``relu=...``, ``softmax_cross_entropy=...``), and derive the backward
  functions from the framework's vector-Jacobian product; a loss written as a
  function returning the scalar loss gets its ``dz`` the same way.

Every adapter returns the contract's functions (NumPy in and out, keyword-only
hyper-parameters), returns fresh arrays of the input dtype, and raises
``NotImplementedError`` naming the hyper-parameter when called with a
configuration its declaration excludes. The CS231n adapters hand the caller's
own arrays to the wrapped code and check after each call that it wrote into
none of its inputs (``InputModified`` names the function and the argument);
the autodiff adapters build their tensors from copies.
A plug-in file then re-exports the functions::

    from convcheck.impls.adapters import exports, from_cs231n
    import my_layers
    globals().update(exports(from_cs231n(my_layers)))
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Optional

import numpy as np

from convcheck.spec import FUNCTION_NAMES, OPERATIONS, Capabilities, ContractError, parse_capabilities
from convcheck.spec.dtypes import FULL_DTYPES
from convcheck.spec.params import AXIS_NAMES

Array = np.ndarray
Ints = tuple[int, ...]
Pair = tuple[Callable[..., Any], Optional[Callable[..., Any]]]

_CONV = {"stride": "uniform", "padding": "uniform", "dilation": False, "groups": False}
_POOL = {"stride": "uniform", "padding": "none", "dilation": False, "ceil_mode": False}

CS231N_CAPABILITIES: dict[str, Any] = {
    # The course contract (spec/contracts.py) by default: ReLU'(0) and tie rules that are valid
    # subgradients are notes, every-max routing a warning, and the assignment's geometry applies:
    # its output size 1 + (H + 2 * pad - HH) / stride is an integer only when the stride tiles the
    # padded input exactly (geometry "exact"), so other sizes are not drawn.
    "contract": "course",
    # conv_param = {'stride': int, 'pad': int}: one stride, one padding for every
    # side, no dilation, no groups.
    "conv1d": {"padding": "uniform", "dilation": False, "groups": False},
    "conv2d": dict(_CONV),
    "conv3d": dict(_CONV),
    # pool_param = {'pool_height', 'pool_width', 'stride'} ('pool_length' in 1-D,
    # 'pool_depth' too in 3-D): no padding at all, one stride, no dilation,
    # floor-mode output size.
    "max_pool1d": {"padding": "none", "dilation": False, "ceil_mode": False},
    "max_pool2d": dict(_POOL),
    "max_pool3d": dict(_POOL),
}
"""What the CS231n layer API can express. With one spatial axis a single stride is no
restriction, so the 1-D operations declare none. The API has no average pooling, no
``flatten`` layer (``affine_forward`` flattens its input itself) and no binary
cross-entropy, so a CS231n plug-in simply has none of those functions (wrap a
binary cross-entropy with ``cs231n_loss`` yourself). The activations, ``affine``
and ``softmax_loss`` have no hyper-parameters, hence nothing to declare."""

_CS231N = parse_capabilities(CS231N_CAPABILITIES, "CS231N_CAPABILITIES")

_HYPERPARAMETER = {"exclude_pad": "count_include_pad"}
"""Features whose contract hyper-parameter has another name."""

_POOL_KEYS = {"L": "pool_length", "D": "pool_depth", "H": "pool_height", "W": "pool_width"}
"""The ``pool_param`` key of each spatial axis (``spec.params.AXIS_NAMES``)."""


# --------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------


def _check_supported(op_name: str, caps: Capabilities, dtype: np.dtype, hp: Mapping[str, Any]) -> None:
    """Raise ``NotImplementedError`` naming the first hyper-parameter (or dtype)
    that ``caps`` declares unsupported for ``op_name``.

    The course contract's ``geometry = "exact"`` is not enforced here: it narrows what the
    suite draws, and wrapped code that handles any geometry (floors) still answers when called."""
    op = OPERATIONS[op_name]
    if np.dtype(dtype).name not in caps.dtypes:
        raise NotImplementedError(
            f"{op_name}: dtype={np.dtype(dtype).name} is not supported (declared dtypes {list(caps.dtypes)})"
        )
    params = op.params_type(**hp)
    for feature in op.features:
        if feature.kind != "support" or feature.required is None:
            continue
        if not caps.supports(op, feature.name, feature.required(params)):
            name = _HYPERPARAMETER.get(feature.name, feature.name)
            raise NotImplementedError(
                f"{op_name}: {name}={hp[name]!r} is not supported by this implementation "
                f"(declared {feature.name}={caps.value(op, feature.name)!r})"
            )


def _fresh(a: Any, dtype: np.dtype) -> Array:
    """A new array of ``dtype`` holding ``a``: never a view of anything the caller owns."""
    return np.array(a, dtype=dtype, copy=True)


def _c_copy(a: Array) -> Array:
    """A C-contiguous copy: user code may ``view``/``reshape`` freely and write to it."""
    return np.array(a, copy=True, order="C")


def _namespace(
    name: str, doc: str, functions: Mapping[str, Callable[..., Any]], caps: Mapping[str, Any] | None
) -> types.ModuleType:
    """A module object holding the contract functions (and the declaration, if any)."""
    ns = types.ModuleType(name, doc)
    public: dict[str, Any] = dict(functions)
    if caps is not None:
        public["CONVCHECK_CAPABILITIES"] = caps
    for key, value in public.items():
        setattr(ns, key, value)
    ns.__dict__["__all__"] = list(public)
    return ns


def _call(fn: Callable[..., Any] | None, *args: Any) -> Any:
    """``fn(*args)``, for a backward function that may be missing (``None``)."""
    if fn is None:
        raise TypeError("no backward function was given")
    return fn(*args)


def _named(op_name: str, forward: Callable[..., Any], backward: Callable[..., Any] | None = None) -> Pair:
    """``(forward, backward)`` renamed to the contract's function names (for tracebacks and reprs), with
    the contract's signatures."""
    op = OPERATIONS[op_name]
    for fn, name in ((forward, op.forward), (backward, op.backward)):
        if fn is not None:
            fn.__name__ = fn.__qualname__ = str(name)
            # inspect.signature reads __signature__; mypy does not know the attribute on functions.
            fn.__dict__["__signature__"] = _contract_signature(op, str(name))
    return forward, backward


def _contract_signature(op: Any, function_name: str) -> inspect.Signature:
    """The contract's signature of ``function_name`` (arrays positional, hyper-parameters keyword-only),
    which the adapters' generic ``**hp`` functions show to ``inspect`` and to the loader."""
    arrays = (["dy"] if function_name == op.backward else []) + list(op.inputs)
    return inspect.Signature(
        [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in arrays]
        + [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY) for name in op.hyperparameters]
    )


def _as_loss(op_name: str, call: Callable[[Array, Array], tuple[Array, Array]]) -> Callable[..., Any]:
    """``call(z, target)`` under the contract's signature of loss ``op_name``:
    ``softmax_cross_entropy(z, labels)`` or ``sigmoid_binary_cross_entropy(z, y)``."""
    if op_name == "softmax_cross_entropy":

        def softmax_cross_entropy(z: Array, labels: Array) -> Any:
            return call(z, labels)

        return softmax_cross_entropy
    if op_name == "sigmoid_binary_cross_entropy":

        def sigmoid_binary_cross_entropy(z: Array, y: Array) -> Any:
            return call(z, y)

        return sigmoid_binary_cross_entropy
    raise KeyError(f"{op_name} is not a loss")


def exports(namespace: types.ModuleType) -> dict[str, Any]:
    """The public names of an adapter's namespace, for ``globals().update(...)`` in a plug-in file."""
    return {name: getattr(namespace, name) for name in namespace.__all__}


def narrow_capabilities(base: Mapping[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """Combine two declarations; neither can widen the other.

    Support features (and ``dtypes``) take the narrower of the two values;
    semantic features (``convention``, ``ties``) and ``algorithm`` take
    ``extra``'s. Both are validated first (``CapabilityError`` on a bad key).
    """
    parse_capabilities(base)
    out: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v for k, v in base.items()}
    if not extra:
        return out
    parse_capabilities(extra)
    for key, value in extra.items():
        if key == "dtypes":
            out[key] = [d for d in base.get("dtypes", FULL_DTYPES) if d in value]
        elif key in OPERATIONS:
            section = out.setdefault(key, {})
            for name, level in value.items():
                feature = OPERATIONS[key].feature(name)
                current = section.get(name, feature.full)
                if feature.kind == "support":
                    level = min(level, current, key=feature.choices.index)
                section[name] = level
        else:
            out[key] = value
    return out


# --------------------------------------------------------------------------------------
# CS231n-style cache functions
# --------------------------------------------------------------------------------------


def _bias_or_zeros(b: Array | None, w: Array) -> Array:
    """``b`` itself (the caller's array), or zeros of shape ``(C_out,)`` when there is no bias."""
    return np.zeros(w.shape[0], dtype=w.dtype) if b is None else b


class InputModified(AssertionError):
    """Adapted code wrote into one of its inputs (an array, a parameter dict or a cache)."""


def _snapshot(value: Any) -> Any:
    """A deep copy of ``value`` for a later bit-for-bit comparison: arrays, dicts, lists and tuples
    are copied recursively, plain scalars kept; anything else is not compared (``_UNCHECKED``)."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, Mapping):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_snapshot(v) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if value is None or isinstance(value, (int, float, complex, str, bytes, np.generic)):
        return value
    return _UNCHECKED


_UNCHECKED = object()
"""What ``_snapshot`` keeps of a value it cannot compare (an arbitrary object in a cache)."""


def _bits(a: Array) -> Array:
    """``a``'s elements as unsigned integers of the same width (bit-for-bit comparison; ``-0.0`` is
    not ``0.0`` and a NaN equals only the same NaN)."""
    c = np.ascontiguousarray(a)
    width = c.dtype.itemsize
    return c.view(f"u{width}") if width in (1, 2, 4, 8) else c.view(np.uint8).reshape(*c.shape, width)


def _first_write(before: Any, after: Any, where: str) -> str | None:
    """How ``after`` differs from its snapshot ``before`` (the first difference, named by its
    path, e.g. ``dout[0, 2]`` or ``conv_param['pad']``), or ``None`` when it is unchanged."""
    if before is _UNCHECKED:
        return None
    if isinstance(before, np.ndarray):
        if not isinstance(after, np.ndarray) or after.shape != before.shape or after.dtype != before.dtype:
            return f"{where} was an array of shape {before.shape} and dtype {before.dtype}, afterwards {_kind(after)}"
        diff = _bits(before) != _bits(after)
        if diff.ndim > before.ndim:
            diff = diff.any(axis=-1)
        if not diff.any():
            return None
        idx = tuple(int(i) for i in np.argwhere(diff)[0])
        return (
            f"{where}[{', '.join(map(str, idx))}] was {before[idx]!r}, afterwards {after[idx]!r} "
            f"({int(diff.sum())} of {diff.size} elements changed)"
        )
    if isinstance(before, dict):
        if not isinstance(after, Mapping) or set(after) != set(before):
            return f"{where} had keys {sorted(map(str, before))}, afterwards {_kind(after)}"
        for key in before:
            found = _first_write(before[key], after[key], f"{where}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(before, (list, tuple)):
        if not isinstance(after, (list, tuple)) or len(after) != len(before):
            return f"{where} had {len(before)} items, afterwards {_kind(after)}"
        for i, (b, a) in enumerate(zip(before, after)):
            found = _first_write(b, a, f"{where}[{i}]")
            if found:
                return found
        return None
    same = type(before) is type(after) and (before == after or (before != before and after != after))
    return None if same else f"{where} was {before!r}, afterwards {after!r}"


def _kind(value: Any) -> str:
    """A short description of a value for ``_first_write``'s messages."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, Mapping):
        return f"keys {sorted(map(str, value))}"
    if isinstance(value, (list, tuple)):
        return f"{len(value)} items"
    return repr(value)


def _argument_names(fn: Callable[..., Any], defaults: tuple[str, ...]) -> tuple[str, ...]:
    """The names of ``fn``'s positional parameters as its author wrote them (``dout``, ``cache``),
    or ``defaults`` (the CS231n names) when they cannot be read."""
    try:
        params = [
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return defaults
    return tuple(params[: len(defaults)]) if len(params) >= len(defaults) else defaults


def _guarded(fn: Callable[..., Any], *defaults: str) -> Callable[..., Any]:
    """``fn`` called on the caller's own arguments, each compared bit for bit after the call with a
    copy saved before it (arrays, parameter dicts and caches alike); a write raises ``InputModified``
    naming the function and the argument. ``defaults`` are the CS231n names of the arguments."""
    name = getattr(fn, "__name__", repr(fn))
    names = _argument_names(fn, defaults)

    def call(*args: Any) -> Any:
        saved = [_snapshot(a) for a in args]
        out = fn(*args)
        for arg_name, before, after in zip(names, saved, args):
            found = _first_write(before, after, arg_name)
            if found:
                raise InputModified(
                    f"{name} wrote into its argument {arg_name}: {found}; inputs must never be modified "
                    f"(work on a copy, e.g. dx = {arg_name}.copy(), or build a new array)"
                )
        return out

    return call


def cs231n_conv(forward: Callable[..., Any], backward: Callable[..., Any] | None, ndim: int = 2) -> Pair:
    """Wrap ``conv_forward_naive(x, w, b, conv_param) -> (out, cache)`` and
    ``conv_backward_naive(dout, cache) -> (dx, dw, db)`` as the contract's
    ``(conv{ndim}d_forward, conv{ndim}d_backward)``.

    ``conv_param`` is ``{'stride': s, 'pad': p}`` whatever the number of spatial
    axes; the backward re-runs the forward for its cache. A missing bias is
    passed as zeros and its gradient returned as ``None``. The wrapped functions get
    the caller's arrays and must not write into them (``_guarded``).
    """
    op_name = f"conv{ndim}d"
    forward = _guarded(forward, "x", "w", "b", "conv_param")
    backward = None if backward is None else _guarded(backward, "dout", "cache")

    def conv_param(x: Array, hp: dict[str, Any]) -> dict[str, int]:
        _check_supported(op_name, _CS231N, x.dtype, hp)
        return {"stride": hp["stride"][0], "pad": hp["padding"][0]}

    def conv_forward(
        x: Array, w: Array, b: Array | None, *, stride: Ints, padding: Ints, dilation: Ints, groups: int
    ) -> Array:
        param = conv_param(x, dict(stride=stride, padding=padding, dilation=dilation, groups=groups))
        out, _ = forward(x, w, _bias_or_zeros(b, w), param)
        return _fresh(out, x.dtype)

    def conv_backward(
        dy: Array,
        x: Array,
        w: Array,
        b: Array | None,
        *,
        stride: Ints,
        padding: Ints,
        dilation: Ints,
        groups: int,
    ) -> tuple[Array, Array, Array | None]:
        param = conv_param(x, dict(stride=stride, padding=padding, dilation=dilation, groups=groups))
        _, cache = forward(x, w, _bias_or_zeros(b, w), param)
        dx, dw, db = _call(backward, dy, cache)
        return _fresh(dx, x.dtype), _fresh(dw, w.dtype), None if b is None else _fresh(db, b.dtype)

    return _named(op_name, conv_forward, conv_backward)


def cs231n_max_pool(forward: Callable[..., Any], backward: Callable[..., Any] | None, ndim: int = 2) -> Pair:
    """Wrap ``max_pool_forward_naive(x, pool_param) -> (out, cache)`` and
    ``max_pool_backward_naive(dout, cache) -> dx`` as the contract's
    ``(max_pool{ndim}d_forward, max_pool{ndim}d_backward)``.

    ``pool_param`` is ``{'pool_height': kh, 'pool_width': kw, 'stride': s}`` in
    2-D, ``{'pool_length': k, 'stride': s}`` in 1-D and ``{'pool_depth': kd,
    'pool_height': kh, 'pool_width': kw, 'stride': s}`` in 3-D; the backward
    re-runs the forward for its cache. The wrapped functions get the caller's
    arrays and must not write into them (``_guarded``).
    """
    op_name = f"max_pool{ndim}d"
    forward = _guarded(forward, "x", "pool_param")
    backward = None if backward is None else _guarded(backward, "dout", "cache")
    keys = [_POOL_KEYS[axis] for axis in AXIS_NAMES[ndim]]

    def pool_param(x: Array, hp: dict[str, Any]) -> dict[str, int]:
        _check_supported(op_name, _CS231N, x.dtype, hp)
        return {**dict(zip(keys, hp["kernel_size"])), "stride": hp["stride"][0]}

    def max_pool_forward(
        x: Array, *, kernel_size: Ints, stride: Ints, padding: Ints, dilation: Ints, ceil_mode: bool
    ) -> Array:
        hp = dict(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)
        out, _ = forward(x, pool_param(x, {**hp, "ceil_mode": ceil_mode}))
        return _fresh(out, x.dtype)

    def max_pool_backward(
        dy: Array,
        x: Array,
        *,
        kernel_size: Ints,
        stride: Ints,
        padding: Ints,
        dilation: Ints,
        ceil_mode: bool,
    ) -> Array:
        hp = dict(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)
        _, cache = forward(x, pool_param(x, {**hp, "ceil_mode": ceil_mode}))
        return _fresh(_call(backward, dy, cache), x.dtype)

    return _named(op_name, max_pool_forward, max_pool_backward)


def cs231n_activation(
    forward: Callable[..., Any], backward: Callable[..., Any] | None, name: str = "relu"
) -> Pair:
    """Wrap ``relu_forward(x) -> (out, cache)`` and ``relu_backward(dout, cache) -> dx``
    (or the ``sigmoid_``/``tanh_`` pair, with ``name``) as the contract's
    ``({name}_forward, {name}_backward)``; the backward re-runs the forward for its cache.
    The wrapped functions get the caller's arrays and must not write into them (``_guarded``)."""
    forward = _guarded(forward, "x")
    backward = None if backward is None else _guarded(backward, "dout", "cache")

    def activation_forward(x: Array) -> Array:
        _check_supported(name, _CS231N, x.dtype, {})
        out, _ = forward(x)
        return _fresh(out, x.dtype)

    def activation_backward(dy: Array, x: Array) -> Array:
        _check_supported(name, _CS231N, x.dtype, {})
        _, cache = forward(x)
        return _fresh(_call(backward, dy, cache), x.dtype)

    return _named(name, activation_forward, activation_backward)


def _smallest_factor(n: int) -> int:
    """The smallest divisor of ``n`` above 1 (``n`` itself when prime; 1 for 1)."""
    return next((f for f in range(2, n + 1) if n % f == 0), 1)


def affine_input_shape(n: int, d_in: int, d_out: int) -> tuple[int, ...]:
    """The shape ``(N, d_1, ..., d_k)`` the CS231n adapter gives ``affine_forward``'s ``x`` for a
    contract ``x`` of shape ``(N, d_in)`` and ``d_out`` outputs: rank 2, 3 or 4 (``2 + (d_in + d_out)
    % 3``), ``d_in`` split into its smallest factors first (1 where it has too few), so that the
    suite's draws of ``d_in`` and ``d_out`` reach every rank the CS231n API takes."""
    rank = 2 + (d_in + d_out) % 3
    dims: list[int] = []
    rest = d_in
    for _ in range(rank - 2):
        f = _smallest_factor(rest)
        dims.append(f)
        rest //= f
    return (n, *dims, rest)


def cs231n_affine(forward: Callable[..., Any], backward: Callable[..., Any] | None) -> Pair:
    """Wrap ``affine_forward(x, w, b) -> (out, cache)`` and ``affine_backward(dout, cache)
    -> (dx, dw, db)`` as the contract's ``(linear_forward, linear_backward)``.

    CS231n's ``w`` is ``(in, out)`` (``out = x @ w + b``); the contract's is
    PyTorch's ``(out, in)``: the adapter passes ``w.T`` and returns ``dw.T``. A
    missing bias is passed as zeros and its gradient returned as ``None``.
    CS231n's ``x`` may have any rank ``(N, d_1, ..., d_k)`` and ``dx`` must come back
    in that shape: the adapter hands ``x`` over reshaped to ``affine_input_shape``
    (rank 2 to 4) and checks ``dx``'s shape before flattening it back. The wrapped
    functions get the caller's arrays and must not write into them (``_guarded``).
    """
    forward = _guarded(forward, "x", "w", "b")
    backward = None if backward is None else _guarded(backward, "dout", "cache")

    def student_x(x: Array, w: Array) -> Array:
        return x.reshape(affine_input_shape(x.shape[0], x.shape[1], w.shape[0]))

    def linear_forward(x: Array, w: Array, b: Array | None) -> Array:
        _check_supported("linear", _CS231N, x.dtype, {})
        out, _ = forward(student_x(x, w), w.T, _bias_or_zeros(b, w))
        return _fresh(out, x.dtype)

    def linear_backward(dy: Array, x: Array, w: Array, b: Array | None) -> tuple[Array, Array, Array | None]:
        _check_supported("linear", _CS231N, x.dtype, {})
        xs = student_x(x, w)
        _, cache = forward(xs, w.T, _bias_or_zeros(b, w))
        dx, dw_in_out, db = _call(backward, dy, cache)
        if np.shape(dx) != xs.shape:
            raise ValueError(
                f"affine_backward returned dx of shape {np.shape(dx)} for x of shape {xs.shape}; dx must "
                "have x's shape, whatever its rank (reshape dout @ w.T to x.shape)"
            )
        dw = np.array(np.transpose(dw_in_out), dtype=w.dtype, order="C")
        return _fresh(np.reshape(dx, x.shape), x.dtype), dw, None if b is None else _fresh(db, b.dtype)

    return _named("linear", linear_forward, linear_backward)


def cs231n_loss(loss: Callable[..., Any], op_name: str = "softmax_cross_entropy") -> Callable[..., Any]:
    """Wrap ``softmax_loss(x, y) -> (loss, dx)`` as the contract's ``softmax_cross_entropy(z, labels)``
    (or a binary cross-entropy of the same form as ``sigmoid_binary_cross_entropy(z, y)``).

    CS231n's ``softmax_loss`` already is the contract's: the batch-mean loss and
    its gradient ``(softmax - onehot) / N``. The loss comes back as a 0-d array of
    the logits' dtype.
    """

    def call(z: Array, target: Array) -> tuple[Array, Array]:
        _check_supported(op_name, _CS231N, z.dtype, {})
        value, dz = guarded(z, target)
        return _fresh(value, z.dtype), _fresh(dz, z.dtype)

    guarded = _guarded(loss, "x", "y")
    return _as_loss(op_name, call)


def _load_file(path: str | os.PathLike[str]) -> types.ModuleType:
    """Import a Python file by path (so a plug-in need not be on ``sys.path``)."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(f"_convcheck_user_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ContractError(f"cannot import {str(path)!r}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lookup(source: Any, name: str) -> Any:
    """``source.name`` or ``source[name]``, or ``None`` when absent."""
    if isinstance(source, Mapping):
        return source.get(name)
    return getattr(source, name, None)


_CS231N_NAMES: dict[str, tuple[str, str | None, Callable[..., Any]]] = {
    "conv1d": ("conv1d_forward_naive", "conv1d_backward_naive", partial(cs231n_conv, ndim=1)),
    "conv2d": ("conv_forward_naive", "conv_backward_naive", cs231n_conv),
    "conv3d": ("conv3d_forward_naive", "conv3d_backward_naive", partial(cs231n_conv, ndim=3)),
    "max_pool1d": ("max_pool1d_forward_naive", "max_pool1d_backward_naive", partial(cs231n_max_pool, ndim=1)),
    "max_pool2d": ("max_pool_forward_naive", "max_pool_backward_naive", cs231n_max_pool),
    "max_pool3d": ("max_pool3d_forward_naive", "max_pool3d_backward_naive", partial(cs231n_max_pool, ndim=3)),
    "relu": ("relu_forward", "relu_backward", partial(cs231n_activation, name="relu")),
    "sigmoid": ("sigmoid_forward", "sigmoid_backward", partial(cs231n_activation, name="sigmoid")),
    "tanh": ("tanh_forward", "tanh_backward", partial(cs231n_activation, name="tanh")),
    "linear": ("affine_forward", "affine_backward", cs231n_affine),
    "softmax_cross_entropy": ("softmax_loss", None, cs231n_loss),
}
"""Per operation: the CS231n forward's name, the backward's (``None`` for a loss) and the wrapper.
CS231n names the 2-D layers without a dimension; the 1-D and 3-D names follow the same pattern."""


def cs231n_names() -> tuple[str, ...]:
    """Every CS231n-style function name ``from_cs231n`` looks for, forwards and backwards."""
    return tuple(n for fwd, bwd, _ in _CS231N_NAMES.values() for n in (fwd, bwd) if n)


def is_cs231n_style(defined: Iterable[str]) -> bool:
    """Whether code defining the functions named ``defined`` is CS231n-style: it has a CS231n name
    that is not also a contract name (``conv_forward_naive``; ``relu_forward`` is both), and no
    contract function outside the names both share. Such code is adapted with ``from_cs231n``."""
    names = set(defined)
    shared = set(cs231n_names()) & set(FUNCTION_NAMES)
    return bool(names & (set(cs231n_names()) - shared)) and not (names & set(FUNCTION_NAMES)) - shared


def from_cs231n(source: Any, capabilities: Mapping[str, Any] | None = None) -> types.ModuleType:
    """Adapt a CS231n-style layers module into a plug-in namespace.

    ``source`` is a module, any object or mapping holding the functions, or a
    path to a ``.py`` file. It is searched for the names of ``_CS231N_NAMES``:
    ``conv_forward_naive`` / ``conv_backward_naive`` (and ``conv1d_...``,
    ``conv3d_...``), ``max_pool_forward_naive`` / ``max_pool_backward_naive``
    (and ``max_pool1d_...``, ``max_pool3d_...``), ``relu_forward`` /
    ``relu_backward`` (and ``sigmoid_...``, ``tanh_...``), ``affine_forward`` /
    ``affine_backward`` and ``softmax_loss``. An operation whose forward is
    absent is left out, one whose backward is absent gets only its forward. The
    declaration is ``CS231N_CAPABILITIES`` narrowed by the source's own
    ``CONVCHECK_CAPABILITIES`` and by ``capabilities`` (e.g. ``{"max_pool2d":
    {"ties": "split"}}``).
    """
    if isinstance(source, (str, os.PathLike)):
        source = _load_file(source)
    functions: dict[str, Callable[..., Any]] = {}
    for op_name, (fwd_name, bwd_name, adapt) in _CS231N_NAMES.items():
        forward = _lookup(source, fwd_name)
        if forward is None:
            continue
        op = OPERATIONS[op_name]
        if bwd_name is None:  # a loss: one function returning (loss, dz)
            functions[op.forward] = adapt(forward)
            continue
        backward = _lookup(source, bwd_name)
        fwd, bwd = adapt(forward, backward)
        functions[op.forward] = fwd
        if backward is not None and op.backward is not None:
            functions[op.backward] = bwd
    if not functions:
        names = ", ".join(n for f, b, _ in _CS231N_NAMES.values() for n in (f, b) if n)
        raise ContractError(f"{source!r} defines none of the CS231n functions ({names})")
    caps = narrow_capabilities(CS231N_CAPABILITIES, _lookup(source, "CONVCHECK_CAPABILITIES"))
    caps = narrow_capabilities(caps, capabilities)
    return _namespace("convcheck_cs231n_plugin", f"CS231n adapter for {source!r}", functions, caps)


# --------------------------------------------------------------------------------------
# Forward-only autodiff code
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Engine:
    """How one autodiff framework evaluates ``fn(*arrays)``, its VJP and a loss's gradient on NumPy arrays.

    ``forward(fn, arrays) -> y`` and ``vjp(fn, arrays, dy) -> grads`` (one per
    array) return fresh NumPy arrays of the input dtypes; ``loss(fn, z, target)
    -> (loss, dz)`` differentiates the scalar ``fn(z, target)`` in ``z`` only.
    """

    name: str
    forward: Callable[[Callable[..., Any], tuple[Array, ...]], Array]
    vjp: Callable[[Callable[..., Any], tuple[Array, ...], Array], tuple[Array, ...]]
    loss: Callable[[Callable[..., Any], Array, Array], tuple[Array, Array]]


def _target(target: Array, dtype: np.dtype) -> Array:
    """A loss target as frameworks take it: integer labels as int64 (an index type), anything
    else (binary targets) as a C-contiguous copy in the logits' ``dtype``."""
    target = np.asarray(target)
    return np.array(target, dtype=np.int64 if target.dtype.kind in "iu" else dtype, order="C", copy=True)


def _torch_engine() -> _Engine:
    """The torch engine: ``torch.autograd.grad`` with ``grad_outputs=dy``."""
    import torch

    def tensors(arrays: tuple[Array, ...], grad: bool) -> list[Any]:
        return [torch.from_numpy(_c_copy(a)).requires_grad_(grad) for a in arrays]

    def forward(fn: Callable[..., Any], arrays: tuple[Array, ...]) -> Array:
        with torch.no_grad():
            y = fn(*tensors(arrays, grad=False))
        return _fresh(y.detach().numpy(), arrays[0].dtype)

    def vjp(fn: Callable[..., Any], arrays: tuple[Array, ...], dy: Array) -> tuple[Array, ...]:
        inputs = tensors(arrays, grad=True)
        with torch.enable_grad():
            y = fn(*inputs)
        if y.requires_grad:
            dy_t = torch.from_numpy(_c_copy(dy)).to(y.dtype)
            grads = torch.autograd.grad(y, inputs, grad_outputs=dy_t, allow_unused=True)
        else:  # the output does not depend on the inputs at all
            grads = (None,) * len(inputs)  # type: ignore[assignment]  # torch types grad's result as tuple[Tensor, ...], though allow_unused gives None
        return tuple(
            _fresh(np.zeros_like(a) if g is None else g.detach().numpy(), a.dtype)
            for g, a in zip(grads, arrays)
        )

    def loss(fn: Callable[..., Any], z: Array, target: Array) -> tuple[Array, Array]:
        (z_t,) = tensors((z,), grad=True)
        with torch.enable_grad():
            value = fn(z_t, torch.from_numpy(_target(target, z.dtype)))
        grad = torch.autograd.grad(value, [z_t], allow_unused=True)[0] if value.requires_grad else None
        dz = np.zeros_like(z) if grad is None else grad.detach().numpy()
        return _fresh(value.detach().numpy(), z.dtype), _fresh(dz, z.dtype)

    return _Engine("torch", forward, vjp, loss)


def _jax_engine() -> _Engine:
    """The JAX engine: ``jax.vjp``. Imports JAX here, and turns on ``jax_enable_x64``
    (globally) so that float64 cases stay float64."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as err:
        raise ImportError(
            "from_jax needs JAX, which is not installed; install it (e.g. `pip install jax`) "
            "or write the forward functions with torch ops and use from_torch"
        ) from err
    # Typed as a plain callable: JAX, where installed, leaves ``update`` unannotated.
    enable: Callable[[str, bool], None] = jax.config.update
    enable("jax_enable_x64", True)

    def arrays_in(arrays: tuple[Array, ...]) -> list[Any]:
        return [jnp.asarray(_c_copy(a)) for a in arrays]

    def forward(fn: Callable[..., Any], arrays: tuple[Array, ...]) -> Array:
        return _fresh(np.asarray(fn(*arrays_in(arrays))), arrays[0].dtype)

    def vjp(fn: Callable[..., Any], arrays: tuple[Array, ...], dy: Array) -> tuple[Array, ...]:
        y, pullback = jax.vjp(fn, *arrays_in(arrays))
        grads = pullback(jnp.asarray(dy, dtype=y.dtype))
        return tuple(_fresh(np.asarray(g), a.dtype) for g, a in zip(grads, arrays))

    def loss(fn: Callable[..., Any], z: Array, target: Array) -> tuple[Array, Array]:
        target_j = jnp.asarray(_target(target, z.dtype))
        value, pullback = jax.vjp(lambda z_: fn(z_, target_j), *arrays_in((z,)))
        (dz,) = pullback(jnp.asarray(1.0, dtype=value.dtype))
        return _fresh(np.asarray(value), z.dtype), _fresh(np.asarray(dz), z.dtype)

    return _Engine("jax", forward, vjp, loss)


def _with_bias(
    fn: Callable[..., Any], x: Array, w: Array, b: Array | None, hp: dict[str, Any]
) -> tuple[Callable[..., Any], tuple[Array, ...]]:
    """``(f, arrays)`` with ``f(*arrays) = fn(x, w, b, **hp)``; an absent bias is no array (and no gradient)."""
    if b is None:
        return (lambda x_, w_: fn(x_, w_, None, **hp)), (x, w)
    return (lambda x_, w_, b_: fn(x_, w_, b_, **hp)), (x, w, b)


def _autodiff_weighted(engine: _Engine, op_name: str, fn: Callable[..., Any], caps: Capabilities) -> Pair:
    """Contract functions of an operation with weights (``conv{1,2,3}d``, ``linear``) from a forward
    ``fn(x, w, b, **hyper-parameters)``; an absent bias has no gradient (``db`` is ``None``)."""

    def forward(x: Array, w: Array, b: Array | None, **hp: Any) -> Array:
        _check_supported(op_name, caps, x.dtype, hp)
        return engine.forward(*_with_bias(fn, x, w, b, hp))

    def backward(
        dy: Array, x: Array, w: Array, b: Array | None, **hp: Any
    ) -> tuple[Array, Array, Array | None]:
        _check_supported(op_name, caps, x.dtype, hp)
        bound, arrays = _with_bias(fn, x, w, b, hp)
        dx, dw, *db = engine.vjp(bound, arrays, dy)
        return dx, dw, db[0] if db else None

    return _named(op_name, forward, backward)


def _autodiff_unary(engine: _Engine, op_name: str, fn: Callable[..., Any], caps: Capabilities) -> Pair:
    """Contract functions of a one-input operation (pooling, activations, flatten) from a forward
    ``fn(x, **hyper-parameters)``."""

    def forward(x: Array, **hp: Any) -> Array:
        _check_supported(op_name, caps, x.dtype, hp)
        return engine.forward(lambda x_: fn(x_, **hp), (x,))

    def backward(dy: Array, x: Array, **hp: Any) -> Array:
        _check_supported(op_name, caps, x.dtype, hp)
        return engine.vjp(lambda x_: fn(x_, **hp), (x,), dy)[0]

    return _named(op_name, forward, backward)


def _autodiff_loss(engine: _Engine, op_name: str, fn: Callable[..., Any], caps: Capabilities) -> Pair:
    """The contract's loss function from ``fn(z, target) -> scalar loss``: ``(loss, dz)``, ``dz`` by autodiff."""

    def call(z: Array, target: Array) -> tuple[Array, Array]:
        _check_supported(op_name, caps, z.dtype, {})
        return engine.loss(fn, z, target)

    return _as_loss(op_name, call), None


def _autodiff(op_name: str) -> Callable[[_Engine, str, Callable[..., Any], Capabilities], Pair]:
    """The adapter for an operation, by the shape of its contract (``spec.ops``): a loss, an
    operation with weights, or one with a single input."""
    op = OPERATIONS[op_name]
    if op.is_loss:
        return _autodiff_loss
    return _autodiff_weighted if "w" in op.inputs else _autodiff_unary


def _from_autodiff(
    engine: _Engine, forwards: Mapping[str, Callable[..., Any] | None], capabilities: Any
) -> types.ModuleType:
    """The contract-shaping shared by ``from_torch`` and ``from_jax``."""
    unknown = [name for name in forwards if name not in OPERATIONS]
    if unknown:
        raise TypeError(
            f"from_{engine.name} got unknown operation(s) {', '.join(unknown)}; "
            f"the operations are {', '.join(OPERATIONS)}"
        )
    caps = parse_capabilities(capabilities)
    functions: dict[str, Callable[..., Any]] = {}
    for op_name, fn in forwards.items():
        if fn is not None:
            op = OPERATIONS[op_name]
            forward, backward = _autodiff(op_name)(engine, op_name, fn, caps)
            functions[op.forward] = forward
            if backward is not None and op.backward is not None:
                functions[op.backward] = backward
    if not functions:
        raise ContractError(
            f"from_{engine.name} needs at least one forward function, by operation name "
            f"(conv2d=..., relu=..., softmax_cross_entropy=...; operations: {', '.join(OPERATIONS)})"
        )
    return _namespace(
        f"convcheck_{engine.name}_plugin", f"{engine.name} autodiff adapter", functions, capabilities
    )


def from_torch(
    conv2d: Callable[..., Any] | None = None,
    max_pool2d: Callable[..., Any] | None = None,
    avg_pool2d: Callable[..., Any] | None = None,
    capabilities: Mapping[str, Any] | None = None,
    **forwards: Callable[..., Any] | None,
) -> types.ModuleType:
    """Contract forward and backward functions from forward-only torch code.

    Each argument, named after its operation (``conv1d``, ``conv2d``, ...,
    ``max_pool3d``, ``avg_pool1d``, ``relu``, ``sigmoid``, ``tanh``, ``linear``,
    ``flatten``, ``softmax_cross_entropy``, ``sigmoid_binary_cross_entropy``), is
    a forward written with torch ops on torch tensors, taking the contract
    forward's arguments (``conv2d(x, w, b, *, stride, padding, dilation,
    groups)``, ``relu(x)``, ``linear(x, w, b)``; ``b`` possibly ``None``). The
    backward is ``torch.autograd.grad`` of the output with ``grad_outputs=dy``.
    A loss is a function ``(z, target) -> scalar loss`` (the batch mean); the
    contract's ``(loss, dz)`` takes ``dz`` from autograd. Tensors are built from
    copies of the inputs at the input dtype (integer labels as int64, binary
    targets at the logits' dtype). ``capabilities`` is the declaration
    (``None``: the full contract); an operation not given is absent.
    """
    return _from_autodiff(
        _torch_engine(),
        {"conv2d": conv2d, "max_pool2d": max_pool2d, "avg_pool2d": avg_pool2d, **forwards},
        capabilities,
    )


def from_jax(
    conv2d: Callable[..., Any] | None = None,
    max_pool2d: Callable[..., Any] | None = None,
    avg_pool2d: Callable[..., Any] | None = None,
    capabilities: Mapping[str, Any] | None = None,
    **forwards: Callable[..., Any] | None,
) -> types.ModuleType:
    """``from_torch`` for forwards written with ``jax.numpy`` / ``jax.lax`` ops.

    The backward (and a loss's ``dz``) is ``jax.vjp``. JAX is imported only here
    (``ImportError`` with advice when it is missing), and ``jax_enable_x64`` is
    switched on so float64 cases run in float64.
    """
    return _from_autodiff(
        _jax_engine(),
        {"conv2d": conv2d, "max_pool2d": max_pool2d, "avg_pool2d": avg_pool2d, **forwards},
        capabilities,
    )


__all__ = [
    "CS231N_CAPABILITIES",
    "cs231n_activation",
    "cs231n_affine",
    "cs231n_conv",
    "cs231n_loss",
    "cs231n_max_pool",
    "exports",
    "from_cs231n",
    "from_jax",
    "from_torch",
    "narrow_capabilities",
]

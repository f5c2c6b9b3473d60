"""Adapters: turn code written against another API into a convcheck plug-in.

Two families:

* **CS231n-style cache functions** (``conv_forward_naive(x, w, b, conv_param)
  -> (out, cache)`` and friends). ``cs231n_conv`` and ``cs231n_max_pool`` wrap
  one pair each; ``from_cs231n`` wraps a whole student module at once and adds
  ``CS231N_CAPABILITIES``, the declaration of what that API cannot express.
* **Forward-only autodiff code**: ``from_torch`` (and ``from_jax``) take forward
  functions written with framework ops and derive the backward functions from
  the framework's vector-Jacobian product.

Every adapter returns the contract's functions (NumPy in and out, keyword-only
hyper-parameters), copies inputs before user code sees them, returns fresh
arrays of the input dtype, and raises ``NotImplementedError`` naming the
hyper-parameter when called with a configuration its declaration excludes.
A plug-in file then re-exports the functions::

    from convcheck.impls.adapters import exports, from_cs231n
    import my_layers
    globals().update(exports(from_cs231n(my_layers)))
"""

from __future__ import annotations

import importlib.util
import os
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convcheck.spec import DTYPES, OPERATIONS, Capabilities, ContractError, parse_capabilities

Array = np.ndarray
Pair = tuple[Callable[..., Any], Callable[..., Any]]

CS231N_CAPABILITIES: dict[str, Any] = {
    # conv_param = {'stride': int, 'pad': int}: one stride, one padding for all
    # four sides, no dilation, no groups.
    "conv2d": {"stride": "uniform", "padding": "uniform", "dilation": False, "groups": False},
    # pool_param = {'pool_height', 'pool_width', 'stride'}: no padding at all,
    # one stride, no dilation, floor-mode output size.
    "max_pool2d": {"stride": "uniform", "padding": "none", "dilation": False, "ceil_mode": False},
}
"""What the CS231n layer API can express. It has no average pooling, so a
CS231n plug-in simply has no ``avg_pool2d_*`` functions."""

_CS231N = parse_capabilities(CS231N_CAPABILITIES, "CS231N_CAPABILITIES")

_HYPERPARAMETER = {"exclude_pad": "count_include_pad"}
"""Features whose contract hyper-parameter has another name."""


# --------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------


def _check_supported(op_name: str, caps: Capabilities, dtype: np.dtype, hp: Mapping[str, Any]) -> None:
    """Raise ``NotImplementedError`` naming the first hyper-parameter (or dtype)
    that ``caps`` declares unsupported for ``op_name``."""
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
    name: str, doc: str, functions: Mapping[str, Callable[..., Any]], caps: Any
) -> types.ModuleType:
    """A module object holding the contract functions (and the declaration, if any)."""
    ns = types.ModuleType(name, doc)
    public = dict(functions)
    if caps is not None:
        public["CONVCHECK_CAPABILITIES"] = caps
    for key, value in public.items():
        setattr(ns, key, value)
    ns.__all__ = list(public)  # type: ignore[attr-defined]
    return ns


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
            out[key] = [d for d in base.get("dtypes", DTYPES) if d in value]
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
    """A copy of ``b``, or zeros of shape ``(C_out,)`` when there is no bias."""
    return np.zeros(w.shape[0], dtype=w.dtype) if b is None else b.copy()


def cs231n_conv(forward: Callable[..., Any], backward: Callable[..., Any]) -> Pair:
    """Wrap ``conv_forward_naive(x, w, b, conv_param) -> (out, cache)`` and
    ``conv_backward_naive(dout, cache) -> (dx, dw, db)`` as the contract's
    ``(conv2d_forward, conv2d_backward)``.

    ``conv_param`` is ``{'stride': s, 'pad': p}``; the backward re-runs the
    forward for its cache. A missing bias is passed as zeros and its gradient
    returned as ``None``.
    """

    def conv_param(x: Array, hp: dict[str, Any]) -> dict[str, int]:
        _check_supported("conv2d", _CS231N, x.dtype, hp)
        return {"stride": hp["stride"][0], "pad": hp["padding"][0]}

    def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
        param = conv_param(x, dict(stride=stride, padding=padding, dilation=dilation, groups=groups))
        out, _ = forward(x.copy(), w.copy(), _bias_or_zeros(b, w), param)
        return _fresh(out, x.dtype)

    def conv2d_backward(dy, x, w, b, *, stride, padding, dilation, groups):
        param = conv_param(x, dict(stride=stride, padding=padding, dilation=dilation, groups=groups))
        _, cache = forward(x.copy(), w.copy(), _bias_or_zeros(b, w), param)
        dx, dw, db = backward(dy.copy(), cache)
        return _fresh(dx, x.dtype), _fresh(dw, w.dtype), None if b is None else _fresh(db, b.dtype)

    return conv2d_forward, conv2d_backward


def cs231n_max_pool(forward: Callable[..., Any], backward: Callable[..., Any]) -> Pair:
    """Wrap ``max_pool_forward_naive(x, pool_param) -> (out, cache)`` and
    ``max_pool_backward_naive(dout, cache) -> dx`` as the contract's
    ``(max_pool2d_forward, max_pool2d_backward)``.

    ``pool_param`` is ``{'pool_height': kh, 'pool_width': kw, 'stride': s}``;
    the backward re-runs the forward for its cache.
    """

    def pool_param(x: Array, hp: dict[str, Any]) -> dict[str, int]:
        _check_supported("max_pool2d", _CS231N, x.dtype, hp)
        (kh, kw), (s, _) = hp["kernel_size"], hp["stride"]
        return {"pool_height": kh, "pool_width": kw, "stride": s}

    def max_pool2d_forward(x, *, kernel_size, stride, padding, dilation, ceil_mode):
        hp = dict(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)
        out, _ = forward(x.copy(), pool_param(x, {**hp, "ceil_mode": ceil_mode}))
        return _fresh(out, x.dtype)

    def max_pool2d_backward(dy, x, *, kernel_size, stride, padding, dilation, ceil_mode):
        hp = dict(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)
        _, cache = forward(x.copy(), pool_param(x, {**hp, "ceil_mode": ceil_mode}))
        return _fresh(backward(dy.copy(), cache), x.dtype)

    return max_pool2d_forward, max_pool2d_backward


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


_CS231N_NAMES: dict[str, tuple[str, str, Callable[..., Pair]]] = {
    "conv2d": ("conv_forward_naive", "conv_backward_naive", cs231n_conv),
    "max_pool2d": ("max_pool_forward_naive", "max_pool_backward_naive", cs231n_max_pool),
}


def from_cs231n(source: Any, capabilities: Mapping[str, Any] | None = None) -> types.ModuleType:
    """Adapt a CS231n-style layers module into a plug-in namespace.

    ``source`` is a module, any object or mapping holding the functions, or a
    path to a ``.py`` file. It is searched for ``conv_forward_naive``,
    ``conv_backward_naive``, ``max_pool_forward_naive`` and
    ``max_pool_backward_naive``; an operation whose forward is absent is left
    out, one whose backward is absent gets only its forward. The declaration is
    ``CS231N_CAPABILITIES`` narrowed by the source's own
    ``CONVCHECK_CAPABILITIES`` and by ``capabilities`` (e.g. ``{"max_pool2d":
    {"ties": "split"}}``).
    """
    if isinstance(source, (str, os.PathLike)):
        source = _load_file(source)
    functions: dict[str, Callable[..., Any]] = {}
    for op_name, (fwd_name, bwd_name, adapt) in _CS231N_NAMES.items():
        forward, backward = _lookup(source, fwd_name), _lookup(source, bwd_name)
        if forward is None:
            continue
        fwd, bwd = adapt(forward, backward)
        op = OPERATIONS[op_name]
        functions[op.forward] = fwd
        if backward is not None:
            functions[op.backward] = bwd
    if not functions:
        names = ", ".join(n for f, b, _ in _CS231N_NAMES.values() for n in (f, b))
        raise ContractError(f"{source!r} defines none of the CS231n functions ({names})")
    caps = narrow_capabilities(CS231N_CAPABILITIES, _lookup(source, "CONVCHECK_CAPABILITIES"))
    caps = narrow_capabilities(caps, capabilities)
    return _namespace("convcheck_cs231n_plugin", f"CS231n adapter for {source!r}", functions, caps)


# --------------------------------------------------------------------------------------
# Forward-only autodiff code
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Engine:
    """How one autodiff framework evaluates ``fn(*arrays)`` and its VJP on NumPy arrays.

    ``forward(fn, arrays) -> y`` and ``vjp(fn, arrays, dy) -> grads`` (one per
    array) both return fresh NumPy arrays of the input dtypes.
    """

    name: str
    forward: Callable[[Callable[..., Any], tuple[Array, ...]], Array]
    vjp: Callable[[Callable[..., Any], tuple[Array, ...], Array], tuple[Array, ...]]


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
            grads = (None,) * len(inputs)
        return tuple(
            _fresh(np.zeros_like(a) if g is None else g.detach().numpy(), a.dtype)
            for g, a in zip(grads, arrays, strict=True)
        )

    return _Engine("torch", forward, vjp)


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
    jax.config.update("jax_enable_x64", True)

    def arrays_in(arrays: tuple[Array, ...]) -> list[Any]:
        return [jnp.asarray(_c_copy(a)) for a in arrays]

    def forward(fn: Callable[..., Any], arrays: tuple[Array, ...]) -> Array:
        return _fresh(np.asarray(fn(*arrays_in(arrays))), arrays[0].dtype)

    def vjp(fn: Callable[..., Any], arrays: tuple[Array, ...], dy: Array) -> tuple[Array, ...]:
        y, pullback = jax.vjp(fn, *arrays_in(arrays))
        grads = pullback(jnp.asarray(dy, dtype=y.dtype))
        return tuple(_fresh(np.asarray(g), a.dtype) for g, a in zip(grads, arrays, strict=True))

    return _Engine("jax", forward, vjp)


def _autodiff_conv(engine: _Engine, fn: Callable[..., Any], caps: Capabilities) -> Pair:
    """Contract ``conv2d`` functions from a forward ``fn(x, w, b, *, stride, padding, dilation, groups)``."""

    def prepare(x: Array, w: Array, b: Array | None, hp: dict[str, Any]) -> tuple[Callable, tuple]:
        _check_supported("conv2d", caps, x.dtype, hp)
        if b is None:
            return (lambda x_, w_: fn(x_, w_, None, **hp)), (x, w)
        return (lambda x_, w_, b_: fn(x_, w_, b_, **hp)), (x, w, b)

    def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
        hp = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        return engine.forward(*prepare(x, w, b, hp))

    def conv2d_backward(dy, x, w, b, *, stride, padding, dilation, groups):
        hp = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        dx, dw, *db = engine.vjp(*prepare(x, w, b, hp), dy)
        return dx, dw, db[0] if db else None

    return conv2d_forward, conv2d_backward


def _autodiff_max_pool(engine: _Engine, fn: Callable[..., Any], caps: Capabilities) -> Pair:
    """Contract ``max_pool2d`` functions from a forward ``fn(x, *, kernel_size, ...)``."""

    def prepare(x: Array, hp: dict[str, Any]) -> tuple[Callable, tuple]:
        _check_supported("max_pool2d", caps, x.dtype, hp)
        return (lambda x_: fn(x_, **hp)), (x,)

    def max_pool2d_forward(x, *, kernel_size, stride, padding, dilation, ceil_mode):
        hp = dict(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)
        return engine.forward(*prepare(x, {**hp, "ceil_mode": ceil_mode}))

    def max_pool2d_backward(dy, x, *, kernel_size, stride, padding, dilation, ceil_mode):
        hp = dict(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)
        return engine.vjp(*prepare(x, {**hp, "ceil_mode": ceil_mode}), dy)[0]

    return max_pool2d_forward, max_pool2d_backward


def _autodiff_avg_pool(engine: _Engine, fn: Callable[..., Any], caps: Capabilities) -> Pair:
    """Contract ``avg_pool2d`` functions from a forward ``fn(x, *, kernel_size, ...)``."""

    def prepare(x: Array, hp: dict[str, Any]) -> tuple[Callable, tuple]:
        _check_supported("avg_pool2d", caps, x.dtype, hp)
        return (lambda x_: fn(x_, **hp)), (x,)

    def avg_pool2d_forward(x, *, kernel_size, stride, padding, ceil_mode, count_include_pad):
        hp = dict(kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode)
        return engine.forward(*prepare(x, {**hp, "count_include_pad": count_include_pad}))

    def avg_pool2d_backward(dy, x, *, kernel_size, stride, padding, ceil_mode, count_include_pad):
        hp = dict(kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode)
        return engine.vjp(*prepare(x, {**hp, "count_include_pad": count_include_pad}), dy)[0]

    return avg_pool2d_forward, avg_pool2d_backward


_AUTODIFF = {"conv2d": _autodiff_conv, "max_pool2d": _autodiff_max_pool, "avg_pool2d": _autodiff_avg_pool}


def _from_autodiff(
    engine: _Engine, forwards: Mapping[str, Callable[..., Any] | None], capabilities: Any
) -> types.ModuleType:
    """The contract-shaping shared by ``from_torch`` and ``from_jax``."""
    caps = parse_capabilities(capabilities)
    functions: dict[str, Callable[..., Any]] = {}
    for op_name, fn in forwards.items():
        if fn is not None:
            op = OPERATIONS[op_name]
            functions[op.forward], functions[op.backward] = _AUTODIFF[op_name](engine, fn, caps)
    if not functions:
        raise ContractError(f"from_{engine.name} needs at least one of conv2d, max_pool2d, avg_pool2d")
    return _namespace(
        f"convcheck_{engine.name}_plugin", f"{engine.name} autodiff adapter", functions, capabilities
    )


def from_torch(
    conv2d: Callable[..., Any] | None = None,
    max_pool2d: Callable[..., Any] | None = None,
    avg_pool2d: Callable[..., Any] | None = None,
    capabilities: Mapping[str, Any] | None = None,
) -> types.ModuleType:
    """Contract forward and backward functions from forward-only torch code.

    Each argument is a forward written with torch ops on torch tensors, taking
    the contract forward's arguments (``conv2d(x, w, b, *, stride, padding,
    dilation, groups)``, ``b`` possibly ``None``). The backward is
    ``torch.autograd.grad`` of the output with ``grad_outputs=dy``. Tensors are
    built from copies of the inputs at the input dtype. ``capabilities`` is the
    declaration (``None``: the full contract); an argument left ``None`` means
    that operation is absent.
    """
    return _from_autodiff(
        _torch_engine(),
        {"conv2d": conv2d, "max_pool2d": max_pool2d, "avg_pool2d": avg_pool2d},
        capabilities,
    )


def from_jax(
    conv2d: Callable[..., Any] | None = None,
    max_pool2d: Callable[..., Any] | None = None,
    avg_pool2d: Callable[..., Any] | None = None,
    capabilities: Mapping[str, Any] | None = None,
) -> types.ModuleType:
    """``from_torch`` for forwards written with ``jax.numpy`` / ``jax.lax`` ops.

    The backward is ``jax.vjp``. JAX is imported only here (``ImportError``
    with advice when it is missing), and ``jax_enable_x64`` is switched on so
    float64 cases run in float64.
    """
    return _from_autodiff(
        _jax_engine(),
        {"conv2d": conv2d, "max_pool2d": max_pool2d, "avg_pool2d": avg_pool2d},
        capabilities,
    )


__all__ = [
    "CS231N_CAPABILITIES",
    "cs231n_conv",
    "cs231n_max_pool",
    "exports",
    "from_cs231n",
    "from_jax",
    "from_torch",
    "narrow_capabilities",
]

"""The capabilities declaration: what an implementation says it does not do, or does differently.

A module may define ``CONVCHECK_CAPABILITIES``, a dict (or a TOML/JSON-like
mapping) of this form; every key is optional and an absent key means the full
contract::

    CONVCHECK_CAPABILITIES = {
        "dtypes": ["float64"],                  # subset of ["float32", "float64"]
        "algorithm": "direct",                  # "direct" | "fft" | "winograd"
        "conv2d": {
            "stride": "uniform",                # "unit" | "uniform" (h == w) | "any"
            "padding": "symmetric",             # "none" | "uniform" | "symmetric" | "asymmetric"
            "dilation": False,
            "groups": False,
            "convention": "convolution",        # or "cross-correlation" (default)
        },
        "max_pool2d": {"ties": "split", "ceil_mode": False, "dilation": False},
        "avg_pool2d": {"exclude_pad": False, "ceil_mode": False},
        "conv1d": {...}, "conv3d": {...},       # the same features as conv2d, per operation
        "max_pool1d": {...}, "avg_pool3d": {...},
        "sigmoid_binary_cross_entropy": {"soft_targets": False},   # targets 0 or 1 only
        "synchronize": "torch.cuda.synchronize",   # or any callable of no arguments
    }

An operation whose functions a module does not define is simply not checked
(reported as unsupported); the declaration is for the parts of an operation
it does define. Support features (``stride``, ``padding``, ``dilation``,
``groups``, ``ceil_mode``, ``exclude_pad``, ``soft_targets``, ``dtypes``)
narrow what is generated; the
narrowed-away parts are reported as *unsupported*, never as failures and never
silently. Semantic features (``convention``, ``ties``) change what is expected.
In strict mode the declaration is ignored and the full contract is checked.

``synchronize`` is not a contract feature: it is the hook ``convcheck bench``
calls to wait for an implementation's queued device work (a CUDA stream, CuPy)
before it reads the clock; a dotted path is imported when the declaration is
parsed. CPU implementations leave it out.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import CapabilityError
from .ops import ALGORITHMS, DTYPES, OPERATIONS, Operation

_TOP_LEVEL = ("dtypes", "algorithm", "synchronize", *OPERATIONS)


@dataclass(frozen=True)
class Capabilities:
    """A parsed, validated declaration. ``features[op][name]`` is the declared value.

    ``synchronize`` is the resolved hook that waits for queued device work, or ``None``.
    """

    dtypes: tuple[str, ...] = DTYPES
    algorithm: str = "direct"
    features: dict[str, dict[str, Any]] = field(default_factory=dict)
    declared: bool = False
    synchronize: Callable[[], Any] | None = None

    def value(self, op: Operation | str, feature: str) -> Any:
        """Declared value of ``feature`` for ``op``, or the full contract's."""
        op = OPERATIONS[op] if isinstance(op, str) else op
        return self.features.get(op.name, {}).get(feature, op.feature(feature).full)

    def supports(self, op: Operation | str, feature: str, level: Any) -> bool:
        """Whether a case that needs ``level`` of a support feature may run."""
        op = OPERATIONS[op] if isinstance(op, str) else op
        f = op.feature(feature)
        return f.choices.index(level) <= f.choices.index(self.value(op, feature))

    def semantics(self, op: Operation | str) -> dict[str, Any]:
        """The semantic choices (convention, tie rule) an oracle must follow for ``op``."""
        op = OPERATIONS[op] if isinstance(op, str) else op
        return {f.name: self.value(op, f.name) for f in op.features if f.kind == "semantics"}

    def unsupported(self) -> list[tuple[str, str, Any]]:
        """``(op, feature, declared value)`` for everything short of the full contract."""
        out = []
        for op in OPERATIONS.values():
            for f in op.features:
                v = self.value(op, f.name)
                if v != f.full:
                    out.append((op.name, f.name, v))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The declaration in its normalised, JSON-friendly form."""
        out: dict[str, Any] = {"dtypes": list(self.dtypes), "algorithm": self.algorithm, **self.features}
        if self.synchronize is not None:
            out["synchronize"] = callable_name(self.synchronize)
        return out


FULL = Capabilities()
"""The full contract: what strict mode checks whatever a module declares."""


def callable_name(fn: Callable[..., Any]) -> str:
    """``module.qualname`` of a function (what ``to_dict`` shows for ``synchronize``)."""
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return f"{module}.{name}" if module else name


def resolve_synchronize(value: Any, where: str) -> Callable[[], Any] | None:
    """The ``synchronize`` hook: a callable as given, or a dotted path imported now; ``None`` stays ``None``."""
    if value is None or callable(value):
        return value
    if not isinstance(value, str) or "." not in value:
        raise CapabilityError(
            f"{where}['synchronize']={value!r} must be a callable or a dotted path such as "
            "'torch.cuda.synchronize'"
        )
    parts = value.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                raise CapabilityError(
                    f"{where}['synchronize']={value!r} cannot be resolved: {getattr(obj, '__name__', obj)!s} "
                    f"has no attribute {attr!r}"
                )
            obj = getattr(obj, attr)
        if not callable(obj):
            raise CapabilityError(
                f"{where}['synchronize']={value!r} names a {type(obj).__name__}, not a function to call"
            )
        return obj
    raise CapabilityError(
        f"{where}['synchronize']={value!r} cannot be resolved: no module {parts[0]!r} can be imported; "
        "give a callable or a dotted path such as 'torch.cuda.synchronize'"
    )


def parse(raw: Any, where: str = "CONVCHECK_CAPABILITIES") -> Capabilities:
    """Validate a declaration; raise ``CapabilityError`` naming the bad key and the valid ones."""
    if raw is None:
        return FULL
    if not isinstance(raw, Mapping):
        raise CapabilityError(f"{where} must be a dict, got {type(raw).__name__}")
    for key in raw:
        if key not in _TOP_LEVEL:
            raise CapabilityError(f"{where} has unknown key {key!r}; expected one of {', '.join(_TOP_LEVEL)}")
    dtypes = raw.get("dtypes", DTYPES)
    if isinstance(dtypes, str) or not all(d in DTYPES for d in dtypes) or not dtypes:
        raise CapabilityError(
            f"{where}['dtypes']={dtypes!r} must be a non-empty list drawn from {list(DTYPES)}"
        )
    algorithm = raw.get("algorithm", "direct")
    if algorithm not in ALGORITHMS:
        raise CapabilityError(f"{where}['algorithm']={algorithm!r} must be one of {list(ALGORITHMS)}")
    features: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS.values():
        section = raw.get(op.name, {})
        if not isinstance(section, Mapping):
            raise CapabilityError(f"{where}[{op.name!r}] must be a dict of feature: value")
        names = [f.name for f in op.features]
        for key, value in section.items():
            if key not in names:
                raise CapabilityError(
                    f"{where}[{op.name!r}] has unknown feature {key!r}; "
                    f"{op.name} features are {', '.join(names)}"
                )
            choices = op.feature(key).choices
            if value not in choices or type(value) is not type(choices[0]):
                raise CapabilityError(
                    f"{where}[{op.name!r}][{key!r}]={value!r} must be one of {list(choices)}"
                )
        features[op.name] = dict(section)
    return Capabilities(
        dtypes=tuple(d for d in DTYPES if d in dtypes),
        algorithm=algorithm,
        features={k: v for k, v in features.items() if v},
        declared=True,
        synchronize=resolve_synchronize(raw.get("synchronize"), where),
    )

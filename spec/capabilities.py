"""The capabilities declaration: what an implementation says it does not do, or does differently.

A module may define ``CONVCHECK_CAPABILITIES``, a dict (or a TOML/JSON-like
mapping) of this form; every key is optional and an absent key means the full
contract::

    CONVCHECK_CAPABILITIES = {
        "dtypes": ["float64"],                  # subset of ["float16", "bfloat16", "float32", "float64"]
        "accumulate": "float32",                # half dtypes: sums kept in "float32" (default) or "storage"
        "algorithm": "direct",                  # "direct" | "fft" | "winograd"
        "conv2d": {
            "stride": "uniform",                # "unit" | "uniform" (h == w) | "any"
            "padding": "symmetric",             # "none" | "uniform" | "symmetric" | "asymmetric"
            "dilation": False,                  # or "uniform" (square dilations only) / True
            "groups": False,
            "convention": "convolution",        # or "cross-correlation" (default)
        },
        "max_pool2d": {"ties": "split", "ceil_mode": False, "dilation": False, "kernel_size": "square"},
        "max_pool3d": {"pad_value": 0.0},      # pads with 0, not -inf (any finite number)
        "max_pool1d": {"ceil_rule": "cover_all"},   # ceil_mode=True means Chainer's cover_all
        "avg_pool2d": {"exclude_pad": False, "ceil_mode": False},
        "conv1d": {...}, "conv3d": {...},       # the same features as conv2d, per operation
        "max_pool1d": {...}, "avg_pool3d": {...},
        "sigmoid_binary_cross_entropy": {"soft_targets": False},   # targets 0 or 1 only
        "synchronize": "torch.cuda.synchronize",   # or any callable of no arguments
        "relu": {"derivative_at_zero": 1},      # ReLU'(0): a number in [0, 1] or a [lo, hi] range
        "contract": "course",                   # the run's default contract (spec/contracts.py)
        "supports": supports,                   # a per-case predicate (op_name, params) -> bool | str
    }

An operation whose functions a module does not define is simply not checked
(reported as unsupported); the declaration is for the parts of an operation
it does define. Support features (``stride``, ``padding``, ``dilation``,
``groups``, ``ceil_mode``, ``exclude_pad``, ``soft_targets``, ``dtypes``)
narrow what is generated; ``dtypes`` defaults to ``["float32", "float64"]`` (the half dtypes
``float16`` and ``bfloat16`` are checked only where declared); the
narrowed-away parts are reported as *unsupported*, never as failures and never
silently. Semantic features (``convention``, ``ties``, ``pad_value``, ``ceil_rule``) change what
is expected; the oracles follow them, and a check whose oracle cannot is not covered.
In strict mode the declaration is ignored and the full contract is checked.

``accumulate`` states the precision in which the half dtypes' sums are kept: ``"float32"``
(the default: products and sums in float32, the result rounded once to the storage dtype) or
``"storage"`` (every partial sum rounded to float16/bfloat16). The tolerance policy
(``spec.tolerance``) bounds the error by it, so declaring ``"float32"`` and summing in half
precision fails.

A support feature may be declared per direction, for a framework whose forward does more
than its backward: ``{"conv2d": {"dilation": "forward", "groups": "forward"}}`` says the
forward supports the feature and the backward does not; the general form names a level for
each, ``{"stride": {"forward": "any", "backward": "unit"}}``. The forward property is then
generated with the forward's level, and every property that calls the backward (backward,
adjoint, finite differences, ...) with the backward's; the summary and the report's matrix
say ``forward only``.

``supports`` is a per-case predicate, for what the features cannot say: ``supports(op_name,
params) -> bool | str`` is called on each drawn case (``params`` the hyper-parameter record,
``spec.params``) before the implementation is; ``True`` runs it, ``False`` or a string (the
reason) leaves it out as declared. The checks count and report what it left out; a check whose
every case it leaves out ends ``unsupported``. A predicate that raises is a usage error.

``synchronize`` is not a contract feature: it is the hook ``convcheck bench``
calls to wait for an implementation's queued device work (a CUDA stream, CuPy)
before it reads the clock; a dotted path is imported when the declaration is
parsed. CPU implementations leave it out.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .dtypes import ACCUMULATE_CHOICES, DEFAULT_ACCUMULATE, FULL_DTYPES, is_half
from .errors import CapabilityError
from .ops import ALGORITHMS, DTYPES, OPERATIONS, Feature, Operation

_TOP_LEVEL = ("dtypes", "accumulate", "algorithm", "synchronize", "contract", "supports", *OPERATIONS)
PREDICATE_FEATURE = "supports"
"""The name under which the per-case predicate is listed among an operation's declared features."""
CONTRACT_NAMES = ("library", "course")
"""The contracts a declaration may name as its default (``spec.contracts``)."""


@dataclass(frozen=True)
class Capabilities:
    """A parsed, validated declaration. ``features[op][name]`` is the declared value.

    ``synchronize`` is the resolved hook that waits for queued device work, or ``None``.
    """

    dtypes: tuple[str, ...] = FULL_DTYPES
    algorithm: str = "direct"
    accumulate: str = DEFAULT_ACCUMULATE
    """Where the half dtypes' sums are kept: ``"float32"`` or ``"storage"`` (``spec.dtypes``)."""
    features: dict[str, dict[str, Any]] = field(default_factory=dict)
    declared: bool = False
    synchronize: Callable[[], Any] | None = None
    contract: str | None = None
    predicate: Callable[[str, Any], Any] | None = None
    """The declared per-case predicate ``supports(op_name, params) -> bool | str``, or ``None``."""
    direction: str | None = None
    """``"forward"`` when the checks at hand call the forward alone: a per-direction declaration
    gives its forward level; otherwise its backward level, which any property calling the
    backward needs."""

    def value(self, op: Operation | str, feature: str) -> Any:
        """Declared value of ``feature`` for ``op`` (in ``direction``), or the full contract's."""
        op = OPERATIONS[op] if isinstance(op, str) else op
        declared = self.features.get(op.name, {}).get(feature, op.feature(feature).full)
        return by_direction(declared, self.direction)

    def for_direction(self, direction: str | None) -> Capabilities:
        """These capabilities as seen by checks calling only the ``forward``, or the backward too."""
        return replace(self, direction=direction)

    def supports(self, op: Operation | str, feature: str, level: Any) -> bool:
        """Whether a case that needs ``level`` of a support feature may run."""
        op = OPERATIONS[op] if isinstance(op, str) else op
        f = op.feature(feature)
        return f.choices.index(level) <= f.choices.index(self.value(op, feature))

    def admits(self, op: Operation | str, params: Any) -> bool:
        """Whether a case with hyper-parameters ``params`` needs only supported levels of every
        support feature of ``op`` (``Feature.required``)."""
        op = OPERATIONS[op] if isinstance(op, str) else op
        return all(
            self.supports(op, f.name, f.required(params))
            for f in op.features
            if f.kind == "support" and f.required is not None
        )

    def excluded(self, op: Operation | str, params: Any) -> str | None:
        """Why the declared predicate leaves out a case of ``op`` with hyper-parameters ``params``
        (its string, or ``"declared unsupported"`` for ``False``), or ``None`` when it runs (always,
        without a predicate). ``CapabilityError`` when the predicate raises or returns anything but
        a bool or a string."""
        if self.predicate is None:
            return None
        name = op if isinstance(op, str) else op.name
        where = f"CONVCHECK_CAPABILITIES['supports'] ({callable_name(self.predicate)})"
        try:
            verdict = self.predicate(name, params)
        except Exception as exc:
            raise CapabilityError(f"{where} raised {type(exc).__name__}: {exc} on {name}, {params}") from exc
        if verdict is True:
            return None
        if verdict is False:
            return "declared unsupported"
        if isinstance(verdict, str):
            return verdict or "declared unsupported"
        raise CapabilityError(
            f"{where} returned {verdict!r} on {name}, {params}: it must return True, False or a reason (a str)"
        )

    def semantics(self, op: Operation | str) -> dict[str, Any]:
        """The semantic choices (convention, tie rule) an oracle must follow for ``op``."""
        op = OPERATIONS[op] if isinstance(op, str) else op
        return {f.name: self.value(op, f.name) for f in op.features if f.kind == "semantics"}

    def unsupported(self, provided: Collection[str] | None = None) -> list[tuple[str, str, Any]]:
        """``(op, feature, declared value)`` for everything short of the full contract; the declared
        predicate as ``(op, "supports", "per case: name")`` for each operation, or, given the
        ``provided`` function names, for each operation with a function among them."""
        out = []
        for op in OPERATIONS.values():
            for f in op.features:
                v = self.features.get(op.name, {}).get(f.name, f.full)
                if is_per_direction(v):
                    v = describe_directions(f, v)
                if v != f.full:
                    out.append((op.name, f.name, v))
            if self.predicate is not None and (provided is None or set(op.functions) & set(provided)):
                out.append((op.name, PREDICATE_FEATURE, f"per case: {callable_name(self.predicate)}"))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The declaration in its normalised, JSON-friendly form."""
        out: dict[str, Any] = {"dtypes": list(self.dtypes), "algorithm": self.algorithm, **self.features}
        if any(is_half(d) for d in self.dtypes):
            out["accumulate"] = self.accumulate
        if self.synchronize is not None:
            out["synchronize"] = callable_name(self.synchronize)
        if self.contract is not None:
            out["contract"] = self.contract
        if self.predicate is not None:
            out[PREDICATE_FEATURE] = callable_name(self.predicate)
        return out


FULL = Capabilities()
"""The full contract: what strict mode checks whatever a module declares."""

DIRECTIONS = ("forward", "backward")
FORWARD_ONLY_PROPERTIES = frozenset({"forward"})
"""Properties that call an operation's forward alone: a per-direction declaration gives them its
forward level; every other property calls the backward and gets the backward's."""
FORWARD_ONLY = "forward"
"""The short per-direction declaration: the forward supports the feature, the backward does not."""


def is_per_direction(value: Any) -> bool:
    """Whether a declared value is the normalised per-direction form ``{"forward": .., "backward": ..}``."""
    return isinstance(value, Mapping) and set(value) == set(DIRECTIONS)


def by_direction(value: Any, direction: str | None) -> Any:
    """A declared value in ``direction``: a per-direction value's forward level for ``"forward"``,
    its backward level otherwise; any other value as it is."""
    if not is_per_direction(value):
        return value
    return value["forward"] if direction == "forward" else value["backward"]


def describe_directions(feature: Feature, value: Mapping[str, Any]) -> Any:
    """How the summary and the report name a per-direction declaration: ``"forward only"`` when the
    forward has the full feature and the backward none of it, else both levels."""
    if value["forward"] == feature.full and value["backward"] == feature.choices[0]:
        return "forward only"
    if value["forward"] == value["backward"]:
        return value["forward"]
    return f"forward {value['forward']!r}, backward {value['backward']!r}"


def per_direction(feature: Feature, value: Any, where: str) -> Any:
    """A support feature declared per direction, normalised to ``{"forward": level, "backward": level}``
    (``"forward"`` is the forward's full level and the backward's lowest); other values unchanged.
    ``CapabilityError`` for a malformed per-direction form."""
    if feature.kind != "support" or not (value == FORWARD_ONLY or isinstance(value, Mapping)):
        return value
    if value == FORWARD_ONLY:
        return {"forward": feature.full, "backward": feature.choices[0]}
    levels = list(feature.choices)
    if set(value) != set(DIRECTIONS) or not all(
        value[d] in levels and type(value[d]) is type(levels[0]) for d in DIRECTIONS
    ):
        raise CapabilityError(
            f"{where}={dict(value)!r} must give a level of {levels} for each of 'forward' and 'backward'"
        )
    return {d: value[d] for d in DIRECTIONS}


def callable_name(fn: Callable[..., Any]) -> str:
    """``module.qualname`` of a function (what ``to_dict`` shows for ``synchronize``)."""
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return f"{module}.{name}" if module else name


def resolve_synchronize(value: Any, where: str) -> Callable[[], Any] | None:
    """The ``synchronize`` hook: a callable as given, or a dotted path imported now; ``None`` stays ``None``."""
    if value is None or callable(value):
        hook: Callable[[], Any] | None = value
        return hook
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
        resolved: Callable[[], Any] = obj
        return resolved
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
    dtypes = raw.get("dtypes", FULL_DTYPES)
    if isinstance(dtypes, str) or not all(d in DTYPES for d in dtypes) or not dtypes:
        raise CapabilityError(
            f"{where}['dtypes']={dtypes!r} must be a non-empty list drawn from {list(DTYPES)}"
        )
    accumulate = raw.get("accumulate", DEFAULT_ACCUMULATE)
    if accumulate not in ACCUMULATE_CHOICES:
        raise CapabilityError(
            f"{where}['accumulate']={accumulate!r} must be one of {list(ACCUMULATE_CHOICES)} "
            "(float32 sums, or sums kept in the half storage dtype)"
        )
    contract = raw.get("contract")
    if contract is not None and contract not in CONTRACT_NAMES:
        raise CapabilityError(f"{where}['contract']={contract!r} must be one of {list(CONTRACT_NAMES)}")
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
            feature = op.feature(key)
            if per_direction(feature, value, f"{where}[{op.name!r}][{key!r}]") is not value:
                continue  # a per-direction declaration, checked there
            if not feature.valid(value):
                expected = feature.doc if feature.accepts else f"one of {list(feature.choices)}"
                raise CapabilityError(f"{where}[{op.name!r}][{key!r}]={value!r} must be {expected}")
        features[op.name] = {
            k: per_direction(op.feature(k), v, f"{where}[{op.name!r}][{k!r}]") for k, v in section.items()
        }
    return Capabilities(
        dtypes=tuple(d for d in DTYPES if d in dtypes),
        algorithm=algorithm,
        accumulate=accumulate,
        features={k: v for k, v in features.items() if v},
        declared=True,
        synchronize=resolve_synchronize(raw.get("synchronize"), where),
        contract=contract,
        predicate=resolve_predicate(raw.get("supports"), where),
    )


def resolve_predicate(value: Any, where: str) -> Callable[[str, Any], Any] | None:
    """The ``supports`` predicate as declared (a callable of ``(op_name, params)``), or ``None``."""
    if value is None or callable(value):
        predicate: Callable[[str, Any], Any] | None = value
        return predicate
    raise CapabilityError(
        f"{where}['supports']={value!r} must be a function supports(op_name, params) -> bool | str"
    )

"""What ``convcheck.check`` was given, turned into something the engine's ``--impl`` can name.

* a ``str`` or path: exactly what ``--impl`` takes (a relative path is taken
  relative to the caller's working folder);
* an importable module object: its import name (the folder it was imported
  from goes on the worker's path); a loose module file: its path;
* ``__main__``, a ``globals()`` dict, any other mapping or object: its contract
  functions (or CS231n-style functions, adapted with ``from_cs231n`` inside the
  module) captured into a module file in a temporary folder (``capture``), which
  the isolated worker then imports like any other file.

With ``isolation="none"`` nothing is captured: the functions are registered in
this process (``inprocess``) and run there.
"""

from __future__ import annotations

import difflib
import os
import re
import tempfile
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import MisspeltName, NoContractFunctions, UnusableTarget

CAPABILITIES_NAME = "CONVCHECK_CAPABILITIES"
CLOSE_ENOUGH = 0.85
"""How alike (``difflib`` ratio) a name must be to a contract name to be taken for a misspelling."""
LENGTH_SLACK = 2
"""At most this many characters more or fewer than the contract name it resembles: a typo, not
another function (``affine_relu_backward`` is not a misspelt ``affine_backward``)."""


def contract_names() -> tuple[str, ...]:
    from ..spec import FUNCTION_NAMES

    return tuple(FUNCTION_NAMES)


def cs231n_names() -> tuple[str, ...]:
    """The CS231n-style function names ``from_cs231n`` adapts."""
    from ..impls.adapters import cs231n_names as names

    return names()


def is_cs231n_style(defined: list[str]) -> bool:
    """Whether a target defining ``defined`` is adapted with ``from_cs231n`` (the registry's rule)."""
    from ..impls.adapters import is_cs231n_style as rule

    return rule(defined)


@dataclass
class Namespace:
    """The functions found in a mapping or object target: ``functions`` (contract names, or the
    CS231n names when ``cs231n``), ``capabilities`` (its declaration, if any) and a ``label``."""

    label: str
    functions: dict[str, Any]
    capabilities: Any = None
    cs231n: bool = False
    version: str | None = None


@dataclass
class Resolved:
    """The ``--impl`` string the engine runs, and what must outlive the run for it to stay valid."""

    spec: str
    label: str
    paths: list[str] = field(default_factory=list)
    folder: str | None = None
    module_file: str | None = None
    namespace: Namespace | None = None


def _members(target: Any) -> dict[str, Any]:
    """The names a mapping or object offers, with their values (``_`` names left out)."""
    if isinstance(target, Mapping):
        items = {str(k): v for k, v in target.items()}
    else:
        items = {}
        for name in dir(target):
            if name.startswith("__"):
                continue
            try:
                items[name] = getattr(target, name)
            except Exception:  # a property that raises: not a function of the contract
                continue
    return {k: v for k, v in items.items() if not k.startswith("_") or k == CAPABILITIES_NAME}


def _label(target: Any) -> str:
    if isinstance(target, types.ModuleType):
        return "notebook" if target.__name__ == "__main__" else target.__name__.rsplit(".", 1)[-1]
    if isinstance(target, Mapping):
        return "notebook" if target.get("__name__") == "__main__" else "functions"
    return re.sub(r"\W+", "_", type(target).__name__).lower() or "functions"


def _misspelt(members: dict[str, Any], known: tuple[str, ...]) -> tuple[str, str] | None:
    """A callable member whose name is close to, but not, a known function name absent from the target."""
    for name, value in members.items():
        if name in known or not callable(value) or isinstance(value, type):
            continue
        close = [
            c
            for c in difflib.get_close_matches(name, known, n=3, cutoff=CLOSE_ENOUGH)
            if abs(len(c) - len(name)) <= LENGTH_SLACK
        ]
        if close and close[0] not in members:
            return name, close[0]
    return None


def namespace_of(target: Any) -> Namespace:
    """The contract (or CS231n-style) functions of a mapping, module or object.

    ``MisspeltName`` for a callable whose name is one edit or so away from a contract name the
    target lacks (naming both); ``NoContractFunctions`` when there is none at all."""
    members = _members(target)
    contract, cs231n = contract_names(), cs231n_names()
    found = {n: members[n] for n in contract if callable(members.get(n))}
    course = {n: members[n] for n in cs231n if callable(members.get(n))}
    use_cs231n = is_cs231n_style([*found, *course])
    typo = _misspelt(members, tuple(dict.fromkeys([*contract, *cs231n])))
    if typo is not None:
        name, meant = typo
        raise MisspeltName(
            f"{name!r} is not a contract function; did you mean {meant!r}? (rename it, or check the "
            f"functions under their contract names)"
        )
    functions = course if use_cs231n else found
    if not functions:
        raise NoContractFunctions(
            f"{_label(target)} has none of the contract functions ({', '.join(contract)}) and none of "
            f"the CS231n-style ones ({', '.join(cs231n)}); define at least one, e.g. "
            "conv2d_forward(x, w, b, *, stride, padding, dilation, groups)"
        )
    version = members.get("__version__") if isinstance(members.get("__version__"), str) else None
    return Namespace(_label(target), functions, members.get(CAPABILITIES_NAME), use_cs231n, version)


def _module_spec(module: types.ModuleType) -> Resolved | None:
    """An importable module by name (its folder on the worker's path), a loose file by path."""
    from .capture import import_root, importable_module

    if module.__name__ == "__main__":
        return None
    file = getattr(module, "__file__", None)
    if importable_module(module.__name__):
        root = import_root(module)
        return Resolved(module.__name__, _label(module), paths=[root] if root else [])
    if file and file.endswith(".py") and os.path.isfile(file):
        return Resolved(os.path.abspath(file), Path(file).stem)
    return None


def resolve(target: Any, *, name: str | None = None) -> Resolved:
    """What the isolated worker loads for ``target`` (see the module's docstring)."""
    if isinstance(target, str | os.PathLike):
        from ..impls.registry import absolute

        spec = os.fspath(target)
        if not isinstance(spec, str) or not spec.strip():
            raise UnusableTarget(
                f"an empty implementation name ({target!r}); give a path, a module or a name"
            )
        parts = [absolute(p, os.getcwd()) for p in spec.split(",") if p.strip()]
        return Resolved(",".join(parts), spec, paths=[r for p in parts if (r := _name_root(p))])
    if isinstance(target, types.ModuleType):
        resolved = _module_spec(target)
        if resolved is not None:
            namespace_of(target)  # the same messages for a module object as for a mapping
            return resolved
    if not isinstance(target, Mapping | types.ModuleType) and _is_plain_value(target):
        raise UnusableTarget(
            f"cannot check a {type(target).__name__}: give a module, a path or importable name (str), "
            "a mapping or object whose keys/attributes are contract functions, or globals()"
        )
    namespace = namespace_of(target)
    if name:
        namespace.label = name
    return write_captured(namespace)


def _name_root(spec: str) -> str | None:
    """For ``module[:attr]`` importable in this process, the folder a fresh interpreter needs on its
    path to import it too (``None`` for a path, a shipped name or an installed module)."""
    import importlib.util

    from .capture import outside_installation

    module = spec.partition(":")[0]
    if (
        not module
        or module.split(".")[0] == "convcheck"
        or module.endswith(".py")
        or os.sep in module
        or module.startswith(("buggy.", "in-process:"))
    ):
        return None
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if found is None or not found.origin or not os.path.isfile(found.origin):
        return None
    path = Path(found.origin).resolve()
    depth = module.count(".") + (1 if path.name == "__init__.py" else 0)
    return outside_installation(path.parents[depth])


def _is_plain_value(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | complex | bytes | list | tuple | set)


def captured_text(namespace: Namespace) -> tuple[str, list[str]]:
    """The source of a module defining ``namespace``'s functions, and the folders it imports from."""
    from .capture import capture

    constants = {} if namespace.capabilities is None else {CAPABILITIES_NAME: namespace.capabilities}
    if namespace.version:
        constants["__version__"] = namespace.version
    captured = capture(namespace.functions, constants)
    header = (
        f"{namespace.label}: captured by convcheck.check from the caller's process. Each function is "
        "its source at the time of the call, with the globals it reads."
    )
    footer = ""
    if namespace.cs231n:
        names = ", ".join(repr(n) for n in [*namespace.functions, *constants])
        footer = (
            "# CS231n-style functions: adapted to the contract (convcheck.impls.adapters.from_cs231n).\n"
            "from convcheck.impls.adapters import exports as _convcheck_exports\n"
            "from convcheck.impls.adapters import from_cs231n as _convcheck_from_cs231n\n\n"
            "globals().update(_convcheck_exports(_convcheck_from_cs231n("
            f"{{_n: globals()[_n] for _n in ({names},)}})))"
        )
    return captured.text(header, footer), captured.roots


def write_captured(namespace: Namespace) -> Resolved:
    """Write the captured module into a fresh temporary folder (``check`` removes it with the result)."""
    text, roots = captured_text(namespace)
    folder = tempfile.mkdtemp(prefix="convcheck-captured-")
    stem = re.sub(r"\W+", "_", namespace.label).strip("_") or "functions"
    path = Path(folder) / f"{stem}.py"
    path.write_text(text, encoding="utf-8")
    return Resolved(str(path), stem, paths=roots, folder=folder, module_file=str(path), namespace=namespace)


__all__ = ["Namespace", "Resolved", "captured_text", "namespace_of", "resolve", "write_captured"]

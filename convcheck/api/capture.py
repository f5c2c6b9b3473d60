"""Writing functions that live only in this process (a notebook's cells) into a module file.

The isolated worker is a fresh interpreter: it can import a module, not reach
into the caller's ``__main__``. ``capture(functions, extra)`` writes a module
that rebuilds the given functions there:

* a function of an importable module is imported by name;
* a function defined in ``__main__`` (a notebook cell, a script, code compiled
  from text registered in ``linecache`` as IPython does) is written as its
  source, together with the transitive closure of the globals it reads: other
  such functions and classes by source, modules as ``import x as alias``,
  objects of importable modules as ``from m import name as alias``, and plain
  constants (numbers, strings, ``None``, tuples, lists, dicts and sets of them,
  small NumPy arrays) by value.

Anything else (a lambda or closure whose source does not stand alone, an
object with no source and no importable home) raises ``NotCapturable`` naming
it. The captured module holds what the functions read when ``check`` was
called: a global changed afterwards is not seen.
"""

from __future__ import annotations

import ast
import dis
import inspect
import sys
import textwrap
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import NotCapturable

ARRAY_LIMIT = 100_000
"""Most elements of a NumPy array global written into a captured module by value."""

_HINT = 'or check it in this process with convcheck.check(..., isolation="none")'


def importable_home(obj: Any) -> tuple[str, str] | None:
    """``(module, qualified name)`` where a fresh interpreter finds ``obj`` by import, or ``None``."""
    module_name = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if not module_name or not qualname or "<" in qualname or not importable_module(module_name):
        return None
    found: Any = sys.modules[module_name]
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return (module_name, qualname) if found is obj else None


def importable_module(name: str) -> bool:
    """Whether module ``name`` (imported here) can be imported by that name elsewhere."""
    module = sys.modules.get(name)
    if module is None or name == "__main__":
        return False
    spec = getattr(module, "__spec__", None)
    return spec is not None and spec.name == name


def import_root(module: types.ModuleType) -> str | None:
    """The folder a fresh interpreter needs on its path to import ``module`` by name (``None`` for
    a built-in module or one installed in a standard location)."""
    file = getattr(module, "__file__", None)
    if not file or module.__name__.split(".")[0] == "convcheck":  # the worker imports convcheck anyway
        return None
    path = Path(file).resolve()
    depth = module.__name__.count(".") + (1 if path.name == "__init__.py" else 0)
    return outside_installation(path.parents[depth])


def outside_installation(folder: Path) -> str | None:
    """``folder`` as a string, or ``None`` when a fresh interpreter has it on its path anyway (an
    installation's site-packages or standard library)."""
    text = str(folder)
    if "site-packages" in text or "dist-packages" in text or text.startswith(sys.base_prefix):
        return None
    return text


def _plain_constant(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | complex | str | bytes):
        return True
    if isinstance(value, tuple | list | set | frozenset):
        return all(_plain_constant(v) for v in value)
    if isinstance(value, dict):
        return all(_plain_constant(k) and _plain_constant(v) for k, v in value.items())
    return False


def _global_names(code: types.CodeType) -> set[str]:
    """Names a code object (and the code nested in it) reads or writes as globals."""
    names = {
        i.argval
        for i in dis.get_instructions(code)
        if i.opname in ("LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL")
    }
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _definition_names(source: str) -> set[str]:
    """Names a ``def`` or ``class`` statement evaluates when it runs: decorators, default values,
    annotations left unevaluated aside, base classes and keywords."""
    node = ast.parse(source).body[0]
    parts: list[ast.AST] = list(getattr(node, "decorator_list", []))
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        parts += [*node.args.defaults, *[d for d in node.args.kw_defaults if d is not None]]
    elif isinstance(node, ast.ClassDef):
        parts += [*node.bases, *(k.value for k in node.keywords)]
    return {n.id for part in parts for n in ast.walk(part) if isinstance(n, ast.Name)}


@dataclass
class Captured:
    """A module's text being assembled: imports, constants, then definitions."""

    imports: dict[str, str] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    definitions: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    roots: list[str] = field(default_factory=list)
    needs_numpy: bool = False

    def text(self, header: str, footer: str = "") -> str:
        lines = [f'"""{header}"""', ""]
        if self.needs_numpy:
            lines.append("import numpy as _convcheck_np")
        lines += list(self.imports.values())
        lines += ["", *self.constants.values(), ""]
        for source in self.definitions.values():
            lines += [source.rstrip(), "", ""]
        return "\n".join(lines).rstrip() + "\n" + (f"\n{footer}\n" if footer else "")


def _source_of(obj: Any, name: str) -> str:
    """The stand-alone source of a top-level function or class defined in this process."""
    what = "function" if callable(obj) and not isinstance(obj, type) else "class"
    qualname = getattr(obj, "__qualname__", "")
    if getattr(obj, "__name__", "") == "<lambda>":
        raise NotCapturable(
            f"{name!r} is a lambda, whose source does not stand alone; define it with def, {_HINT}"
        )
    if "<locals>" in qualname or (isinstance(obj, types.FunctionType) and obj.__closure__):
        raise NotCapturable(
            f"{name!r} is a {what} defined inside another function (a closure), which cannot be sent "
            f"to the isolated worker; define it at the top level of a cell, {_HINT}"
        )
    try:
        source = _class_source(obj) if isinstance(obj, type) else None
        source = textwrap.dedent(source or inspect.getsource(obj))
    except (OSError, TypeError, SyntaxError):
        raise NotCapturable(
            f"the source of {what} {name!r} is not available (defined with exec, or in a cell whose "
            f"history was cleared?); put it in a .py file and check that, {_HINT}"
        ) from None
    return source


def _class_source(cls: type) -> str | None:
    """A class's source found through its methods' code, which knows its file (a notebook cell's name
    in ``linecache``), where ``inspect.getsource`` looks in ``__main__.__file__`` and fails."""
    import linecache

    for fn in _functions_in(cls):
        filename, first = fn.__code__.co_filename, fn.__code__.co_firstlineno
        lines = linecache.getlines(filename)
        if not lines:
            continue
        for node in ast.parse("".join(lines)).body:
            end = node.end_lineno or node.lineno
            if isinstance(node, ast.ClassDef) and node.name == cls.__name__ and node.lineno <= first <= end:
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                return "".join(lines[start - 1 : end])
    return None


class _Capturer:
    """Walks the globals the captured functions read, adding each to ``out`` once."""

    def __init__(self) -> None:
        self.out = Captured()
        self.seen: dict[str, Any] = {}

    def add(self, name: str, value: Any, where: str) -> None:
        """Make ``name`` mean ``value`` in the captured module (``where``: for the messages)."""
        if name in self.seen:
            if self.seen[name] is not value:
                raise NotCapturable(
                    f"two captured functions read different values under the name {name!r}; rename "
                    f"one, {_HINT}"
                )
            return
        self.seen[name] = value
        if isinstance(value, types.ModuleType):
            self._module(name, value)
        elif isinstance(value, types.FunctionType | type):
            home = importable_home(value)
            if home is not None:
                self._import_from(name, *home)
            else:
                self._definition(name, value)
        elif _plain_constant(value):
            self.out.constants[name] = f"{name} = {value!r}"
        elif _small_array(value):
            self.out.needs_numpy = True
            self.out.constants[name] = (
                f"{name} = _convcheck_np.array({value.tolist()!r}, dtype={str(value.dtype)!r})"
            )
        else:
            home = importable_home(value)
            if home is None:
                raise NotCapturable(
                    f"{name!r} (read by {where}) is a {type(value).__name__} that cannot be written into "
                    f"the module the isolated worker imports: not a function or class with source, not "
                    f"importable, not a plain constant; {_HINT}"
                )
            self._import_from(name, *home)

    def _module(self, name: str, module: types.ModuleType) -> None:
        if not importable_module(module.__name__):
            raise NotCapturable(
                f"{name!r} is the module {module.__name__}, which a fresh interpreter cannot import; {_HINT}"
            )
        self._root(module)
        spelled = module.__name__
        self.out.imports[name] = f"import {spelled}" if spelled == name else f"import {spelled} as {name}"

    def _import_from(self, name: str, module_name: str, qualname: str) -> None:
        self._root(sys.modules[module_name])
        head, _, rest = qualname.partition(".")
        if rest:  # a nested attribute (a class's static method): import the head, then look it up
            self.out.imports[name] = f"from {module_name} import {head} as _convcheck_{name}"
            self.out.constants[name] = f"{name} = _convcheck_{name}.{rest}"
        else:
            alias = "" if head == name else f" as {name}"
            self.out.imports[name] = f"from {module_name} import {head}{alias}"

    def _root(self, module: types.ModuleType) -> None:
        root = import_root(module)
        if root and root not in self.out.roots:
            self.out.roots.append(root)

    def _definition(self, name: str, obj: Any) -> None:
        source = _source_of(obj, name)
        defined = obj.__name__
        self.out.definitions[name] = source + (f"\n{name} = {defined}\n" if defined != name else "")
        if defined != name:
            self.seen.setdefault(defined, obj)
        namespace = _globals_of(obj)
        wanted = _definition_names(source)
        for fn in _functions_in(obj):
            wanted |= _global_names(fn.__code__)
        for ref in sorted(wanted - {defined}):
            if ref in namespace:
                self.add(ref, namespace[ref], f"{obj.__qualname__}")
            elif not _builtin(ref) and ref not in self.seen:
                pass  # a name defined nowhere yet: the function would raise NameError here too


def _builtin(name: str) -> bool:
    import builtins

    return hasattr(builtins, name)


def _small_array(value: Any) -> bool:
    np = sys.modules.get("numpy")
    return (
        np is not None
        and isinstance(value, np.ndarray)
        and value.size <= ARRAY_LIMIT
        and value.dtype.kind in "biuf"
    )


def _globals_of(obj: Any) -> dict[str, Any]:
    if isinstance(obj, types.FunctionType):
        return obj.__globals__
    module = sys.modules.get(getattr(obj, "__module__", ""), None)
    methods = _functions_in(obj)
    if methods:
        return methods[0].__globals__
    return vars(module) if module is not None else {}


def _functions_in(obj: Any) -> list[types.FunctionType]:
    """A function itself, or a class's methods (plain, static and class methods, properties)."""
    if isinstance(obj, types.FunctionType):
        return [obj]
    found: list[types.FunctionType] = []
    for member in vars(obj).values():
        for candidate in (member, getattr(member, "__func__", None), getattr(member, "fget", None)):
            if isinstance(candidate, types.FunctionType):
                found.append(candidate)
    return found


def capture(functions: dict[str, Any], constants: dict[str, Any] | None = None) -> Captured:
    """Capture ``functions`` (name -> function, the names the module must define) and
    ``constants`` (name -> plain value, e.g. ``CONVCHECK_CAPABILITIES``). ``NotCapturable``
    naming what cannot be captured."""
    capturer = _Capturer()
    for name, value in (constants or {}).items():
        if not _plain_constant(value):
            raise NotCapturable(
                f"{name} must be plain data (dicts, lists, strings, numbers); it is a {type(value).__name__}"
            )
        capturer.add(name, value, name)
    for name, fn in functions.items():
        capturer.add(name, fn, name)
    capturer.out.values = dict(capturer.seen)
    return capturer.out


__all__ = ["ARRAY_LIMIT", "Captured", "capture", "import_root", "importable_home", "importable_module"]

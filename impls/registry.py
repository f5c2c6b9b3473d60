"""Finding, loading and validating implementations.

An implementation is named by one of:

- a shipped name (``numpy_reference``, ``numpy_fast``, ``torch``, or
  ``buggy.<name>`` for the deliberately broken ones), or a framework adapter's
  (``torch_functional``, ``jax_lax``: a library's own kernels, ``FRAMEWORKS``);
- a path to a ``.py`` file, or to a Jupyter notebook (``.ipynb``: its code cells run
  in order, IPython magics dropped; see ``convcheck.notebook``);
- an importable ``module`` or ``module:attribute`` (the attribute may be any
  object exposing the contract functions, e.g. an adapter's namespace);
- the name of an entry point in the ``convcheck.implementations`` group, which
  installed packages use to register themselves.

The ``--impl`` option (pytest and CLI) and the ``CONVCHECK_IMPL`` environment
variable take these forms. Loading validates the module against the contract at
once (pluggy's rule: reject a malformed plug-in at registration, not halfway
through a run).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ..spec import FUNCTION_NAMES, OPERATIONS, Capabilities, ContractError, parse_capabilities

ENV_VAR = "CONVCHECK_IMPL"
ENTRY_POINT_GROUP = "convcheck.implementations"
DISABLE_PLUGINS_ENV = "CONVCHECK_NO_PLUGINS"

SHIPPED = {
    "numpy_reference": "convcheck.impls.numpy_reference",
    "numpy_fast": "convcheck.impls.numpy_fast",
    "torch": "convcheck.impls.torch_backed",
}
"""Correct shipped implementations by short name."""

FRAMEWORKS = {
    "torch_functional": ("convcheck.impls.torch_functional", "torch", ""),
    "jax_lax": ("convcheck.impls.jax_lax", "jax", "jax"),
}
"""Adapters that check a framework's own kernels, by short name: ``(module, the library it needs, the
convcheck extra that installs it)``. They declare what the framework does not do, so unlike ``SHIPPED``
they are not the full contract."""

FILE_SUFFIXES = (".py", ".ipynb")
"""Suffixes of the files ``load`` takes as a path: a module, or a notebook run as one."""


def is_file_source(source: str) -> bool:
    """Whether an ``Implementation.source`` names a file (so ``load`` of its path loads it again)."""
    return source.endswith(FILE_SUFFIXES)


@dataclass
class Implementation:
    """A loaded, validated implementation.

    ``functions`` maps each contract function the module exposes to the callable;
    ``capabilities`` is the parsed declaration (the full contract if none).
    """

    name: str
    source: str
    functions: dict[str, Any]
    capabilities: Capabilities
    version: str | None = None
    raw_capabilities: Any = None
    extras: dict[str, Any] = field(default_factory=dict)

    def provides(self, function_name: str) -> bool:
        return function_name in self.functions

    def operations(self) -> list[str]:
        """Operations with at least one function present."""
        return [op.name for op in OPERATIONS.values() if any(self.provides(f) for f in op.functions)]


def _signature_problem(name: str, fn: Any) -> str | None:
    """Why ``fn`` cannot be called as the contract's ``name``, or ``None``."""
    if not callable(fn):
        return f"{name} is a {type(fn).__name__}, not a function"
    op = next(o for o in OPERATIONS.values() if name in o.functions)
    n_arrays = len(op.inputs) + (1 if name == op.backward else 0)
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None  # builtins and C functions: trust them, calls will tell
    params = list(sig.parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in params):
        keywords_ok: list[str] = []
    else:
        names = {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
        keywords_ok = [h for h in op.hyperparameters if h not in names]
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    var_pos = any(p.kind is p.VAR_POSITIONAL for p in params)
    expected = op.signature(name)
    if keywords_ok:
        return f"{name}{sig} lacks keyword argument(s) {', '.join(keywords_ok)}; the contract is {expected}"
    if len(positional) < n_arrays and not var_pos:
        return f"{name}{sig} takes {len(positional)} array argument(s); the contract is {expected}"
    return None


def from_namespace(obj: Any, name: str, source: str) -> Implementation:
    """Validate an object exposing contract functions and wrap it as an ``Implementation``.

    CS231n-style code (``conv_forward_naive`` and friends, no contract function beyond the names
    both share: ``adapters.is_cs231n_style``) is adapted with ``adapters.from_cs231n`` first, as a
    plug-in module would do; the Python API decides by the same rule."""
    from .adapters import cs231n_names, from_cs231n, is_cs231n_style

    if is_cs231n_style(n for n in (*FUNCTION_NAMES, *cs231n_names()) if callable(getattr(obj, n, None))):
        obj = from_cs231n(obj)  # CS231n-style layers: adapted as a plug-in module would adapt them
    functions = {f: getattr(obj, f) for f in FUNCTION_NAMES if getattr(obj, f, None) is not None}
    if not functions:
        raise ContractError(
            f"{source} exposes none of the contract functions ({', '.join(FUNCTION_NAMES)}); "
            "define at least one, e.g. conv2d_forward(x, w, b, *, stride, padding, dilation, groups)"
        )
    problems = [p for f, fn in functions.items() if (p := _signature_problem(f, fn))]
    if problems:
        raise ContractError(f"{source}: {problems[0]}")
    raw = getattr(obj, "CONVCHECK_CAPABILITIES", None)
    caps = parse_capabilities(raw, where=f"{source}: CONVCHECK_CAPABILITIES")
    version = getattr(obj, "__version__", None)
    return Implementation(name, source, functions, caps, version, raw)


def _import_path(path: Path) -> ModuleType:
    """Import a ``.py`` file, or run a notebook's cells, under a private module name, with its folder
    importable (so a submission may import its own helper modules)."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    mod_name = f"convcheck_impl_{path.stem}_{digest}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    folder = str(path.resolve().parent)
    if path.suffix.lower() == ".ipynb":
        if folder not in sys.path:
            sys.path.insert(0, folder)
        return _run_notebook(path, mod_name)
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ContractError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        del sys.modules[mod_name]
        raise ContractError(f"{path}:{e.lineno}: syntax error: {e.msg}") from None
    except Exception as e:
        del sys.modules[mod_name]
        raise ContractError(f"importing {path} raised {type(e).__name__}: {e}") from None
    return module


def _run_notebook(path: Path, mod_name: str) -> ModuleType:
    """A module made from a notebook's code cells (``convcheck.notebook``); its errors name the cell."""
    from ..notebook import run_into

    module = ModuleType(mod_name)
    sys.modules[mod_name] = module
    try:
        run_into(path, module)
    except BaseException:
        del sys.modules[mod_name]
        raise
    return module


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    if os.environ.get(DISABLE_PLUGINS_ENV):
        return {}
    found: Any = importlib.metadata.entry_points()
    # Python 3.9 (a worker under --python) returns a dict of groups; 3.10+ selects by keyword.
    group = (
        found.select(group=ENTRY_POINT_GROUP)
        if hasattr(found, "select")
        else found.get(ENTRY_POINT_GROUP, [])
    )
    return {ep.name: ep for ep in group}


def available() -> list[str]:
    """Every name ``load`` accepts without a path: shipped, buggy and entry points."""
    from .buggy import BUGGY

    return [*SHIPPED, *FRAMEWORKS, *(f"buggy.{b}" for b in BUGGY), *sorted(_entry_points())]


IN_PROCESS_PREFIX = "in-process:"
"""Names ``register_in_process`` hands out: they resolve only in the process that registered them."""
_IN_PROCESS: dict[str, tuple[Any, str, str]] = {}


def register_in_process(obj: Any, name: str, source: str) -> str:
    """Make ``obj`` (an object exposing contract functions) loadable by ``load`` in this process, under
    the returned name (``in-process:<name>#<n>``): the Python API's ``isolation="none"``, which hands
    the engine functions that no other process can import. ``unregister_in_process`` forgets it."""
    key = f"{IN_PROCESS_PREFIX}{name.replace(',', '_')}#{len(_IN_PROCESS) + 1}"
    while key in _IN_PROCESS:
        key += "+"
    _IN_PROCESS[key] = (obj, name, source)
    return key


def unregister_in_process(key: str) -> None:
    _IN_PROCESS.pop(key, None)


def load(spec: str) -> Implementation:
    """Load an implementation from any of the forms in the module docstring.

    Raises ``ContractError`` with a one-line message for anything that cannot be
    loaded or does not follow the contract.
    """
    spec = spec.strip()
    if not spec:
        raise ContractError("empty implementation name; give a shipped name, a .py path or module[:attr]")
    if spec in SHIPPED:
        return from_namespace(importlib.import_module(SHIPPED[spec]), spec, SHIPPED[spec])
    if spec in FRAMEWORKS:
        return _framework(spec)
    if spec.startswith(IN_PROCESS_PREFIX):
        if spec not in _IN_PROCESS:
            raise ContractError(
                f"{spec!r} names functions registered in another process (the Python API's "
                'isolation="none"); it cannot be loaded here'
            )
        held, name, source = _IN_PROCESS[spec]
        return from_namespace(held, name, source)
    if spec.startswith("buggy."):
        from .buggy import BUGGY

        bug = spec.removeprefix("buggy.")
        if bug not in BUGGY:
            raise ContractError(f"unknown buggy implementation {spec!r}; known: {', '.join(BUGGY)}")
        return from_namespace(importlib.import_module(f"convcheck.impls.buggy.{bug}"), spec, spec)
    path = Path(spec)
    if spec.endswith(FILE_SUFFIXES) or path.is_file():
        if not path.is_file():
            raise ContractError(f"no such file: {spec}")
        return from_namespace(_import_path(path), path.stem, str(path))
    eps = _entry_points()
    if spec in eps:
        try:
            loaded = eps[spec].load()
        except Exception as e:
            raise ContractError(f"entry point {spec!r} ({eps[spec].value}) failed to load: {e}") from None
        return from_namespace(loaded, spec, f"entry point {eps[spec].value}")
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and module_name.startswith(e.name):
            raise ContractError(
                f"unknown implementation {spec!r}: not a shipped name, a .py file, an entry point or an "
                f"importable module; shipped: {', '.join([*SHIPPED, *FRAMEWORKS])}"
            ) from None
        raise ContractError(f"importing {module_name} failed: {e}") from None
    except SyntaxError as e:
        raise ContractError(f"{e.filename}:{e.lineno}: syntax error: {e.msg}") from None
    except Exception as e:
        raise ContractError(f"importing {module_name} raised {type(e).__name__}: {e}") from None
    if attr:
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise ContractError(f"module {module_name} has no attribute {attr!r}") from None
    return from_namespace(obj, spec, spec)


def _framework(name: str) -> Implementation:
    """Load the framework adapter ``name`` (``FRAMEWORKS``); a missing library is a usage error that
    says how to install it."""
    module_name, library, extra = FRAMEWORKS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is None or e.name.split(".")[0] != library:
            raise
        install = f'python -m pip install -c constraints.txt -e ".[{extra}]"' if extra else library
        raise ContractError(
            f"{name} checks {library}, which is not installed; install it: {install}"
        ) from None
    except ValueError as e:  # a bad device setting, say
        raise ContractError(f"{name}: {e}") from None
    return from_namespace(module, name, module_name)


def absolute(spec: str, cwd: str | None = None) -> str:
    """``spec`` with a file path made absolute against ``cwd`` (the caller's working folder).

    Paths are resolved where the user typed them, before anything changes folder:
    the isolated worker runs in a scratch folder of its own, where a relative path
    would name nothing. Other forms (shipped names, modules, entry points) pass unchanged.
    """
    spec = spec.strip()
    if not spec or spec in SHIPPED or spec in FRAMEWORKS or spec.startswith(("buggy.", IN_PROCESS_PREFIX)):
        return spec
    path = Path(cwd or os.getcwd()) / spec
    if Path(spec).is_absolute() or not path.is_file():
        return spec  # a missing file keeps the name as typed, for the error message
    return os.path.normpath(path)


def requested(cli_value: str | None = None, cwd: str | None = None) -> list[str]:
    """The implementation names asked for: the option, else ``CONVCHECK_IMPL``, comma-separated.

    File paths (``.py``, ``.ipynb``) come back absolute (see ``absolute``).
    """
    raw = cli_value or os.environ.get(ENV_VAR, "")
    return [absolute(s, cwd) for s in (part.strip() for part in raw.split(",")) if s]

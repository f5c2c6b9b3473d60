"""The modules of the ``convcheck`` package import one another without a cycle.

The graph covers every module installed under ``convcheck`` (the folders that
pyproject.toml's ``package-dir`` maps there: ``spec/``, ``oracles/``,
``impls/``, ``tests/``, ``corpus/``, and ``convcheck/`` with its sub-packages).
An edge is any import statement, at module level or inside a function, with
relative imports resolved; ``from package import name`` counts as importing the
sub-module ``name`` when there is one. A cycle means two parts lean on each
other, and a function-local import only hides it.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

KNOWN_CYCLES: frozenset[frozenset[str]] = frozenset()
"""Cycles (their sets of modules) tolerated for now. Nothing else may be added here."""


def package_folders() -> dict[str, Path]:
    """Every package of the distribution and its folder, from pyproject.toml."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapped = {name: ROOT / folder for name, folder in config["package-dir"].items()}
    out = {}
    for name in config["packages"]:
        parent = next(
            p for p in sorted(mapped, key=len, reverse=True) if name == p or name.startswith(p + ".")
        )
        out[name] = mapped[parent].joinpath(*name[len(parent) :].split(".")[1:])
    return out


def modules() -> dict[str, tuple[Path, bool]]:
    """Module name -> (source file, whether it is a package's ``__init__``)."""
    out = {}
    for package, folder in package_folders().items():
        for path in folder.glob("*.py"):
            init = path.name == "__init__.py"
            out[package if init else f"{package}.{path.stem}"] = (path, init)
    return out


def _targets(node: ast.Import | ast.ImportFrom, name: str, is_package: bool, known: set[str]) -> set[str]:
    """The package's modules one import statement of module ``name`` imports."""
    if isinstance(node, ast.Import):
        wanted = [alias.name for alias in node.names]
    else:
        if node.level:
            parts = name.split(".") if is_package else name.split(".")[:-1]
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join([*parts, *([node.module] if node.module else [])])
        else:
            base = node.module or ""
        wanted = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
    found = set()
    for target in wanted:
        while target and target not in known:  # ``import convcheck.spec.ops.x`` -> the nearest module
            target = target.rpartition(".")[0]
        if target:
            found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (anywhere in its source)."""
    found = modules()
    known = set(found)
    graph = {}
    for name, (path, is_package) in found.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                edges |= _targets(node, name, is_package, known)
        graph[name] = edges - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as one cycle
    through its modules, in order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_through(graph, c) for c in components]


def _cycle_through(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """One path from the component's first module back to itself, inside the component."""
    start = min(component)
    paths = {start: [start]}
    todo = [start]
    while todo:
        v = todo.pop(0)
        for w in sorted(graph[v] & component):
            if w == start:
                return [*paths[v], start]
            if w not in paths:
                paths[w] = [*paths[v], w]
                todo.append(w)
    return sorted(component)


def test_the_graph_sees_every_part_of_the_package():
    graph = import_graph()
    for name in ("convcheck.cli", "convcheck.spec.ops", "convcheck.oracles", "convcheck.tests.checks"):
        assert name in graph, f"{name} is missing from the import graph"
    # relative and function-local imports are edges: cli imports the plug-in's collector lazily
    assert "convcheck.summary" in graph["convcheck.cli"]
    assert "convcheck.spec.ops" in graph["convcheck.spec"]


def test_cycle_finder_finds_a_cycle_and_prints_its_path():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    found = [c for c in cycles(import_graph()) if frozenset(c) not in KNOWN_CYCLES]
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)

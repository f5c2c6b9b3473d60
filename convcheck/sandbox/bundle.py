"""The worker as a self-contained piece that another interpreter runs (``--python``).

The target environment has NumPy and the implementation's own imports, not convcheck. The client
therefore zips the modules the worker imports (``WORKER_MODULES``, and the shipped implementations
in ``WORKER_PACKAGES``) from this installation, laid out as the ``convcheck`` package, and starts
``python -I -c LAUNCH <zip> <worker arguments>``: the zip goes first on ``sys.path``, so these very
files run on both sides, one copy, and an older convcheck installed in the target cannot shadow
them. They keep to Python 3.9 and NumPy 1.21 (``per-file-target-version`` in pyproject.toml).
``-I`` keeps the parent's ``PYTHONPATH`` and user site out of the target; the folder convcheck was
started in is importable, as it is for ``python -m`` in the parent's own interpreter.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

WORKER_MODULES: tuple[str, ...] = (
    "convcheck",
    "convcheck.failure_keys",
    "convcheck.tether",
    "convcheck.notebook",
    "convcheck.sandbox",
    "convcheck.sandbox.limits",
    "convcheck.sandbox.wire",
    "convcheck.sandbox.worker",
    "convcheck.bench",
    "convcheck.bench.stats",
    "convcheck.bench.timing",
    "convcheck.spec",
    "convcheck.spec.activation",
    "convcheck.spec.capabilities",
    "convcheck.spec.conv",
    "convcheck.spec.dense",
    "convcheck.spec.dtypes",
    "convcheck.spec.errors",
    "convcheck.spec.loss",
    "convcheck.spec.ops",
    "convcheck.spec.params",
    "convcheck.spec.pool",
    "convcheck.spec.shapes",
    "convcheck.impls",
    "convcheck.impls._half",
    "convcheck.impls._windows",
    "convcheck.impls.adapters",
    "convcheck.impls.numpy_fast",
    "convcheck.impls.numpy_layers",
    "convcheck.impls.numpy_reference",
    "convcheck.impls.registry",
)
"""What the worker imports to load an implementation, validate it, run its calls and time them."""

WORKER_PACKAGES: tuple[str, ...] = ("convcheck.impls.buggy", "convcheck.impls.hostile")
"""Packages shipped whole: the planted implementations, loadable by name (``buggy.<name>``)."""

LAUNCH = (
    "import os, sys; sys.path[:0] = [sys.argv[1], os.getcwd()]; "
    "from convcheck.sandbox.worker import serve; serve(sys.argv[2:])"
)
"""The ``-c`` program: the zip, then the starting folder, on ``sys.path``; then the worker's loop."""


def _source(module: str) -> tuple[Path, bool]:
    """The file of ``module`` in this installation and whether it is a package's ``__init__``."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"convcheck's worker module {module} is not installed")
    return Path(spec.origin), spec.submodule_search_locations is not None


def _arcname(module: str, is_package: bool) -> str:
    parts = module.split(".")
    return "/".join([*parts, "__init__.py"] if is_package else parts) + ("" if is_package else ".py")


def build(dest: Path) -> Path:
    """Write the worker's zip to ``dest`` (a file path); return it."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as zf:
        for module in WORKER_MODULES:
            origin, is_package = _source(module)
            zf.write(origin, _arcname(module, is_package))
        for package in WORKER_PACKAGES:
            origin, _ = _source(package)
            prefix = package.replace(".", "/")
            for source in sorted(origin.parent.glob("*.py")):
                zf.write(source, f"{prefix}/{source.name}")
    os.chmod(dest, 0o444)
    return dest


_BUILT: list[Path] = []


def worker_zip() -> Path:
    """This process's worker zip, built on first use in a private temporary folder (removed at exit)."""
    if not _BUILT:
        folder = Path(tempfile.mkdtemp(prefix="convcheck-bundle-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _BUILT.append(build(folder / "convcheck-worker.zip"))
    return _BUILT[0]


def launch_argv(python: str, worker_args: list[str]) -> list[str]:
    """The command that runs the worker under ``python`` with ``worker_args`` (``worker.serve``)."""
    return [python, "-I", "-c", LAUNCH, str(worker_zip()), *worker_args]


__all__ = ["LAUNCH", "WORKER_MODULES", "WORKER_PACKAGES", "build", "launch_argv", "worker_zip"]

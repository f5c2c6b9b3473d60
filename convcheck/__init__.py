"""convcheck: property-based conformance checks and benchmarks for CNN backpropagation.

Installed, the project's folders live under this one name: ``convcheck.spec``
(what is right), ``convcheck.oracles`` (computes it independently),
``convcheck.impls`` (what gets checked) and ``convcheck.tests`` (the properties).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("convcheck")
    """The installed distribution's version: pyproject.toml holds it, once."""
except PackageNotFoundError:  # a source tree on sys.path without an install
    __version__ = "0+unknown"

_API = ("check", "CheckResult")
"""The Python API (``convcheck.api``), imported on first use: ``import convcheck`` stays cheap."""


def __getattr__(name: str) -> object:
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'convcheck' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])

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

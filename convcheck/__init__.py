"""convcheck: property-based conformance checks and benchmarks for CNN backpropagation.

Installed, the project's folders live under this one name: ``convcheck.spec``
(what is right), ``convcheck.oracles`` (computes it independently),
``convcheck.impls`` (what gets checked) and ``convcheck.tests`` (the properties).
"""

__version__ = "0.1.0"

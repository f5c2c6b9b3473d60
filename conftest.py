"""Run from a clone: `pytest` checks the implementation named by --impl (default numpy_fast)
with the conformance properties in tests/, and runs the project's own meta_tests/."""

pytest_plugins = ("convcheck.pytest_plugin",)

"""Implementations that try to win a verdict instead of earning it, and ones that break.

Every module here returns *wrong* conv2d results (or none at all) and, on top,
tries one way of subverting the run from inside its own process. With
isolation on (the default) each must fail honestly, the run must finish and the
report must stay intact; ``meta_tests/test_isolation.py`` checks exactly that.

``TAMPERING``: monkeypatching numpy, scipy, torch or convcheck; writing into the
report folder; printing fake pass lines; closing stdout; changing the working
directory; setting environment variables.

``BROKEN``: hanging, crashing the interpreter, exhausting memory or CPU, and
returning what the contract does not allow (a list, a torch tensor, ``None``,
the wrong number of outputs, NaN, an exception), and running torch on the
configuration that aborts it.
"""

TAMPERING = (
    "patch_numpy",
    "patch_scipy",
    "patch_torch",
    "patch_convcheck",
    "write_report",
    "fake_pass_lines",
    "close_stdout",
    "change_cwd_and_env",
)

BROKEN = (
    "hangs",
    "exits",
    "segfaults",
    "eats_memory",
    "burns_cpu",
    "returns_list",
    "returns_tensor",
    "returns_none",
    "wrong_output_count",
    "returns_nan",
    "raises",
    "torch_trap",
)

"""Plug-in: check the CS231n-style layers of cs231n_layers.py against the contract.

from_cs231n finds conv_forward_naive & co., wraps them in the contract's form and
declares what that API cannot express (CS231N_CAPABILITIES), so those cases are
reported as unsupported rather than failed.
"""

from pathlib import Path

from convcheck.impls.adapters import exports, from_cs231n

globals().update(exports(from_cs231n(Path(__file__).with_name("cs231n_layers.py"))))

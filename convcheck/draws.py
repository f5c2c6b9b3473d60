"""What decides hypothesis's draws in a convcheck run: the profile and the seed, nothing else.

Hypothesis mixes into its draws the literal constants of every *local* module that happens to be
imported when an example is generated (its "local constants" pool). In a convcheck run that pool
would change with things that have nothing to do with the cases: whether ``--report`` imported the
report modules, which tests an xdist worker ran before, whether convcheck is installed editable (its
modules count as local) or from a wheel (they do not). The same ``--seed`` would then draw other
cases on a colleague's machine, or when a report is asked for. ``pin()`` empties that pool for the
process, so a seed names the same cases everywhere; hypothesis's own built-in constants (0, the
powers of two, the float edges) are kept. The pool is the process's: in a pytest session that runs
a project's own hypothesis tests beside convcheck's plug-in, those draw without it too. The hook is internal to hypothesis (the version is pinned
in ``constraints.txt``); where it is missing ``pin()`` leaves hypothesis as it is and says so.
"""

from __future__ import annotations

import warnings


def pin() -> bool:
    """Stop hypothesis drawing from the constants of local modules (module docstring); True when
    done (or already done), False where this hypothesis has no such pool."""
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - hypothesis always ships it
        return False
    current = getattr(providers, "_get_local_constants", None)
    if current is None or not hasattr(providers, "CONSTANTS_CACHE"):
        warnings.warn(
            "convcheck: this hypothesis has no local-constants pool to pin; a seed's draws may "
            "depend on which modules are imported",
            stacklevel=2,
        )
        return False
    if getattr(current, "convcheck_pinned", False):
        return True
    empty = providers.Constants()

    def no_local_constants() -> providers.Constants:
        return empty

    no_local_constants.convcheck_pinned = True  # type: ignore[attr-defined]
    providers._get_local_constants = no_local_constants
    providers.CONSTANTS_CACHE.cache.clear()
    return True

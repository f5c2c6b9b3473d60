"""Deliberately broken implementations: each module holds one realistic mistake.

Every module exposes contract functions borrowed from
``convcheck.impls.numpy_reference`` and rewrites only the function(s) holding
the mistake, the way a student would have written them. The modules about the
2-D core (``conv_*``, ``maxpool_*``, ``avgpool_*``, ``dtype_promoted``) expose
its six functions; the others expose all thirty contract functions
(``spec.ops.FUNCTION_NAMES``, borrowed with ``_kit.borrow_correct``), so that
whole-network checks run on them too. Each module documents its mistake in its
docstring and defines:

``DIAGNOSIS``
    a short slug naming the mistake (e.g. ``"dx_kernel_not_flipped"``), or ``None`` for a module
    whose functions raise instead of returning a wrong value (nothing for a diagnosis to name);
``EXPECTED_FAILURES``
    ``"op:property"`` names of checks that must catch it (``conv2d:backward``,
    ``max_pool2d:max_routing``, ``avg_pool2d:hygiene``,
    ``softmax_cross_entropy:loss_stability``, ...).
``ALSO_DIAGNOSED`` (optional)
    in a module planting coexisting mistakes (``coexisting_*``), the slugs of the
    others, which the diagnosis must name after ``DIAGNOSIS``.

A ``two_defects_*`` module holds two mistakes under one property instead, to check that both are
reported (``meta_tests/test_distinct_failures.py``); its ``DIAGNOSIS`` names the one the
diagnosis catalogue knows, and it also defines ``DISTINCT_FAILURES``: for each check that fails
both ways, how each way is named in the reports (a part of ``convcheck.distinct.heading``).

The suite's meta-tests run the conformance tests against each of them and
assert that the expected checks fail (and that the correct implementations
pass). ``_kit`` holds the correct building blocks the modules share; it is not
an implementation.
"""

import pkgutil

BUGGY: tuple[str, ...] = tuple(
    sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
)
"""Every planted implementation: the modules of this package, found, not listed (``_kit`` and
other private modules are building blocks, not implementations)."""

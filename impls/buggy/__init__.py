"""Deliberately broken implementations: each module holds one realistic mistake.

Every module exposes all six contract functions; the correct ones are borrowed
from ``convcheck.impls.numpy_reference`` and only the function(s) holding the
mistake are rewritten, the way a student would have written them. Each module
documents its mistake in its docstring and defines:

``DIAGNOSIS``
    a short slug naming the mistake (e.g. ``"dx_kernel_not_flipped"``);
``EXPECTED_FAILURES``
    ``"op:property"`` names of checks that must catch it (``conv2d:backward``,
    ``max_pool2d:max_routing``, ``avg_pool2d:hygiene``, ...).

The suite's meta-tests run the conformance tests against each of them and
assert that the expected checks fail (and that the correct implementations
pass). ``_kit`` holds the correct building blocks the modules share; it is not
an implementation.
"""

BUGGY = (
    "conv_dx_kernel_not_flipped",
    "conv_dx_crop_ignores_padding",
    "conv_backward_ignores_stride",
    "conv_dw_batch_averaged",
    "conv_db_not_batch_summed",
    "conv_dw_axes_swapped",
    "conv_asymmetric_padding_as_symmetric",
    "conv_output_ceil",
    "conv_groups_ignored_backward",
    "conv_dilation_ignored_backward",
    "conv_flipped_kernel_forward",
    "maxpool_ties_to_every_max",
    "maxpool_ties_to_last",
    "maxpool_overlap_overwritten",
    "maxpool_pads_with_zeros",
    "avgpool_divisor_ignores_count_include_pad",
    "avgpool_ceil_overhang_counted",
    "avgpool_padding_ignored_in_backward",
    "avgpool_output_aliases_input",
    "dtype_promoted",
    "conv_input_modified_in_place",
    "conv_noncontiguous_wrong",
    "conv_nondeterministic",
)

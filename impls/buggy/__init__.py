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
    a short slug naming the mistake (e.g. ``"dx_kernel_not_flipped"``);
``EXPECTED_FAILURES``
    ``"op:property"`` names of checks that must catch it (``conv2d:backward``,
    ``max_pool2d:max_routing``, ``avg_pool2d:hygiene``,
    ``softmax_cross_entropy:loss_stability``, ...).

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
    "conv3d_dx_depth_not_flipped",
    "relu_derivative_at_zero",
    "tanh_backward_from_input",
    "linear_dw_batch_averaged",
    "flatten_wrong_order",
    "softmax_grad_missing_batch_mean",
    "softmax_unstable_logsumexp",
    "sigmoid_bce_unstable",
    "conv_one_column_reads_first_sample",
    "maxpool_dilated_pads_with_zeros",
    "avgpool_global_backward_stale_buffer",
)

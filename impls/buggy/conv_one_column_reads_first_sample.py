"""conv2d forward, float32: a fast path for one input channel and a one-column output reads sample 0
for every sample of the batch.

A hand-written float32 kernel for plain single-channel inputs (no padding, no dilation) whose
output is one column wide (the stride is 1 on one axis and 2 or more on the other: a tall, thin
output or a short, wide one) steps through the batch with a stride of zero, so every sample gets
sample 0's answer. Only batch >= 2, ``C_in == 1``, strides ``(1, >=2)`` or ``(>=2, 1)``,
``OW == 1``, no padding or dilation, in float32 take that path: a narrow region of small plain
geometries that random draws rarely land in, like the framework defect the small-scope sweep
was built for. Everything else, the backward pass included, is right.
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

DIAGNOSIS = "batch_reads_first_sample"
EXPECTED_FAILURES = ("conv2d:sweep",)

conv2d_backward = ref.conv2d_backward
max_pool2d_forward = ref.max_pool2d_forward
max_pool2d_backward = ref.max_pool2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def in_region(x_shape, stride, padding, dilation, out_shape, dtype) -> bool:
    """Whether the fast path (and so the mistake) applies: a plain geometry (no padding, no
    dilation) in the narrow region."""
    return (
        not any(padding)
        and max(dilation) == 1
        and x_shape[0] >= 2
        and x_shape[1] == 1
        and sorted(stride)[0] == 1
        and sorted(stride)[1] >= 2
        and out_shape[3] == 1
        and np.dtype(dtype) == np.float32
    )


def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
    y = ref.conv2d_forward(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    if in_region(x.shape, stride, padding, dilation, y.shape, x.dtype):
        first = ref.conv2d_forward(
            x[:1], w, b, stride=stride, padding=padding, dilation=dilation, groups=groups
        )
        y = np.repeat(first, x.shape[0], axis=0)  # BUG: the batch stride of the fast path is 0
    return y

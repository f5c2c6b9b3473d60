"""conv2d backward: ``db`` is summed over the output positions but averaged over the batch.

The student wrote ``db = dy.sum(axis=(2, 3)).mean(axis=0)``, treating the batch
axis as something to average. Each sample adds ``dy[n, co]`` summed over the
positions to ``db[co]``, so the batch must be summed: ``db`` is ``N`` times too
small whenever ``N > 1``. ``dx`` and ``dw`` are right.
"""

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "db_batch_averaged"
EXPECTED_FAILURES = (
    "conv2d:backward",
    "conv2d:bias_gradient",
    "conv2d:finite_differences",
    "conv2d:batch_independence",
)

conv2d_forward = ref.conv2d_forward
max_pool2d_forward = ref.max_pool2d_forward
max_pool2d_backward = ref.max_pool2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def conv2d_backward(dy, x, w, b, *, stride, padding, dilation, groups):
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    dx = _kit.conv_dx(dy, x.shape, w, **kwargs)
    dw = _kit.conv_dw(dy, x, w.shape, **kwargs)
    db = None
    if b is not None:
        db = dy.sum(axis=(2, 3)).mean(axis=0).astype(dy.dtype)  # BUG: the batch must be summed
    return dx, dw, db

"""conv2d backward with two defects: the taps ignore the stride, and the crop raises on high padding.

Two separate mistakes in one function, so that one property (``backward`` of ``dw``, and of
``dx``) fails in two distinct ways and must report both:

* the tap loop pairs ``dy`` with consecutive cells of the padded input,
  ``xp[..., a*dh : a*dh + OH, ...]``, instead of every ``stride``-th cell (as in
  ``buggy.conv_backward_ignores_stride``): ``dw`` and ``dx`` are wrong whenever a stride is
  above 1 and there is more than one output on that axis;
* the student crops the padding off ``dx`` with a row-by-row copy that runs over every
  row after the top padding, ``for i in range(t, dxp.shape[2])``, the bottom padding included
  (and likewise for the columns): an ``IndexError`` whenever the bottom or right padding is
  above 0, on every output, since it is raised before the function returns.

The forward pass and ``db`` are right.
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

from . import _kit
from .conv_backward_ignores_stride import padded_grads

DIAGNOSIS = "backward_ignores_stride"
EXPECTED_FAILURES = ("conv2d:backward", "conv2d:adjoint", "conv2d:finite_differences")
DISTINCT_FAILURES = {"conv2d:backward": ("values outside the tolerance", "raised IndexError")}
"""The checks that fail in two distinct ways, and how each way is named in the reports (a part of
its heading, ``convcheck.distinct.heading``): the values diagnosed as ``DIAGNOSIS``, then the crop's
exception."""

conv2d_forward = ref.conv2d_forward
max_pool2d_forward = ref.max_pool2d_forward
max_pool2d_backward = ref.max_pool2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def conv2d_backward(dy, x, w, b, *, stride, padding, dilation, groups):
    # the tap loop of buggy.conv_backward_ignores_stride: the first defect
    dxp, dw = padded_grads(dy, x, w, padding=padding, dilation=dilation, groups=groups)
    return _cropped(dxp, padding, x.shape), dw, _kit.conv_db(dy, b)


def _cropped(dxp, padding, x_shape):
    """``dx`` cut out of the padded input's gradient, one cell column at a time."""
    t, _, l, _ = padding
    dx = np.empty(x_shape, dtype=dxp.dtype)
    for i in range(t, dxp.shape[2]):  # BUG: runs into the bottom padding; stop at t + H
        for j in range(l, dxp.shape[3]):  # BUG: likewise into the right padding
            dx[:, :, i - t, j - l] = dxp[:, :, i, j]
    return dx

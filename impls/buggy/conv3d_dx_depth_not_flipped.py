"""conv3d backward: ``dx`` rotates the kernel on its last two axes only, as the 2-D code did.

``dx`` is the full correlation of the stride-dilated ``dy`` with the kernel
reversed on *every* spatial axis. The student ported their conv2d backward to
3-D by adding a depth axis to every loop and slice, but kept the 2-D rotation
``w[..., ::-1, ::-1]``, which on a 5-D kernel reverses height and width and
leaves depth as it is. ``dw`` and ``db`` never flip the kernel and are right;
``dx`` is right only when the kernel has one tap in depth (or is symmetric
along it), the shape of every test the student ported from 2-D.
"""

import numpy as np

from convcheck.impls import numpy_reference as ref

from . import _kit

DIAGNOSIS = "dx_kernel_depth_not_flipped"
EXPECTED_FAILURES = ("conv3d:backward", "conv3d:adjoint", "conv3d:finite_differences")


def _stride_dilated(dy, stride):
    """``dy`` with ``stride - 1`` zeros inserted between neighbouring cells on each spatial axis."""
    n, c, *out = dy.shape
    up = np.zeros((n, c, *((o - 1) * s + 1 for o, s in zip(out, stride))), dtype=dy.dtype)
    up[(slice(None), slice(None), *(slice(None, None, s) for s in stride))] = dy
    return up


def _dx(dy, x_shape, w, *, stride, padding, dilation, groups):
    n, c_in, *size = x_shape
    c_out, cg, *k = w.shape
    g = groups
    lo, hi = padding[::2], padding[1::2]
    w_rot = w[..., ::-1, ::-1]  # BUG: the 2-D rotation; on a 3-D kernel it leaves the depth axis unflipped
    reach = [d * (kk - 1) for d, kk in zip(dilation, k)]
    up = _stride_dilated(dy, stride)
    full = [u + r for u, r in zip(up.shape[2:], reach)]  # the padded-input cells windows reach
    upp = np.pad(up, ((0, 0), (0, 0), *((r, r) for r in reach)))
    upp = upp.reshape(n, g, c_out // g, *upp.shape[2:])
    wg = w_rot.reshape(g, c_out // g, cg, *k)
    dxp = np.zeros((n, g, cg, *full), dtype=dy.dtype)
    for a, e, f in np.ndindex(*k):
        part = upp[
            ...,
            a * dilation[0] : a * dilation[0] + full[0],
            e * dilation[1] : e * dilation[1] + full[1],
            f * dilation[2] : f * dilation[2] + full[2],
        ]
        dxp += np.einsum("ngoxyz,goc->ngcxyz", part, wg[..., a, e, f])
    padded = np.zeros((n, c_in, *(s + l + h for s, l, h in zip(size, lo, hi))), dtype=dy.dtype)
    padded[:, :, : full[0], : full[1], : full[2]] = dxp.reshape(n, c_in, *full)
    return padded[:, :, lo[0] : lo[0] + size[0], lo[1] : lo[1] + size[1], lo[2] : lo[2] + size[2]].copy()


def conv3d_backward(dy, x, w, b, *, stride, padding, dilation, groups):
    hp = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    _, dw, db = ref.conv3d_backward(dy, x, w, b, **hp)  # the weight and bias gradients are right
    return _dx(dy, x.shape, w, **hp), dw, db


_kit.borrow_correct(globals())

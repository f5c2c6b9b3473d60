"""A student's relu layer: the forward clamps its input in place."""


def relu_forward(x):
    x[x < 0] = 0  # writes into the caller's x
    out = x
    cache = x
    return out, cache


def relu_backward(dout, cache):
    x = cache
    dx = dout * (x > 0)
    return dx

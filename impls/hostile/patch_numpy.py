"""Makes every NumPy comparison say 'equal' in its own process, then returns wrong answers."""

import numpy as np

from ._wrong import conv2d_backward, conv2d_forward

np.allclose = lambda *a, **k: True
np.array_equal = lambda *a, **k: True
np.isclose = lambda a, b, *r, **k: np.ones(np.broadcast(a, b).shape, dtype=bool)
np.testing.assert_allclose = lambda *a, **k: None
np.testing.assert_array_equal = lambda *a, **k: None

__all__ = ["conv2d_backward", "conv2d_forward"]

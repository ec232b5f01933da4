"""The compiled loop behind :func:`.transient.variance_crossing`: the variance of a linear mode
started at rest, ``Var x_k = η² s² Σ_{j<k} h_j²``, summed along the mode's impulse response
``h_0 = 1``, ``h_m = Σ_i c_i h_{m−1−i}`` until it reaches a level."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def first_variance_crossing(c: np.ndarray, scale: float, level: float, max_iterations: int) -> int:
    """The first k in ``1 .. max_iterations`` with ``scale · Σ_{j<k} h_j² >= level`` for the impulse
    response h of ``x_{m+1} = Σ_i c_i x_{m−i}``; 0 when there is none."""
    taps = c.size
    ring = np.zeros(taps)  # h_{m−1}, h_{m−2}, ... at ring[(m − 1 − i) % taps]
    total = 0.0
    h = 1.0
    for k in range(1, max_iterations + 1):
        total += scale * h * h  # Var x_k: the terms j = 0 .. k − 1
        if total >= level:
            return k
        slot = (k - 1) % taps
        ring[slot] = h  # h_{k−1}
        h = 0.0
        for i in range(taps):
            h += c[i] * ring[(slot - i) % taps]  # h_k = Σ_i c_i h_{k−1−i}
    return 0

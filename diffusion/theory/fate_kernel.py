"""The compiled step behind :mod:`.kick_fate`: every path of the exact random recursion of streaming PCA,

    v_{k+1} = v_k + μ (v_k − v_{k−1}) + η s (Y − s v_{k−τ}),    s = Yᵀ v_{k−τ},

advanced one step in a ring of its last ``L + 1`` states, in one pass over the paths (the array
expressions it replaces allocate a temporary per operation, which at a few coordinates per path cost
more than the arithmetic)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def delayed_step(ring: np.ndarray, now: int, lags: np.ndarray, y: np.ndarray, eta: float, mu: float) -> np.ndarray:
    """Write ``v_{k+1}`` of every path ``p`` into ``ring[(now + 1) % slots, p]`` (``ring[now]`` holds v_k,
    ``ring[now − 1]`` v_{k−1}, path p's stale iterate is ``ring[now − lags[p]]``, slots counted modulo
    ``ring.shape[0]``) with the draws ``y[p]``, and return the new norms ``‖v_{k+1}‖``. The slot written
    may be the stale one (``lags[p] = L``) or ``v_{k−1}``'s (L = 1): each coordinate is read before it
    is overwritten, and ``s`` is summed first, so the step is the same as with a fresh array."""
    slots, paths, dim = ring.shape
    written, previous = (now + 1) % slots, (now - 1) % slots
    norms = np.empty(paths)
    for p in range(paths):
        stale = (now - lags[p]) % slots
        s = 0.0
        for j in range(dim):
            s += y[p, j] * ring[stale, p, j]
        kick = eta * s
        total = 0.0
        for j in range(dim):
            current = ring[now, p, j]
            new = current + mu * (current - ring[previous, p, j]) + kick * (y[p, j] - s * ring[stale, p, j])
            ring[written, p, j] = new
            total += new * new
        norms[p] = np.sqrt(total)
    return norms

"""The compiled loop behind :mod:`.divergence`: the noise-free recursion of the mean map of streaming
PCA in eigen-coordinates,

    v_{k+1} = v_k + μ (v_k − v_{k−1}) + η (Λ v_{k−τ} − (v_{k−τ}ᵀ Λ v_{k−τ}) v_{k−τ}),

for a batch of starts, each followed in its own ring of the last τ + 3 states until its norm leaves
``limit`` (or is not finite) or the iterations run out."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def noise_free_blowups(lam: np.ndarray, eta: float, mu: float, tau: int, start: np.ndarray,
                       velocity: np.ndarray, iterations: int, limit: float) -> np.ndarray:  # fmt: skip
    """Whether each row of ``start`` ``(B, d)`` blows up within ``iterations`` steps: the history is e_1
    up to time τ, then ``start``, then ``start + velocity``; a run blows up when ``‖v_k‖ >= limit`` or
    the norm is not finite. Coordinate sums run in index order, as NumPy's do for d < 8."""
    batch, d = start.shape
    slots = tau + 3  # v_{k−2−τ} .. v_{k−1}: the oldest is the slot written, never one read
    blown = np.zeros(batch, dtype=np.bool_)
    ring = np.zeros((slots, d))
    for b in range(batch):
        for t in range(tau + 1):
            ring[t % slots, :] = 0.0
            ring[t % slots, 0] = 1.0
        ring[(tau + 1) % slots, :] = start[b]
        ring[(tau + 2) % slots, :] = start[b] + velocity[b]
        for k in range(iterations):
            t = tau + 3 + k
            cur, prev, stale = ring[(t - 1) % slots], ring[(t - 2) % slots], ring[(t - 1 - tau) % slots]
            quad = 0.0
            for i in range(d):
                quad += stale[i] * lam[i] * stale[i]
            new = ring[t % slots]
            square = 0.0
            for i in range(d):
                value = cur[i] + mu * (cur[i] - prev[i]) + eta * (lam[i] * stale[i] - quad * stale[i])
                new[i] = value
                square += value * value
            if not np.sqrt(square) < limit:
                blown[b] = True
                break
    return blown

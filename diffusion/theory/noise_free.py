"""The compiled loop behind :mod:`.divergence`: the noise-free recursion of the mean map of streaming
PCA in eigen-coordinates, averaged over an i.i.d. delay law ``p_j = P(τ = j)``,

    v_{k+1} = v_k + μ (v_k − v_{k−1}) + η Σ_j p_j ḡ(v_{k−j}),   ḡ(v) = Λ v − (vᵀ Λ v) v,

(a constant delay τ is the point mass: ``ḡ(v_{k−τ})``), for a batch of starts, each followed with a
ring of the last mean forces ḡ until its norm leaves ``limit`` (or is not finite) or the iterations
run out. Under the geometric law ``p_j = (1 − q) q^j`` the averaged force needs no ring: it obeys
``D_{k+1} = q D_k + (1 − q) ḡ(v_k)``, ``O(d)`` work a step however long the law's memory."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def noise_free_blowups(lam: np.ndarray, eta: float, mu: float, lags: np.ndarray, weights: np.ndarray, ratio: float,
                       start: np.ndarray, velocity: np.ndarray, iterations: int, limit: float) -> np.ndarray:  # fmt: skip
    """Whether each row of ``start`` ``(B, d)`` blows up within ``iterations`` steps: the history is e_1
    up to time L (the longest of ``lags``), then ``start``, then ``start + velocity``; each step's force
    is ``Σ_m weights[m] ḡ(v_{k−lags[m]})``, or with ``ratio`` q > 0 the untruncated geometric law's
    (``lags`` and ``weights`` unused). A run blows up when ``‖v_k‖ >= limit`` or the norm is not
    finite. Coordinate sums run in index order, as NumPy's do for d < 8."""
    batch, d = start.shape
    longest = 0
    for m in range(lags.size):
        longest = max(longest, lags[m])
    slots = longest + 2  # ḡ(v_{k−1−L}) .. ḡ(v_k): the slot written is the oldest, never one read
    blown = np.zeros(batch, dtype=np.bool_)
    forces = np.zeros((slots, d))
    cur, prev, new, drift = np.zeros(d), np.zeros(d), np.zeros(d), np.zeros(d)
    for b in range(batch):
        forces[:, :] = 0.0  # ḡ(e_1) = λ_1 e_1 − λ_1 e_1 = 0: the history at e_1
        prev[:] = start[b]
        _force(lam, prev, forces[(longest + 1) % slots])
        for i in range(d):
            cur[i] = start[b, i] + velocity[b, i]
        _force(lam, cur, forces[(longest + 2) % slots])
        drift[:] = (1.0 - ratio) * forces[(longest + 1) % slots]  # the geometric law's D after the start
        for k in range(iterations):
            t = longest + 3 + k
            if ratio > 0.0:
                row = forces[(t - 1) % slots]
                for i in range(d):
                    drift[i] = ratio * drift[i] + (1.0 - ratio) * row[i]
            else:
                drift[:] = 0.0
                for m in range(lags.size):
                    row = forces[(t - 1 - lags[m]) % slots]
                    for i in range(d):
                        drift[i] += weights[m] * row[i]
            square = 0.0
            for i in range(d):
                value = cur[i] + mu * (cur[i] - prev[i]) + eta * drift[i]
                new[i] = value
                square += value * value
            if not np.sqrt(square) < limit:
                blown[b] = True
                break
            prev[:] = cur
            cur[:] = new
            _force(lam, cur, forces[t % slots])
    return blown


@njit(cache=True, nogil=True, inline="always")
def _force(lam: np.ndarray, v: np.ndarray, out: np.ndarray) -> None:
    """``out = ḡ(v) = Λ v − (vᵀ Λ v) v``."""
    quad = 0.0
    for i in range(v.size):
        quad += v[i] * lam[i] * v[i]
    for i in range(v.size):
        out[i] = lam[i] * v[i] - quad * v[i]

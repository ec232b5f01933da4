"""The compiled loops behind :func:`.transient.variance_crossing` and
:func:`.transient.summed_transient_variances`: the variance of a linear mode started at rest,
``Var x_k = η² s² Σ_{j<k} h_j²``, summed along the mode's impulse response ``h_0 = 1``,
``h_m = Σ_i c_i h_{m−1−i}`` until it reaches a level (under an i.i.d. delay, with the step variances of
the renewal equation that feeds the delay's spread back), or for every k, weighted over modes (with
multiplicative noise shared among them, along each mode's state covariance instead)."""

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


@njit(cache=True, nogil=True)
def iid_variances(c: np.ndarray, pmf: np.ndarray, gain: float, scale: float, level: float,
                  max_iterations: int) -> np.ndarray:  # fmt: skip
    """``Var x_k`` for ``k = 1, 2, ...`` under an i.i.d. delay law ``pmf``, up to the first that reaches
    ``level`` or to ``max_iterations``: ``Var x_k = Σ_{l<k} h_{k−1−l}² w_l`` with the impulse response h
    of the mean recursion ``c`` and the step variances ``w_j = scale + gain Σ_{l<j} K_{j−1−l} w_l``,
    ``K_n = Σ_i p_i h_{n−i}² − (Σ_i p_i h_{n−i})²`` (:mod:`.transient`); O(k (L + k))."""
    taps, lags = c.size, pmf.size
    h, w, kernel = np.zeros(max_iterations), np.zeros(max_iterations), np.zeros(max_iterations)
    out = np.zeros(max_iterations)
    for k in range(1, max_iterations + 1):
        n = k - 1
        if n == 0:
            h[0] = 1.0
        else:
            for i in range(min(taps, n)):
                h[n] += c[i] * h[n - 1 - i]  # h_n = Σ_i c_i h_{n−1−i}
        fed = 0.0
        for j in range(n):
            fed += kernel[n - 1 - j] * w[j]
        w[n] = scale + gain * fed
        variance = 0.0
        for j in range(k):
            variance += h[k - 1 - j] * h[k - 1 - j] * w[j]
        out[n] = variance
        if variance >= level:
            return out[:k]
        mean, square = 0.0, 0.0
        for i in range(min(lags, n + 1)):
            mean += pmf[i] * h[n - i]
            square += pmf[i] * h[n - i] * h[n - i]
        kernel[n] = square - mean * mean
    return out


@njit(cache=True, nogil=True)
def summed_variances(c: np.ndarray, scales: np.ndarray, iterations: int) -> np.ndarray:
    """``S_{n,k} = Σ_i scales_{n,i} Σ_{j<k} h_{i,j}²`` for ``k = 0, 1, ...``: weighted sums of the
    variances of modes started at rest, row i of ``c`` the mean recursion of mode i
    (:func:`first_variance_crossing` per mode), one row of ``scales`` per sum. A stable mode's response
    is followed until the recursion's whole memory adds less than 1e-18 of its sum, at most to
    ``iterations``; the sums stand from the last iteration any mode was followed to, where they end."""
    modes, taps = c.shape
    out = np.zeros((scales.shape[0], iterations + 1))
    ring = np.zeros(taps)
    lasts = np.full(modes, iterations)
    totals = np.zeros(modes)  # Σ_{j<k} h_{i,j}² at the mode's last iteration
    for i in range(modes):
        ring[:] = 0.0
        h = 1.0
        total = 0.0
        memory = 0.0  # Σ of the last taps squared responses
        for k in range(1, iterations + 1):
            total += h * h
            for n in range(scales.shape[0]):
                out[n, k] += scales[n, i] * total
            slot = (k - 1) % taps
            memory += h * h - ring[slot] * ring[slot]
            ring[slot] = h
            if k > taps and memory < 1e-18 * total:
                lasts[i] = k
                break
            h = 0.0
            for t in range(taps):
                h += c[i, t] * ring[(slot - t) % taps]
        totals[i] = total
    end = lasts.max()
    for i in range(modes):  # a mode that stopped early stands at its sum up to the end
        for k in range(lasts[i] + 1, end + 1):
            for n in range(scales.shape[0]):
                out[n, k] += scales[n, i] * totals[i]
    return out[:, : end + 1].copy()


@njit(cache=True, nogil=True)
def _project(factors: np.ndarray, signs: np.ndarray, stale: np.ndarray, projected: np.ndarray) -> None:
    """``projected_r = s_r u_r · stale``: the factors' share of the multiplicative feedback, in place."""
    for r in range(factors.shape[0]):
        projected[r] = 0.0
        for i in range(stale.size):
            projected[r] += factors[r, i] * stale[i]
        projected[r] *= signs[r]


@njit(cache=True, nogil=True)
def _step_variance(i: int, noise: np.ndarray, diagonal: np.ndarray, factors: np.ndarray, stale: np.ndarray,
                   projected: np.ndarray) -> float:  # fmt: skip
    """``E f_i² = noise_i + (C stale)_i`` with ``C = diag(diagonal) + Σ_r s_r u_r u_rᵀ`` (:func:`_project`)."""
    out = noise[i] + diagonal[i] * stale[i]
    for r in range(factors.shape[0]):
        out += factors[r, i] * projected[r]
    return out


@njit(cache=True, nogil=True)
def coupled_variances(c: np.ndarray, noise: np.ndarray, diagonal: np.ndarray, factors: np.ndarray, signs: np.ndarray,
                      pmf: np.ndarray, weights: np.ndarray, iterations: int) -> np.ndarray:  # fmt: skip
    """``S_{n,k} = Σ_i weights_{n,i} Var x_{i,k}`` for ``k = 0, 1, ...`` of modes started at rest,
    ``x_{i,k+1} = Σ_t c_{i,t} x_{i,k−t} + f_{i,k}``, whose forcing is uncorrelated over steps with
    ``E f_{i,k}² = noise_i + Σ_l C_il Σ_t pmf_t Var x_{l,k−t}`` (additive and multiplicative noise, the
    latter on the stale iterate), ``C = diag(diagonal) + Σ_r signs_r u_r u_rᵀ`` with ``u_r`` the rows of
    ``factors`` (O(modes · rank) per iteration). Each mode's state ``(x_k, ..., x_{k−L})`` has its
    covariance carried exactly, ``P' = T P Tᵀ + E f² e_0 e_0ᵀ`` with T the companion matrix of its row of
    ``c``: O(L²) per mode and iteration. The sums end at ``iterations``, or where no variance moved by
    more than 1e-13 of itself in an iteration (they stand there beyond)."""
    modes, taps = c.shape
    p, q = np.zeros((modes, taps, taps)), np.zeros((modes, taps, taps))
    out = np.zeros((weights.shape[0], iterations + 1))
    stale, u, projected = np.zeros(modes), np.zeros(taps), np.zeros(factors.shape[0])
    for k in range(iterations):
        for i in range(modes):
            stale[i] = 0.0
            for t in range(pmf.size):
                stale[i] += pmf[t] * p[i, t, t]
        _project(factors, signs, stale, projected)
        moved = False
        for i in range(modes):
            top = _step_variance(i, noise, diagonal, factors, stale, projected)
            for a in range(taps):
                u[a] = 0.0
                for m in range(taps):
                    u[a] += p[i, a, m] * c[i, m]  # u = P c
            for a in range(taps):
                top += c[i, a] * u[a]  # cᵀ P c
            q[i, 0, 0] = top
            for a in range(1, taps):
                q[i, 0, a] = u[a - 1]
                q[i, a, 0] = u[a - 1]
                for m in range(1, taps):
                    q[i, a, m] = p[i, a - 1, m - 1]
            moved = moved or abs(top - p[i, 0, 0]) > 1e-13 * top
        p, q = q, p
        for n in range(weights.shape[0]):
            for i in range(modes):
                out[n, k + 1] += weights[n, i] * p[i, 0, 0]
        if not moved:
            return out[:, : k + 2].copy()
    return out


@njit(cache=True, nogil=True)
def response_variances(c: np.ndarray, noise: np.ndarray, diagonal: np.ndarray, factors: np.ndarray, signs: np.ndarray,
                       pmf: np.ndarray, weights: np.ndarray, iterations: int) -> np.ndarray:  # fmt: skip
    """:func:`coupled_variances`'s sums along each mode's impulse response h instead of its state
    covariance: the forcing is uncorrelated over steps, so ``Var x_{i,k} = Σ_{j<k} h_{i,k−1−j}² w_{i,j}``
    with the step variances ``w_{i,j} = E f_{i,j}²``, each set from the variances before it. O(k + L) per
    mode and iteration k and O(modes · iterations) memory, where the state covariance takes O(L²) of
    both: the kernel for long delay laws."""
    modes, taps = c.shape
    squares = np.zeros((modes, iterations))  # h_{i,m}²
    for i in range(modes):
        h = np.zeros(iterations)
        h[0] = 1.0
        for m in range(1, iterations):
            for t in range(min(taps, m)):
                h[m] += c[i, t] * h[m - 1 - t]  # h_m = Σ_t c_t h_{m−1−t}
        squares[i] = h * h
    w, var = np.zeros((modes, iterations)), np.zeros((modes, iterations + 1))  # var[i, k] = Var x_{i,k}
    out = np.zeros((weights.shape[0], iterations + 1))
    stale, projected = np.zeros(modes), np.zeros(factors.shape[0])
    for k in range(iterations):
        for i in range(modes):
            stale[i] = 0.0
            for t in range(min(pmf.size, k + 1)):
                stale[i] += pmf[t] * var[i, k - t]  # E Var x_{i,k−τ}; zero before the start
        _project(factors, signs, stale, projected)
        moved = False
        for i in range(modes):
            w[i, k] = _step_variance(i, noise, diagonal, factors, stale, projected)
            total = 0.0
            for j in range(k + 1):
                total += squares[i, k - j] * w[i, j]
            var[i, k + 1] = total
            moved = moved or abs(total - var[i, k]) > 1e-13 * total
        for n in range(weights.shape[0]):
            for i in range(modes):
                out[n, k + 1] += weights[n, i] * var[i, k + 1]
        if not moved:
            return out[:, : k + 2].copy()
    return out

"""The compiled loop behind :func:`.lyapunov.step_down_variance`: the Schur–Cohn (Levinson) step-down
of many autoregressions, each row in place (its coefficients fit the first-level cache, where the
vectorised form passes over all rows several times per order)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def step_down_rows(a: np.ndarray) -> np.ndarray:
    """``γ(0)`` per unit noise of the autoregression of each row of ``a`` (overwritten): for m = p .. 1,
    ``κ = a_m``, ``γ(0) ← γ(0) / (1 − κ²)`` and ``a_j ← (a_j + κ a_{m−j}) / (1 − κ²)`` for j < m
    (updated in pairs j, m − j); ``inf`` for a row with some ``|κ| >= 1`` (not stable)."""
    rows, p = a.shape
    out = np.empty(rows)
    for r in range(rows):
        row = a[r]
        log_gamma = 0.0
        stable = True
        for m in range(p, 0, -1):
            kappa = row[m - 1]
            shrink = 1.0 - kappa * kappa
            if not shrink > 0.0:
                stable = False
                break
            log_gamma -= np.log(shrink)
            i, j = 0, m - 2
            while i < j:
                x, y = row[i], row[j]
                row[i] = (x + kappa * y) / shrink
                row[j] = (y + kappa * x) / shrink
                i += 1
                j -= 1
            if i == j:
                row[i] = (row[i] + kappa * row[i]) / shrink
        out[r] = np.exp(log_gamma) if stable else np.inf
    return out


@njit(cache=True, nogil=True)
def step_down_autocovariance(c: np.ndarray, noise_variance: float) -> np.ndarray:
    """``γ(0), ..., γ(p − 1)`` of the stable autoregression ``x_{k+1} = Σ_{j<p} c_j x_{k−j} + e``,
    ``Var e = noise_variance``: the step-down of :func:`step_down_rows` keeps the reflection
    coefficients κ_m, ``γ(0) = σ² / Π_m (1 − κ_m²)``, then the step-up ``φ^{(m)}_j = φ^{(m−1)}_j −
    κ_m φ^{(m−1)}_{m−j}``, ``φ^{(m)}_m = κ_m`` gives ``γ(m) = Σ_{j=1}^{m} φ^{(m)}_j γ(m − j)`` (the
    Yule–Walker equation of the order-m predictor). NaN everywhere when some ``|κ_m| >= 1``."""
    p = c.size
    row = c.copy()
    kappa = np.empty(p)
    gamma = np.full(p, np.nan)
    log_gamma = 0.0
    for m in range(p, 0, -1):
        k = row[m - 1]
        kappa[m - 1] = k
        shrink = 1.0 - k * k
        if not shrink > 0.0:
            return gamma
        log_gamma -= np.log(shrink)
        i, j = 0, m - 2
        while i < j:
            x, y = row[i], row[j]
            row[i] = (x + k * y) / shrink
            row[j] = (y + k * x) / shrink
            i += 1
            j -= 1
        if i == j:
            row[i] = (row[i] + k * row[i]) / shrink
    gamma[0] = noise_variance * np.exp(log_gamma)
    phi = np.zeros(p)
    previous = np.zeros(p)
    for m in range(1, p):
        k = kappa[m - 1]
        for j in range(m - 1):
            phi[j] = previous[j] - k * previous[m - 2 - j]
        phi[m - 1] = k
        total = 0.0
        for j in range(m):
            total += phi[j] * gamma[m - 1 - j]
        gamma[m] = total
        previous[:m] = phi[:m]
    return gamma

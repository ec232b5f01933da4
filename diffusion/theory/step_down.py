"""The compiled loop behind :func:`.lyapunov.step_down_variance`: the Schur–Cohn (Levinson) step-down
of many autoregressions, each row in place (its coefficients fit the first-level cache, where the
vectorised form passes over all rows several times per order)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _step_down(row: np.ndarray, kappa: np.ndarray) -> float:
    """Step the autoregression ``row`` down in place, order p to 1: ``κ_m = a_m`` (kept in
    ``kappa[m − 1]``), ``a_j ← (a_j + κ a_{m−j}) / (1 − κ²)`` for j < m (updated in pairs j, m − j).
    Returns ``log γ(0)`` per unit noise, ``−Σ_m log(1 − κ_m²)``, or ``inf`` when some ``|κ_m| >= 1``."""
    log_gamma = 0.0
    for m in range(row.size, 0, -1):
        k = row[m - 1]
        kappa[m - 1] = k
        shrink = 1.0 - k * k
        if not shrink > 0.0:
            return np.inf
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
    return log_gamma


@njit(cache=True, nogil=True)
def step_down_rows(a: np.ndarray) -> np.ndarray:
    """``γ(0)`` per unit noise of the autoregression of each row of ``a`` (overwritten), by
    :func:`_step_down`; ``inf`` for a row with some ``|κ| >= 1`` (not stable)."""
    rows, p = a.shape
    out = np.empty(rows)
    kappa = np.empty(p)
    for r in range(rows):
        out[r] = np.exp(_step_down(a[r], kappa))
    return out


@njit(cache=True, nogil=True)
def step_down_autocovariance(c: np.ndarray, noise_variance: float) -> np.ndarray:
    """``γ(0), ..., γ(p − 1)`` of the stable autoregression ``x_{k+1} = Σ_{j<p} c_j x_{k−j} + e``,
    ``Var e = noise_variance``: the step-down (:func:`_step_down`) gives the reflection coefficients
    κ_m and ``γ(0) = σ² / Π_m (1 − κ_m²)``, then the step-up ``φ^{(m)}_j = φ^{(m−1)}_j −
    κ_m φ^{(m−1)}_{m−j}``, ``φ^{(m)}_m = κ_m`` gives ``γ(m) = Σ_{j=1}^{m} φ^{(m)}_j γ(m − j)`` (the
    Yule–Walker equation of the order-m predictor). NaN everywhere when some ``|κ_m| >= 1``."""
    p = c.size
    kappa = np.empty(p)
    gamma = np.full(p, np.nan)
    log_gamma = _step_down(c.copy(), kappa)
    if not np.isfinite(log_gamma):
        return gamma
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

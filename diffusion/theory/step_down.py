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

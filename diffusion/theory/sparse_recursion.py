"""The compiled loop behind :func:`.norm_coupling.autocovariances` and :func:`.norm_coupling.impulse_response`:
``y_n = Σ_j c_j y_{n−1−j}`` run forward with only the nonzero ``c_j`` (a two-tap recursion at delay τ has
three), where a general filter costs τ operations per output."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _continue(lags: np.ndarray, values: np.ndarray, out: np.ndarray, start: int) -> None:
    for n in range(start, out.size):
        total = 0.0
        for k in range(lags.size):
            total += values[k] * out[n - 1 - lags[k]]
        out[n] = total


def continue_recursion(coefficients: np.ndarray, head: np.ndarray, length: int) -> np.ndarray:
    """``y_0 .. y_{length−1}``: ``head`` (at least ``len(coefficients)`` values) continued by
    ``y_n = Σ_j c_j y_{n−1−j}``."""
    c = np.asarray(coefficients, dtype=float)
    if head.size < c.size:
        raise ValueError("the recursion needs as many starting values as coefficients")
    out = np.zeros(max(length, head.size))
    out[: head.size] = head
    lags = np.flatnonzero(c)
    _continue(lags.astype(np.int64), c[lags], out, head.size)
    return out[:length]

"""The compiled loop behind :func:`.first_passage.escape_law`: independent paths of the delayed momentum
recursion ``x_{k+1} = (1 + μ) x_k − μ x_{k−1} − η a x_{k−τ_k} + η s z_k`` from rest, each followed until
``x² ≥ level``. Paths are independent, so each runs to its own passage in a short ring buffer."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def first_passages(paths: int, rate: float, scale: float, eta: float, mu: float, constant: int,
                   cdf: np.ndarray, level: float, max_iterations: int, seed: int) -> np.ndarray:  # fmt: skip
    """The first k with ``x_k² ≥ level`` for each path (NaN beyond ``max_iterations``). The delay is
    ``constant`` when it is >= 0, otherwise drawn afresh every step from ``cdf`` (cumulative
    probabilities of 0, 1, ..., last entry 1) by inversion. ``scale = η s``."""
    np.random.seed(seed)
    slots = cdf.size + 1  # x_{k−τmax} .. x_k and the slot written
    out = np.full(paths, np.nan)
    history = np.zeros(slots)
    for p in range(paths):
        history[:] = 0.0
        previous = 0.0
        for k in range(max_iterations):
            newest = k % slots
            current = history[newest]
            lag = constant
            if lag < 0:
                u = np.random.random()
                lag = 0
                while lag < cdf.size - 1 and u >= cdf[lag]:
                    lag += 1
            lag = min(lag, k)
            stale = history[(newest - lag) % slots]
            step = current + mu * (current - previous) - eta * rate * stale + scale * np.random.standard_normal()
            previous = current
            history[(k + 1) % slots] = step
            if step * step >= level:
                out[p] = k + 1
                break
    return out

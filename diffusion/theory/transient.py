"""Transient second moments of a linear mode: when does an unstable mode's spread reach a level?

A mode started at rest (``x_0 = x_{−1} = ... = 0``) with a constant delay τ obeys
``s_{k+1} = A s_k + b η ξ_k`` in the companion form of :mod:`.linear_recursion`, so its covariance
evolves exactly as ``P_{k+1} = A P_k Aᵀ + η² s² b bᵀ`` from ``P_0 = 0``. For the unstable mode at a
saddle (negative restoring rate) this is the finite-η, finite-τ version of the escape phase: the
first k with ``P_k[0, 0] >= δ²`` replaces the diffusion limit's ``η V(t) = δ²``.
"""

from __future__ import annotations

import numpy as np

from amsgd.core.errors import ProblemError
from amsgd.diffusion.theory.linear_recursion import check_parameters, companion_matrix


def variance_crossing(
    rate: float,
    noise_variance: float,
    eta: float,
    mu: float,
    tau: int,
    level: float,
    max_iterations: int = 1_000_000,
) -> int | None:
    """The first iteration k >= 1 at which ``Var x_k >= level``, or None within ``max_iterations``."""
    eta, mu = check_parameters(eta, mu)
    if not (np.isfinite(level) and level > 0):
        raise ProblemError(f"level must be a finite number > 0, got {level!r}")
    if not (np.isfinite(noise_variance) and noise_variance > 0):
        raise ProblemError(f"noise variance must be a finite number > 0, got {noise_variance!r}")
    a, b = companion_matrix(rate, eta, mu, int(tau))
    forcing = eta**2 * noise_variance * np.outer(b, b)
    cov = np.zeros_like(a)
    for k in range(1, max_iterations + 1):
        cov = a @ cov @ a.T + forcing
        if cov[0, 0] >= level:
            return k
    return None

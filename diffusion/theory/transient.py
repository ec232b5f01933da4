"""Transient second moments of a linear mode: when does an unstable mode's spread reach a level?

A mode started at rest (``x_0 = x_{−1} = ... = 0``) with a constant delay τ obeys
``s_{k+1} = A s_k + b η ξ_k`` in the companion form of :mod:`.linear_recursion`, so its covariance
evolves exactly as ``P_{k+1} = A P_k Aᵀ + η² s² b bᵀ`` from ``P_0 = 0``. For the unstable mode at a
saddle (negative restoring rate) this is the finite-η, finite-τ version of the escape phase: the
first k with ``P_k[0, 0] >= δ²`` replaces the diffusion limit's ``η V(t) = δ²``.

Unrolled, ``P_k = η² s² Σ_{j<k} A^j b bᵀ (Aᵀ)^j``, and ``e_0ᵀ A^j b = h_j`` is the mode's impulse
response, so ``P_k[0, 0] = η² s² Σ_{j<k} h_j²``: the crossing costs O(τ) per iteration along h
(:mod:`.transient_kernel`) rather than two (τ + 1)-square matrix products.
"""

from __future__ import annotations

import numpy as np

from amsgd.core.errors import ProblemError
from amsgd.diffusion.theory.linear_recursion import ar_coefficients, check_parameters


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
    from amsgd.diffusion.theory.transient_kernel import first_variance_crossing  # compiled: loaded here

    eta, mu = check_parameters(eta, mu)
    if not (np.isfinite(level) and level > 0):
        raise ProblemError(f"level must be a finite number > 0, got {level!r}")
    if not (np.isfinite(noise_variance) and noise_variance > 0):
        raise ProblemError(f"noise variance must be a finite number > 0, got {noise_variance!r}")
    c = ar_coefficients(rate, eta, mu, int(tau))
    k = first_variance_crossing(c, eta**2 * float(noise_variance), float(level), int(max_iterations))
    return int(k) if k else None

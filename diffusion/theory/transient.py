"""Transient second moments of a linear mode: when does an unstable mode's spread reach a level?

A mode started at rest (``x_0 = x_{−1} = ... = 0``) with a constant delay τ obeys
``s_{k+1} = A s_k + b η ξ_k`` in the companion form of :mod:`.linear_recursion`, so its covariance
evolves exactly as ``P_{k+1} = A P_k Aᵀ + η² s² b bᵀ`` from ``P_0 = 0``. For the unstable mode at a
saddle (negative restoring rate) this is the finite-η, finite-τ version of the escape phase: the
first k with ``P_k[0, 0] >= δ²`` replaces the diffusion limit's ``η V(t) = δ²``.

Unrolled, ``P_k = η² s² Σ_{j<k} A^j b bᵀ (Aᵀ)^j``, and ``e_0ᵀ A^j b = h_j`` is the mode's impulse
response, so ``P_k[0, 0] = η² s² Σ_{j<k} h_j²``: the crossing costs O(τ) per iteration along h
(:mod:`.transient_kernel`) rather than two (τ + 1)-square matrix products.

Under an i.i.d. delay law ``p_i = P(τ_k = i)`` write the step as the mean recursion (coefficients
``c`` of the law-averaged delay) plus ``e_k = η ξ_k + ζ_k``, ``ζ_k = η a (Σ_i p_i x_{k−i} − x_{k−τ_k})``.
Given the past, ζ_k has mean zero (τ_k is independent of it), so the ``e_k`` are uncorrelated and
``x_k = Σ_{l<k} h_{k−1−l} e_l`` with the mean recursion's impulse response h: ``Var x_k =
Σ_{l<k} h_{k−1−l}² w_l``, ``w_l = E e_l²``. The delay's spread feeds back through
``E ζ_j² = (η a)² (Σ_i p_i E x_{j−i}² − E (Σ_i p_i x_{j−i})²)``, which in the same responses reads

    w_j = η² s² + (η a)² Σ_{l<j} K_{j−1−l} w_l,   K_n = Σ_i p_i h_{n−i}² − (Σ_i p_i h_{n−i})² ≥ 0,

a renewal equation (``K = 0`` for a constant delay; as ``k → ∞`` for a stable mode ``Σ_n K_n`` is the
stationary theory's κ and ``Var x_k`` its variance, :mod:`.lyapunov`). The crossing costs O(k (L + k))
for k iterations, so it is followed at most :data:`IID_MAX_ITERATIONS` iterations.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from amsgd.core.errors import ProblemError
from amsgd.diffusion.theory.linear_recursion import Delay, ar_coefficients, check_parameters, delay_law

#: Iterations an i.i.d. delay's crossing is followed at most (its work grows as their square).
IID_MAX_ITERATIONS = 50_000
#: The most mode-iteration-taps :func:`summed_transient_variances` spends.
TRANSIENT_WORK = 100_000_000


def variance_crossing(
    rate: float,
    noise_variance: float,
    eta: float,
    mu: float,
    delay: Delay,
    level: float,
    max_iterations: int = 1_000_000,
) -> int | None:
    """The first iteration k >= 1 at which ``Var x_k >= level``, or None within ``max_iterations`` (for
    a random delay, within :data:`IID_MAX_ITERATIONS` at most)."""
    from amsgd.diffusion.theory.transient_kernel import first_variance_crossing, iid_variances

    eta, mu = check_parameters(eta, mu)
    if not (np.isfinite(level) and level > 0):
        raise ProblemError(f"level must be a finite number > 0, got {level!r}")
    if not (np.isfinite(noise_variance) and noise_variance > 0):
        raise ProblemError(f"noise variance must be a finite number > 0, got {noise_variance!r}")
    law = delay_law(delay)
    c = ar_coefficients(rate, eta, mu, law)
    scale = eta**2 * float(noise_variance)
    if law.constant is not None:
        k = first_variance_crossing(c, scale, float(level), int(max_iterations))
    else:
        gain, steps = (eta * float(rate)) ** 2, int(min(max_iterations, IID_MAX_ITERATIONS))
        variances = iid_variances(c, law.pmf, gain, scale, float(level), steps)
        k = variances.size if variances[-1] >= level else 0
    return int(k) if k else None


def factored_coupling(coupling: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``C = diag(D) + Σ_r s_r u_r u_rᵀ`` as ``(D, u, s)`` (the rows of u the factors, s their signs): one
    factor where C's off-diagonal part is ``u uᵀ`` (the named data laws: ``Var(Y_i Y_l) = κ λ_i λ_l``), which
    makes the feedback O(modes); otherwise C's eigenvectors, scaled."""
    c = np.asarray(coupling, dtype=float)
    n = c.shape[0]
    if n >= 3 and np.all(c[~np.eye(n, dtype=bool)] > 0):
        i = np.arange(n)
        a, b = (i + 1) % n, (i + 2) % n  # two coordinates other than i: u_i² = C_ia C_ib / C_ab
        u = np.sqrt(c[i, a] * c[i, b] / c[a, b])
        if np.allclose(c - np.diag(np.diag(c)), np.outer(u, u) - np.diag(u**2), rtol=1e-9, atol=0.0):
            return np.diag(c) - u**2, u[None, :], np.ones(1)
    w, vectors = np.linalg.eigh((c + c.T) / 2)
    return np.zeros(n), np.ascontiguousarray((np.sqrt(np.abs(w))[:, None] * vectors.T)), np.sign(w)


def summed_transient_variances(rates: np.ndarray, noise_variances: np.ndarray, eta: float, mu: float, delay: Delay,
                               iterations: int, coupling: np.ndarray | None = None,
                               weights: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """``S_k = Σ_i Var x_{i,k}``, ``k = 0, 1, ...``, of stable linear modes started at rest (rates
    ``a_i > 0``, additive noise variances ``s_i²``), each ``η² s_i² Σ_{j<k} h_{i,j}²`` along the impulse
    response of its mean recursion under the delay law (a random delay's spread, which raises a stable
    mode's variance by ``1/(1 − (η a_i)² κ)``, is left out); with ``weights`` of shape ``(n, modes)`` the
    n weighted sums ``Σ_i w_{n,i} Var x_{i,k}`` as rows. S only grows towards the stationary variances,
    and it is held at its last value beyond the array's end: the array ends at ``iterations``, or sooner
    where every mode's response has died out, or after the first ``TRANSIENT_WORK / (modes · taps)``
    iterations (the work's bound).

    With a nonzero ``coupling`` (``Var A_il``, the modes' multiplicative noise on the stale iterate) the
    modes' step variances are ``η² (s_i² + Σ_l Var A_il E Var x_{l,k−τ})``, fed back as the variances grow
    (the feedback through :func:`factored_coupling`'s r factors), along each mode's state covariance,
    O(taps²) work and memory per mode and iteration, or, for long delay laws, along its impulse response,
    O(k + taps + L) at iteration k (:func:`_coupled_kernel` picks the one that reaches further within
    :data:`TRANSIENT_WORK`); they end sooner where the variances have stopped moving."""
    from amsgd.diffusion.theory.transient_kernel import summed_variances

    eta, mu = check_parameters(eta, mu)
    rates, noise = np.asarray(rates, dtype=float), eta**2 * np.asarray(noise_variances, dtype=float)
    w = np.ones((1, rates.size)) if weights is None else np.atleast_2d(np.asarray(weights, dtype=float))
    if rates.size == 0 or iterations < 1:
        out = np.zeros((w.shape[0], 1))
    else:
        law = delay_law(delay, as_iid=True)
        c = np.stack([ar_coefficients(r, eta, mu, law) for r in rates])
        if coupling is None or not np.any(coupling):
            reach = TRANSIENT_WORK // (rates.size * c.shape[1])
            out = summed_variances(c, np.ascontiguousarray(w * noise), int(min(iterations, max(1, reach))))
        else:
            diagonal, factors, signs = factored_coupling(eta**2 * np.asarray(coupling, dtype=float))
            kernel, steps = _coupled_kernel(rates.size, c.shape[1], law.pmf.size, signs.size, iterations)
            out = kernel(c, noise, diagonal, factors, signs, np.ascontiguousarray(law.pmf, dtype=float),
                         np.ascontiguousarray(w), steps)  # fmt: skip
    return out if np.ndim(weights) == 2 else out[0]


def _coupled_kernel(modes: int, taps: int, lags: int, factors: int, iterations: int) -> tuple[Callable, int]:
    """The compiled loop for the coupled sums and its iterations: the state covariances
    (:func:`.transient_kernel.coupled_variances`, ``modes · (taps² + factors)`` work per iteration) or the
    impulse responses (:func:`.transient_kernel.response_variances`, ``modes · (k + taps + lags)`` at
    iteration k), whichever reaches more iterations within :data:`TRANSIENT_WORK`, or, where both reach
    ``iterations``, costs less there. The same sums either way, to rounding."""
    from amsgd.diffusion.theory.transient_kernel import coupled_variances, response_variances

    per_mode = TRANSIENT_WORK / modes
    state = int(min(iterations, max(1, per_mode // (taps**2 + factors))))
    spread = taps + lags  # the responses' reach k: k² + k (taps + lags) <= the work per mode
    response = int(min(iterations, max(1, (math.sqrt(spread**2 + 4.0 * per_mode) - spread) / 2.0)))
    if response > state or (response == state and response + spread < taps**2 + factors):
        return response_variances, response
    return coupled_variances, state

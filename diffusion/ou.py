"""Exact sampling of the Ornstein–Uhlenbeck limits ``dU = A U dt + B dW`` (no discretisation error).

Over a step ``Δ`` the solution is Gaussian::

    U(t + Δ) = e^{AΔ} U(t) + ξ,   ξ ~ N(0, Q(Δ)),   Q(Δ) = ∫_0^Δ e^{As} B Bᵀ e^{Aᵀs} ds.

``Q(Δ)`` comes from Van Loan's method: with ``C = [[−A, B Bᵀ], [0, Aᵀ]] Δ`` and
``e^C = [[F11, F12], [0, F22]]``, ``e^{AΔ} = F22ᵀ`` and ``Q(Δ) = F22ᵀ F12``. From a deterministic start
the law at time ``t`` is ``N(e^{At} u0, Q(t))``; when ``A`` is stable ``Q(t)`` tends to the stationary
covariance ``S`` solving ``A S + S Aᵀ + B Bᵀ = 0``. Near the stationary point ``e_j`` of streaming PCA
the limit has ``A = diag((λ_i − λ_j)/(1 − μ))`` and ``B = diag(α_ij/(1 − μ))`` over ``i ≠ j`` in the
rescaled coordinates ``U = h/√η`` (unstable where ``λ_i > λ_j``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import expm, solve_continuous_lyapunov

from amsgd.core import checks
from amsgd.core.errors import ProblemError
from amsgd.core.seeding import RngLike, root_sequence


@dataclass(frozen=True)
class OUSample:
    """Exact OU paths: ``t`` ``(T,)``, ``u`` ``(T, P, d)``."""

    t: np.ndarray
    u: np.ndarray


def _matrices(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.atleast_2d(checks.real_array("A", a))
    b = np.atleast_2d(checks.real_array("B", b))
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != a.shape[1] or b.shape[0] != a.shape[0]:
        raise ProblemError(f"A must be (d, d) and B (d, m), got {a.shape} and {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ProblemError("A and B must be finite")
    return a, b


def ou_transition(a: np.ndarray, b: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """``(e^{AΔ}, Q(Δ))``: Van Loan's block exponential over ``Δ/2^s`` with ``‖A‖_∞ Δ/2^s <= 1``, then
    ``s`` doublings ``Q(2t) = Q(t) + e^{At} Q(t) e^{Aᵀt}``, ``e^{2At} = (e^{At})²`` (exact). Over one long
    step the block's ``e^{−AΔ}`` would overflow for a stable A (beyond ``|a| Δ ≈ 709``) and ``Q`` come out
    NaN; the doublings take ``Q`` to the stationary covariance instead."""
    a, b = _matrices(a, b)
    delta = checks.real("delta (a time step)", delta)
    if delta < 0:
        raise ProblemError(f"the time step must be finite and >= 0, got {delta!r}")
    norm = float(np.abs(a).sum(axis=1).max())
    scale = math.log2(norm) + math.log2(delta) if norm > 0 and delta > 0 else -math.inf  # log₂ ‖A‖ Δ, no overflow
    doublings = math.floor(scale) + 1 if scale >= 0 else 0
    phi, q = _van_loan(a, b, math.ldexp(delta, -doublings))
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(doublings):
            q = q + phi @ q @ phi.T
            phi = phi @ phi
    if not (np.all(np.isfinite(phi)) and np.all(np.isfinite(q))):
        raise ProblemError(f"the OU process overflows double precision over a time step of {delta:g} (A has an "
                           "eigenvalue with positive real part): use shorter times")
    return phi, (q + q.T) / 2


def _van_loan(a: np.ndarray, b: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """``(e^{AΔ}, Q(Δ))`` from ``e^C``, ``C = [[−A, B Bᵀ], [0, Aᵀ]] Δ`` (module docstring)."""
    d = a.shape[0]
    block = np.zeros((2 * d, 2 * d))
    block[:d, :d] = -a
    block[:d, d:] = b @ b.T
    block[d:, d:] = a.T
    f = expm(block * delta)
    phi = f[d:, d:].T
    return phi, phi @ f[:d, d:]


def ou_mean_cov(a: np.ndarray, b: np.ndarray, u0: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Law of ``U(t)`` from ``U(0) = u0``: means ``(T, d)`` and covariances ``(T, d, d)``."""
    pairs = [ou_transition(a, b, float(s)) for s in np.atleast_1d(checks.real_array("t", t))]
    u0 = checks.real_array("u0", u0)
    return np.stack([phi @ u0 for phi, _ in pairs]), np.stack([q for _, q in pairs])


def ou_stationary_cov(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``S`` with ``A S + S Aᵀ + B Bᵀ = 0``; requires every eigenvalue of ``A`` to have negative real part."""
    a, b = _matrices(a, b)
    if np.max(np.linalg.eigvals(a).real) >= 0:
        raise ProblemError("the OU process has no stationary law: A has an eigenvalue with real part >= 0")
    return solve_continuous_lyapunov(a, -b @ b.T)


def _psd_sqrt(q: np.ndarray) -> np.ndarray:
    """A factor ``L`` with ``L Lᵀ = Q`` for a symmetric positive semi-definite ``Q`` (rank-deficient allowed)."""
    w, v = np.linalg.eigh(q)
    return v * np.sqrt(np.clip(w, 0.0, None))


def sample_ou(
    a: np.ndarray, b: np.ndarray, u0: np.ndarray, times: np.ndarray, *, paths: int = 1, rng: RngLike = None
) -> OUSample:
    """Exact OU paths at ``times`` (``times[0]`` the start, any spacing) from ``u0`` ``(d,)`` or ``(P, d)``."""
    a, b = _matrices(a, b)
    times = checks.real_array("times", times)
    if times.ndim != 1 or times.size < 1 or not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
        raise ProblemError("times must be an increasing 1-D array of finite numbers")
    paths = checks.positive_int("paths", paths)
    start = checks.real_array("u0", u0)
    if start.shape not in ((a.shape[0],), (paths, a.shape[0])):
        raise ProblemError(f"u0 must have shape ({a.shape[0]},) or ({paths}, {a.shape[0]}), got {start.shape}")
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(root_sequence(rng))
    u = np.empty((times.size, paths, a.shape[0]))
    u[0] = np.broadcast_to(start, (paths, a.shape[0]))
    cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    for n, delta in enumerate(np.diff(times)):
        key = round(float(delta), 15)
        if key not in cache:
            phi, q = ou_transition(a, b, float(delta))
            cache[key] = (phi, _psd_sqrt(q))
        phi, root = cache[key]
        u[n + 1] = u[n] @ phi.T + generator.standard_normal((paths, a.shape[0])) @ root.T
    return OUSample(times, u)

"""The full stationary covariance of a small model at its minimum: every cross-covariance kept.

:mod:`.model_predictions` keeps the diagonal of the stationary covariance in the Hessian's eigenbasis
(``v_i = G_i (s_i + Σ_j C_ij v_j)``). Where the per-example Hessians have large, correlated entries
(heavy-tailed features) the cross-covariances feed back and that is not enough. For models with at
most :data:`FULL_MOMENTS_MAX` parameters and a constant delay τ this module solves for the whole
covariance.

**The recursion.** Near x*, ``h = x − x*`` follows

    h_{k+1} = (1 + μ) h_k − μ h_{k−1} − η (A_k h_{k−τ} + b_k),

``A_k`` the minibatch Hessian and ``b_k`` the minibatch gradient of the objective at x* (B examples
drawn with replacement; exact for least squares, the quadratic approximation otherwise);
``E A_k = H``, ``E b_k = ∇L(x*) ≈ 0``. With ``ξ_k = (A_k − H) h_{k−τ} + b_k`` it is the mean recursion
driven by ``−η ξ_k``. Batch k is independent of the past, so ``ξ_k`` is a martingale difference
(white), and with ``X = Cov h`` in stationarity (the same for ``h_{k−τ}``) and ``E h = 0``

    E ξ ξᵀ = E[(A − H) X (A − H)] + E b bᵀ = (E_n[D_n X D_n] + S_g) / B + ∇L ∇Lᵀ,

``D_n = H_n − H`` (``H_n`` the Hessian of example n's loss at x*, the ridge cancels in the
difference), ``S_g = Cov_n(g_n)`` (``g_n`` example n's gradient); the cross term
``E[(A − H) h bᵀ] = E[(A − H) (E h) bᵀ]`` vanishes because h_{k−τ} is independent of batch k and
``E h = 0``. A B-sample mean of i.i.d. draws has covariance ``1/B`` of one draw's.

**Cross gains.** In the eigenbasis ``H = Q Λ Qᵀ`` the mean dynamics decouple: coordinate i is
``x_{k+1} = Σ_j c^{(i)}_j x_{k−j} + η ζ_{i,k}`` (``c^{(i)}`` the taps of :func:`.linear_recursion.ar_coefficients`
at rate λ_i), so ``h_i = η Σ_m r_i(m) ζ_{i,k−1−m}`` with ``r_i`` its unit impulse response, and, ζ white,

    X_ij = G_ij W_ij,    G_ij = η² Σ_{m>=0} r_i(m) r_j(m),    W = Qᵀ (E ξ ξᵀ) Q,

``G_ii`` the gain ``G_i`` of :func:`.lyapunov.stationary_gains`. ``G_ij / η²`` is ``γ(0)`` of the
cross-covariance ``γ(h) = E[x_t y_{t−h}]`` of two autoregressions driven by the same unit noise,
which solves the cross Yule–Walker system (:func:`cross_gains`): ``γ(0) = Σ_j a_j γ(−1−j) + 1``,
``γ(h) = Σ_j a_j γ(h−1−j)`` for ``h = 1 .. L+1`` (x's recursion; its noise is independent of y's past)
and ``γ(h) = Σ_j b_j γ(h+1+j)`` for ``h = −1 .. −(L+1)`` (y's): ``2L + 3`` unknowns per pair.

**The stationary covariance** (all in eigen-coordinates, ``D_n ← Qᵀ D_n Q``) solves the linear system

    X = T(X) + G ∘ S,    T(X) = G ∘ E_n[D_n X D_n] / B,    S = S_g / B + ∇L ∇Lᵀ,

``P(P+1)/2`` unknowns (X is symmetric), solved directly. T maps positive semidefinite matrices to
positive semidefinite ones (``E_n[D_n X D_n] ⪰ 0``, and G is a Gram matrix, so the Schur product
theorem applies), so by Krein–Rutman its spectral radius ρ(T) is an eigenvalue with a PSD
eigenvector, and ``X = Σ_k T^k(G ∘ S)`` converges iff ``ρ(T) < 1``. The second moments are stable iff
every mode is mean-stable (τ below its critical delay) and ``ρ(T) < 1`` (the *feedback radius*,
reported; the diagonal theory's counterpart is the Perron root of ``diag(G) C``). The loss floor is

    E L(x) − L(x*) = ½ tr(Λ X) = ½ Σ_i λ_i X_ii,

exact for least squares, the quadratic approximation otherwise. When every ``D_n`` is diagonal in the
eigenbasis (or the law of D is invariant under sign changes of the eigen-coordinates) and S is
diagonal, the off-diagonal X vanish and the diagonal is the diagonal theory's ``v``.

Flat modes (``|λ| <= FLAT λ_max``: symmetries, dead units) are left out as in the diagonal theory;
a point with negative curvature is not a minimum (floor ``inf``). Cost: ``N P⁴`` for the fluctuation
operator, ``(P²/2)³/3`` for the solve (or ``k (P²/2)²`` by the Neumann series of
:func:`stationary_solution` where its k terms are fewer than ``P²/200``), ``P²/2`` cross Yule–Walker
systems of size ``2τ + 3``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from amsgd.core.errors import ProblemError
from amsgd.core.estimates import json_float
from amsgd.diffusion.theory.linear_recursion import Delay, ar_coefficient_rows, check_parameters, delay_law
from amsgd.diffusion.theory.model_point import FLAT, ModelPoint, projected_example_hessians
from amsgd.diffusion.theory.second_moments import largest_modulus
from amsgd.diffusion.theory.stability import critical_delay

if TYPE_CHECKING:
    from amsgd.core.models import ModelProblem

#: Largest parameter count for which the full covariance is solved (``P(P+1)/2`` unknowns, dense).
FULL_MOMENTS_MAX = 100
#: Largest constant delay it takes (``P²/2`` cross Yule–Walker systems of ``2τ + 3`` unknowns each).
FULL_MOMENTS_MAX_DELAY = 64
#: Every example's Hessian ``(N, m, m)`` and the additive noise ``(m, m)``: :func:`example_statistics`.
Statistics = tuple[np.ndarray, np.ndarray]
#: The names of the two theories of the second moments in reports: this module's, and the diagonal
#: one of :mod:`.model_predictions` (the variances in the eigenbasis, their cross-covariances dropped).
FULL_THEORY, DIAGONAL_THEORY = "full second moments", "diagonal"
#: Entries per chunk of the batched cross Yule–Walker systems (bounds their memory).
_SYSTEM_ENTRIES = 4_000_000
#: Entries per block of the fluctuation operator built at once (bounds its memory).
_BLOCK_ENTRIES = 8_000_000
#: The stationary system of n unknowns is solved by its Neumann series where that needs at most
#: n/NEUMANN_COST terms (``ρ^k`` below 1e-16), else by a dense LU factorisation: one product with the
#: operator (memory-bound) costs about a hundredth of the factorisation per unknown on this kind of
#: machine (at 5050 unknowns, 100 parameters, 7 ms against 1 s; benchmarks/bench_full_moments.py).
NEUMANN_COST = 100


@dataclass(frozen=True, eq=False)
class FullMoments:
    """The stationary covariance with every cross-covariance (module docstring).

    ``covariance`` is X over the curved modes ``modes`` (indices into the point's eigenvalues), in
    the eigenbasis; ``radius`` the feedback radius ρ(T); ``stable`` whether every mode is mean-stable
    and ``ρ(T) < 1``. ``floor`` is ``½ Σ λ_i X_ii`` (``inf`` when not stable).
    """

    floor: float
    covariance: np.ndarray
    modes: np.ndarray
    radius: float
    stable: bool
    mean_stable: bool

    @property
    def variances(self) -> np.ndarray:
        return np.diag(self.covariance).copy()

    def to_dict(self) -> dict:
        return {"loss_floor": json_float(self.floor), "mean_square_stable": self.stable,
                "radius": json_float(self.radius)}  # fmt: skip


def cross_gains(rates: np.ndarray, eta: float, mu: float, tau: int) -> np.ndarray:
    """``G_ij = η² Σ_m r_i(m) r_j(m)`` for mean-stable modes at the constant delay τ (module docstring):
    the stationary covariance of modes i and j per unit of common noise. The caller ensures every
    mode is mean-stable."""
    eta, mu = check_parameters(eta, mu)
    rates = np.asarray(rates, dtype=float)
    m = rates.size
    if m == 0:
        return np.zeros((0, 0))
    c = ar_coefficient_rows(rates, eta, mu, int(tau))
    taps = c.shape[1]  # L + 1
    n = 2 * taps + 1  # γ(h), h = −(L+1) .. L+1, at index h + L + 1
    first, second = np.triu_indices(m)
    out = np.zeros((m, m))
    chunk = max(1, _SYSTEM_ENTRIES // (n * n))
    up = np.arange(0, taps + 1)  # h = 0 .. L+1: x's recursion
    down = -np.arange(1, taps + 1)  # h = −1 .. −(L+1): y's recursion
    for lo in range(0, first.size, chunk):
        i, j = first[lo : lo + chunk], second[lo : lo + chunk]
        system = np.zeros((i.size, n, n))
        system[:, np.arange(n), np.arange(n)] = 1.0
        for t in range(taps):
            system[:, up + taps, up - 1 - t + taps] -= c[i, t : t + 1]
            system[:, down + taps, down + 1 + t + taps] -= c[j, t : t + 1]
        rhs = np.zeros((i.size, n, 1))
        rhs[:, taps, 0] = 1.0
        gamma0 = np.linalg.solve(system, rhs)[:, taps, 0]
        out[i, j] = gamma0
        out[j, i] = gamma0
    return eta**2 * out


#: The fluctuation operator built last, with a digest of the per-example Hessians it comes from: the
#: points of a sweep share their minimum, and so their operator (0.8 s each for least squares on digits).
#: Only the last is kept: at P = 100 parameters it holds (P (P + 1)/2)² floats, 204 MB.
_LAST_OPERATOR: tuple[bytes, np.ndarray] | None = None


def shared_fluctuation_operator(fluctuations: np.ndarray) -> np.ndarray:
    """:func:`_fluctuation_operator`, built again only where ``fluctuations`` differ (bytes or shape) from
    the last call's; the operator returned is read-only. (The pair is replaced in one assignment, so
    threads read either the old or the new one.)"""
    global _LAST_OPERATOR
    d = np.ascontiguousarray(fluctuations, dtype=float)
    key = hashlib.blake2b(memoryview(d), digest_size=16).digest() + repr(d.shape).encode()
    last = _LAST_OPERATOR
    if last is not None and last[0] == key:
        return last[1]
    operator = _fluctuation_operator(d)
    operator.setflags(write=False)
    _LAST_OPERATOR = (key, operator)
    return operator


def _fluctuation_operator(fluctuations: np.ndarray) -> np.ndarray:
    """The matrix of ``X ↦ E_n[D_n X D_n]`` on the upper triangles (rows and columns
    ``np.triu_indices(m)``): entry ``((a, b), (c, d))`` is ``E[D_ac D_bd] + E[D_ad D_bc]`` for c < d and
    ``E[D_ac D_bc]`` for c = d (X symmetric)."""
    d = np.asarray(fluctuations, dtype=float)
    count, m, _ = d.shape
    rows_a, rows_b = np.triu_indices(m)
    cols_c, cols_d = np.triu_indices(m)
    off = (cols_c != cols_d)[None, :]
    out = np.empty((rows_a.size, cols_c.size))
    flat = d.reshape(count, m * m)
    block = max(1, _BLOCK_ENTRIES // m**3)
    for lo in range(0, m, block):
        hi = min(m, lo + block)
        # gram[a − lo, c, b, d] = E_n[D_ac D_bd] for a in [lo, hi)
        gram = (d[:, lo:hi, :].reshape(count, -1).T @ flat / count).reshape(hi - lo, m, m, m)
        rows = np.flatnonzero((rows_a >= lo) & (rows_a < hi))
        a, b = rows_a[rows, None] - lo, rows_b[rows, None]
        out[rows] = gram[a, cols_c[None, :], b, cols_d[None, :]] + off * gram[a, cols_d[None, :], b, cols_c[None, :]]
    return out


def full_covariance(rates: np.ndarray, fluctuations: np.ndarray, additive: np.ndarray, eta: float, mu: float,
                    tau: int, batch: int) -> tuple[np.ndarray, float, bool]:  # fmt: skip
    """``(X, ρ(T), mean_stable)`` for curvatures ``rates`` (all > 0), the centred per-example Hessians
    ``fluctuations`` ``(N, m, m)`` and the noise ``additive`` S ``(m, m)``, all in the eigenbasis, at the
    constant delay τ with minibatches of ``batch`` (module docstring). X is ``inf`` when the second
    moments are not stable."""
    return _covariance(rates, _fluctuation_operator(fluctuations), additive, eta, mu, tau, batch)


def _covariance(rates: np.ndarray, operator: np.ndarray, additive: np.ndarray, eta: float, mu: float, tau: int,
                batch: int) -> tuple[np.ndarray, float, bool]:  # fmt: skip
    """:func:`full_covariance` with the fluctuation operator (:func:`_fluctuation_operator`) at hand."""
    rates = np.asarray(rates, dtype=float)
    m = rates.size
    if np.any(tau >= critical_delay(rates, eta, mu)):
        return np.full((m, m), np.inf), float("inf"), False
    g = cross_gains(rates, eta, mu, tau)
    a, b = np.triu_indices(m)
    feedback = g[a, b][:, None] * operator / batch
    radius = largest_modulus(feedback)
    if radius >= 1.0:
        return np.full((m, m), np.inf), radius, True
    u = stationary_solution(feedback, g[a, b] * np.asarray(additive, dtype=float)[a, b], radius)
    x = np.zeros((m, m))
    x[a, b] = u
    x[b, a] = u
    return x, radius, True


def series_terms(radius: float) -> int:
    """Terms of the Neumann series ``Σ_k F^k r`` for ``ρ(F) = radius`` < 1 until ``ρ^k`` < 1e-16."""
    return 1 if radius <= 0.0 else max(1, math.ceil(round(math.log(1e-16) / math.log(radius), 9)))


def stationary_solution(feedback: np.ndarray, rhs: np.ndarray, radius: float) -> np.ndarray:
    """``u = (I − F)⁻¹ r`` for F of spectral radius ``radius`` < 1: the Neumann series ``Σ_k F^k r``
    where :func:`series_terms` is at most ``n/NEUMANN_COST`` (n unknowns), accepted when its residual
    ``‖r − (I − F) u‖`` is below ``1e-13 ‖r‖`` after at most three times that many terms; else (or if
    it is not: a strongly non-normal F) a dense solve, which overwrites ``feedback``."""
    terms = series_terms(radius)
    if terms <= feedback.shape[0] / NEUMANN_COST:
        u, term = rhs.copy(), rhs
        for _ in range(3 * terms):
            term = feedback @ term
            u += term
            if np.max(np.abs(term), initial=0.0) <= 1e-16 * np.max(np.abs(u), initial=0.0):
                break
        if np.max(np.abs(rhs - u + feedback @ u), initial=0.0) <= 1e-13 * np.max(np.abs(rhs), initial=0.0):
            return u
    system = np.negative(feedback, out=feedback)  # I − F in place: no second matrix of P⁴/4 entries
    system[np.diag_indices_from(system)] += 1.0
    return np.linalg.solve(system, rhs)


def full_second_moments(problem: ModelProblem, point: ModelPoint, eta: float, mu: float, delay: Delay,
                        statistics: Statistics | None = None) -> FullMoments:  # fmt: skip
    """The stationary covariance of ``problem``'s iterate around ``point`` (its minimum) with every
    cross-covariance, at step η, momentum μ and a constant delay (module docstring); ``statistics``
    are :func:`curved_statistics` when already at hand."""
    law = delay_law(delay, as_iid=True)
    _check_applies(point, law)
    return moments_over_delays(problem, point, eta, mu, statistics)(law.constant)


def moments_over_delays(problem: ModelProblem, point: ModelPoint, eta: float, mu: float,
                        statistics: Statistics | None = None) -> Callable[[int], FullMoments]:  # fmt: skip
    """``τ ↦`` :func:`full_second_moments` at the constant delay τ (at most
    :data:`FULL_MOMENTS_MAX_DELAY`), the per-example statistics computed once for every τ (or given:
    :func:`curved_statistics`)."""
    eta, mu = check_parameters(eta, mu)
    cells = moments_over_cells(problem, point, statistics)
    return lambda tau: cells(eta, mu, tau)


def moments_over_cells(problem: ModelProblem, point: ModelPoint,
                       statistics: Statistics | None = None) -> Callable[[float, float, int], FullMoments]:  # fmt: skip
    """``(η, μ, τ) ↦`` :func:`full_second_moments` at the constant delay τ (at most
    :data:`FULL_MOMENTS_MAX_DELAY`), the per-example statistics (or ``statistics``:
    :func:`curved_statistics`) and their fluctuation operator computed once for every cell (and the
    operator shared with other calls on the same statistics: :func:`shared_fluctuation_operator`)."""
    _check_applies(point, delay_law(0))
    lam = point.eigenvalues
    if np.any(lam < -FLAT * lam[0]):  # not a minimum
        return lambda eta, mu, tau: FullMoments(float("inf"), np.full((0, 0), np.inf), np.zeros(0, int), float("inf"),
                                                False, False)  # fmt: skip
    modes = np.flatnonzero(~point.flat())
    hessians, additive = curved_statistics(problem, point) if statistics is None else statistics
    operator = shared_fluctuation_operator(hessians - hessians.mean(axis=0))

    def at(eta: float, mu: float, tau: int) -> FullMoments:
        eta, mu = check_parameters(eta, mu)
        if not 0 <= tau <= FULL_MOMENTS_MAX_DELAY:
            raise ProblemError(f"the full second moments take a constant delay of 0 to {FULL_MOMENTS_MAX_DELAY}, got {tau}")
        x, radius, mean_stable = _covariance(lam[modes], operator, additive, eta, mu, tau, problem.batch)
        stable = mean_stable and radius < 1.0
        floor = 0.5 * float(lam[modes] @ np.diag(x)) if stable else float("inf")
        return FullMoments(floor, x, modes, radius, stable, mean_stable)

    return at


def _check_applies(point: ModelPoint, law) -> None:
    size = int(point.x.size)
    if not applies(size, law, point.full):
        raise ProblemError(f"the full second moments take a constant delay of at most {FULL_MOMENTS_MAX_DELAY} and "
                           f"at most {FULL_MOMENTS_MAX} parameters; got {size} parameters and delay {law.spec}: use "
                           "the diagonal theory (ModelPredictions.floor)")  # fmt: skip


def applies(parameters: int, law, full_spectrum: bool) -> bool:
    """Whether :func:`full_second_moments` takes a model of ``parameters`` parameters at the delay
    law ``law`` (a :class:`~.linear_recursion.DelayLaw`) with its whole spectrum known."""
    constant = law.constant
    return parameters <= FULL_MOMENTS_MAX and constant is not None and constant <= FULL_MOMENTS_MAX_DELAY and full_spectrum


def curved_statistics(problem: ModelProblem, point: ModelPoint) -> Statistics:
    """:func:`example_statistics` over the point's curved modes (the flat ones left out)."""
    return example_statistics(problem, point.x, point.vectors[:, np.flatnonzero(~point.flat())])


def example_statistics(problem: ModelProblem, x: np.ndarray, q: np.ndarray) -> Statistics:
    """``(Qᵀ H_n Q, S)``: every example's Hessian ``(N, m, m)`` (symmetrised; the ridge not included) and
    the additive noise ``S = Cov_n(Qᵀ g_n)/B + (Qᵀ∇L)(Qᵀ∇L)ᵀ`` of the examples' losses at x, for the
    columns of ``q``."""
    import jax
    import jax.numpy as jnp

    from amsgd.simulate.models import model_derivatives

    with jax.enable_x64(True):
        d = model_derivatives(problem)
        z, y = jnp.asarray(problem.data.x_train), jnp.asarray(problem.data.y_train)
        w, basis = jnp.asarray(x), jnp.asarray(q)
        grads = np.asarray(d.example_grads(w, z, y)) @ q  # (N, m): q_iᵀ g_n, as model_point has them
        hessians = projected_example_hessians(d, w, z, y, basis)
        mean_grad = np.asarray(d.value_and_grad(w, z, y)[1]) @ q
    hessians = 0.5 * (hessians + hessians.transpose(0, 2, 1))
    centred = grads - grads.mean(axis=0)
    additive = centred.T @ centred / grads.shape[0] / problem.batch + np.outer(mean_grad, mean_grad)
    return hessians, additive

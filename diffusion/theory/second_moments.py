"""Exact second moments of the random-coefficient linearisation: multiplicative noise, the finite-η
error floor, mean-square stability and the largest mean-square-stable delay.

Near e_1 the algorithm is ``x_{k+1} = x_k + μ (x_k − x_{k−1}) + η (A_k x_{k−τ_k} + b_k)`` with the random
coefficients of :mod:`amsgd.derivations.linearization`. For sign-symmetric data the covariance stays
diagonal across coordinates, and mode i is the scalar delayed momentum recursion of
:mod:`.linear_recursion` with rate ``a_i = −E A_ii`` driven by the white noise
``ξ_i = Σ_j (A_ij − E A_ij) x_{k−τ,j} + b_i``, uncorrelated with the past, whose variance in
stationarity is ``s_i + Σ_j C_ij v_j`` (``C_ij = Var A_ij``, ``s_i = E b_i²``, ``v_j = Var x_j``). With
``G_i`` the stationary variance of mode i per unit noise (:func:`.lyapunov.scaled_gain` at λ = 1, the
delay's spread included), the stationary variances solve

    (I − diag(G) C) v = G ⊙ s,

which has a positive solution iff the Perron root ``ρ(diag(G) C) < 1``. The second-moment operator of
the whole system has spectral radius ``max(max_i r_i, λ*)`` where ``r_i`` is mode i's own radius
(:func:`.lyapunov.second_moment_radius`) and λ* solves ``ρ(diag(G(λ)) C) = 1`` above them (``G_i(λ)``
decreases in λ); the system is mean-square stable iff it is below one.

The error floor works in the ratio coordinates ``r_i = h_i/h_1`` (i ≥ 2): the error
``sin² = S/(1 + S)``, ``S = Σ r_i²``, depends on them alone, and to first order in r they follow the
tangent block of the same recursion, without the radial coordinate (for μ = τ = 0 their update is
``r' = r + η σ (Y_⊥ − Y_1 r)/(1 − η σ Y_⊥ᵀ r)``, ``σ = Y_1 + Y_⊥ᵀ r``, exactly, up to a term in
``1 − ‖h‖²``). The floor is ``E[S/(1 + S)]`` with r Gaussian of the variances v of the tangent block:

    E[S/(1 + S)] = ∫_0^∞ e^{−t} Σ_i v_i/(1 + 2 t v_i) Π_j (1 + 2 t v_j)^{−1/2} dt,

split into the additive-linear part ``Σ G_i s_i``, the multiplicative part (the rest of ``Σ v_i``) and
the nonlinear part (the curvature of sin², ``E[S/(1+S)] − Σ v_i``). The floor then takes in the norm
of h (:mod:`.norm_coupling`: the restoring force split between the current and the
stale ratio, and the radial friction on each mode's momentum), its fourth part.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import scipy.optimize

from amsgd.core.estimates import json_float
from amsgd.diffusion.theory.linear_recursion import (
    MAX_DELAY,
    Delay,
    delay_law,
    spectral_radius,
)
from amsgd.diffusion.theory.lyapunov import (
    geometric_gain,
    scaled_gain,
    second_moment_radius,
    stationary_gains,
)
from amsgd.diffusion.theory.norm_coupling import NormCoupling, norm_coupled_floor
from amsgd.diffusion.theory.stability import critical_delay

#: Above this many modes the gains at a constant delay are solved as one batch (:func:`.lyapunov.stationary_gains`).
_BATCH_MODES = 16
#: Above this many rows the spectral radius is found by Arnoldi iteration (:func:`largest_modulus`).
_DENSE_PERRON = 300
#: Restarts of the Arnoldi iteration before falling back to every eigenvalue (a matrix with several
#: eigenvalues of the largest modulus converges slowly or not at all).
_ARNOLDI_RESTARTS = 100
#: Relative tolerance of the bisection for the second-moment radius.
_RADIUS_RTOL = 1e-10


@dataclass(frozen=True, eq=False)
class Coefficients:
    """The numbers of the random-coefficient linearisation at e_1, index 0 the radial mode.

    ``rates[i] = −E A_ii`` (per unit η), ``coupling[i, j] = Var A_ij``, ``additive[i] = E b_i²``;
    ``diagonal`` is False when the data law correlates coordinates (then cross-covariances, which
    this theory sets to zero, exist). ``kinetic`` are the data law's constants of the radial
    friction's kernel, ``(q_i, g_i)`` per mode (:class:`amsgd.derivations.norm_coupling.KineticNoise`;
    the radial entry unused, ``∞`` where infinite); None leaves the kernel Gaussian.
    """

    rates: np.ndarray
    coupling: np.ndarray
    additive: np.ndarray
    diagonal: bool = True
    kinetic: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def tangent(self) -> np.ndarray:
        return np.arange(1, self.rates.size)

    @property
    def tangent_kinetic(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``kinetic`` of the tangent modes (:func:`.norm_coupling.norm_coupled_floor`'s ``constants``)."""
        return None if self.kinetic is None else (self.kinetic[0][1:], self.kinetic[1][1:])

    def block(self, modes: np.ndarray) -> Coefficients:
        kinetic = None if self.kinetic is None else (self.kinetic[0][modes], self.kinetic[1][modes])
        return Coefficients(self.rates[modes], self.coupling[np.ix_(modes, modes)], self.additive[modes], self.diagonal,
                            kinetic)  # fmt: skip


@dataclass(frozen=True)
class FiniteEtaFloor:
    """The finite-η, finite-τ error floor and its parts (see the module docstring).

    ``value`` is the floor with the norm coupling (:mod:`.norm_coupling`) where it has a stationary
    law, else the first-order floor ``first_order``, times ``heavy_tail`` for Student-t data
    (:mod:`.heavy_tails`; None for other laws); ``variances`` are the first-order ones. The parts add
    up to ``value``: additive-linear + multiplicative + nonlinear = ``first_order``, then
    ``norm_coupling`` and ``heavy_tail``'s share."""

    value: float
    additive_linear: float
    multiplicative: float
    nonlinear: float
    variances: tuple[float, ...]  # first-order v_i of the tangent modes (ratio coordinates)
    stable: bool
    first_order: float
    coupling: NormCoupling | None = None
    heavy_tail: float | None = None

    def without_stationary_law(self) -> FiniteEtaFloor:
        """This floor where the second moments of the whole linearisation grow (the radial mode's, beyond
        the mean-square τ*, while the tangent block's stay bounded): no stationary law, so every
        number but the additive linear part is infinite (null in JSON) and ``stable`` is False, as
        where the tangent block itself is unstable."""
        inf = math.inf
        return FiniteEtaFloor(inf, self.additive_linear, inf, inf, tuple(inf for _ in self.variances), False, inf)

    @property
    def without_heavy_tail(self) -> float:
        """The floor before the heavy-tail factor."""
        return self.value if self.heavy_tail is None else self.value / self.heavy_tail

    @property
    def norm_coupling(self) -> float | None:
        """The coupled floor less ``first_order``; None where the coupling was not computed."""
        return None if self.coupling is None else self.without_heavy_tail - self.first_order

    @property
    def decay_per_iteration(self) -> float | None:
        """The error's local rate at finite η: ``−log ρ`` per iteration of the slowest tangent mode's
        corrected mean recursion (:attr:`.norm_coupling.NormCoupling.decay_rates`); None where the
        coupling was not computed."""
        return None if self.coupling is None else self.coupling.slowest_decay

    def with_heavy_tail(self, factor: float | None) -> FiniteEtaFloor:
        """This floor times the heavy-tail ``factor`` (:func:`.heavy_tails.heavy_tail_factor`; None: unchanged)."""
        if factor is None or not self.stable:
            return self
        return replace(self, value=self.value * factor, heavy_tail=float(factor))

    def to_dict(self) -> dict:
        return {
            "value": json_float(self.value),
            "first_order": json_float(self.first_order),
            "parts": {
                "additive_linear": json_float(self.additive_linear),
                "multiplicative": json_float(self.multiplicative),
                "nonlinear": json_float(self.nonlinear),
                "norm_coupling": None if self.norm_coupling is None else json_float(self.norm_coupling),
                "heavy_tail": None if self.heavy_tail is None else json_float(self.value - self.without_heavy_tail),
            },
            "heavy_tail_factor": None if self.heavy_tail is None else json_float(self.heavy_tail),
            "per_mode": [json_float(v) for v in self.variances],
            "decay_per_iteration": None if self.decay_per_iteration is None else json_float(self.decay_per_iteration),
            "norm": None if self.coupling is None else self.coupling.to_dict(),
            "stable": self.stable,
        }


def gains(rates: np.ndarray, eta: float, mu: float, delay: Delay, lam: float = 1.0,
          mean_radii: Sequence[float] | None = None) -> np.ndarray:  # fmt: skip
    """``G_i(λ)`` of every mode (``inf`` where the mode alone has no stationary law at λ).

    ``mean_radii`` are the modes' mean radii ``ρ(Ā_i)`` when known (or any value below ``sqrt(λ)``
    for a mode known to be mean-stable): they save an eigenvalue problem per mode."""
    law = delay_law(delay)
    if law.constant is not None and len(rates) > _BATCH_MODES and (lam == 1.0 or mean_radii is not None):
        radii = np.array(_known_radii(rates, eta, mu, law) if mean_radii is None else mean_radii, dtype=float)
        stable = radii**2 < lam
        out = np.full(len(rates), np.inf)
        out[stable] = stationary_gains(np.asarray(rates)[stable], eta, mu, law.constant, lam)
        return out
    radii = mean_radii if mean_radii is not None else [None] * len(rates)
    return np.array([scaled_gain(r, eta, mu, delay, lam, mean_radius=m) for r, m in zip(rates, radii)])


def geometric_gains(rates: np.ndarray, eta: float, mu: float, q: float) -> np.ndarray:
    """``G_i(1)`` of every mode under the untruncated geometric delay law ``(1 − q) q^j`` (``inf`` where a
    mode has no stationary law of its own), from :func:`.lyapunov.geometric_moments`: no lags built."""
    return np.array([geometric_gain(rate, eta, mu, q) for rate in np.asarray(rates, dtype=float)])


def _known_radii(rates: np.ndarray, eta: float, mu: float, delay: Delay,
                 critical: np.ndarray | None = None) -> list[float] | None:  # fmt: skip
    """For a constant delay, stand-ins for the modes' mean radii that only tell stable (0) from
    unstable (inf), from the exact critical delays (``critical`` where known; no eigenvalue problem);
    None otherwise."""
    law = delay_law(delay)
    if law.constant is None:
        return None
    critical = critical_delay(rates, eta, mu) if critical is None else critical
    return [0.0 if law.constant < tc else np.inf for tc in critical]


def perron_root(matrix: np.ndarray) -> float:
    """The spectral radius of a nonnegative matrix (``inf`` if it has an infinite entry)."""
    if not np.all(np.isfinite(matrix)):
        return float("inf")
    return largest_modulus(matrix) if matrix.size else 0.0


def arnoldi_start(size: int) -> np.ndarray:
    """The start vector of every Arnoldi or Lanczos iteration here: uniform on [−1, 1]^size from a
    fixed seed, so that the same matrix gives the same bits in every process (ARPACK's own start is
    random, and its answer moves in the last digits with it)."""
    return np.random.default_rng(0).uniform(-1.0, 1.0, size)


def largest_modulus(matrix: np.ndarray) -> float:
    """The spectral radius of a finite square matrix: from every eigenvalue up to :data:`_DENSE_PERRON`
    rows; above, the eigenvalue of largest modulus alone by Arnoldi iteration (ARPACK, relative
    tolerance 1e-13, started from :func:`arnoldi_start`; every eigenvalue where it does not converge)."""
    if matrix.shape[0] > _DENSE_PERRON:
        import scipy.sparse.linalg

        try:
            top = scipy.sparse.linalg.eigs(matrix, k=1, which="LM", tol=1e-13, maxiter=_ARNOLDI_RESTARTS,
                                           v0=arnoldi_start(matrix.shape[0]), return_eigenvectors=False)  # fmt: skip
            return float(np.abs(top[0]))
        except scipy.sparse.linalg.ArpackError:
            pass
    return float(np.max(np.abs(np.linalg.eigvals(matrix))))


def perron_below_one(matrix: np.ndarray) -> bool:
    """Whether the spectral radius of a nonnegative matrix F is below one, by one linear solve instead
    of an eigenvalue problem: ``(I − F) v = 1`` has a solution ``v > 0`` iff ``ρ(F) < 1`` (if ρ < 1,
    ``v = Σ_k F^k 1 >= 1``; conversely ``F v = v − 1 < v`` with ``v > 0`` bounds ρ(F) by
    ``max_i (F v)_i / v_i < 1``, Collatz–Wielandt)."""
    if not np.all(np.isfinite(matrix)):
        return False
    if matrix.size == 0:
        return True
    try:
        v = np.linalg.solve(np.eye(matrix.shape[0]) - matrix, np.ones(matrix.shape[0]))
    except np.linalg.LinAlgError:  # ρ(F) = 1 exactly
        return False
    return bool(np.all(v > 0.0))


def stationary_variances(c: Coefficients, eta: float, mu: float, delay: Delay,
                         g: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """``v`` solving ``(I − diag(G) C) v = G ⊙ s``; ``inf`` everywhere when not mean-square stable.
    ``g`` are the gains when already computed."""
    g = gains(c.rates, eta, mu, delay) if g is None else g
    if not np.all(np.isfinite(g)):  # a mode without a stationary law of its own
        return np.full(c.rates.size, np.inf)
    feedback = g[:, None] * c.coupling
    if not perron_below_one(feedback):
        return np.full(c.rates.size, np.inf)
    return np.linalg.solve(np.eye(c.rates.size) - feedback, g * c.additive)


def curvature_mean(variances: np.ndarray) -> float:
    """``E[S/(1 + S)]`` for ``S = Σ v_i z_i²``, z standard normal (module docstring)."""
    v = np.asarray(variances, dtype=float)
    if not np.all(np.isfinite(v)):
        return float("inf")

    def integrand(t: float) -> float:  # ndarray methods: np.sum and np.prod dispatch took 40% of the time
        grow = 1.0 + 2.0 * t * v
        return float((v / grow).sum() * (grow**-0.5).prod() * np.exp(-t))

    import scipy.integrate  # only here: its import costs a derivation's start-up

    return float(scipy.integrate.quad(integrand, 0.0, np.inf, limit=200, epsabs=0.0, epsrel=1e-10)[0])


def finite_eta_floor(c: Coefficients, eta: float, mu: float, delay: Delay, coupled: bool = True) -> FiniteEtaFloor:
    """The floor of sin² near e_1 from the tangent block in ratio coordinates (module docstring), with
    the norm coupling of :mod:`.norm_coupling` unless ``coupled`` is False."""
    tangent = c.block(c.tangent)
    g = gains(tangent.rates, eta, mu, delay, 1.0, _known_radii(tangent.rates, eta, mu, delay))
    additive = float(np.sum(g * tangent.additive))
    v = stationary_variances(tangent, eta, mu, delay, g)
    total = float(np.sum(v))
    first = curvature_mean(v)
    law = delay_law(delay)
    norm = None
    if coupled and np.isfinite(first):
        norm = norm_coupled_floor(c.rates, c.coupling, c.additive, eta, mu, law, v, constants=c.tangent_kinetic)
    value = first if norm is None else norm.value
    return FiniteEtaFloor(value, additive, total - additive, first - total, tuple(v.tolist()), bool(np.isfinite(total)),
                          first, norm)  # fmt: skip


def stationary_floor(c: Coefficients, eta: float, mu: float, delay: Delay, stable: bool | None = None) -> FiniteEtaFloor:
    """:func:`finite_eta_floor` where the whole linearisation has a stationary law, and
    :meth:`FiniteEtaFloor.without_stationary_law` where it is not mean-square stable (``stable``, decided
    by :func:`mean_square_stable` when not given), though the tangent block alone would give a number
    (beyond the mean-square τ*, the radial mode's second moments grow)."""
    floor = finite_eta_floor(c, eta, mu, delay)
    if floor.stable and not (mean_square_stable(c, eta, mu, delay) if stable is None else stable):
        return floor.without_stationary_law()
    return floor


@dataclass(frozen=True)
class MeanSquare:
    """Mean-square stability of the whole linearisation (every mode, the radial one included).

    ``radius`` is the spectral radius of the second-moment operator at the problem's delay and
    ``radius_mode`` the mode that sets it (its own radius, or the largest entry of the Perron vector
    of the feedback); ``stable`` whether that radius is below one, decided by :func:`mean_square_stable`
    at λ = 1 (the radius itself is a root found to a relative 1e-10); ``tau_max`` the largest constant
    delay at which the linearisation is mean-square stable at this η and μ (None: not even τ = 0) and
    ``limiting_mode`` the mode that breaks it one delay later (the same rule). Where τ = :data:`~.linear_recursion.MAX_DELAY`, the
    longest delay the numerics take, is still stable and the mean dynamics would take a longer one
    (:func:`search_capped`), ``tau_max`` is that lower bound, ``lower_bound`` is True and
    ``limiting_mode`` is None (no mode was seen to break it).
    """

    radius: float
    radius_mode: int
    stable: bool
    tau_max: int | None
    limiting_mode: int | None
    lower_bound: bool = False


def search_capped(tau_max: int | None, critical: np.ndarray) -> bool:
    """Whether a largest stable delay ``tau_max`` found below ``min(⌈τ_c⌉, MAX_DELAY)`` is only a lower
    bound: it is MAX_DELAY while the mean dynamics is stable beyond it (``⌈min τ_c⌉ − 1 > MAX_DELAY``);
    where the mean τ* is MAX_DELAY itself the bound is the boundary."""
    return tau_max is not None and tau_max >= MAX_DELAY and float(np.ceil(np.min(critical))) - 1 > MAX_DELAY


def second_moment_operator_radius(c: Coefficients, eta: float, mu: float, delay: Delay) -> tuple[float, int]:
    """``(ρ, mode)``: the radius of the full second-moment operator and the mode that sets it."""
    law = delay_law(delay)
    mean = [spectral_radius(r, eta, mu, law) for r in c.rates]
    if law.constant is not None:  # no delay spread: each mode's own radius is ρ(Ā)²
        own = np.square(mean)
    else:
        own = np.array([second_moment_radius(r, eta, mu, law) for r in c.rates])
    low = float(own.max())

    def excess(lam: float) -> float:
        return perron_root(gains(c.rates, eta, mu, delay, lam, mean)[:, None] * c.coupling) - 1.0

    start = low * (1.0 + 1e-9)
    if excess(start) <= 0.0:
        return low, int(np.argmax(own))
    high = 2.0 * start
    while excess(high) > 0.0:
        high *= 2.0
    lam = scipy.optimize.brentq(excess, start, high, rtol=_RADIUS_RTOL)
    feedback = gains(c.rates, eta, mu, delay, lam, mean)[:, None] * c.coupling
    values, vectors = np.linalg.eig(feedback)
    perron = np.abs(vectors[:, int(np.argmax(np.abs(values)))])
    return float(lam), int(np.argmax(perron))


def mean_square_stable(c: Coefficients, eta: float, mu: float, delay: Delay, critical: np.ndarray | None = None) -> bool:
    """Mean-square stability of the whole linearisation at ``delay``: every mode's own second moments
    stationary (``G_i(1)`` finite; for a constant delay, ``τ < τ_c,i``) and the Perron root of the feedback
    ``diag(G(1)) C`` below one. Each ``G_i(λ)`` falls as λ grows above the mode's own radius, and so does
    the Perron root, so this is :func:`second_moment_operator_radius` below one without its search for
    the radius. ``critical``, the modes' critical delays when known, saves their computation for a
    constant delay."""
    law = delay_law(delay)
    radii = _known_radii(c.rates, eta, mu, law, critical)
    if radii is not None and not np.all(np.isfinite(radii)):  # a mode's mean grows: no gain to compute
        return False
    g = gains(c.rates, eta, mu, law, 1.0, radii)
    return bool(np.all(np.isfinite(g))) and perron_below_one(g[:, None] * c.coupling)


def largest_mean_square_delay(c: Coefficients, eta: float, mu: float, critical: np.ndarray) -> int | None:
    """The largest constant delay that is mean-square stable, by bisection below the mean-dynamics τ*
    (mean-square stability implies stability of the mean, and both lose stability as τ grows);
    at most :data:`~.linear_recursion.MAX_DELAY`, the largest delay the numerics take."""
    # not mean-stable, or the numerics' limit (also where no mode's mean dynamics limits the delay)
    high = int(min(np.ceil(critical.min()), MAX_DELAY))
    return last_stable_delay(lambda tau: mean_square_stable(c, eta, mu, tau, critical), high)


def last_stable_delay(stable: Callable[[int], bool], high: int) -> int | None:
    """The largest constant delay τ <= ``high`` with ``stable(τ)``, for a property lost once as τ grows:
    None when τ = 0 is not stable, ``high`` when it still is, otherwise found by steps down from
    ``high`` that double (``high − 1``, ``− 3``, ``− 7``, ...) until one is stable, then by bisection.
    The boundary usually lies a few delays below ``high`` (the mean-square limit just below the mean
    dynamics' one), where the steps need a few evaluations and a bisection from 0 about log₂ high,
    most of them at delays almost as long (an evaluation costs O(τ²) per mode)."""
    if high < 0 or not stable(0):
        return None
    if high == 0 or stable(high):
        return high
    low, step = 0, 1  # low is stable; high is not
    while high - step > 0:
        if stable(high - step):
            low = high - step
            break
        high, step = high - step, 2 * step
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if stable(mid) else (low, mid)
    return low


def mean_square(c: Coefficients, eta: float, mu: float, delay: Delay, critical: np.ndarray,
                operator_radius: tuple[float, int] | None = None, stable: bool | None = None) -> MeanSquare:  # fmt: skip
    """The radius at ``delay`` and its mode (``operator_radius`` where the caller has it already:
    :func:`second_moment_operator_radius`), whether the linearisation is mean-square stable there
    (``stable``, likewise: :func:`mean_square_stable`), the largest mean-square-stable constant delay
    and the mode that breaks stability beyond it."""
    radius, mode = operator_radius or second_moment_operator_radius(c, eta, mu, delay)
    stable = mean_square_stable(c, eta, mu, delay, critical) if stable is None else stable
    tau_max = largest_mean_square_delay(c, eta, mu, critical)
    if search_capped(tau_max, critical):  # the boundary lies beyond the numerics
        return MeanSquare(radius, mode, stable, tau_max, None, lower_bound=True)
    breaking = breaking_mode(c, eta, mu, 0 if tau_max is None else tau_max + 1, critical)
    return MeanSquare(radius, mode, stable, tau_max, breaking)


def breaking_mode(c: Coefficients, eta: float, mu: float, tau: int, critical: np.ndarray) -> int:
    """The mode that is not mean-square stable at the constant delay τ: the first whose mean is
    unstable (the smallest critical delay), else the largest entry of the feedback's Perron vector."""
    if np.any(tau >= critical):
        return int(np.argmin(critical))
    feedback = gains(c.rates, eta, mu, tau, 1.0, np.zeros(c.rates.size))[:, None] * c.coupling
    values, vectors = np.linalg.eig(feedback)
    return int(np.argmax(np.abs(vectors[:, int(np.argmax(np.abs(values)))])))


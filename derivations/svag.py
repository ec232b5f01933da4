"""SVAG (Li, Malladi & Arora 2021) for the momentum recursion: the weights and what they preserve.

For an amplification L the SVAG recursion takes steps of η/L with the gradient replaced by
``w_1 G(x; ξ) + w_2 G(x; ξ')`` of two independent samples, and the delay by Lτ steps:

    x_{n+1} = x_n + μ (x_n − x_{n−1}) + (η/L) [w_1 G(x_{n−Lτ}, ξ_n) + w_2 G(x_{n−Lτ}, ξ'_n)].

The weights solve ``w_1 + w_2 = 1`` (the mean of the combined gradient is E G) and
``w_1² + w_2² = L`` (its variance is L Var G); SymPy solves the pair, ``w_{1,2} = (1 ± sqrt(2L − 1))/2``
(:func:`svag_weights`). With L/η steps per unit of time t the drift per unit time is
``(L/η)(η/L) E G = E G`` and the noise covariance per unit time ``(L/η)(η/L)² L Var G = η Var G``:
those of the recursion at step η, for every L, so the SDE (and, with ``s = Lτ · η/L = τη``, the SDDE)
limit is the same; the momentum's memory, ``1/(1 − μ)`` steps, lasts ``η/(L (1 − μ))`` in time and
vanishes as L grows (:func:`svag_moments`).

What changes with L is the discretisation. For one linear mode at τ = 0, ``G = −a x + σ ξ``, the
SVAG recursion is an AR(2) process whose stationary variance SymPy obtains from its Yule–Walker
(Lyapunov) equations (:func:`svag_mode_variance`):

    Var x = η σ² / (2 a (1 − μ)) · 1/(1 − η a/(2 L (1 + μ))),

which tends to the OU value ``η σ²/(2 a (1 − μ))`` of the SDE as L → ∞: the discretisation excess of
the floor falls like 1/L. Effects that the SDE itself carries (a noise covariance that depends on
the state, the curvature of the observable) do not fall with L.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import sympy as sp

from .moments import expectation

L, eta, mu, a, sigma, tau = sp.symbols("L eta mu a sigma tau", positive=True)


def svag_weights(amplification: sp.Expr = L) -> tuple[sp.Expr, sp.Expr]:
    """``(w_1, w_2)``, ``w_1 >= w_2``, solving ``w_1 + w_2 = 1`` and ``w_1² + w_2² = L`` (L >= 1)."""
    w1, w2 = sp.symbols("w_1 w_2", real=True)
    solutions = sp.solve([w1 + w2 - 1, w1**2 + w2**2 - amplification], [w1, w2], dict=True)
    pairs = [(sp.simplify(s[w1]), sp.simplify(s[w2])) for s in solutions]
    # the solution with w_1 >= w_2: w_1 − w_2 = ± sqrt(2L − 1); test the sign at L = 1 + 1 (any L > 1/2)
    probe = {amplification: 2} if isinstance(amplification, sp.Symbol) else {}
    return max(pairs, key=lambda p: float((p[0] - p[1]).subs(probe)))


@dataclass(frozen=True)
class SvagMoments:
    """The combined gradient's mean and variance for ``E G = m``, ``Var G = v``, and per unit time
    the drift, the noise variance and the delay time of the SVAG recursion."""

    mean: sp.Expr
    variance: sp.Expr
    drift_per_time: sp.Expr
    noise_per_time: sp.Expr
    delay_time: sp.Expr


def svag_moments(amplification: sp.Expr = L) -> SvagMoments:
    """Moments of ``w_1 G_1 + w_2 G_2`` (G_1, G_2 independent, mean m, variance v) and the SVAG
    recursion's drift ``(L/η)(η/L) E``, noise ``(L/η)(η/L)² Var`` and delay time ``Lτ η/L`` per unit time."""
    m, v = sp.symbols("m v", real=True)
    w1, w2 = svag_weights(amplification)
    mean = sp.simplify(sp.expand(w1 * m + w2 * m))
    variance = sp.simplify(sp.expand(w1**2 * v + w2**2 * v))
    step, per_time = eta / amplification, amplification / eta
    return SvagMoments(
        mean=mean,
        variance=variance,
        drift_per_time=sp.simplify(per_time * step * mean),
        noise_per_time=sp.simplify(per_time * step**2 * variance),
        delay_time=sp.simplify(amplification * tau * step),
    )


@functools.lru_cache(maxsize=None)
def svag_kernel_factors(amplification: sp.Expr = L) -> tuple[sp.Expr, sp.Expr]:
    """The factors by which SVAG's combined sample multiplies the radial friction's data constants
    (:func:`amsgd.derivations.norm_coupling.kinetic_noise`): ``q`` of the noise ``w_1 b + w_2 b'`` and
    ``g`` of the gain ``w_1 G + w_2 G'`` with it, two independent samples whose ``b`` has moments
    ``E b = 0``, ``E b² = s``, ``E b⁴ = (q + 3) s²`` and ``cov(G, b²) = g E G s``, ``E[G b] = 0``. The
    cumulants of independent terms add: ``(w_1⁴ + w_2⁴)/L²`` and ``(w_1³ + w_2³)/L``."""
    w1, w2 = svag_weights(amplification)
    s, q, g, mean_gain = sp.symbols("s q g m_G", positive=True)
    samples = sp.symbols("b b' G G'", real=True)
    b, b2, gain, gain2 = samples
    power = {0: sp.S.One, 1: sp.S.Zero, 2: s, 3: sp.S.Zero, 4: (q + 3) * s**2}  # E b^n

    def one_sample(n: int, linear: int) -> sp.Expr:
        """``E[b^n]``, or ``E[G b^n] = E G E b^n``, plus ``g E G s`` for n = 2, of one sample."""
        return power[n] if not linear else power[n] * mean_gain + (g * mean_gain * s if n == 2 else 0)

    def moment(exponents: tuple[int, ...]) -> sp.Expr:  # (b, b', G, G'): the two samples independent
        return one_sample(exponents[0], exponents[2]) * one_sample(exponents[1], exponents[3])

    def expect(expr: sp.Expr) -> sp.Expr:
        return sp.expand(expectation(expr, samples, moment))

    noise, combined_gain = w1 * b + w2 * b2, w1 * gain + w2 * gain2
    variance = sp.simplify(expect(noise**2))
    cumulant = sp.simplify((expect(noise**4) / variance**2 - 3) / q)
    covariance = expect(combined_gain * noise**2) - expect(combined_gain) * variance
    return cumulant, sp.simplify(covariance / (expect(combined_gain) * variance) / g)


def svag_mode_variance(amplification: sp.Expr = L) -> sp.Expr:
    """Stationary variance of one linear mode ``G = −a x + σ ξ`` under SVAG at τ = 0 (module docstring).

    ``x_{n+1} = φ_1 x_n + φ_2 x_{n−1} + (η/L) σ (w_1 ξ_n + w_2 ξ'_n)`` with ``φ_1 = 1 + μ − η a/L``,
    ``φ_2 = −μ``; the autocovariances ``γ_0, γ_1`` solve ``γ_1 = φ_1 γ_0 + φ_2 γ_1`` and
    ``γ_0 = φ_1 γ_1 + φ_2 (φ_1 γ_1 + φ_2 γ_0) + q`` with ``q = (η/L)² σ² (w_1² + w_2²)``.
    """
    g0, g1 = sp.symbols("gamma_0 gamma_1")
    w1, w2 = svag_weights(amplification)
    phi1, phi2 = 1 + mu - eta * a / amplification, -mu
    q = (eta / amplification) ** 2 * sigma**2 * sp.expand(w1**2 + w2**2)
    # γ_2 = φ_1 γ_1 + φ_2 γ_0, and γ_0 = φ_1 γ_1 + φ_2 γ_2 + q
    gamma2 = phi1 * g1 + phi2 * g0
    solved = sp.solve([g1 - phi1 * g0 - phi2 * g1, g0 - phi1 * g1 - phi2 * gamma2 - q], [g0, g1], dict=True)[0]
    return sp.factor(sp.simplify(solved[g0]))


def sde_mode_variance() -> sp.Expr:
    """The OU (SDE) variance of the same mode, ``η σ²/(2 a (1 − μ))``: the limit L → ∞ of :func:`svag_mode_variance`."""
    return sp.simplify(sp.limit(svag_mode_variance(L), L, sp.oo))


@dataclass(frozen=True)
class NoiseToSignal:
    """The noise-to-signal ratio ``N/G`` of Li, Malladi & Arora for one linear mode ``G = −a x + σ ξ``.

    ``N = σ²`` is the gradient noise and ``G = a² x²`` the squared mean gradient, averaged over a
    stationary law: ``sde_ratio`` at the SDE's (``2(1 − μ)/(η a)``), ``discrete_ratio`` at the
    algorithm's own (L = 1). ``shift = discrete_ratio − sde_ratio``, ``−(1 − μ)/(1 + μ)``, and
    ``floor_excess`` is the algorithm's floor over the SDE's minus one, written in the ratio ``R``
    measured at the algorithm's law: ``(1 − μ)/((1 + μ) R)``. The SDE describes the floor only when
    the noise dominates the signal, ``R ≫ (1 − μ)/(1 + μ)``; the recursion diverges where ``R → 0``.
    """

    ratio: sp.Symbol
    sde_ratio: sp.Expr
    discrete_ratio: sp.Expr
    shift: sp.Expr
    floor_excess: sp.Expr


def noise_to_signal() -> NoiseToSignal:
    """``N/G`` of one linear mode at the SDE's and at the algorithm's stationary law, and the floor's
    discretisation excess written through the ratio (:class:`NoiseToSignal`), from
    :func:`svag_mode_variance` at L = 1 and :func:`sde_mode_variance`."""
    ratio = sp.Symbol("R", positive=True)
    discrete, continuous = svag_mode_variance(sp.S.One), sde_mode_variance()
    sde_ratio = sp.simplify(sigma**2 / (a**2 * continuous))
    discrete_ratio = sp.simplify(sigma**2 / (a**2 * discrete))
    step = sp.solve(sp.Eq(ratio, discrete_ratio), eta)
    if len(step) != 1:
        raise ArithmeticError(f"the step η solving R = N/G is not unique: {step}")
    excess = sp.factor(sp.simplify((discrete / continuous - 1).subs(eta, step[0])))
    return NoiseToSignal(ratio, sde_ratio, discrete_ratio, sp.factor(sp.simplify(discrete_ratio - sde_ratio)), excess)


def pca_noise_to_signal() -> tuple[sp.Expr, sp.Expr]:
    """``(N/G, G)`` for streaming PCA at e_1 at the SDE's stationary law, with indexed symbols.

    The tangent modes ``i = 2 .. d`` have rates ``a_i = λ_1 − λ_i`` and noise variances
    ``σ_i² = E[Y_1² Y_i²]``; with each mode at its OU variance ``η σ_i²/(2 a_i (1 − μ))`` the squared
    mean gradient is ``G = Σ_i a_i² Var_i`` and the noise ``N = Σ_i σ_i²``.
    """
    i, d = sp.symbols("i d", integer=True, positive=True)
    rate, noise = sp.IndexedBase("a", positive=True), sp.IndexedBase("sigma", positive=True)
    variance = sde_mode_variance().subs({a: rate[i], sigma: noise[i]})
    signal = sp.factor_terms(sp.simplify(sp.Sum(rate[i] ** 2 * variance, (i, 2, d))))
    return sp.simplify(sp.Sum(noise[i] ** 2, (i, 2, d)) / signal), signal

"""How the norm of h enters the finite-η floor: the restoring-force split, the norm balance and the
kinetic covariance behind the radial friction.

The first-order floor (:mod:`amsgd.diffusion.theory.second_moments`) follows the ratios ``r_i = h_i/h_1``
as if ``‖h‖ = 1``. At finite η the norm sits above one and moves, and three exact facts of the algorithm
``h_{k+1} = h_k + μ (h_k − h_{k−1}) + η g_k``, ``g_k = (I − h' h'ᵀ) Y Yᵀ h'`` (``h' = h_{k−τ}``) bring
it into the ratios' second moments:

1. **Restoring-force split** (:func:`restoring_split`). With the mean map at the delayed iterate, the
   ratio's drift is ``−(a_i − b) r'_i − b r_i`` to first order in r, with ``b = λ_1 (1 − h'_1²)``: the
   part ``b`` of the restoring force ``a_i = λ_1 − λ_i`` acts on the current ratio, not the delayed
   one. At ``‖h‖ = 1`` and ``r = 0``, ``b = 0``; in stationarity ``E h_1² = (1 + δ)(1 − F)`` with
   ``δ = E‖h‖² − 1`` and F the floor (``‖h‖²`` and ``cos² = 1 − sin²`` taken independent).
2. **Norm balance** (:func:`norm_balance`). With ``w_k = h_k − h_{k−1}``, ``p_k = h_k · w_{k+1}`` and the
   kinetic energy ``ε_k = ‖w_k‖²``: ``‖h_{k+1}‖² − ‖h_k‖² = 2 p_k + ε_{k+1}`` and
   ``p_k = μ (p_{k−1} + ε_k) + η h_k · g_k`` exactly, so in stationarity
   ``η E[h · g] = −(1 + μ) E ε / 2``. Expanding ``E[h · g]`` to first order in δ and ``x = h_⊥``
   gives ``δ`` from the tangent modes' variances, their autocovariances at the delay and the kinetic
   energy.
3. **Radial friction** (:func:`kinetic_covariance`, :func:`momentum_factor_norm_part`). At τ = 0 the
   squared norm obeys ``δ_{k+1} − δ_k = μ (δ_k − δ_{k−1}) − 2 η σ_k² δ_k + ε_{k+1} + μ ε_k`` exactly
   (``σ_k = Y_kᵀ h_k``): a damped recursion with rate ``2λ_1`` driven by the kinetic energy. The ratio
   velocity is carried by ``μ ρ_k``, ``ρ_k = h_{1,k−1}/h_{1,k+1}``, whose norm part is
   ``−(δ_{k+1} − δ_{k−1})/2``. Since δ integrates recent ε, which holds ``w_{i,k}²``, ``ρ_k`` is below
   one exactly when mode i's velocity is large: a friction ``ε_i = E[(ρ_k − 1) w_{ik}²]/E[w_{ik}²]``
   per mode. With ``H_j`` the radial recursion's impulse response and the Gaussian (Isserlis) kernel
   ``κ_i(ℓ) = cov(ε_{k−ℓ+1} + μ ε_{k−ℓ}, w_{ik}²) = 2 γ^w_i(ℓ − 1)² + 2 μ γ^w_i(ℓ)²``
   (``γ^w_i`` mode i's velocity autocovariance),

       ε_i = Σ_{j ≥ 0} H_j [κ_i(j + 2) − κ_i(j)] / (2 γ^w_i(0)),

   and mode i relaxes as if its momentum were ``μ (1 + ε_i)``.
4. **The kernel beyond Isserlis** (:func:`kinetic_noise`). The velocity ``w_k = η Σ_m G_m ξ_{k−1−m}``
   (``G`` its impulse response, ``G_0 = 1``) is a filter of the non-Gaussian noise ``ξ = b_i``, whose
   fourth cumulant ``q_i s_i²`` (``q_i = E b_i⁴/(E b_i²)² − 3``) adds
   ``q_i s_i² η⁴ Σ_m G_m² G_{m+ℓ}²`` to ``cov(w_{k−ℓ}², w_k²)``. And the norm's gain ``−η A_11`` (``2η Y_1²``
   for PCA) is itself random: its forcing ``η (−A_11 − 2λ_1) δ_k`` of the squared norm is correlated
   with the square of the same step's noise, which adds ``−2η³ δ g_i λ_1 s_i G_{ℓ−1}²`` to κ_i(ℓ) for
   ℓ ≥ 1, ``g_i = cov(−A_11, b_i²)/(E[−A_11] E b_i²)``. Both are data-law constants, here in λ_1, λ_i:
   Gaussian data ``q = 6``, ``g = 2``; Rademacher ``q = −2``, ``g = 0``; Student-t moments of degree 8
   and 6 of the data, infinite for ν ≤ 8 and ν ≤ 6.

Each function derives its formula from the update with SymPy; the numbers are
:mod:`amsgd.diffusion.theory.norm_coupling`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import sympy as sp

from amsgd.core.distributions import Distribution

from .distributions import product_moment
from .linearization import optimum_linearization
from .moments import expectation, wick_moment
from .pca import PCAModel
from .stored import derived_once, derived_once_per_law

ETA, MU = sp.Symbol("eta", positive=True), sp.Symbol("mu", nonnegative=True)
#: The top eigenvalue and a tangent eigenvalue λ_i of Σ.
LAM1, LAMI = sp.Symbol("lambda_1", positive=True), sp.Symbol("lambda_i", positive=True)
#: ``δ = E‖h‖² − 1`` and the floor ``F = E sin²``.
DELTA, FLOOR = sp.Symbol("delta", real=True), sp.Symbol("F", nonnegative=True)
#: Mode i's stationary variance ``v_i`` and its autocovariance at the delay, ``γ_i(τ)``.
VARIANCE, LAGGED = sp.Symbol("v_i", nonnegative=True), sp.Symbol("{\\gamma_i(\\tau)}", real=True)
#: ``Q = Σ_j λ_j v_j``, the tangent modes' share of ``hᵀΣh`` per ``h_1²``, and mode i's additive noise
#: variance ``s_i = E[Y_1² Y_i²]``.
SPECTATORS, NOISE = sp.Symbol("Q", nonnegative=True), sp.Symbol("s_i", positive=True)
#: ``Σ_i`` of the per-mode term of the norm balance, and the kinetic energy ``E‖w‖²``.
LAG_SUM, KINETIC = sp.Symbol("L", real=True), sp.Symbol("K", nonnegative=True)


def _mean_map(point: list[sp.Expr], eigenvalues: list[sp.Expr], others: sp.Expr = sp.S.Zero) -> list[sp.Expr]:
    """``E g = Σ h − (hᵀ Σ h) h`` at ``h = point`` for a diagonal Σ, ``others`` adding to ``hᵀ Σ h`` the
    coordinates that ``point`` leaves out."""
    quadratic = sum(lam * x**2 for lam, x in zip(eigenvalues, point)) + others
    return [lam * x - quadratic * x for lam, x in zip(eigenvalues, point)]


@derived_once
def restoring_split() -> sp.Expr:
    """``b(λ_1, δ, F, Q)``: the part of the restoring force on a ratio that acts on the current iterate.

    Coordinates ``(1, i)``; current iterate ``(h_1, r h_1)``, delayed ``(h'_1, r' h'_1)``, the other
    tangent modes adding ``h'_1² Q`` to ``h'ᵀ Σ h'`` (``Q = Σ_j λ_j r'_j²``, mode i's own term
    included). One step of the mean map moves the ratio by ``η (m_i − r m_1)/h_1`` (first order in η);
    to first order in r, r' (Q held: it is a sum of squares) and with ``h_1 = h'_1`` (the first
    coordinate moves on the slow scale) this is ``−(a_i − b) r' − b r`` with
    ``b = λ_1 (1 − h'_1²) − h'_1² Q``; then ``E h'_1² = (1 + δ)(1 − F)`` and ``E Q = Σ_j λ_j v_j``."""
    h1 = sp.Symbol("h_1", positive=True)
    r, r_delayed, t = sp.symbols("r r' t", real=True)
    # the tangent modes' squares, mode i's own included, are in Q (mode i's term is of order t²)
    m1, mi = _mean_map([h1, t * r_delayed * h1], [LAM1, LAMI], others=h1**2 * SPECTATORS)
    drift = sp.expand((mi - t * r * m1) / h1)
    first = sp.expand(sp.diff(drift, t).subs(t, 0))
    split = -first.coeff(r)
    if sp.simplify(first.coeff(r_delayed) + (LAM1 - LAMI - split)) != 0:  # −(a_i − b) on the delayed ratio
        raise ArithmeticError("the ratio's drift does not split into a current and a delayed part")
    return split.subs(h1, sp.sqrt((1 + DELTA) * (1 - FLOOR)))


@derived_once
def ratio_noise_excess() -> sp.Expr:
    """The noise of mode i's ratio step beyond the linearisation's ``s_i + Σ_j C_ij v_j``, per unit η²,
    in stationarity: ``s_i (2 γ_i(τ) − 4 v_i)``.

    At unit norm, current iterate ``(1, x_i, x_j)/‖·‖`` and delayed ``(1, x'_i, x'_j)/‖·‖`` (j a second
    tangent mode), the ratio's step to first order in η is ``η D(Y)`` with ``D`` exact in the ratios.
    Written ``D = D_0 + D_1 + D_2 + …`` by degree in the ratios, the linearisation keeps the variance
    ``E D_0² + Var D_1`` (the additive noise ``s_i = E[Y_1² Y_i²]`` and the multiplicative ``C_ij``);
    the next term of the same order is ``2 E[D_0 D_2]``: the additive noise ``Y_1 Y_i`` is correlated with
    the second-order part of the step (the stale normalisation ``s² h'`` and the factor ``h'_1/h_{1,k+1}``
    by which the current first coordinate divides it). Its average with ``E x_i² = E x_i'² = v_i``,
    ``E x_i x'_i = γ_i(τ)`` (and mode j's alike, modes uncorrelated) is returned; the data law enters
    through its moments only (coordinates sign-symmetric: odd moments vanish)."""
    y = sp.symbols("Y_1 Y_i Y_j", real=True)
    x, xd, t = sp.symbols("x_i x_j", real=True), sp.symbols("x'_i x'_j", real=True), sp.Symbol("t", real=True)
    step = sp.Symbol("epsilon", positive=True)

    def unit(ratios) -> list[sp.Expr]:
        scale = sp.sqrt(1 + t**2 * sum(q**2 for q in ratios))
        return [1 / scale] + [t * q / scale for q in ratios]

    now, then = unit(x), unit(xd)
    s = sum(a * b for a, b in zip(y, then))
    moved = [h + step * s * (yy - s * g) for h, yy, g in zip(now, y, then)]
    d = sp.diff(moved[1] / moved[0], step).subs(step, 0)
    parts = sp.expand(sp.series(d, t, 0, 3).removeO())
    d0, d2 = parts.coeff(t, 0), parts.coeff(t, 2)

    def moment(exponents) -> sp.Expr:
        if any(e % 2 for e in exponents):
            return sp.S.Zero
        return sp.Symbol("m_{" + ",".join(map(str, exponents)) + "}", positive=True)

    excess = 2 * expectation(d0 * d2, y, moment) - 2 * expectation(d0, y, moment) * expectation(d2, y, moment)
    lagged_j = sp.Symbol("{\\gamma_j(\\tau)}", real=True)
    variance_j = sp.Symbol("v_j", nonnegative=True)
    stationary = {(2, 0, 0, 0): VARIANCE, (0, 0, 2, 0): VARIANCE, (1, 0, 1, 0): LAGGED,
                  (0, 2, 0, 0): variance_j, (0, 0, 0, 2): variance_j, (0, 1, 0, 1): lagged_j}  # fmt: skip

    def state_moment(exponents) -> sp.Expr:
        return stationary.get(tuple(exponents), sp.S.Zero)

    averaged = sp.expand(expectation(excess, (x[0], x[1], xd[0], xd[1]), state_moment))
    return sp.factor(averaged.subs(sp.Symbol("m_{2,2,0}", positive=True), NOISE))


@dataclass(frozen=True)
class NormBalance:
    """``δ = (L + (1 + μ) K/(2η))/λ_1`` with ``L = Σ_i per_mode(λ_1, λ_i, v_i, γ_i(τ))``, ``K = E‖w‖²``."""

    delta: sp.Expr
    per_mode: sp.Expr


@derived_once
def norm_balance() -> NormBalance:
    """The stationary ``δ = E‖h‖² − 1`` (module docstring, item 2).

    First the identity: the stationary means ``P = E p``, ``D = η E[h · g]`` of
    ``0 = 2P + K`` and ``P = μ (P + K) + D`` give ``D = −(1 + μ) K/2``. Then ``E[h · g]`` over the data
    for current ``(h_1, x)`` and delayed ``(h'_1, x')`` with ``h_1² = 1 + δ − x²``: its part of first
    order in δ and x² is ``−λ_1 δ`` plus a term per tangent mode in ``E x² = v_i`` and
    ``E x x' = γ_i(τ)``."""
    p, d = sp.symbols("P D", real=True)
    identity = sp.solve([2 * p + KINETIC, p - MU * (p + KINETIC) - d], [p, d], dict=True)[0][d]
    x, x_delayed, t = sp.symbols("x x' t", real=True)
    delta_now, delta_then = sp.symbols("delta_k delta_k'", real=True)
    now = [sp.sqrt(1 + t**2 * (delta_now - x**2)), t * x]
    then = [sp.sqrt(1 + t**2 * (delta_then - x_delayed**2)), t * x_delayed]
    pulled = sum(a * b for a, b in zip(now, _mean_map(then, [LAM1, LAMI])))
    second = sp.expand(sp.series(pulled, t, 0, 3).removeO().coeff(t, 2))
    stationary = {(2, 0, 0, 0): VARIANCE, (0, 2, 0, 0): VARIANCE, (1, 1, 0, 0): LAGGED,
                  (0, 0, 1, 0): DELTA, (0, 0, 0, 1): DELTA}  # fmt: skip
    averaged = sp.expand(expectation(second, (x, x_delayed, delta_now, delta_then), stationary.__getitem__))
    restoring = averaged.coeff(DELTA)
    per_mode = sp.factor(averaged - restoring * DELTA)
    total = restoring * DELTA + LAG_SUM  # E[h·g] summed over the tangent modes
    delta = sp.solve(sp.Eq(ETA * total, identity), DELTA)[0]
    return NormBalance(sp.simplify(delta), per_mode)


@derived_once
def kinetic_covariance() -> sp.Expr:
    """``κ(ℓ) = cov(w_{k−ℓ+1}² + μ w_{k−ℓ}², w_k²)`` of one Gaussian mode's velocity, in its
    autocovariances ``γ^w(ℓ − 1)``, ``γ^w(ℓ)`` (Isserlis' theorem)."""
    g0, g1, earlier, later = sp.symbols("{\\gamma^w(0)} {\\gamma^w(1)} {\\gamma^w(\\ell-1)} {\\gamma^w(\\ell)}", real=True)
    wa, wb, wc = sp.symbols("w_a w_b w_c", real=True)  # w_{k−ℓ+1}, w_{k−ℓ}, w_k
    covariance = sp.Matrix([[g0, g1, earlier], [g1, g0, later], [earlier, later, g0]])
    moment = wick_moment(covariance)
    noise = (wa, wb, wc)
    drive = wa**2 + MU * wb**2
    joint = expectation(drive * wc**2, noise, moment)
    return sp.expand(joint - expectation(drive, noise, moment) * expectation(wc**2, noise, moment))


#: The largest fourth cumulant ``q_i`` of a mode's noise at which the friction's kernel takes its data-law
#: terms (:func:`kinetic_noise`; in the floor, ``amsgd.diffusion.theory.norm_coupling.kernel_beyond_isserlis``).
#: Their linear response in ``q_i`` held against the runs' friction up to Student-t 9 data (``q_i = 102``:
#: ε_2 −2.47 against −2.34 ± 0.46 on Σ = diag(4, 3, 2, 1), η 5e-4, μ 0.95) and failed beyond it (Student-t
#: 8.5, ``q_i = 208``: −4.29 against −2.51 ± 0.34; benchmarks/floor_parts.py); as ν → 8 the term grows
#: without bound, the runs' friction does not. Beyond it a mode's kernel stays Isserlis's, as where
#: ``q_i`` is infinite.
KERNEL_CUMULANT_MAX = 102.0


@dataclass(frozen=True)
class KineticNoise:
    """The data law's constants of the friction's kernel beyond Isserlis (module docstring, item 4), in
    ``λ_1, λ_i``: ``cumulant = q_i``, ``gain = g_i`` (``∞`` where the moments they need are infinite)."""

    cumulant: sp.Expr
    gain: sp.Expr


@derived_once_per_law
def kinetic_noise(distribution: Distribution) -> KineticNoise:
    """``q_i = E b_i⁴/(E b_i²)² − 3`` and ``g_i = cov(−A_11, b_i²)/(E[−A_11] E b_i²)`` of a named law, from
    the linearisation at e_1 of the two-dimensional model (coordinates 1 and i) and the law's product
    moments of degree up to eight (:func:`.distributions.product_moment`)."""
    model = PCAModel(2, distribution, labels=("1", "i"))
    lin = optimum_linearization(model)

    def e(expr: sp.Expr) -> sp.Expr:
        return expectation(expr, lin.noise, lambda exponents: product_moment(distribution, exponents, model.lam))

    noise, gain = lin.forcing[1], -lin.coefficient[0, 0]
    s, mean_gain = e(noise**2), e(gain)
    cumulant = sp.simplify(e(noise**4) / s**2 - 3)
    covariance = e(gain * noise**2) - mean_gain * s
    return KineticNoise(cumulant, sp.simplify(covariance / (mean_gain * s)))


@functools.lru_cache(maxsize=8)
def kinetic_noise_functions(distribution: Distribution):
    """:func:`kinetic_noise` as NumPy functions of ``(λ_1, λ_i)``."""
    found = kinetic_noise(distribution)
    return tuple(sp.lambdify((LAM1, LAMI), expr, "numpy") for expr in (found.cumulant, found.gain))


@derived_once
def momentum_factor_norm_part() -> sp.Expr:
    """The first-order part of ``ρ_k = h_{1,k−1}/h_{1,k+1}`` in the squared norms ``1 + δ_{k−1}``,
    ``1 + δ_{k+1}`` at a fixed direction: ``(δ_{k−1} − δ_{k+1})/2``."""
    t = sp.Symbol("t", real=True)
    before, after = sp.symbols("delta_{k-1} delta_{k+1}", real=True)
    ratio = sp.sqrt((1 + t * before) / (1 + t * after))
    return sp.expand(sp.series(ratio, t, 0, 2).removeO().coeff(t, 1))


@functools.lru_cache(maxsize=1)
def ratio_noise_excess_function():
    """:func:`ratio_noise_excess` as a NumPy function of ``(s_i, v_i, γ_i(τ))``."""
    return sp.lambdify((NOISE, VARIANCE, LAGGED), ratio_noise_excess(), "numpy")


@functools.lru_cache(maxsize=1)
def norm_coupling_functions():
    """NumPy functions of the derived formulas: ``b(λ_1, δ, F, Q)``, ``δ(η, μ, λ_1, L, K)``, the norm
    balance's per-mode term ``(λ_1, λ_i, v_i, γ_i(τ))`` and ``κ(μ, γ^w(ℓ − 1), γ^w(ℓ))``."""
    balance = norm_balance()
    earlier, later = sp.symbols("{\\gamma^w(\\ell-1)} {\\gamma^w(\\ell)}", real=True)
    return (
        sp.lambdify((LAM1, DELTA, FLOOR, SPECTATORS), restoring_split(), "numpy"),
        sp.lambdify((ETA, MU, LAM1, LAG_SUM, KINETIC), balance.delta, "numpy"),
        sp.lambdify((LAM1, LAMI, VARIANCE, LAGGED), balance.per_mode, "numpy"),
        sp.lambdify((MU, earlier, later), kinetic_covariance(), "numpy"),
    )

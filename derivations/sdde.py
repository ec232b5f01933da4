"""The finite-delay limit: a stochastic delay differential equation (SDDE), and its stationary variance.

When the delay grows like ``τ = s/η`` as η → 0 (the *delay time* ``s = τ η`` held fixed), the delay
does not disappear from the limit of

    x_{k+1} = x_k + μ (x_k − x_{k−1}) + η G(x_{k−τ}, ξ_k).

Put ``x_k = X(kη)`` for a smooth curve and ``τ η = s``: the stale iterate is ``X(t − s)``, a shift of
order one, so the formal expansion in η (:func:`delayed_expansion`) does not expand it. The order-η
balance is ``(1 − μ) X'(t) = G(X(t − s))``: the drift scale ``1/(1 − μ)`` of
:func:`~.recursion.derive_time_scale` with the gradient taken at the stale state. The noise of step k
is the noise of the gradient at ``x_{k−τ}`` passed through the momentum filter, whose zero-frequency
gain is ``1/(1 − μ)``; ``1/η`` steps per unit of time give the amplitude ``sqrt(η)/(1 − μ)`` per unit
of ``C^{1/2}``, so

    dX = G(X(t − s))/(1 − μ) dt + sqrt(η)/(1 − μ) C(X(t − s))^{1/2} dW.

Linearised at a stable point, mode i with restoring rate ``a_i`` (per unit η) and gradient-noise
variance ``σ_i²`` (:class:`~.derivation.LinearMode`) is the scalar linear SDDE

    dX_i = −c_i X_i(t − s) dt + b_i dW_i,   c_i = a_i/(1 − μ),   b_i² = η σ_i²/(1 − μ)²

(:func:`linear_mode_sdde`), whose characteristic equation and stability boundary ``c_i s < π/2`` are
those of the delay-differential limit (:func:`~.delay_stability.delay_differential_limit`).

**Stationary covariance** (:func:`stationary_cross_covariance`). For two modes of
``dZ = −diag(c) Z(t − s) dt + B dW`` with noise covariance ``D = B Bᵀ``, the stationary
cross-covariance ``R_ij(u) = E[Z_i(t + u) Z_j(t)]`` obeys, for ``0 ≤ u ≤ s``,
``R_ij'(u) = −c_i R_ij(u − s) = −c_i R_ji(s − u)``. With ``P(u) = R_ij(u)`` and ``Q(u) = R_ji(s − u)``
this is the linear system ``P' = −c_i Q``, ``Q' = c_j P`` on ``[0, s]``, closed by the symmetry
``R_ij(0) = R_ji(0)``, i.e. ``P(0) = Q(s)``, and by Itô's formula for ``Z_i Z_j`` at stationarity,
``0 = −c_j R_ij(s) − c_i R_ji(s) + D_ij``. SymPy solves it (``dsolve``, then the two linear
conditions); for one mode (``i = j``, ``D = b²``) this is ``R'(u) = −c R(s − u)``,
``0 = −2 c R(s) + b²``, and

    Var X = R(0) = b² (1 + sin(c s)) / (2 c cos(c s)),   0 ≤ c s < π/2,

the result of Küchler & Mensch (1992), to which the derived expression is shown equal. In general
``R_ij(0) = D_ij cos(ω s)/(c_i + c_j − 2 ω sin(ω s))`` with ``ω = sqrt(c_i c_j)``; at ``s = 0`` both
reduce to the Ornstein–Uhlenbeck (Lyapunov) values ``b²/(2c)`` and ``D_ij/(c_i + c_j)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import sympy as sp

from .delay_stability import DelayDifferentialLimit, delay_differential_limit
from .delay_stability import a as rate
from .recursion import derive_time_scale, eta, mu, t, tau
from .stored import derived_once

#: The delay time ``s = τ η``, held fixed in the limit.
s = sp.Symbol("s", positive=True)
#: The lag of an autocovariance, ``0 ≤ u ≤ s``.
u = sp.Symbol("u", real=True)
#: A mode's gradient-noise variance σ² (per unit η, as :class:`~.derivation.LinearMode`).
noise_variance = sp.Symbol("sigma^2", positive=True)
#: The coefficients of a scalar linear SDDE ``dX = −c X(t − s) dt + b dW``.
c, b = sp.symbols("c b", positive=True)
c_i, c_j = sp.symbols("c_i c_j", positive=True)
d_ij = sp.Symbol("D_ij", real=True)
omega = sp.Symbol("omega", positive=True)


@dataclass(frozen=True)
class DelayedExpansion:
    """The formal expansion of the recursion along ``X(t)`` with ``τ = s/η`` (module docstring)."""

    residual_order1: sp.Expr  # coefficient of η: (1 − μ) X'(t) − G(X(t − s))
    residual_order2: sp.Expr  # coefficient of η²: no delay term, the delay sits in G's argument
    velocity: sp.Expr  # X'(t) solved from the order-η balance
    drift_scale: sp.Expr  # 1/(1 − μ), from derive_time_scale
    noise_gain: sp.Expr  # 1/(1 − μ), from derive_time_scale
    noise_amplitude: sp.Expr  # sqrt(η)/(1 − μ), per unit of C^{1/2}
    curve: sp.Function
    update: sp.Function

    @property
    def balance(self) -> sp.Eq:
        """``(1 − μ) X'(t) = G(X(t − s))``."""
        x, g = self.curve, self.update
        return sp.Eq((1 - mu) * sp.Derivative(x(t), t), g(x(t - s)))


@derived_once
def delayed_expansion() -> DelayedExpansion:
    """Expand ``X(t+η) − X(t) − μ (X(t) − X(t−η)) − η G(X(t − τη))`` in η with ``τ = s/η``.

    Checks, symbolically, that the order-η balance is the τ-free one of
    :func:`~.recursion.derive_time_scale` with ``G(X(t))`` replaced by ``G(X(t − s))`` and that the
    velocity it gives is ``drift_scale · G(X(t − s))``.
    """
    timing = derive_time_scale()
    x, g = timing.curve, timing.update
    residual = x(t + eta) - x(t) - mu * (x(t) - x(t - eta)) - eta * g(x(t - tau * eta))
    held = residual.subs(tau, s / eta)  # τ η = s: the stale argument is X(t − s), not expanded
    expanded = sp.expand(sp.series(held, eta, 0, 3).removeO().doit())
    order1, order2 = expanded.coeff(eta, 1), expanded.coeff(eta, 2)
    stale = g(x(t - s))
    if sp.simplify(order1 - timing.residual_order1.subs(g(x(t)), stale)) != 0:
        raise ArithmeticError("the order-eta balance at tau = s/eta is not the tau-free one at the stale state")
    velocity = sp.solve(order1, sp.Derivative(x(t), t))[0]
    if sp.simplify(velocity - timing.drift_scale * stale) != 0:
        raise ArithmeticError("the delayed balance does not have the drift scale of the tau-free limit")
    if order2.has(s) or order2.has(g):
        raise ArithmeticError("the order-eta^2 residual is expected to hold no delay and no gradient")
    # 1/η steps per unit time, each adding η H(1) ξ_k: variance η H(1)² C per unit of time.
    steps, dt = sp.symbols("n Delta_t", positive=True)
    variance_per_time = (steps * (eta * timing.noise_gain) ** 2 / dt).subs(steps, dt / eta)
    amplitude = sp.sqrt(eta) * timing.noise_gain  # the positive root, 1 − μ > 0
    if sp.simplify(amplitude**2 - variance_per_time) != 0:
        raise ArithmeticError("the noise amplitude squared is not the variance per unit time")
    return DelayedExpansion(order1, order2, velocity, timing.drift_scale, timing.noise_gain,
                            sp.simplify(amplitude), x, g)  # fmt: skip


@dataclass(frozen=True)
class StationaryCovariance:
    """The stationary cross-covariance of two modes of a linear SDDE (module docstring)."""

    system: tuple[sp.Eq, sp.Eq]  # P'(u) = −c_i Q(u), Q'(u) = c_j P(u) on [0, s]
    conditions: tuple[sp.Expr, sp.Expr]  # = 0: the symmetry P(0) = Q(s) and Itô's formula
    autocovariance: sp.Expr  # R_ij(u) = P(u) on [0, s]
    value: sp.Expr  # R_ij(0)


@derived_once
def stationary_cross_covariance(
    ci: sp.Symbol = c_i, cj: sp.Symbol = c_j, noise: sp.Expr = d_ij
) -> StationaryCovariance:
    """Solve the autocovariance system of two delayed modes with rates ``ci``, ``cj`` and noise
    covariance ``noise`` for ``R_ij(0)``; with ``ci = cj`` and ``noise = b²`` it is one mode."""
    r_ij, r_ji = sp.Function("R_ij"), sp.Function("R_ji")

    # For 0 <= v <= s: R_ij'(v) = -c_i R_ij(v - s) = -c_i R_ji(s - v), mirrored by R_ij(-w) = R_ji(w).
    def slope_ij(v: sp.Expr) -> sp.Expr:
        return -ci * r_ji(s - v)

    def slope_ji(v: sp.Expr) -> sp.Expr:
        return -cj * r_ij(s - v)

    # P(u) = R_ij(u), Q(u) = R_ji(s - u): differentiate and apply the delayed equations.
    p, q = sp.Function("P"), sp.Function("Q")
    dp = slope_ij(u).subs(r_ji(s - u), q(u))
    dq = (-slope_ji(s - u)).subs(r_ij(u), p(u))
    system = (sp.Eq(p(u).diff(u), dp), sp.Eq(q(u).diff(u), dq))
    solution = sp.dsolve(list(system), [p(u), q(u)])
    p_u, q_u = (next(e.rhs for e in solution if e.lhs == f(u)) for f in (p, q))
    constants = sorted(p_u.free_symbols - {u, s, ci, cj}, key=str)

    # Itô for Z_i Z_j: E d(Z_i Z_j) = (−c_j E[Z_i(t) Z_j(t−s)] − c_i E[Z_j(t) Z_i(t−s)] + D_ij) dt.
    zi, zj, zi_s, zj_s = sp.symbols("Z_i Z_j Z_i^s Z_j^s", real=True)
    product = zi * zj
    generator = (sp.diff(product, zi) * (-ci * zi_s) + sp.diff(product, zj) * (-cj * zj_s)
                 + sp.diff(product, zi, zj) * noise)  # fmt: skip
    ito = sp.expand(generator).subs({zi * zj_s: p_u.subs(u, s), zj * zi_s: q_u.subs(u, 0)})
    conditions = (p_u.subs(u, 0) - q_u.subs(u, s), ito)
    (values,) = sp.linsolve(list(conditions), constants)
    fitted = p_u.subs(dict(zip(constants, values)))
    value = sp.simplify(fitted.subs(u, 0))
    return StationaryCovariance(system, conditions, fitted, value)


@dataclass(frozen=True)
class LinearModeSDDE:
    """One linear mode of the SDDE at a stable point, its stationary variance and its boundary."""

    equation: str  # dX = −c X(t − s) dt + b dW, as text
    rate: sp.Expr  # c = a/(1 − μ)
    noise: sp.Expr  # b² = η σ²/(1 − μ)²
    variance: sp.Expr  # Var X in c, b, s (derived)
    closed_form: sp.Expr  # Küchler & Mensch (1992), quoted: b² (1 + sin cs)/(2 c cos cs)
    mode_variance: sp.Expr  # Var X in a, σ², η, μ, s
    diffusion_variance: sp.Expr  # mode_variance at s = 0: the diffusion limit's η σ²/(2 a (1 − μ))
    delay_differential: DelayDifferentialLimit  # characteristic equation, s* = π (1 − μ)/(2 a)


@derived_once
def linear_mode_sdde() -> LinearModeSDDE:
    """``dX = −c X(t − s) dt + b dW`` from the SDDE with ``G = −a x`` and noise variance σ²,
    its stationary variance derived by :func:`stationary_cross_covariance`."""
    expansion = delayed_expansion()
    rate_c = rate * expansion.drift_scale
    noise_b2 = expansion.noise_amplitude**2 * noise_variance
    scalar = stationary_cross_covariance(c, c, b**2).value
    closed = b**2 * (1 + sp.sin(c * s)) / (2 * c * sp.cos(c * s))
    if sp.simplify(scalar - closed) != 0:
        raise ArithmeticError("the derived stationary variance differs from b^2 (1 + sin cs)/(2 c cos cs)")
    mode = sp.simplify(closed.subs({c: rate_c, b: sp.sqrt(noise_b2)}))
    return LinearModeSDDE(
        equation="dX = -c X(t - s) dt + b dW",
        rate=rate_c,
        noise=sp.simplify(noise_b2),
        variance=sp.simplify(scalar),
        closed_form=closed,
        mode_variance=mode,
        diffusion_variance=sp.simplify(mode.subs(s, 0)),
        delay_differential=delay_differential_limit(),
    )


@derived_once
def cross_covariance_formula() -> sp.Expr:
    """``R_ij(0) = D_ij cos(ω s)/(c_i + c_j − 2 ω sin(ω s))``, ``ω = sqrt(c_i c_j)``: the form of the
    derived :func:`stationary_cross_covariance` that is shown equal to it (in the symbols ``c_i``,
    ``c_j``, ``D_ij``, ``s`` and ``omega``)."""
    general = stationary_cross_covariance().value.subs(c_j, omega**2 / c_i)
    cross = d_ij * sp.cos(omega * s) / (c_i + c_j - 2 * omega * sp.sin(omega * s))
    if sp.simplify(general - cross.subs(c_j, omega**2 / c_i)) != 0:
        raise ArithmeticError("the derived cross-covariance differs from D cos(ws)/(c_i + c_j - 2 w sin(ws))")
    return cross


class _Mode(Protocol):
    i: int
    kind: str
    rate: sp.Expr
    noise_variance: sp.Expr


@dataclass(frozen=True)
class ModeSDDE:
    """Mode ``i`` of the SDDE linearised at a stable point: ``dX_i = −c_i X_i(t − s) dt + b_i dW_i``."""

    i: int
    kind: str
    rate: sp.Expr  # c_i = a_i/(1 − μ)
    noise: sp.Expr  # b_i² = η σ_i²/(1 − μ)²
    variance: sp.Expr  # Var X_i, a function of s for 0 <= c_i s < π/2
    critical_delay_time: sp.Expr  # s_i* = π (1 − μ)/(2 a_i)


@dataclass(frozen=True)
class SDDELimit:
    """The SDDE and its linearisation at a stable point, mode by mode, with the floor ``Σ_i Var X_i``.

    The modes are those of a linearisation that is diagonal in its coordinates (streaming PCA at
    e_1); the floor is the sum over the modes given, each the scalar result of
    :func:`linear_mode_sdde`.
    """

    expansion: DelayedExpansion
    linear: LinearModeSDDE
    modes: tuple[ModeSDDE, ...]

    @property
    def floor(self) -> sp.Expr:
        """``Σ_i b_i² (1 + sin(c_i s))/(2 c_i cos(c_i s))``, valid for ``s < min_i s_i*``."""
        return sp.Add(*(m.variance for m in self.modes))


def sdde_limit(modes: Sequence[_Mode]) -> SDDELimit:
    """The SDDE linearised at a stable point with the linear ``modes`` (restoring rate ``a_i`` per
    unit η, noise variance ``σ_i²``): each mode's coefficients, stationary variance and ``s_i*``."""
    linear = linear_mode_sdde()
    boundary = linear.delay_differential.critical_delay_time
    out = []
    for m in modes:
        values = {rate: m.rate, noise_variance: m.noise_variance}
        out.append(ModeSDDE(
            m.i, m.kind, linear.rate.subs(rate, m.rate), linear.noise.subs(noise_variance, m.noise_variance),
            linear.mode_variance.subs(values), boundary.subs(rate, m.rate),
        ))  # fmt: skip
    return SDDELimit(delayed_expansion(), linear, tuple(out))

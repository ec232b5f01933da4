"""Exact finite-η, finite-τ theory of one linear mode: characteristic polynomial, stability, rates.

Linearising the recursion at a stationary point, a mode with mean-drift rate ``a`` (``a = −J_ii``,
positive when restoring) obeys

    x_{k+1} = (1 + μ) x_k − μ x_{k−1} − η a x_{k−τ} + η ξ_k.

Trying ``x_k = z^k`` gives the characteristic polynomial ``p(z)``; the mode is stable iff every
root lies in the open unit disc. This module derives

* ``p(z)`` for a given or symbolic τ;
* for small τ, the stability conditions in closed form by the Schur–Cohn reduction and the
  critical step ``η a`` at which they fail;
* the dominant root to second order in η, ``z = 1 + c_1 η + c_2 η² + …``: its rate
  ``log(z)/η`` is the limit rate ``−a/(1 − μ)`` plus the correction that momentum and delay add;
* the delay-differential limit for ``τ η/(1 − μ) = O(1)``: with ``s = τ η`` held fixed the order-η
  balance is ``(1 − μ) X'(t) = −a X(t − s)``, whose stability boundary is ``a s/(1 − μ) = π/2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .recursion import eta, mu, tau
from .stored import derived_once

z = sp.Symbol("z")
a = sp.Symbol("a", positive=True)
c = sp.Symbol("c", positive=True)  # c = η a, the only combination the polynomial depends on


def characteristic_polynomial(delay: int | sp.Symbol = tau) -> sp.Expr:
    """``p(z)``: substitute ``x_k = z^k`` and multiply by ``z^{max(τ, 1) − k}`` (a symbolic τ >= 1)."""
    k = sp.Symbol("k", integer=True)
    recursion = z ** (k + 1) - (1 + mu) * z**k + mu * z ** (k - 1) + eta * a * z ** (k - delay)
    shift = max(delay, 1) if isinstance(delay, int) else delay
    expanded = sp.expand(sp.powsimp(sp.expand(recursion * z ** (shift - k)), force=True))
    return sp.Add(*(sp.powsimp(term) for term in sp.Add.make_args(expanded)))


def schur_cohn_conditions(poly: sp.Expr, var: sp.Symbol = z) -> list[sp.Expr]:
    """Expressions that are all positive iff every root of ``poly`` lies in |z| < 1.

    Schur–Cohn reduction: with leading coefficient ``a_n`` and constant ``a_0``, the roots lie in
    the unit disc iff ``a_n² − a_0² > 0`` and the roots of ``(a_n p(z) − a_0 p*(z))/z`` do, where
    ``p*(z) = z^n p(1/z)`` is the reversed polynomial.
    """
    conditions = []
    p = sp.Poly(poly, var)
    while p.degree() > 0:
        coeffs = p.all_coeffs()  # highest first
        lead, const = coeffs[0], coeffs[-1]
        conditions.append(sp.factor(lead**2 - const**2))
        reversed_p = sp.Poly(list(reversed(coeffs)), var)
        reduced = sp.Poly(lead * p - const * reversed_p, var)
        p = sp.Poly(sp.cancel(reduced.as_expr() / var), var)
    return conditions


@dataclass(frozen=True)
class SmallDelayStability:
    """Closed-form stability of a mode at a fixed small delay τ."""

    tau: int
    polynomial: sp.Expr  # in z, with c = η a
    conditions: tuple[sp.Expr, ...]  # all > 0 iff stable
    critical_step: sp.Expr  # the largest c = η a for which the mode is stable (in terms of μ)


@derived_once
def small_delay_stability(delay: int) -> SmallDelayStability:
    """Schur–Cohn conditions at delay τ and the critical ``η a`` where the first one fails."""
    poly = characteristic_polynomial(delay).subs(eta * a, c)
    conditions = tuple(schur_cohn_conditions(poly))
    # The mode is stable for small c > 0 (0 < μ < 1); the boundary is the smallest positive c at
    # which a condition changes sign.
    candidates = set()
    for cond in conditions:
        for root in sp.solve(cond, c):
            if root.is_real is not False:
                candidates.add(sp.simplify(root))
    values = {r: _real_at_half(r) for r in candidates}
    critical = min((r for r, v in values.items() if v is not None and v > 0), key=values.__getitem__)
    return SmallDelayStability(delay, poly, conditions, critical)


def _real_at_half(root: sp.Expr) -> float | None:
    """``root`` at μ = 1/2 as a real number, None where it is not real there. Evaluated numerically: a
    cubic's real root in Cardano's form has complex intermediate terms, and SymPy cannot tell its sign."""
    value = complex(sp.N(root.subs(mu, sp.Rational(1, 2)), 30))
    return value.real if abs(value.imag) <= 1e-12 * max(1.0, abs(value.real)) else None


@dataclass(frozen=True)
class DominantRoot:
    c1: sp.Expr
    c2: sp.Expr
    rate: sp.Expr  # log(z)/η to first order in η: per unit diffusion time t = kη


@derived_once
def dominant_root_expansion() -> DominantRoot:
    """The root near 1, ``z = 1 + c_1 η + c_2 η²``, for symbolic τ.

    ``p(z)/z^{τ−1} = z² − (1 + μ) z + μ + η a z^{1−τ}``; the last term carries a factor η, so to
    O(η²) it needs ``z^{1−τ}`` to first order only, ``1 + (1 − τ) c_1 η`` (the binomial series of
    ``(1 + c_1 η + c_2 η²)^{1−τ}``), and the rest is a polynomial in η: its η and η² coefficients give
    c_1 and c_2. The rate ``log(z)/η = c_1 + (c_2 − c_1²/2) η + O(η²)`` is the series of
    ``log(1 + x)`` to second order in ``x = c_1 η + c_2 η²``."""
    c1, c2 = sp.symbols("c_1 c_2")
    zz = 1 + c1 * eta + c2 * eta**2
    reduced = sp.expand(zz**2 - (1 + mu) * zz + mu + eta * a * (1 + (1 - tau) * c1 * eta))
    first = sp.solve(reduced.coeff(eta, 1), c1)[0]
    second = sp.solve(reduced.coeff(eta, 2).subs(c1, first), c2)[0]
    rate = sp.expand(first + (second - first**2 / 2) * eta)
    return DominantRoot(sp.factor(first), sp.factor(second), sp.collect(rate, eta, sp.factor))


@dataclass(frozen=True)
class DelayDifferentialLimit:
    equation: sp.Eq  # the linear DDE
    characteristic: sp.Expr  # in the growth rate λ
    critical_delay_time: sp.Expr  # s* = τ* η
    critical_delay: sp.Expr  # τ* = s*/η


@derived_once
def delay_differential_limit() -> DelayDifferentialLimit:
    """The DDE ``(1 − μ) X'(t) = −a X(t − s)`` and its stability boundary in ``s = τ η``."""
    t, s, lam, omega = sp.symbols("t s lambda omega", real=True)
    x = sp.Function("X")
    equation = sp.Eq((1 - mu) * x(t).diff(t), -a * x(t - s))
    characteristic = sp.expand((1 - mu) * lam + a * sp.exp(-lam * s))
    # On the boundary λ = iω: the real and imaginary parts vanish.
    on_axis = sp.expand_complex(characteristic.subs(lam, sp.I * omega))
    real, imag = sp.re(on_axis), sp.im(on_axis)
    s_pos, omega_pos = sp.symbols("s omega", positive=True)
    real, imag = real.subs({s: s_pos, omega: omega_pos}), imag.subs({s: s_pos, omega: omega_pos})
    phase = min(sp.solve(sp.cos(sp.Symbol("phi")), sp.Symbol("phi")), key=lambda r: float(r))  # π/2
    # cos(ω s) = 0 at ω s = π/2; the imaginary part then fixes ω.
    omega_star = sp.solve(imag.subs(s_pos, phase / omega_pos), omega_pos)[0]
    assert sp.simplify(real.subs(s_pos, phase / omega_pos).subs(omega_pos, omega_star)) == 0
    s_star = sp.simplify(phase / omega_star)
    return DelayDifferentialLimit(equation, characteristic, s_star, sp.simplify(s_star / eta))

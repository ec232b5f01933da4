"""The three phases of Async-MSGD on streaming PCA, derived from the OU and ODE limits.

Starting at the worst saddle ``e_2``:

I.   **escape.** The unstable mode ``U_1`` at ``e_2`` is an OU process ``dU = a U dt + σ dB`` with
     ``a > 0``. From ``U(0) = 0`` its variance solves ``V' = 2 a V + σ²``; the phase ends when
     ``η V(t) = δ²``, i.e. when ``h_1²`` reaches δ².
II.  **travel.** The ODE's closed form gives ``h_1²/h_2² = (h_1²/h_2²)(0) · exp(2 (λ_1 − λ_2) t/(1 − μ))``;
     the phase takes ``h_1²`` from δ² to ``1 − δ²``.
III. **convergence.** At ``e_1`` the slowest stable mode ``U_2`` starts with ``η V(0) = δ²`` and
     relaxes by ``V' = 2 a V + σ²`` (``a < 0``) while the faster modes sit at their stationary
     variances; the phase ends when the expected error reaches ε (which must exceed the floor).

Durations are in diffusion time ``t``; in iterations they are ``t/η``.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .recursion import eta, t
from .stored import derived_once

a, sigma2 = sp.symbols("a sigma^2", positive=True)
delta2, epsilon = sp.symbols("delta^2 epsilon", positive=True)
floor = sp.Symbol("F", positive=True)  # the total stationary error of all stable modes


@dataclass(frozen=True)
class PhaseFormulas:
    """Phase durations in diffusion time, in terms of the symbols of this module."""

    escape_variance: sp.Expr  # V(t) of the unstable OU from 0
    escape_time: sp.Expr
    travel_time_scaled: sp.Expr  # travel time in units of (1 − μ)/(λ1 − λ2)
    converge_error: sp.Expr  # expected error during phase III (F: the total stationary error)
    converge_time: sp.Expr


def _variance_ode(rate: sp.Expr, initial: sp.Expr) -> sp.Expr:
    v = sp.Function("V")
    ode = sp.Eq(v(t).diff(t), 2 * rate * v(t) + sigma2)
    return sp.simplify(sp.dsolve(ode, v(t), ics={v(0): initial}).rhs)


def _time_to_reach(expr: sp.Expr, level: sp.Expr, rate: sp.Expr) -> sp.Expr:
    """Solve ``expr(t) = level`` for t, where ``expr`` is affine in ``x = exp(rate · t)``."""
    x = sp.Symbol("x", positive=True)
    affine = sp.expand(expr).subs(sp.exp(rate * t), x)
    if affine.has(t):
        raise ArithmeticError(f"{expr} is not affine in exp({rate} t)")
    (root,) = sp.solve(sp.Eq(affine, level), x)
    return sp.log(sp.factor(root)) / rate


@derived_once
def derive_phase_formulas() -> PhaseFormulas:
    escape_var = _variance_ode(a, sp.S.Zero)
    escape = _time_to_reach(eta * escape_var, delta2, 2 * a)

    # Travel along the ODE: the log-ratio grows at rate 2 per unit scaled time s = t (λ1 − λ2)/(1 − μ).
    s = sp.Symbol("s", positive=True)
    start_ratio = delta2 / (1 - delta2)
    end_ratio = (1 - delta2) / delta2
    travel = sp.simplify(sp.solve(sp.Eq(start_ratio * sp.exp(2 * s), end_ratio), s)[0])

    converge_var = _variance_ode(-a, delta2 / eta)
    slow_floor = sp.limit(eta * converge_var, t, sp.oo)
    error = sp.simplify(eta * converge_var + floor - slow_floor)
    converge = _time_to_reach(error, epsilon, -2 * a)
    return PhaseFormulas(escape_var, escape, travel, error, converge)


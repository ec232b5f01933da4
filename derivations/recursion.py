"""The delayed momentum recursion and the time scale of its continuous-time limit.

The engine works with any stochastic recursion of the form

    x_{k+1} = x_k + μ (x_k − x_{k−1}) + η G(x_{k−τ}, ξ_k),

where ``G`` is a SymPy expression (a column vector) in the state symbols ``x`` and the noise
symbols ``ξ``, and the law of ξ is given by a moment model (see :mod:`.moments`).

Two scalar facts about the momentum recursion fix the scaling of every limit:

* **drift time scale.** Put ``x_k = X(kη)`` for a smooth curve ``X`` and Taylor-expand the
  recursion in η. The order-η balance is ``(1 − μ) X' = G``: the curve moves at speed
  ``G/(1 − μ)`` in the time ``t = kη``, and the delay first appears at order η².
* **noise gain.** The momentum buffer ``m_k = x_{k+1} − x_k`` is the linear filter
  ``m_k = μ m_{k−1} + η ξ_k``, with transfer function ``H(z) = η/(1 − μ z^{−1})``. Over many steps
  the displacement is driven by its zero-frequency gain ``H(1) = η/(1 − μ)``, so the noise
  amplitude in time t is ``sqrt(η)/(1 − μ)`` per unit of ``C^{1/2}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import sympy as sp

from .moments import MomentModel, expectation, matrix_expectation
from .stored import derived_once

#: Symbols shared by every derivation.
eta, mu, tau = sp.symbols("eta mu tau", positive=True)
t = sp.Symbol("t", real=True)


@dataclass(frozen=True)
class TimeScale:
    """Result of the formal expansion of the recursion along a smooth curve ``X(t)``, ``t = kη``."""

    residual_order1: sp.Expr  # coefficient of η in the expanded residual
    residual_order2: sp.Expr  # coefficient of η²
    drift_scale: sp.Expr  # X' = drift_scale · G at leading order
    modified_drift: sp.Expr  # X' to first order in η (the delay and momentum correction)
    noise_gain: sp.Expr  # zero-frequency gain of the momentum filter, per unit η
    curve: sp.Function
    update: sp.Function


@derived_once
def derive_time_scale() -> TimeScale:
    """Expand ``X(t+η) − X(t) − μ (X(t) − X(t−η)) − η G(X(t−τη))`` in η and solve order by order."""
    X, G = sp.Function("X"), sp.Function("G")
    residual = X(t + eta) - X(t) - mu * (X(t) - X(t - eta)) - eta * G(X(t - tau * eta))
    expanded = sp.expand(sp.series(residual, eta, 0, 3).removeO().doit())
    order1 = expanded.coeff(eta, 1)
    order2 = expanded.coeff(eta, 2)
    velocity = sp.Derivative(X(t), t)
    leading = sp.solve(order1, velocity)[0]
    drift_scale = sp.simplify(leading / G(X(t)))

    # Next order: X' = leading + η c, with X'' the time derivative of the leading balance.
    c = sp.Symbol("c")
    acceleration = sp.diff(leading, t).subs(velocity, leading)
    order2_at_leading = order2.subs(sp.Derivative(X(t), (t, 2)), acceleration).subs(velocity, leading)
    correction = sp.solve(sp.Eq((1 - mu) * c, -order2_at_leading), c)[0]
    modified = sp.simplify(leading + eta * correction)

    z = sp.Symbol("z")
    gain = sp.limit(1 / (1 - mu / z), z, 1)
    return TimeScale(order1, order2, drift_scale, modified, gain, X, G)


def at_point(expr: sp.Basic, point: dict) -> sp.Basic:
    """``expr`` with the state symbols replaced by the values of ``point`` (symbol → number or
    expression): a plain replacement of those symbols (``xreplace``), where ``subs`` would first match
    every node of ``expr`` against them (a sampled law's ``predict`` at d = 12: 19 s with ``subs``, 11 s)."""
    return expr.xreplace({symbol: sp.sympify(value) for symbol, value in point.items()})


@dataclass(frozen=True)
class MomentumRecursion:
    """``x_{k+1} = x_k + μ (x_k − x_{k−1}) + η G(x_{k−τ}, ξ_k)`` with ξ described by ``moment``."""

    name: str
    state: tuple[sp.Symbol, ...]
    noise: tuple[sp.Symbol, ...]
    update: sp.Matrix  # G(x, ξ), a column vector
    moment: MomentModel

    @cached_property
    def mean_map(self) -> sp.Matrix:
        """``g(x) = E_ξ G(x, ξ)``."""
        return matrix_expectation(self.update, self.noise, self.moment).applyfunc(sp.expand)

    @cached_property
    def noise_covariance(self) -> sp.Matrix:
        """``C(x) = Cov_ξ[G(x, ξ)] = E[G Gᵀ] − g gᵀ``."""
        return self.noise_covariance_at({})

    def noise_covariance_at(self, point: dict) -> sp.Matrix:
        """``C`` at a point, substituting before expanding (cheap at stationary points)."""
        n = self.update.shape[0]
        cov = sp.zeros(n, n)
        for i in range(n):
            for j in range(i, n):
                cov[i, j] = cov[j, i] = self.noise_covariance_entry(i, j, point)
        return cov

    def noise_covariance_entry(self, i: int, j: int, point: dict | None = None) -> sp.Expr:
        """``C_ij = E[G_i G_j] − E[G_i] E[G_j]``, optionally at a point."""
        gi, gj = (at_point(self.update[k], point or {}) for k in (i, j))
        second = expectation(gi * gj, self.noise, self.moment)
        mean_i = expectation(gi, self.noise, self.moment)
        mean_j = expectation(gj, self.noise, self.moment)
        return sp.expand(second - mean_i * mean_j)

    @cached_property
    def jacobian(self) -> sp.Matrix:
        """``∂g/∂x``, the linearisation of the mean map."""
        return self.mean_map.jacobian(self.state)

    def stationary_points(self) -> list[dict]:
        """All solutions of ``g(x) = 0`` found by SymPy, as substitution dicts."""
        return sp.solve(list(self.mean_map), list(self.state), dict=True)

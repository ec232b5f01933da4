"""Diffusion limits of a momentum recursion: the ODE and the Ornstein–Uhlenbeck processes.

With the time scale of :mod:`.recursion` (``t = kη``, drift ``G/(1 − μ)``, noise gain
``1/(1 − μ)``), the recursion has

* the ODE limit ``dX/dt = g(X)/(1 − μ)`` with ``g = E G``;
* the first-order stochastic modified equation
  ``dX = g(X)/(1 − μ) dt + sqrt(η)/(1 − μ) C(X)^{1/2} dB``;
* at a stationary point ``x*`` (``g(x*) = 0``), in the rescaled coordinates
  ``U = (X − x*)/sqrt(η)``, the Ornstein–Uhlenbeck limit
  ``dU = A U dt + B dB`` with ``A = J(x*)/(1 − μ)`` and ``B Bᵀ = C(x*)/(1 − μ)²``.
  Its stationary covariance ``P`` (when A is stable) solves ``A P + P Aᵀ + B Bᵀ = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .recursion import MomentumRecursion, at_point, derive_time_scale, mu


@dataclass(frozen=True)
class ODELimit:
    time_scale: sp.Expr  # 1/(1 − μ), derived
    drift: sp.Matrix  # g(x) · time_scale


@dataclass(frozen=True)
class OULimit:
    """``dU = A U dt + B dB`` at the stationary point ``point``; ``noise = B Bᵀ``."""

    point: dict
    drift_matrix: sp.Matrix
    noise: sp.Matrix

    def stationary_covariance(self) -> sp.Matrix:
        """Solve the continuous Lyapunov equation ``A P + P Aᵀ + B Bᵀ = 0`` for symmetric P."""
        n = self.drift_matrix.shape[0]
        p = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"P_{min(i, j)}_{max(i, j)}"))
        equations = self.drift_matrix * p + p * self.drift_matrix.T + self.noise
        unknowns = sorted(p.free_symbols, key=str)
        eqs = [equations[i, j] for i in range(n) for j in range(i, n)]
        solution = sp.solve(eqs, unknowns, dict=True)
        if len(solution) != 1:
            raise ValueError("the Lyapunov equation has no unique solution (A is not stable)")
        return p.subs(solution[0]).applyfunc(sp.factor)


def ode_limit(recursion: MomentumRecursion) -> ODELimit:
    scale = derive_time_scale().drift_scale
    return ODELimit(scale, (recursion.mean_map * scale).applyfunc(sp.factor))


def ou_limit(recursion: MomentumRecursion, point: dict) -> OULimit:
    """The OU process of the rescaled fluctuations ``U = (X − x*)/sqrt(η)`` at ``point``."""
    timing = derive_time_scale()
    a = (at_point(recursion.jacobian, point) * timing.drift_scale).applyfunc(sp.factor)
    b = (recursion.noise_covariance_at(point) * timing.noise_gain**2).applyfunc(sp.factor)
    return OULimit(point, a, b)


__all__ = ["ODELimit", "OULimit", "ode_limit", "ou_limit", "mu"]

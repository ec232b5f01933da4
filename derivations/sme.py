"""The global stochastic modified equation (SME) of one problem, as SymPy expressions.

In eigen-coordinates and diffusion time ``t = kη`` the first-order SME of Async-MSGD is

    dH = g(H)/(1 − μ) dt + sqrt(η)/(1 − μ) C(H)^{1/2} dW,

with ``g`` the mean map and ``C(h) = P(h) S(h) P(h)`` the gradient-noise covariance, ``P = I − h hᵀ``
and ``S(h) = Cov[Y Yᵀ h]`` (:attr:`~amsgd.derivations.pca.PCAModel.projected_noise`). Here they are
evaluated at the problem's spectrum, η and μ, leaving expressions in the coordinates ``h``; the
numeric stage lambdifies and compiles them (:mod:`amsgd.diffusion.coefficients`).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from amsgd.core.problem import Problem

from .limits import ode_limit
from .pca import pca_model, require_symbolic_dim
from .recursion import derive_time_scale


@dataclass(frozen=True)
class SMEExpressions:
    """The SME at the problem's numbers: drift ``g(h)/(1 − μ)``, ``S(h)`` and the noise gain ``H(1)``."""

    symbols: tuple[sp.Symbol, ...]  # h_1 .. h_d
    drift: sp.Matrix
    unprojected_covariance: sp.Matrix  # S(h); C = P S P
    noise_gain: sp.Expr  # 1/(1 − μ) at the problem's μ


def sme_expressions(problem: Problem) -> SMEExpressions:
    """The SME of ``problem`` in eigen-coordinates, with the spectrum, η and μ substituted."""
    require_symbolic_dim(problem.dim, "the stochastic modified equation")
    model = pca_model(problem)
    values = model.substitutions(problem)
    _, unprojected = model.projected_noise
    return SMEExpressions(
        symbols=tuple(model.h),
        drift=ode_limit(model.recursion).drift.subs(values),
        unprojected_covariance=unprojected.subs(values),
        noise_gain=derive_time_scale().noise_gain.subs(values),
    )

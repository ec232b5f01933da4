"""Streaming least squares, a second model on the same engine.

Observations ``y = aᵀ x* + e`` with regressors ``a ~ N(0, S)`` and noise ``e ~ N(0, s²)``
independent; the stochastic gradient step of ``½ (y − aᵀ x)²`` is

    G(x, (a, e)) = a (y − aᵀ x) = a aᵀ (x* − x) + a e.

The engine derives the mean map ``S (x* − x)``, the unique stationary point ``x*``, the Jacobian
``−S``, the noise covariance ``C(x*) = s² S`` and the OU limit there, without knowing anything about
least squares beyond this update and Gaussian moments.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .moments import wick_moment
from .recursion import MomentumRecursion


@dataclass(frozen=True)
class LeastSquaresModel:
    recursion: MomentumRecursion
    target: tuple[sp.Symbol, ...]  # x*
    regressor_covariance: sp.Matrix  # S
    noise_variance: sp.Symbol  # s²


def least_squares_model(dim: int, regressor_covariance: sp.Matrix | None = None) -> LeastSquaresModel:
    """The model in dimension ``dim``; ``S`` defaults to a symbolic diagonal ``diag(s_1, ..., s_d)``."""
    x = sp.symbols(f"x_1:{dim + 1}", real=True)
    target = sp.symbols(f"xstar_1:{dim + 1}", real=True)
    a = sp.symbols(f"a_1:{dim + 1}", real=True)
    e = sp.Symbol("e", real=True)
    s2 = sp.Symbol("s^2", positive=True)
    if regressor_covariance is None:
        regressor_covariance = sp.diag(*sp.symbols(f"s_1:{dim + 1}", positive=True))
    a_vec = sp.Matrix(a)
    update = a_vec * (a_vec.T * (sp.Matrix(target) - sp.Matrix(x)))[0] + a_vec * e
    joint = sp.diag(regressor_covariance, sp.Matrix([[s2]]))
    recursion = MomentumRecursion(
        name="streaming least squares",
        state=x,
        noise=(*a, e),
        update=update,
        moment=wick_moment(joint),
    )
    return LeastSquaresModel(recursion, target, regressor_covariance, s2)

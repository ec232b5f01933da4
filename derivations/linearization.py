"""The recursion linearised at the optimum with random coefficients, and the moments of those coefficients.

Near the optimum write ``h = e_1 + x``. The update is ``G(e_1 + x, Y) = b(Y) + A(Y) x + O(x²)`` with

    b(Y) = G(e_1, Y),        A(Y) = ∂G/∂h (e_1, Y),

so the linearised algorithm is the random-coefficient recursion
``x_{k+1} = x_k + μ (x_k − x_{k−1}) + η (A_k x_{k−τ_k} + b_k)`` (docs/theory.md). For streaming PCA,
``G = (I − h hᵀ) Y Yᵀ h`` gives ``b = Y_1 (Y − Y_1 e_1)`` and
``A = Y Yᵀ − 2 Y_1 e_1 Yᵀ − Y_1² I``; ``E A`` is the Jacobian of the mean map (the OU drift before its
time scaling) and ``E b = 0``. The exact second-moment recursion of the linear system needs
``E[A ⊗ A]``, ``E[A ⊗ b]`` and ``E[b bᵀ]``; they follow from the data law's fourth moments.

For laws whose eigen-coordinates are jointly sign-symmetric (Gaussian, Rademacher-type, the shared-scale
Student-t) the cross moments that would correlate two coordinates vanish: ``E[A_ij A_kj] = 0`` and
``E[b_i b_k] = 0`` for ``i ≠ k``. A covariance diagonal across coordinates then stays diagonal, and only
``Var A_ij`` (the coupling) and ``E b_i²`` (the additive noise) remain. ``E[A ⊗ b]`` is not zero
(``E[A_i1 b_i] = E[Y_1² Y_i²]``), but it acts only through the mean of x, which the linear recursion
keeps at zero. Each entry involves at most the
coordinates 1, i and j, so the moments of a three-dimensional model, with ``λ_2, λ_3`` standing for any
``λ_i, λ_j``, give them for every d (:func:`coupling_patterns`).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from amsgd.core.distributions import Distribution

from .moments import expectation
from .pca import PCAModel
from .stored import derived_once_per_law


@dataclass(frozen=True)
class Linearization:
    """``G(e_1 + x, Y) ≈ b(Y) + A(Y) x``: the random coefficients, polynomials in the noise ``Y``."""

    noise: tuple[sp.Symbol, ...]
    coefficient: sp.Matrix  # A(Y)
    forcing: sp.Matrix  # b(Y), a column


@dataclass(frozen=True)
class CoefficientMoments:
    """``mean = E A``, ``coupling[i, j] = Var A_ij``, ``additive[i] = E b_i²``, ``cross[i, j] = E[A_ij b_i]``,
    and ``diagonal``: whether the moments that correlate two coordinates (``E[A_ij A_kj]``, ``E[b_i b_k]``,
    i ≠ k) all vanish, so that a diagonal covariance stays diagonal."""

    mean: sp.Matrix
    coupling: sp.Matrix
    additive: sp.Matrix
    cross: sp.Matrix
    diagonal: bool


def optimum_linearization(model: PCAModel) -> Linearization:
    """The update of ``model`` linearised at ``e_1``."""
    update = model.recursion.update
    at_optimum = model.unit_vector(0)
    coefficient = update.jacobian(model.h).subs(at_optimum).applyfunc(sp.expand)
    forcing = update.subs(at_optimum).applyfunc(sp.expand)
    return Linearization(tuple(model.y), coefficient, forcing)


def coefficient_moments(model: PCAModel) -> CoefficientMoments:
    """The moments of ``A`` and ``b`` under the model's noise law (:class:`CoefficientMoments`)."""
    lin = optimum_linearization(model)
    moment = model.recursion.moment

    def e(expr: sp.Expr) -> sp.Expr:
        return sp.factor(expectation(expr, lin.noise, moment))

    a, b, d = lin.coefficient, lin.forcing, model.dim
    mean = a.applyfunc(e)
    coupling = sp.Matrix(d, d, lambda i, j: sp.factor(e(a[i, j] ** 2) - mean[i, j] ** 2))
    additive = sp.Matrix(d, 1, lambda i, _: e(b[i] ** 2))
    cross = sp.Matrix(d, d, lambda i, j: e(a[i, j] * b[i]))
    correlating = [a[i, j] * a[k, j] for i in range(d) for k in range(i + 1, d) for j in range(d)]
    correlating += [b[i] * b[k] for i in range(d) for k in range(i + 1, d)]
    diagonal = all(sp.simplify(e(term)) == 0 for term in correlating)
    return CoefficientMoments(mean, coupling, additive, cross, diagonal)


@derived_once_per_law
def coupling_patterns(distribution: Distribution) -> CoefficientMoments:
    """The moments in three dimensions, in the symbols ``λ_1, λ_2, λ_3``: index 0 stands for the
    coordinate 1, index 1 for any ``i ≥ 2`` and index 2 for any other ``j``; for a named distribution
    they hold for every d (module docstring)."""
    return coefficient_moments(PCAModel(3, distribution))

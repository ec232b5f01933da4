"""The numbers of the random-coefficient linearisation at e_1 for a problem: ``E A``, ``Var A_ij``, ``E b_i²``.

For a named distribution they are the pattern formulas of
:func:`amsgd.derivations.linearization.coupling_patterns` (derived in three dimensions, index 1 and 2
standing for any i and j) evaluated at the spectrum. For a user sampler they are estimated from its
moment samples, with the same derived coefficient polynomials ``A(Y)``, ``b(Y)`` evaluated on them.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import sympy as sp

from amsgd.core.distributions import SAMPLED_CROSS_MOMENT_TOLERANCE, Gaussian, SampledDistribution
from amsgd.core.problem import Problem
from amsgd.derivations.linearization import coupling_patterns, optimum_linearization
from amsgd.derivations.pca import PCAModel
from amsgd.diffusion.theory.second_moments import Coefficients


def coefficients_for(problem: Problem) -> Coefficients:
    """The rates ``−E A_ii``, couplings ``Var A_ij`` and additive noise ``E b_i²`` at e_1 of ``problem``."""
    if isinstance(problem.distribution, SampledDistribution):
        return _sampled(problem)
    mean, coupling, additive = _patterns(problem.distribution)
    lam = np.asarray(problem.eigenvalues, dtype=float)
    d = lam.size
    l1 = lam[0]
    i, j = np.meshgrid(np.arange(d), np.arange(d), indexing="ij")
    li, lj = lam[i], lam[j]
    table = np.where(
        (i == 0) & (j == 0), coupling[0](l1, li, lj),
        np.where(i == 0, coupling[1](l1, lj, lj),
                 np.where(j == 0, coupling[2](l1, li, li),
                          np.where(i == j, coupling[3](l1, li, li), coupling[4](l1, li, lj)))),
    )  # fmt: skip
    rates = -np.array([mean[0](l1, l1, l1)] + [mean[1](l1, x, x) for x in lam[1:]])
    noise = np.array([additive[0](l1, l1, l1)] + [additive[1](l1, x, x) for x in lam[1:]])
    return Coefficients(rates, np.asarray(table, dtype=float), noise)


@lru_cache(maxsize=8)
def _patterns(distribution) -> tuple[list, list, list]:
    """Lambdified pattern formulas ``f(λ_1, λ_i, λ_j)``: E A at (1,1), (i,i); Var A at (1,1), (1,j),
    (i,1), (i,i), (i,j); E b² at 1, i."""
    m = coupling_patterns(distribution)
    symbols = sp.symbols("lambda_1:4", positive=True)

    def f(expr: sp.Expr):
        fn = sp.lambdify(symbols, expr, "numpy")
        return lambda a, b, c: np.broadcast_to(fn(a, b, c), np.broadcast(a, b, c).shape).astype(float)

    mean = [f(m.mean[0, 0]), f(m.mean[1, 1])]
    coupling = [f(m.coupling[0, 0]), f(m.coupling[0, 2]), f(m.coupling[1, 0]), f(m.coupling[1, 1]), f(m.coupling[1, 2])]
    additive = [f(m.additive[0]), f(m.additive[1])]
    return mean, coupling, additive


def _sampled(problem: Problem) -> Coefficients:
    """Moments estimated from the sampler's moment samples (``Y = Qᵀ X``), coordinate by coordinate."""
    y = problem.distribution.fourth_moment_samples_for(problem.eigenvalues, problem.basis)
    a_fn, b_fn = _coefficient_functions()
    d = y.shape[1]
    coupling = np.empty((d, d))
    rates = np.empty(d)
    additive = np.empty(d)
    correlated = 0.0
    for i in range(d):
        for j in range(d):
            cols = _pattern_columns(i, j)
            a = a_fn(cols[0], cols[1])(*(y[:, c] for c in _coordinates(i, j)))
            coupling[i, j] = np.var(a)
            if i == j:
                rates[i] = -np.mean(a)
        b = b_fn(min(i, 1))(y[:, 0], y[:, i], y[:, i])
        additive[i] = np.mean(b**2)
        for k in range(i + 1, d):  # E[b_i b_k] relative to their scales
            bk = b_fn(min(k, 1))(y[:, 0], y[:, k], y[:, k])
            correlated = max(correlated, abs(np.mean(b * bk)) / np.sqrt(additive[i] * np.mean(bk**2) + 1e-300))
    return Coefficients(rates, coupling, additive, correlated < SAMPLED_CROSS_MOMENT_TOLERANCE)


def _coordinates(i: int, j: int) -> tuple[int, int, int]:
    """The sample columns playing the pattern's coordinates (1, i, j)."""
    return 0, i, j


def _pattern_columns(i: int, j: int) -> tuple[int, int]:
    """The entry of the three-dimensional pattern matrix that stands for ``(i, j)``."""
    if i == 0:
        return (0, 0) if j == 0 else (0, 2)
    if j == 0:
        return 1, 0
    return (1, 1) if i == j else (1, 2)


@lru_cache(maxsize=1)
def _coefficient_functions():
    """``A`` and ``b`` of the three-dimensional model as functions of the samples ``(Y_1, Y_i, Y_j)``."""
    lin = optimum_linearization(PCAModel(3, Gaussian()))  # the polynomials do not depend on the law

    def a(row: int, col: int):
        return sp.lambdify(lin.noise, lin.coefficient[row, col], "numpy")

    def b(row: int):
        return sp.lambdify(lin.noise, lin.forcing[row], "numpy")

    return a, b

"""The numbers of the random-coefficient linearisation at e_1 for a problem: ``E A``, ``Var A_ij``, ``E b_i²``.

For a named distribution they are the pattern formulas of
:func:`amsgd.derivations.linearization.coupling_patterns` (derived in three dimensions, index 1 and 2
standing for any i and j) evaluated at the spectrum. For a user sampler they are estimated from its
moment samples, with the same derived coefficient polynomials ``A(Y)``, ``b(Y)`` evaluated on them.
So are the data law's constants of the radial friction's kernel (``q_i``, ``g_i``:
:func:`amsgd.derivations.norm_coupling.kinetic_noise`).
"""

from __future__ import annotations

import weakref
from functools import lru_cache

import numpy as np
import sympy as sp

from amsgd.core.distributions import (
    MAX_FOURTH_MOMENT_SHARE,
    Gaussian,
    Rademacher,
    SampledDistribution,
    StudentT,
    cross_moments_vanish,
    largest_share,
)
from amsgd.core.problem import Problem
from amsgd.derivations.linearization import coupling_patterns, optimum_linearization
from amsgd.derivations.norm_coupling import kinetic_noise_functions
from amsgd.derivations.pca import PCAModel
from amsgd.diffusion.theory.first_passage import EscapeNoise
from amsgd.diffusion.theory.second_moments import Coefficients


def coefficients_for(problem: Problem) -> Coefficients:
    """The rates ``−E A_ii``, couplings ``Var A_ij`` and additive noise ``E b_i²`` at e_1 of ``problem``."""
    if isinstance(problem.distribution, SampledDistribution):
        return _sampled(problem)
    return _named(problem.distribution, np.asarray(problem.eigenvalues, dtype=float))


def svag_coefficients(problem: Problem, amplification: int) -> Coefficients:
    """The linearisation's numbers for SVAG's combined sample ``w_1 g(Y) + w_2 g(Y')`` at amplification
    L (:mod:`amsgd.derivations.svag`): the couplings and the additive noise times ``w_1² + w_2² = L``, the
    radial friction's data constants times :func:`~amsgd.derivations.svag.svag_kernel_factors`."""
    from amsgd.derivations.svag import L, svag_kernel_factors

    c = coefficients_for(problem)
    kinetic = None
    if c.kinetic is not None:
        factors = [float(f.subs(L, amplification)) for f in svag_kernel_factors()]
        kinetic = (factors[0] * c.kinetic[0], factors[1] * c.kinetic[1])
    return Coefficients(c.rates, amplification * c.coupling, amplification * c.additive, c.diagonal, kinetic)


def saddle_coupling(problem: Problem, saddle: int, coordinates: list[int]) -> np.ndarray:
    """``Var A_il`` among the ratio coordinates ``x_i = h_i/h_saddle`` (``coordinates``, 1-based, none of
    them 1 or ``saddle``) of the random-coefficient linearisation at the saddle ``e_saddle``. The algebra
    at a stationary point does not depend on which one it is (as :func:`escape_coupling`): these are the
    entries of the linearisation at e_1 with λ_saddle in λ_1's place, for a sampler its moment samples
    with column ``saddle − 1`` as the point's."""
    columns = [saddle - 1] + [i - 1 for i in coordinates]
    if isinstance(problem.distribution, SampledDistribution):
        y = problem.distribution.fourth_moment_samples_for(problem.eigenvalues, problem.basis)
        coefficients = _sampled_moments(y[:, columns], np.asarray(problem.eigenvalues, dtype=float)[columns])
    else:
        coefficients = _named(problem.distribution, np.asarray(problem.eigenvalues, dtype=float)[columns])
    return coefficients.coupling[1:, 1:]


def _named(distribution, lam: np.ndarray) -> Coefficients:
    """The linearisation at the stationary point of the first of the eigenvalues ``lam`` (the others
    its coordinates, in order) of a named law: the derived pattern formulas at the spectrum."""
    mean, coupling, additive = _patterns(distribution)
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
    cumulant, gain = kinetic_noise_functions(distribution)
    kinetic = tuple(np.r_[0.0, np.broadcast_to(f(l1, lam[1:]), lam[1:].shape)].astype(float) for f in (cumulant, gain))
    return Coefficients(rates, np.asarray(table, dtype=float), noise, kinetic=kinetic)


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
    """Moments estimated from the sampler's moment samples (``Y = Qᵀ X``), coordinate by coordinate:
    the sample columns ``(0, i, j)`` play the pattern's coordinates ``(1, i, j)``. Kept for the last two
    sets of samples while they live (the floor and the phases both ask: 3 s each at d = 100)."""
    y = problem.distribution.fourth_moment_samples_for(problem.eigenvalues, problem.basis)
    for samples, coefficients in _SAMPLED:
        if samples() is y:
            return coefficients
    coefficients = _sampled_moments(y, np.asarray(problem.eigenvalues, dtype=float))
    for shared in (coefficients.rates, coefficients.coupling, coefficients.additive):
        shared.setflags(write=False)
    _SAMPLED[:] = [(weakref.ref(y), coefficients), *_SAMPLED[:1]]  # the samples' memory stays the law's
    return coefficients


_SAMPLED: list[tuple[weakref.ref, Coefficients]] = []


def _sampled_moments(y: np.ndarray, lam: np.ndarray) -> Coefficients:
    """The coefficients' moments over moment samples ``y`` (one row per sample, column 0 the point's
    coordinate; ``lam`` the eigenvalues of the columns): ``Var A_ij = E A_ij² − (E A_ij)²`` with
    ``E A_ij²`` taken monomial by monomial from the derived polynomials (:class:`_SampleMeans`), so that
    the d² entries cost two matrix products, and ``E A_ij`` (of degree two in Y) from the covariance
    diag(λ) the sampler is required to have (:func:`_covariance_means`): the draws' own second moments
    put their noise into the eigengaps, the rates (λ = 20, 19, ...: the floor's additive part 6% off)."""
    a_fn, b_fn = _coefficient_functions()
    d = y.shape[1]
    means, monomials = _SampleMeans(y), _coefficient_monomials()
    entries = np.array([[_pattern_entry(i, j) for j in range(d)] for i in range(d)])  # (d, d, 2)
    coupling, rates = np.empty((d, d)), np.empty(d)
    for entry in set(map(tuple, entries.reshape(-1, 2).tolist())):
        where = np.all(entries == entry, axis=-1)
        first, square = monomials[entry]
        mean = _covariance_means(first, lam)
        coupling[where] = np.maximum(means.of(square) - mean**2, 0.0)[where]  # never negative by rounding
        rates[where.diagonal()] = -mean.diagonal()[where.diagonal()]  # −E A_ii
    n = y.shape[0]  # a forcing that is identically 0 lambdifies to a scalar
    b = np.column_stack([np.broadcast_to(b_fn[min(i, 1)](y[:, 0], y[:, i], y[:, i]), n) for i in range(d)])
    additive = np.einsum("ni,ni->i", b, b) / n  # E b_i²
    gain = -a_fn[_pattern_entry(0, 0)](y[:, 0], y[:, 0], y[:, 0])
    return Coefficients(rates, coupling, additive, cross_moments_vanish(b), _sampled_kinetic(b, np.broadcast_to(gain, n)))


def _covariance_means(terms: tuple[tuple[tuple[int, int, int], float], ...], lam: np.ndarray) -> np.ndarray:
    """The means of the degree-two polynomial ``Σ coefficient · y_0^a y_i^b y_j^c`` (:class:`_SampleMeans`'
    terms) for every ``(i, j)``, under the covariance ``diag(lam)``: ``E[y_p y_q] = λ_p`` where the two
    factors are one coordinate, else 0."""
    d = lam.size
    index = {0: np.zeros((d, d), dtype=int), 1: np.broadcast_to(np.arange(d)[:, None], (d, d)),
             2: np.broadcast_to(np.arange(d)[None, :], (d, d))}  # fmt: skip
    out = np.zeros((d, d))
    for exponents, coefficient in terms:
        factors = [index[k] for k, e in enumerate(exponents) for _ in range(e)]
        if len(factors) != 2:
            raise ArithmeticError(f"a mean of A of degree {len(factors)} in Y, expected 2")
        p, q = factors
        out += coefficient * np.where(p == q, lam[p], 0.0)
    return out


class _SampleMeans:
    """Sample means ``M[i, j] = mean_n(y_0^a y_i^b y_j^c)`` of monomials over moment samples ``y``, for
    every ``(i, j)`` at once (one matrix product where both ``b`` and ``c`` are positive), kept per
    exponent triple."""

    def __init__(self, y: np.ndarray) -> None:
        self.y, self._kept, self._powers = y, {}, {1: y}

    def power(self, k: int) -> np.ndarray:
        """``y^k`` elementwise, by products of the powers kept (NumPy's general power of an array of
        200 000 × 100 draws takes 1.4 s for k = 3, the product 0.1 s); k >= 1."""
        if k not in self._powers:
            self._powers[k] = self.power(k // 2) * self.power(k - k // 2)
        return self._powers[k]

    def monomial(self, a: int, b: int, c: int) -> np.ndarray:
        if (a, b, c) not in self._kept:
            y = self.y
            n, d = y.shape
            first = y[:, :1] ** a if a else 1.0  # one column: its general power is cheap
            weighted = np.broadcast_to(first * (self.power(b) if b else 1.0), y.shape)  # y_0^a y_i^b, one column per i
            if c == 0:
                value = np.broadcast_to(_column_means(weighted)[:, None], (d, d))
            elif b == 0:
                value = np.broadcast_to(_column_means(weighted * self.power(c))[None, :], (d, d))
            else:
                value = weighted.T @ self.power(c) / n
                if a == 0 and b == c:  # symmetric: kept exactly so, whatever the product's blocking
                    value = (value + value.T) / 2.0
            self._kept[(a, b, c)] = value
        return self._kept[(a, b, c)]

    def of(self, terms: tuple[tuple[tuple[int, int, int], float], ...]) -> np.ndarray:
        """The means of the polynomial ``Σ coefficient · y_0^a y_i^b y_j^c`` given by its ``terms``."""
        return sum((coefficient * self.monomial(*exponents) for exponents, coefficient in terms),
                   np.zeros((self.y.shape[1],) * 2))  # fmt: skip


def _column_means(x: np.ndarray) -> np.ndarray:
    """The means of the columns of ``x`` (samples in rows), each summed pairwise along a contiguous row:
    NumPy adds the rows of a C-ordered array one after another, with an error growing like n ε."""
    return np.ascontiguousarray(x.T).mean(axis=1)


def _sampled_kinetic(b: np.ndarray, gain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The friction kernel's ``q_i = E b_i⁴/(E b_i²)² − 3`` and ``g_i = cov(−A_11, b_i²)/(E[−A_11] E b_i²)``
    over the moment samples (``gain`` the samples of ``−A_11``); ``∞`` for a mode where one draw carries
    more than :data:`~amsgd.core.distributions.MAX_FOURTH_MOMENT_SHARE` of ``Σ b_i⁴`` (its eighth
    moments look infinite, as Student-t data's for ν <= 8), and 0 for a mode without noise."""
    square = b**2
    second = square.mean(axis=0)
    quartic = square**2
    fourth = quartic.sum(axis=0)
    share = largest_share(quartic)
    with np.errstate(invalid="ignore", divide="ignore"):
        cumulant = np.where(second > 0, fourth / b.shape[0] / second**2 - 3.0, 0.0)
        covariance = ((gain - gain.mean())[:, None] * square).mean(axis=0)
        ratio = np.where(second > 0, covariance / (gain.mean() * second), 0.0)
    heavy = share > MAX_FOURTH_MOMENT_SHARE
    return np.where(heavy, np.inf, cumulant), np.where(heavy, np.inf, ratio)


def escape_coupling(problem: Problem, saddle: int) -> float:
    """``Var A`` of the escaping mode at the saddle ``e_saddle`` (j >= 2), toward e_1: the multiplicative
    noise of the ratio ``x = h_1/h_j`` near e_j, ``(Y_1² − Y_j²) x`` for PCA. The linearisation at e_1 has
    it for its tangent mode i with the two coordinates' roles exchanged (the algebra at a stationary
    point does not depend on which one it is), so the derived pattern entry (i, i) is evaluated at
    ``(λ_j, λ_1, λ_1)``; for a sampler, on its moment samples with column j − 1 as the point's."""
    lam = np.asarray(problem.eigenvalues, dtype=float)
    if isinstance(problem.distribution, SampledDistribution):
        return float(np.var(_sampled_escape_pairs(problem, saddle)[:, 1]))
    _, coupling, _ = _patterns(problem.distribution)
    return float(coupling[3](lam[saddle - 1], lam[0], lam[0]))


def escape_noise(problem: Problem, saddle: int) -> EscapeNoise:
    """How the escape law at ``e_saddle`` draws each step's additive ``ξ = Y_1 Y_j`` and multiplicative
    ``A = Y_1² − Y_j² − (λ_1 − λ_j)``: the derived coefficients ``b_i``, ``A_ii`` of the linearisation at
    e_1 with the roles of the two coordinates exchanged (as :func:`escape_coupling`), from the data law
    itself: a named law's two eigen-coordinates drawn afresh every step (the law then carries the
    data's tails and the dependence of ξ and A), a sampler's moment samples (centred) drawn with
    replacement."""
    from amsgd.diffusion.theory import passage_kernel as kernel

    lam = np.asarray(problem.eigenvalues, dtype=float)[[0, saddle - 1]]
    law = problem.distribution
    if isinstance(law, SampledDistribution):
        pairs = _sampled_escape_pairs(problem, saddle)
        return EscapeNoise(kernel.POOL, np.zeros(3), pairs - pairs.mean(axis=0))
    kind = {Gaussian: kernel.GAUSSIAN_DATA, Rademacher: kernel.RADEMACHER_DATA, StudentT: kernel.STUDENT_T_DATA}[type(law)]
    return EscapeNoise(kind, np.array([lam[0], lam[1], getattr(law, "nu", 0.0)]))


def _sampled_escape_pairs(problem: Problem, saddle: int) -> np.ndarray:
    """A sampler's escape coefficients ``(b_i, A_ii)`` at ``e_saddle``, one row per moment sample: the
    derived coefficients with the roles of coordinates 1 and ``saddle`` exchanged."""
    y = problem.distribution.fourth_moment_samples_for(problem.eigenvalues, problem.basis)
    first, own = y[:, 0], y[:, saddle - 1]
    a_fn, b_fn = _coefficient_functions()
    return np.column_stack([np.broadcast_to(f(own, first, first), first.shape) for f in (b_fn[1], a_fn[(1, 1)])])


def _pattern_entry(i: int, j: int) -> tuple[int, int]:
    """The entry of the three-dimensional pattern matrix that stands for ``(i, j)``."""
    if i == 0:
        return (0, 0) if j == 0 else (0, 2)
    if j == 0:
        return 1, 0
    return (1, 1) if i == j else (1, 2)


@lru_cache(maxsize=1)
def _coefficient_monomials() -> dict[tuple[int, int], tuple[tuple, tuple]]:
    """Per entry of the three-dimensional pattern matrix, the monomials ``((a, b, c), coefficient)`` of
    ``A`` and of ``A²`` in the samples ``(Y_1, Y_i, Y_j)`` (:class:`_SampleMeans` takes their means)."""
    lin = optimum_linearization(PCAModel(3, Gaussian()))

    def terms(expr: sp.Expr) -> tuple:
        return tuple((e, float(c)) for e, c in sp.Poly(sp.expand(expr), *lin.noise).terms())

    return {(r, c): (terms(lin.coefficient[r, c]), terms(lin.coefficient[r, c] ** 2)) for r in range(3) for c in range(3)}


@lru_cache(maxsize=1)
def _coefficient_functions() -> tuple[dict, dict]:
    """``A`` and ``b`` of the three-dimensional model as functions of the samples ``(Y_1, Y_i, Y_j)``,
    keyed by their entry (lambdified once)."""
    lin = optimum_linearization(PCAModel(3, Gaussian()))  # the polynomials do not depend on the law
    a = {(r, c): sp.lambdify(lin.noise, lin.coefficient[r, c], "numpy") for r in range(3) for c in range(3)}
    b = {r: sp.lambdify(lin.noise, lin.forcing[r], "numpy") for r in range(3)}
    return a, b

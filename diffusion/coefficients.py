"""Numeric coefficients of the global stochastic modified equation (SME) of streaming PCA.

In eigen-coordinates and diffusion time ``t = kη`` the first-order SME of Async-MSGD is

    dH = g(H)/(1 − μ) dt + sqrt(η)/(1 − μ) C(H)^{1/2} dW,

with the mean map ``g(h) = Λh − (hᵀΛh) h`` and the gradient-noise covariance ``C(h) = P S(h) P``,
``P = I − h hᵀ``, ``S(h) = Cov[Y Yᵀ h] = E[(Yᵀh)² Y Yᵀ] − Λh hᵀΛ``. The scales ``1/(1 − μ)`` are the
derived drift scale and momentum noise gain (:func:`amsgd.derivations.recursion.derive_time_scale`).

``S`` needs only the fourth moments ``M_ijkl = E[Y_i Y_j Y_k Y_l]``, and every data law of the toolkit
gives it a closed form with few terms:

* Gaussian, Student-t and Rademacher data have ``M_ijkl = c (Λ_ij Λ_kl + Λ_ik Λ_jl + Λ_il Λ_jk)`` except
  on the diagonal ``M_iiii = m4_i`` (Gaussian: ``c = 1``, ``m4 = 3λ²``; Student-t: ``c = (ν − 2)/(ν − 4)``,
  ``m4 = 3cλ²``; Rademacher: ``c = 1``, ``m4 = λ²``), so

      S(h) = c [(hᵀΛh) Λ + 2 Λh hᵀΛ] − Λh hᵀΛ + diag(k_i h_i²),   k_i = m4_i − 3c λ_i²,

  with ``c`` and ``m4`` read off the derived fourth moments (:func:`amsgd.derivations.distributions.fourth_moment`);
* a sampled law has the dense tensor ``M`` estimated from its moment samples, as the derivation engine
  estimates it, and ``S_ij = Σ_kl M_ijkl h_k h_l − (Λh)_i (Λh)_j``.

These numbers (:class:`SMECoefficients`) are what the compiled integrators take
(:mod:`amsgd.diffusion.compiled`, whose kernels evaluate the same formulas). The NumPy callables
``drift`` and ``unprojected_covariance``, vectorised over batches, are the engine's SymPy SME
lambdified (:func:`amsgd.derivations.sme.sme_expressions`) for ``d <=`` :data:`~amsgd.derivations.pca.MAX_SYMBOLIC_DIM`,
and the structured formulas above beyond it; both are built on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import sympy as sp

from amsgd.core.distributions import SampledDistribution
from amsgd.core.problem import Problem
from amsgd.derivations.distributions import fourth_moment
from amsgd.derivations.pca import MAX_SYMBOLIC_DIM
from amsgd.derivations.recursion import derive_time_scale, mu

Field = Callable[[np.ndarray], np.ndarray]

#: Rows of moment samples per product when the dense fourth-moment tensor is accumulated.
_MOMENT_CHUNK = 8192


@dataclass(frozen=True, eq=False)
class SMECoefficients:
    """The SME of one problem, in eigen-coordinates and diffusion time, vectorised over batches.

    ``drift(h)``: (..., d) → (..., d); ``noise_covariance(h)``: (..., d) → (..., d, d), ``C(h)``;
    ``diffusion(h)``: (..., d) → (..., d, d), a matrix σ with ``σσᵀ = η C(h)/(1 − μ)²``. The numbers of
    the structured form (module docstring) are ``eigenvalues`` (λ), ``kurtosis`` (c), ``diagonal`` (k)
    and, for a sampled law, :attr:`fourth` (M).
    """

    problem: Problem = field(repr=False)
    dim: int
    eta: float
    mu: float
    noise_scale: float  # sqrt(η) H(1) = sqrt(η)/(1 − μ), from the derived momentum noise gain
    drift_scale: float  # 1/(1 − μ), the derived drift time scale
    eigenvalues: np.ndarray = field(repr=False)
    kurtosis: float = 1.0
    diagonal: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    sampled: bool = False

    @cached_property
    def fourth(self) -> np.ndarray:
        """The dense fourth moments ``M`` as a ``(d², d²)`` matrix ``M[(i, j), (k, l)]`` for a sampled law
        (the means over its moment samples); an empty ``(0, 0)`` array for the structured laws."""
        if not self.sampled:
            return np.zeros((0, 0))
        distribution = self.problem.distribution
        y = distribution.fourth_moment_samples_for(self.problem.eigenvalues, self.problem.basis)
        d = self.dim
        i, j = np.triu_indices(d)  # M is symmetric in (i, j), in (k, l) and between the pairs
        total = np.zeros((i.size, i.size))
        for lo in range(0, y.shape[0], _MOMENT_CHUNK):
            rows = y[lo : lo + _MOMENT_CHUNK]
            pairs = rows[:, i] * rows[:, j]
            total += pairs.T @ pairs
        position = np.empty((d, d), dtype=np.intp)
        position[i, j] = position[j, i] = np.arange(i.size)
        flat = position.reshape(-1)
        return np.ascontiguousarray(total[np.ix_(flat, flat)] / y.shape[0])

    def kernel_arguments(self) -> tuple[np.ndarray, float, float, np.ndarray, np.ndarray]:
        """``(λ, drift scale, c, k, M)``: the arguments of the compiled coefficient kernels."""
        return self.eigenvalues, self.drift_scale, self.kurtosis, self.diagonal, self.fourth

    @cached_property
    def _fields(self) -> tuple[Field, Field]:
        if self.dim <= MAX_SYMBOLIC_DIM:
            from amsgd.derivations.sme import sme_expressions

            sme = sme_expressions(self.problem)
            return _vectorised(sme.symbols, list(sme.drift)), _symmetric(sme.symbols, sme.unprojected_covariance)
        return self.structured_drift, self.structured_covariance

    @property
    def drift(self) -> Field:
        """``b(h) = g(h)/(1 − μ)``, vectorised."""
        return self._fields[0]

    @property
    def unprojected_covariance(self) -> Field:
        """``S(h) = Cov[Y Yᵀ h]``, vectorised; ``C = P S P`` with ``P = I − h hᵀ``."""
        return self._fields[1]

    def structured_drift(self, h: np.ndarray) -> np.ndarray:
        """``(Λh − (hᵀΛh) h)/(1 − μ)`` for batches of ``h``."""
        h = np.asarray(h, dtype=float)
        lh = self.eigenvalues * h
        return self.drift_scale * (lh - np.sum(h * lh, axis=-1, keepdims=True) * h)

    def structured_covariance(self, h: np.ndarray) -> np.ndarray:
        """``S(h)`` from the structured form of the module docstring, for batches of ``h``."""
        h = np.asarray(h, dtype=float)
        lh = self.eigenvalues * h
        outer = lh[..., :, None] * lh[..., None, :]
        if self.sampled:
            pairs = (h[..., :, None] * h[..., None, :]).reshape(*h.shape[:-1], self.dim * self.dim)
            return (pairs @ self.fourth.T).reshape(*h.shape, self.dim) - outer
        q = np.sum(h * lh, axis=-1)
        s = (2.0 * self.kurtosis - 1.0) * outer
        diagonal = self.kurtosis * q[..., None] * self.eigenvalues + self.diagonal * h * h
        index = np.arange(self.dim)
        s[..., index, index] += diagonal
        return s

    def noise_covariance(self, h: np.ndarray) -> np.ndarray:
        return _project(h, _project(h, self.unprojected_covariance(h)).swapaxes(-1, -2))

    def diffusion(self, h: np.ndarray) -> np.ndarray:
        """``noise_scale · P S^{1/2}``: Cholesky factor of S (smooth in h), symmetric root where S is singular."""
        s = self.unprojected_covariance(h)
        try:
            root = np.linalg.cholesky(s)
        except np.linalg.LinAlgError:
            w, v = np.linalg.eigh(s)
            root = v * np.sqrt(np.clip(w, 0.0, None))[..., None, :]
        return self.noise_scale * _project(h, root)


def _project(h: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``(I − h hᵀ) m`` for batches, without forming the projector: ``m − h (hᵀ m)``."""
    h = np.asarray(h, dtype=float)
    return m - h[..., :, None] * np.einsum("...i,...ij->...j", h, m)[..., None, :]


def _vectorised(symbols: tuple[sp.Symbol, ...], exprs: list[sp.Expr]) -> Field:
    """Lambdify the vector ``exprs`` into a function ``h[..., d] -> [..., len(exprs)]``."""
    fn = sp.lambdify(symbols, exprs, modules="numpy", cse=True)

    def field(h: np.ndarray) -> np.ndarray:
        h = np.asarray(h, dtype=float)
        out = np.empty(h.shape[:-1] + (len(exprs),))
        for i, value in enumerate(fn(*np.moveaxis(h, -1, 0))):
            out[..., i] = value
        return out

    return field


def _symmetric(symbols: tuple[sp.Symbol, ...], matrix: sp.Matrix) -> Field:
    """Lambdify a symmetric matrix from its upper triangle only (the costly part of each SME step)."""
    n = matrix.shape[0]
    pairs = [(i, j) for i in range(n) for j in range(i, n)]
    fn = sp.lambdify(symbols, [matrix[i, j] for i, j in pairs], modules="numpy", cse=True)

    def field(h: np.ndarray) -> np.ndarray:
        h = np.asarray(h, dtype=float)
        out = np.empty(h.shape[:-1] + (n, n))
        for (i, j), value in zip(pairs, fn(*np.moveaxis(h, -1, 0))):
            out[..., i, j] = out[..., j, i] = value
        return out

    return field


def structured_moments(problem: Problem) -> tuple[float, np.ndarray]:
    """``c`` and ``k = m4 − 3cλ²`` of a named law, from its derived fourth moments: ``c = E[Y_1² Y_2²]/(λ_1 λ_2)``
    (the ratio of every off-diagonal fourth moment to its Gaussian value) and ``m4_i = E[Y_i⁴]``."""
    lam = sp.symbols("lambda_1:3", positive=True)
    distribution = problem.distribution
    c = sp.simplify(fourth_moment(distribution, 0, 0, 1, 1, lam) / (lam[0] * lam[1]))
    excess = sp.lambdify(lam[0], sp.expand(fourth_moment(distribution, 0, 0, 0, 0, lam) - 3 * c * lam[0] ** 2))
    eigenvalues = np.asarray(problem.eigenvalues, dtype=float)
    return float(c), np.array(np.broadcast_to(excess(eigenvalues), eigenvalues.shape), dtype=float)


def sme_coefficients(problem: Problem) -> SMECoefficients:
    """The SME coefficients of ``problem`` (eigen-coordinates); the SymPy SME is built only when the NumPy
    callables are first used at ``d <=`` :data:`~amsgd.derivations.pca.MAX_SYMBOLIC_DIM`."""
    problem.require_finite_fourth_moments()
    timing = derive_time_scale()
    values = {mu: sp.Float(problem.mu)}
    sampled = isinstance(problem.distribution, SampledDistribution)
    kurtosis, diagonal = (1.0, np.zeros(problem.dim)) if sampled else structured_moments(problem)
    return SMECoefficients(
        problem=problem,
        dim=problem.dim,
        eta=problem.eta,
        mu=problem.mu,
        noise_scale=float(np.sqrt(problem.eta)) * float(timing.noise_gain.subs(values)),
        drift_scale=float(timing.drift_scale.subs(values)),
        eigenvalues=np.array(problem.eigenvalues, dtype=float),
        kurtosis=kurtosis,
        diagonal=diagonal,
        sampled=sampled,
    )

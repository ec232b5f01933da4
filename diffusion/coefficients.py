"""Numeric coefficients of the global stochastic modified equation (SME), lambdified from SymPy.

In eigen-coordinates and diffusion time ``t = kη`` the first-order SME of Async-MSGD is

    dH = g(H)/(1 − μ) dt + sqrt(η)/(1 − μ) C(H)^{1/2} dW,

with the mean map ``g(h) = Λh − (hᵀΛh) h`` and the gradient-noise covariance ``C(h)``, both derived
by the engine for the problem's distribution (:func:`amsgd.derivations.sme.sme_expressions`). The
callables made here from those expressions are vectorised over any leading batch dimensions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy as sp

from amsgd.core.problem import Problem
from amsgd.derivations.sme import sme_expressions

Field = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class SMECoefficients:
    """The SME of one problem, in eigen-coordinates and diffusion time, vectorised over batches.

    ``drift(h)``: (..., d) → (..., d); ``noise_covariance(h)``: (..., d) → (..., d, d), ``C(h)``;
    ``diffusion(h)``: (..., d) → (..., d, d), a matrix σ with ``σσᵀ = η C(h)/(1 − μ)²``.
    """

    dim: int
    eta: float
    mu: float
    noise_scale: float  # sqrt(η) H(1) = sqrt(η)/(1 − μ), from the derived momentum noise gain
    drift: Field
    unprojected_covariance: Field  # S(h) = Cov[Y Yᵀ h]; C = P S P with P = I − h hᵀ
    symbols: tuple[sp.Symbol, ...] = ()
    drift_exprs: tuple[sp.Expr, ...] = ()
    covariance_exprs: tuple[sp.Expr, ...] = ()  # S row-major, numeric coefficients

    def compiled(self) -> tuple[Callable, Callable]:
        """numba-compiled ``drift_into(h, out)`` and ``covariance_into(h, out)`` (S as a d x d array),
        generated from the same SymPy expressions as :attr:`drift` and :attr:`unprojected_covariance`."""
        return _compile(self.symbols, self.drift_exprs, self.covariance_exprs)

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


@lru_cache(maxsize=16)
def _compile(symbols: tuple, drift: tuple, covariance: tuple) -> tuple[Callable, Callable]:
    import numba

    d = len(symbols)
    index = {sym: sp.Symbol(f"h[{i}]") for i, sym in enumerate(symbols)}

    def source(name: str, exprs: tuple, target) -> str:
        temps, reduced = sp.cse([e.subs(index, simultaneous=True) for e in exprs])
        lines = [f"def {name}(h, out):"]
        lines += [f"    {t} = {sp.pycode(v)}" for t, v in temps]
        lines += [f"    out{target(k)} = {sp.pycode(e)}" for k, e in enumerate(reduced)]
        return "\n".join(lines)

    namespace = {"math": math}
    exec(source("drift_into", drift, lambda k: f"[{k}]"), namespace)  # noqa: S102 (generated from SymPy)
    exec(source("covariance_into", covariance, lambda k: f"[{k // d}, {k % d}]"), namespace)  # noqa: S102
    return numba.njit(cache=False)(namespace["drift_into"]), numba.njit(cache=False)(namespace["covariance_into"])


def sme_coefficients(problem: Problem) -> SMECoefficients:
    """Lambdified drift and noise covariance of the SME for ``problem`` (eigen-coordinates)."""
    sme = sme_expressions(problem)
    return SMECoefficients(
        dim=problem.dim,
        eta=problem.eta,
        mu=problem.mu,
        noise_scale=float(np.sqrt(problem.eta)) * float(sme.noise_gain),
        drift=_vectorised(sme.symbols, list(sme.drift)),
        unprojected_covariance=_symmetric(sme.symbols, sme.unprojected_covariance),
        symbols=sme.symbols,
        drift_exprs=tuple(sme.drift),
        covariance_exprs=tuple(sme.unprojected_covariance),
    )

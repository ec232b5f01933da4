"""Numeric coefficients of the global stochastic modified equation (SME), lambdified from SymPy.

In eigen-coordinates and diffusion time ``t = kη`` the first-order SME of Async-MSGD is

    dH = g(H)/(1 − μ) dt + sqrt(η)/(1 − μ) C(H)^{1/2} dW,

with the mean map ``g(h) = Λh − (hᵀΛh) h`` and the gradient-noise covariance ``C(h)`` derived by
the engine for the problem's distribution. The callables returned here are vectorised over any
leading batch dimensions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy as sp

from amsgd.problem import Problem

from .limits import ode_limit
from .pca import pca_model, require_symbolic_dim
from .recursion import derive_time_scale

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

    def noise_covariance(self, h: np.ndarray) -> np.ndarray:
        p = _projector(h)
        return p @ self.unprojected_covariance(h) @ p

    def diffusion(self, h: np.ndarray) -> np.ndarray:
        """``noise_scale · P S^{1/2}``: Cholesky factor of S (smooth in h), symmetric root where S is singular."""
        s = self.unprojected_covariance(h)
        try:
            root = np.linalg.cholesky(s)
        except np.linalg.LinAlgError:
            w, v = np.linalg.eigh(s)
            root = v * np.sqrt(np.clip(w, 0.0, None))[..., None, :]
        return self.noise_scale * (_projector(h) @ root)


def _projector(h: np.ndarray) -> np.ndarray:
    h = np.asarray(h, dtype=float)
    return np.eye(h.shape[-1]) - h[..., :, None] * h[..., None, :]


def _vectorised(symbols: tuple[sp.Symbol, ...], exprs: list[sp.Expr], shape: tuple[int, ...]) -> Field:
    """Lambdify ``exprs`` (flattened, row-major ``shape``) into a function of ``h[..., d]``."""
    fn = sp.lambdify(symbols, exprs, modules="numpy", cse=True)

    def field(h: np.ndarray) -> np.ndarray:
        h = np.asarray(h, dtype=float)
        values = fn(*np.moveaxis(h, -1, 0))
        batch = h.shape[:-1]
        out = np.stack([np.broadcast_to(v, batch) for v in values], axis=-1)
        return out.reshape(batch + shape)

    return field


def sme_coefficients(problem: Problem) -> SMECoefficients:
    """Lambdified drift and noise covariance of the SME for ``problem`` (eigen-coordinates)."""
    require_symbolic_dim(problem.dim, "the stochastic modified equation")
    model = pca_model(problem)
    values = model.substitutions(problem)
    drift = ode_limit(model.recursion).drift.subs(values)
    _, unprojected = model.projected_noise
    d = problem.dim
    gain = float(derive_time_scale().noise_gain.subs(values))
    return SMECoefficients(
        dim=d,
        eta=problem.eta,
        mu=problem.mu,
        noise_scale=float(np.sqrt(problem.eta)) * gain,
        drift=_vectorised(model.h, list(drift), (d,)),
        unprojected_covariance=_vectorised(model.h, list(unprojected.subs(values)), (d, d)),
    )

"""Time-stepping schemes for the Itô SDE ``dY = a(Y) dt + b(Y) dW``, ``W`` an m-dimensional Brownian motion.

Coefficients are vectorised callables: ``drift(y)`` maps ``(..., d) -> (..., d)`` and ``diffusion(y)``
maps ``(..., d) -> (..., d, m)``; ``b^j`` denotes the j-th column of ``b``. Each scheme declares, as
diffrax does, its strong order (``E|Y_N − X(T)| = O(Δt^p)``) and weak order (``|E f(Y_N) − E f(X(T))|
= O(Δt^q)`` for smooth ``f``) and the noise class on which the strong order holds:

* ``"general"`` — any diffusion matrix;
* ``"commutative"`` — ``L^j b^k = L^k b^j`` for all ``j, k`` with ``L^j = Σ_i b^{ij} ∂_i`` (scalar noise,
  diagonal noise and additive noise are commutative). On non-commutative noise these schemes fall back
  to ``general_strong_order`` because they omit the Lévy areas ``(I_(j,k) − I_(k,j))/2``.

The PCA gradient noise is multiplicative and, in general, non-commutative (see
:func:`noise_commutator`): there the batched schemes converge strongly with order 1/2, and the weak
order-2 scheme is the accurate choice for ensemble statistics.

Batched schemes advance all paths at once (arrays ``(P, d)``); the sdeint schemes loop over paths and
are the per-path references.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import numpy as np
import sdeint

from amsgd.core.errors import ProblemError

Drift = Callable[[np.ndarray], np.ndarray]
Diffusion = Callable[[np.ndarray], np.ndarray]


class Scheme(ABC):
    """A one-step method for ``dY = a(Y) dt + b(Y) dW``."""

    name: ClassVar[str]
    #: Strong order on the noise class ``strong_order_noise``.
    strong_order: ClassVar[float]
    #: Noise class on which ``strong_order`` holds: ``"general"`` or ``"commutative"``.
    strong_order_noise: ClassVar[str]
    #: Strong order on general (non-commutative) noise.
    general_strong_order: ClassVar[float] = 0.5
    weak_order: ClassVar[float]
    #: True when the scheme needs the two-point variables of :meth:`~amsgd.diffusion.brownian.BrownianIncrements.two_point`.
    needs_two_point: ClassVar[bool] = False
    #: True for vectorised schemes advancing all paths at once; False for per-path sdeint references.
    batched: ClassVar[bool] = True

    def strong_order_for(self, commutative: bool) -> float:
        """The strong order this scheme attains on commutative or on general noise."""
        if commutative or self.strong_order_noise == "general":
            return self.strong_order
        return self.general_strong_order


class BatchedScheme(Scheme):
    @abstractmethod
    def step(
        self,
        drift: Drift,
        diffusion: Diffusion,
        y: np.ndarray,
        dt: float,
        dw: np.ndarray,
        two_point: np.ndarray | None = None,
    ) -> np.ndarray:
        """Advance states ``y`` (P, d) by one step ``dt`` with increments ``dw`` (P, m)."""


class EulerMaruyama(BatchedScheme):
    """``Y_{n+1} = Y_n + a(Y_n) Δt + b(Y_n) ΔW_n``: strong order 1/2, weak order 1, any noise."""

    name = "euler"
    strong_order = 0.5
    strong_order_noise = "general"
    weak_order = 1.0

    def step(self, drift, diffusion, y, dt, dw, two_point=None):
        return y + drift(y) * dt + np.einsum("pij,pj->pi", diffusion(y), dw)


class Milstein(BatchedScheme):
    """Derivative-free Milstein scheme for commutative noise (Kloeden–Platen section 11.1).

    ``Y_{n+1} = Y_n + a Δt + b ΔW + (1/(2√Δt)) Σ_{j,k} [b^k(Y_n + b^j √Δt) − b^k(Y_n)] (ΔW^j ΔW^k − δ_jk Δt)``.

    The bracket is ``√Δt L^j b^k + O(Δt)``, and on commutative noise ``Σ_{j,k} L^j b^k I_(j,k)`` equals
    ``½ Σ_{j,k} L^j b^k (ΔW^j ΔW^k − δ_jk Δt)``, so the scheme has strong order 1 there. On
    non-commutative noise it misses the Lévy areas and has strong order 1/2. Weak order 1.
    Cost: ``m + 1`` evaluations of the diffusion per step.
    """

    name = "milstein"
    strong_order = 1.0
    strong_order_noise = "commutative"
    weak_order = 1.0

    def step(self, drift, diffusion, y, dt, dw, two_point=None):
        b = diffusion(y)  # (P, d, m)
        m = b.shape[-1]
        sqdt = np.sqrt(dt)
        shifted = y[:, None, :] + np.swapaxes(b, 1, 2) * sqdt  # (P, j, d): Y + b^j √Δt
        lb = diffusion(shifted) - b[:, None, :, :]  # (P, j, d, k) ≈ √Δt L^j b^k
        pairs = dw[:, :, None] * dw[:, None, :] - dt * np.eye(m)  # (P, j, k)
        correction = np.einsum("pjik,pjk->pi", lb, pairs) / (2.0 * sqdt)
        return y + drift(y) * dt + np.einsum("pij,pj->pi", b, dw) + correction


class PlatenWeak2(BatchedScheme):
    """Platen's explicit weak order-2 scheme for general multi-dimensional noise (Kloeden–Platen (15.1.3)).

    With supporting values ``Ῡ = Y + aΔ + bΔW``, ``R^j_± = Y + aΔ ± b^j √Δ`` and ``U^r_± = Y ± b^r √Δ``::

        Y_{n+1} = Y + ½ (a(Ῡ) + a) Δ
          + ¼ Σ_j [ (b^j(R^j_+) + b^j(R^j_−) + 2 b^j) ΔW^j + (b^j(R^j_+) − b^j(R^j_−)) ((ΔW^j)² − Δ)/√Δ ]
          + ¼ Σ_j Σ_{r≠j} [ (b^j(U^r_+) + b^j(U^r_−) − 2 b^j) ΔW^j
                            + (b^j(U^r_+) − b^j(U^r_−)) (ΔW^j ΔW^r + V_rj)/√Δ ]

    where ``V`` are the two-point variables of :meth:`~amsgd.diffusion.brownian.BrownianIncrements.two_point`. The increments here
    are the Gaussian ``ΔW`` of the shared Brownian path (whose moments satisfy the weak order-2
    conditions), so the scheme can be coupled to other schemes. Weak order 2 for smooth coefficients
    with polynomial growth, any noise. Because it contains the Milstein term exactly when the noise is
    commutative (the ``V`` terms then cancel), its strong order is 1 on commutative noise and 1/2
    otherwise. Cost: two drift and ``4m + 1`` diffusion evaluations per step.
    """

    name = "weak2"
    strong_order = 1.0
    strong_order_noise = "commutative"
    weak_order = 2.0
    needs_two_point = True

    def step(self, drift, diffusion, y, dt, dw, two_point=None):
        if two_point is None:
            raise ProblemError("scheme weak2 needs the two-point variables of the Brownian source")
        a = drift(y)
        b = diffusion(y)  # (P, d, m)
        m = b.shape[-1]
        sqdt = np.sqrt(dt)
        cols = np.swapaxes(b, 1, 2) * sqdt  # (P, j, d): b^j √Δ
        base = (y + a * dt)[:, None, :]
        rp = np.einsum("pjij->pji", diffusion(base + cols))  # b^j(R^j_+), (P, j, d)
        rm = np.einsum("pjij->pji", diffusion(base - cols))
        up = diffusion(y[:, None, :] + cols)  # (P, r, d, j): b^j(U^r_+)
        um = diffusion(y[:, None, :] - cols)
        bj = np.swapaxes(b, 1, 2)  # (P, j, d)
        off = 1.0 - np.eye(m)  # r ≠ j
        ybar = y + a * dt + np.einsum("pij,pj->pi", b, dw)
        out = y + 0.5 * (drift(ybar) + a) * dt
        out += 0.25 * np.einsum("pji,pj->pi", rp + rm + 2.0 * bj, dw)
        out += 0.25 * np.einsum("pji,pj->pi", rp - rm, dw**2 - dt) / sqdt
        out += 0.25 * np.einsum("prij,rj,pj->pi", up + um - 2.0 * b[:, None], off, dw)
        pairs = dw[:, None, :] * dw[:, :, None] + two_point  # (P, r, j): ΔW^j ΔW^r + V_rj
        out += 0.25 * np.einsum("prij,rj,prj->pi", up - um, off, pairs) / sqdt
        return out


class SdeintScheme(Scheme):
    """A per-path reference integrator from sdeint, driven by the shared increments."""

    batched = False
    method: ClassVar[str]

    def integrate_path(
        self,
        drift: Drift,
        diffusion: Diffusion,
        y0: np.ndarray,
        tspan: np.ndarray,
        dw: np.ndarray,
        generator: np.random.Generator,
    ) -> np.ndarray:
        """One path on the uniform grid ``tspan`` with increments ``dw`` (len(tspan) − 1, m)."""
        integrator = getattr(sdeint, self.method)
        return integrator(lambda y, t: drift(y), lambda y, t: diffusion(y), y0, tspan, dW=dw, generator=generator)


class SdeintEuler(SdeintScheme):
    """``sdeint.itoEuler``: Euler–Maruyama, strong order 1/2, weak order 1, any noise."""

    name = "sdeint-euler"
    method = "itoEuler"
    strong_order = 0.5
    strong_order_noise = "general"
    weak_order = 1.0


class SdeintSRI2(SdeintScheme):
    """``sdeint.itoSRI2``: Rößler's (2010) SRI2 stochastic Runge–Kutta scheme.

    Strong order 1 given exact iterated integrals ``I_(j,k)``; sdeint approximates them by the
    Kloeden–Platen–Wright series (``Ikpw``, 5 terms), exact for commutative noise where only
    ``I_(j,j) = ((ΔW^j)² − Δt)/2`` matters. On non-commutative noise the truncation limits the
    asymptotic strong order to 1/2. Weak order 1.
    """

    name = "sdeint-sri2"
    method = "itoSRI2"
    strong_order = 1.0
    strong_order_noise = "commutative"
    weak_order = 1.0


SCHEMES: dict[str, Scheme] = {
    scheme.name: scheme
    for scheme in (EulerMaruyama(), Milstein(), PlatenWeak2(), SdeintEuler(), SdeintSRI2())
}


def get_scheme(name: str | Scheme) -> Scheme:
    """The scheme called ``name`` (see :data:`SCHEMES`)."""
    if isinstance(name, Scheme):
        return name
    try:
        return SCHEMES[name]
    except (KeyError, TypeError):  # TypeError: not a name (a list)
        raise ProblemError(f"unknown scheme {name!r}; allowed: {', '.join(SCHEMES)}") from None


def noise_commutator(diffusion: Diffusion, y: np.ndarray, eps: float = 1e-6) -> float:
    """``max_{j,k} |L^j b^k − L^k b^j|`` at the states ``y`` (..., d), by central differences.

    Zero (to ``O(eps²)``) exactly when the noise is commutative at those states.
    """
    y = np.atleast_2d(np.asarray(y, dtype=float)).reshape(-1, np.shape(y)[-1])
    b = diffusion(y)  # (P, d, m)
    cols = np.swapaxes(b, 1, 2)  # (P, j, d)
    lb = (diffusion(y[:, None] + eps * cols) - diffusion(y[:, None] - eps * cols)) / (2 * eps)  # (P, j, d, k)
    return float(np.abs(lb - np.swapaxes(lb, 1, 3)).max())

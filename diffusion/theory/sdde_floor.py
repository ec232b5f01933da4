"""The finite-delay limit evaluated: the SDDE's stationary floor at a delay time ``s = τ η``.

With τ = s/η and η → 0 the linear modes at e_1 obey the scalar SDDEs
``dX_i = −c_i X_i(t − s) dt + b_i dW_i``, ``c_i = a_i/(1 − μ)``, ``b_i² = η σ_i²/(1 − μ)²``
(:mod:`amsgd.derivations.sdde`). Each has a stationary law iff ``0 ≤ c_i s < π/2``, i.e.
``s < s_i* = π (1 − μ)/(2 a_i)``, and then the derived variance

    Var X_i = b_i² (1 + sin(c_i s)) / (2 c_i cos(c_i s)),

which tends to the diffusion limit's ``η σ_i²/(2 a_i (1 − μ))`` as s → 0 and to infinity as
``s → s_i*``. The floor is ``Σ_i Var X_i``; a mode beyond its boundary (noise or not) makes it
infinite, as in :func:`~amsgd.diffusion.theory.error_floor.linearized_floor`.

For a linearisation that is not diagonal (coupled modes), :func:`linear_sdde_covariance` gives the
stationary covariance of ``dX = −K X(t − s) dt + B dW``: in the eigenbasis of K the modes decouple
in the drift and their noise is correlated, and the derived cross-covariance
``R_ij(0) = D_ij cos(ω s)/(c_i + c_j − 2 ω sin(ω s))``, ``ω = sqrt(c_i c_j)``, gives each entry.
The derived formulas are evaluated here through ``sympy.lambdify``. A random delay's limit spreads the
delay over its law (a distributed-delay equation): :mod:`.distributed_delay`, which ``sdde_floor``
uses when given the law.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy as sp

from amsgd.core import checks
from amsgd.core.errors import ProblemError
from amsgd.core.estimates import json_float
from amsgd.diffusion.theory.error_floor import ModeVariances
from amsgd.diffusion.theory.linear_recursion import check_parameters, check_rates


@lru_cache(maxsize=1)
def _formulas() -> dict:
    """The derived expressions as NumPy functions (SymPy is imported on first use only)."""
    from amsgd.derivations import sdde as d
    from amsgd.derivations.recursion import eta, mu

    linear = d.linear_mode_sdde()
    boundary = linear.delay_differential.critical_delay_time
    return {
        "mode": sp.lambdify((d.rate, d.noise_variance, eta, mu, d.s), linear.mode_variance, "numpy"),
        "diffusion": sp.lambdify((d.rate, d.noise_variance, eta, mu), linear.diffusion_variance, "numpy"),
        "boundary": sp.lambdify((d.rate, mu), boundary, "numpy"),
        "scalar": sp.lambdify((d.c, d.b, d.s), _without_cancellation(linear.variance, d.b, d.c, d.s), "numpy"),
        "scalar_boundary": sp.lambdify(d.c, boundary.subs(d.rate, d.c * (1 - mu)), "numpy"),
    }


def _without_cancellation(variance: sp.Expr, b: sp.Symbol, c: sp.Symbol, s: sp.Symbol) -> sp.Expr:
    """The derived ``−b² cos(cs)/(2c (sin(cs) − 1))`` as ``b² (1 + sin(cs))/(2c cos(cs))``, checked equal by
    SymPy: next to the boundary ``1 − sin(cs)`` cancels (a relative error of about 1e-16/(g²/2) at a gap
    g = π/2 − cs: 2e-4 at g = 1e-6), where ``cos(cs)`` keeps its digits."""
    stable = b**2 * (1 + sp.sin(c * s)) / (2 * c * sp.cos(c * s))
    if sp.simplify(stable - variance) != 0:
        raise ArithmeticError(f"the SDDE variance is no longer b^2 (1 + sin cs)/(2c cos cs): {variance}")
    return stable


@lru_cache(maxsize=1)
def _cross_covariance():
    from amsgd.derivations import sdde as d

    return sp.lambdify((d.c_i, d.c_j, d.d_ij, d.s, d.omega), d.cross_covariance_formula(), "numpy")


def _delay_time(delay_time: float) -> float:
    s = checks.real("delay_time", delay_time)
    if s < 0:
        raise ProblemError(f"delay_time must be >= 0 (s = tau * eta, in units of diffusion time), got {delay_time!r}")
    return s


def linear_sdde_variance(rate: float, noise: float, delay_time: float) -> float:
    """``Var X`` of the stationary ``dX = −c X(t − s) dt + b dW`` (``rate`` c, ``noise`` b²):
    ``b² (1 + sin(c s))/(2 c cos(c s))``; ``inf`` where no stationary law exists (``c ≤ 0`` or
    ``c s ≥ π/2``)."""
    c, s = checks.real("rate", rate), _delay_time(delay_time)
    b2 = checks.real("noise", noise)
    if b2 < 0:
        raise ProblemError(f"noise (the variance b^2 per unit time) must be >= 0, got {noise!r}")
    f = _formulas()
    if c <= 0 or s >= float(f["scalar_boundary"](c)):
        return float("inf")
    return float(f["scalar"](c, np.sqrt(b2), s))


def linear_sdde_covariance(drift: np.ndarray, noise: np.ndarray, delay_time: float) -> np.ndarray:
    """The stationary covariance of ``dX = −K X(t − s) dt + B dW`` (``drift`` K, ``noise`` B Bᵀ).

    K must be diagonalisable with real positive eigenvalues ``c_i`` (``K = V diag(c) V⁻¹``); with
    ``Z = V⁻¹ X`` and ``D = V⁻¹ B Bᵀ V⁻ᵀ`` the covariance of Z has the derived entries
    ``D_ij cos(ω s)/(c_i + c_j − 2 ω sin(ω s))``, ``ω = sqrt(c_i c_j)``, and ``Cov X = V Cov Z Vᵀ``.
    Beyond the boundary (some ``c_i s ≥ π/2``) every entry is ``inf``.
    """
    k = np.asarray(drift, dtype=float)
    n = np.asarray(noise, dtype=float)
    square = k.ndim == 2 and k.shape[0] == k.shape[1] and n.shape == k.shape
    if not (square and np.all(np.isfinite(k)) and np.all(np.isfinite(n))):
        raise ProblemError(
            f"drift and noise must be finite square matrices of one shape, got {k.shape} and {n.shape}"
        )
    if not np.allclose(n, n.T, rtol=1e-12, atol=0.0):
        raise ProblemError("noise must be the symmetric matrix B B^T; symmetrise it")
    s = _delay_time(delay_time)
    rates, vectors = np.linalg.eig(k)
    if np.any(np.abs(rates.imag) > 1e-12 * np.abs(rates).max()) or np.any(rates.real <= 0):
        raise ProblemError(
            f"drift must have real positive eigenvalues, got {np.round(rates, 6).tolist()}; "
            "the stationary covariance is derived for a drift -K with K diagonalisable over the reals"
        )
    rates, vectors = rates.real, vectors.real
    if np.linalg.cond(vectors) > 1e10:
        raise ProblemError("drift must be diagonalisable (its eigenvectors are nearly dependent)")
    if s * rates.max() >= float(_formulas()["scalar_boundary"](1.0)):
        return np.full(k.shape, np.inf)
    inverse = np.linalg.inv(vectors)
    d = inverse @ n @ inverse.T
    ci, cj = rates[:, None], rates[None, :]
    z = _cross_covariance()(ci, cj, d, s, np.sqrt(ci * cj))
    return vectors @ z @ vectors.T


@dataclass(frozen=True)
class SDDEFloor(ModeVariances):
    """The SDDE floor mode by mode at the delay time ``s``: per-mode variances (``inf`` beyond a
    mode's boundary ``s_i*``), their sum, and the diffusion limit's values (s = 0) beside them."""

    eta: float
    mu: float
    delay_time: float
    rates: tuple[float, ...]
    noise_variances: tuple[float, ...]
    variances: tuple[float, ...]
    critical_delay_times: tuple[float, ...]
    diffusion_variances: tuple[float, ...]
    #: whether the delay is random: the variances and stability are then the distributed-delay
    #: equation's (:mod:`.distributed_delay`), ``delay_time`` its mean and the critical delay times
    #: those of one delay, for comparison
    distributed: bool = False
    #: why the distributed-delay equation was not solved (its grid too large), its variances then NaN
    unresolved: str | None = None

    @property
    def limiting_mode(self) -> int:
        """The index of the mode with the smallest boundary ``s_i*``."""
        return int(np.argmin(self.critical_delay_times))

    @property
    def critical_delay_time(self) -> float:
        """``s* = min_i s_i*``: the SDDE has a stationary law iff ``s < s*``."""
        return float(np.min(self.critical_delay_times))

    def to_dict(self) -> dict:
        return {
            "delay_time": self.delay_time,
            "delay": "distributed" if self.distributed else "one",
            "critical_delay_time": self.critical_delay_time,
            "critical_delay": self.critical_delay_time / self.eta,
            "stable": None if self.unresolved else self.stable,
            "stationary_error": json_float(self.floor),
            "diffusion_floor": json_float(self.diffusion_floor),
            "ratio_to_diffusion": json_float(self.ratio) if self.stable else None,
            "per_mode": [json_float(v) for v in self.variances],
            "per_mode_critical_delay_time": [json_float(v) for v in self.critical_delay_times],
            **({"unresolved": self.unresolved} if self.unresolved else {}),
        }


def sdde_floor(
    rates: float | Sequence[float] | np.ndarray,
    noise_variances: float | Sequence[float] | np.ndarray,
    eta: float,
    mu: float,
    delay_time: float,
    pmf: np.ndarray | None = None,
) -> SDDEFloor:
    """The SDDE floor ``Σ_i b_i² (1 + sin(c_i s))/(2 c_i cos(c_i s))`` of the linear modes with
    restoring ``rates`` a_i (per unit η) and ``noise_variances`` σ_i², at η, μ and ``delay_time`` s.

    With the ``pmf`` of a random delay (more than one value), the limit is the distributed-delay
    equation of :mod:`.distributed_delay` instead, its variances and stability; ``delay_time`` (η
    times the mean delay) and the critical delay times (of one delay) are kept for comparison. Where
    that equation's grid would be too large, its variances are NaN and ``unresolved`` says why."""
    a = check_rates(rates)
    s2 = np.broadcast_to(np.asarray(noise_variances, dtype=float), a.shape)
    if not (np.all(np.isfinite(s2)) and np.all(s2 >= 0)):
        raise ProblemError(f"noise variances must be finite and >= 0, got {noise_variances!r}")
    eta, mu = check_parameters(eta, mu)
    s = _delay_time(delay_time)
    f = _formulas()
    distributed = pmf is not None and np.count_nonzero(pmf) > 1
    with np.errstate(divide="ignore", invalid="ignore"):
        boundary = np.where(a > 0, f["boundary"](np.where(a > 0, a, 1.0), mu), 0.0)
        stable = s < boundary
        safe = np.where(stable, a, 1.0)
        if not distributed:
            variances = np.where(stable, np.where(s2 > 0, f["mode"](safe, s2, eta, mu, s), 0.0), np.inf)
        diffusion = np.where(a > 0, np.where(s2 > 0, f["diffusion"](np.where(a > 0, a, 1.0), s2, eta, mu), 0.0), np.inf)
    unresolved = None
    if distributed:
        from amsgd.diffusion.theory.distributed_delay import distributed_delay_variances

        try:
            variances = distributed_delay_variances(a / (1 - mu), eta * s2 / (1 - mu) ** 2, eta, pmf)
        except ProblemError as exc:  # the other entries of a prediction stand without this one
            variances, unresolved = np.full(a.shape, np.nan), str(exc)
    return SDDEFloor(
        eta=eta,
        mu=mu,
        delay_time=s,
        rates=tuple(a.tolist()),
        noise_variances=tuple(s2.tolist()),
        variances=tuple(float(v) for v in variances),
        critical_delay_times=tuple(float(v) for v in boundary),
        diffusion_variances=tuple(float(v) for v in diffusion),
        distributed=distributed,
        unresolved=unresolved,
    )

"""The linearised error floor near the optimum: exact finite-η, finite-τ stationary variances summed.

Near a stable stationary point every mode i is the linear recursion of :mod:`.linear_recursion`
with its rate a_i and gradient-noise variance s_i². For streaming PCA near e_1 (the caller supplies
the numbers, e.g. from the derivation engine):

* the tangent modes i = 2..d have ``a_i = λ_1 − λ_i`` and ``s_i² = α_{i1}² = E[Y_i² Y_1²]``
  (λ_i λ_1 for Gaussian and Rademacher data, λ_i λ_1 (ν − 2)/(ν − 4) for Student-t ν);
* the norm of v is a mode too, the update not being renormalised: along e_1 the mean drift is
  ``λ_1 h − λ_1 h³``, whose derivative at h = 1 is ``−2 λ_1``, so ``a = 2 λ_1``; its noise vanishes at
  leading order because ``(I − v vᵀ)`` removes the e_1 component of the gradient at v = e_1.

The error ``sin²∠(v, e_1) ≈ Σ_{i≥2} x_i²``, so its stationary mean is ``Σ_i Var x_i``, exact for the
linear recursion at the given η, μ and delay. The diffusion limit gives each term to leading order
in η as ``η s_i² / (2 a_i (1 − μ))``, independent of the delay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from amsgd.core import checks
from amsgd.core.errors import ProblemError
from amsgd.core.estimates import json_float
from amsgd.diffusion.theory.linear_recursion import (
    Delay,
    check_parameters,
    check_rates,
    delay_law,
)
from amsgd.diffusion.theory.lyapunov import stationary_variance


class ModeVariances:
    """A floor as a sum over modes: ``variances`` (``inf`` for a mode without a stationary law) and the
    diffusion limit's ``diffusion_variances`` beside them."""

    variances: tuple[float, ...]
    diffusion_variances: tuple[float, ...]

    @property
    def stable(self) -> bool:
        return bool(np.all(np.isfinite(self.variances)))

    @property
    def floor(self) -> float:
        return float(np.sum(self.variances))

    @property
    def diffusion_floor(self) -> float:
        return float(np.sum(self.diffusion_variances))

    @property
    def ratio(self) -> float:
        """``floor / diffusion_floor``: how far the diffusion limit is from this floor."""
        return self.floor / self.diffusion_floor if self.diffusion_floor > 0 else float("nan")


@dataclass(frozen=True)
class FloorResult(ModeVariances):
    """Per-mode exact stationary variances (``inf`` for a mode that is not mean-square stable).

    ``floor`` is their sum, the linearised stationary mean of sin²; ``diffusion_floor`` the
    leading-order diffusion value ``Σ η s_i² / (2 a_i (1 − μ))``.
    """

    eta: float
    mu: float
    delay: str
    rates: tuple[float, ...]
    noise_variances: tuple[float, ...]
    variances: tuple[float, ...]
    diffusion_variances: tuple[float, ...]

    def to_dict(self) -> dict:
        return {
            "eta": self.eta,
            "mu": self.mu,
            "delay": self.delay,
            "rates": list(self.rates),
            "noise_variances": list(self.noise_variances),
            "stable": self.stable,
            "floor": json_float(self.floor),
            "diffusion_floor": json_float(self.diffusion_floor),
            "ratio": json_float(self.ratio),
            "variances": [json_float(v) for v in self.variances],
            "diffusion_variances": [json_float(v) for v in self.diffusion_variances],
        }


def linearized_floor(
    rates: float | Sequence[float] | np.ndarray,
    noise_variances: float | Sequence[float] | np.ndarray,
    eta: float,
    mu: float,
    delay: Delay = 0,
) -> FloorResult:
    """The exact linear error floor ``Σ_i Var x_i`` at (η, μ, delay), mode by mode.

    Modes of zero noise (the radial mode) contribute nothing to the floor but still decide
    stability: if any mode is not mean-square stable the floor is ``inf`` and ``stable`` False.
    """
    a = check_rates(rates)
    s2 = checks.real_array("noise variances", noise_variances)
    if s2.ndim > 1 or s2.size not in (1, a.size):
        raise ProblemError(f"noise variances must be one number or one per rate ({a.size}), got {noise_variances!r}")
    s2 = np.broadcast_to(s2, a.shape)
    if not (np.all(np.isfinite(s2)) and np.all(s2 >= 0)):
        raise ProblemError(f"noise variances must be finite and >= 0, got {noise_variances!r}")
    eta, mu = check_parameters(eta, mu)
    law = delay_law(delay)
    variances = [
        stationary_variance(r, eta, mu, law, s, if_unstable="inf") for r, s in zip(a, s2, strict=True)
    ]
    with np.errstate(divide="ignore"):
        diffusion = np.where(a > 0, eta * s2 / (2.0 * a * (1.0 - mu)), np.inf)
    diffusion = np.where(s2 == 0, 0.0, diffusion)
    return FloorResult(
        eta=eta,
        mu=mu,
        delay=law.spec,
        rates=tuple(a.tolist()),
        noise_variances=tuple(s2.tolist()),
        variances=tuple(float(v) for v in variances),
        diffusion_variances=tuple(diffusion.tolist()),
    )

"""The noise-to-signal ratio of Li, Malladi & Arora (2021) for streaming PCA at its stationary law.

Their necessary condition for an SDE to describe SGD at a finite step: the gradient noise
``N = E‖g(x; ξ) − ∇L(x)‖²`` must dominate the signal ``G = ‖∇L(x)‖²``, the ratio ``N/G`` being
measured where the run is. Near e_1 the tangent modes ``i = 2 .. d`` have rates ``a_i = λ_1 − λ_i``
and noise variances ``σ_i² = E[Y_1² Y_i²]``, so ``N = Σ_i σ_i²`` and ``G = Σ_i a_i² Var h_i``; with the
SDE's variances ``η σ_i²/(2 a_i (1 − μ))`` SymPy gives (:func:`amsgd.derivations.svag.pca_noise_to_signal`)

    N/G = 2 (1 − μ) Σ_i σ_i² / (η Σ_i a_i σ_i²).

Reported at three laws: the limit's (the SDE at τ = 0, the SDDE's variances at τ > 0), the
algorithm's own from the exact finite-η second moments (:mod:`.second_moments`: the multiplicative
noise adds ``Σ_j Var A_ij Var h_j`` to each mode's noise), and measured in simulation by the SVAG
validation. What the ratio means is exact for one linear mode (:func:`amsgd.derivations.svag.noise_to_signal`):
at the algorithm's law ``R = N/G`` the algorithm's floor exceeds the SDE's by ``(1 − μ)/((1 + μ) R)``,
and ``R`` reaches 0 where the recursion diverges; summed over the modes this is :attr:`floor_excess`
(τ = 0). The condition is necessary, not sufficient: a large ratio says the discretisation of the
floor is small, not that every observable (an escape from a saddle, say) follows the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy as sp

from amsgd.core.estimates import json_float
from amsgd.derivations.display import as_text
from amsgd.derivations.svag import mu, noise_to_signal, pca_noise_to_signal


@dataclass(frozen=True)
class NoiseToSignalValues:
    """``N/G`` at the limit's and at the algorithm's stationary law, and the floor excess it implies."""

    limit_name: str
    limit_ratio: float | None  # None where the limit has no stationary law (beyond s*)
    finite_eta_ratio: float | None  # None where the linearisation (radial mode included) is not mean-square stable
    floor_excess: float | None  # the algorithm's floor over the SDE's minus one, τ = 0 only
    formula: str

    @property
    def noise_dominates(self) -> bool | None:
        """Whether ``N > G`` at the algorithm's law (at the limit's when that is unknown)."""
        ratio = self.limit_ratio if self.finite_eta_ratio is None else self.finite_eta_ratio
        return None if ratio is None else bool(ratio > 1.0)

    def to_dict(self) -> dict:
        return {
            "definition": "N/G: the trace of the gradient-noise covariance over the squared mean gradient, "
            "averaged over a stationary law (Li, Malladi & Arora 2021); the SDE needs N >> G",
            "formula": self.formula,
            "limit": self.limit_name,
            "limit_ratio": None if self.limit_ratio is None else json_float(self.limit_ratio),
            "finite_eta_ratio": None if self.finite_eta_ratio is None else json_float(self.finite_eta_ratio),
            "noise_dominates": self.noise_dominates,
            "floor_excess_over_sde": None if self.floor_excess is None else json_float(self.floor_excess),
        }


@lru_cache(maxsize=1)
def _excess_of_ratio():
    """``(R, μ) ↦ (1 − μ)/((1 + μ) R)``, the derived floor excess of one mode at the algorithm's law."""
    relation = noise_to_signal()
    return sp.lambdify((relation.ratio, mu), relation.floor_excess, "numpy")


@lru_cache(maxsize=1)
def _formula() -> str:
    return as_text(pca_noise_to_signal()[0])


def ratio(noise: np.ndarray, rates: np.ndarray, variances: np.ndarray) -> float | None:
    """``Σ noise / Σ rates² variances`` over the modes; None when a variance is infinite."""
    variances = np.asarray(variances, dtype=float)
    if not np.all(np.isfinite(variances)):
        return None
    return float(np.sum(noise) / np.sum(np.square(rates) * variances))


def noise_to_signal_values(predictions) -> NoiseToSignalValues:
    """:class:`NoiseToSignalValues` of a problem from its :class:`~amsgd.diffusion.theory.Predictions`."""
    p, modes = predictions.problem, predictions.modes
    tangent = np.asarray(modes.tangent)
    rates, noise = modes.rates[tangent], modes.noise_variances[tangent]
    if p.delay.max_delay == 0:
        name, limit = "SDE", ratio(noise, rates, np.asarray(predictions.linearized.diffusion_variances)[tangent])
    else:
        sdde = predictions.sdde  # no stationary law when any mode, the radial one included, is past s*
        name, limit = "SDDE", ratio(noise, rates, np.asarray(sdde.variances)[tangent]) if sdde.stable else None
    exact = predictions.finite_eta
    finite = None
    if exact.stable:  # False too where the whole linearisation has no stationary law
        c = predictions.coefficients.block(predictions.coefficients.tangent)
        v = np.asarray(exact.variances, dtype=float)
        finite = ratio(c.additive + c.coupling @ v, c.rates, v)
    excess = None
    if p.delay.max_delay == 0 and predictions.linearized.stable:
        discrete = np.asarray(predictions.linearized.variances)[tangent]
        sde = np.asarray(predictions.linearized.diffusion_variances)[tangent]
        per_mode = _excess_of_ratio()(noise / (np.square(rates) * discrete), p.mu)
        excess = float(np.sum(sde * per_mode) / np.sum(sde))
    return NoiseToSignalValues(name, limit, finite, excess, _formula())

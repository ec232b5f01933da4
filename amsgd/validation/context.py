"""What every experiment shares: the problem, its derivation, the simulation budget, the seeds,
and the model tolerances with the reasons for them.

Model tolerances. Each prediction checked here is a limit or a linearisation; where the next term
is not computed, the check widens the measured 95% interval by a stated amount of its known order:

* **Linearisation near e_1** (error floors, local rates): the terms dropped (the quartic terms of
  sin², the cubic drift ``x_i Σ_j (λ_1 − λ_j) x_j²``, the state dependence of the gradient noise and
  of the norm) are smaller than the kept ones by a factor of the order of the error itself,
  ``E sin² ≈ F``. Tolerance: ``2 F`` relative to the prediction (:func:`Context.linear_tolerance`).
* **The ODE limit** (mean trajectory, travel): the first-order modified equation
  ``X' = G/(1 − μ) − η G'G [(1 + μ)/(2 (1 − μ)³) + τ/(1 − μ)²]`` changes the drift by the relative
  amount ``ε = η (λ_1 − λ_2) [(1 + μ)/(2 (1 − μ)²) + τ̄/(1 − μ)]`` along the travel direction; the
  gradient noise adds the variance of the tangent modes, at most the stationary floor, to the mean
  error (:func:`Context.ode_drift_correction`).
* **The escape time** is logarithmic in 1/η: the diffusion limit fixes the exponential growth
  rate ``a`` of the unstable mode, but the amplitude it starts from is right only to a factor
  ``1 + O(η a/(1 − μ)²) + O(δ²)`` (the discrete noise gain, the saturation at δ²). A factor
  ``e^{1/2}`` in amplitude shifts the crossing by ``1/(4 a)`` in time: the tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from amsgd.derivations import Derivation, derive
from amsgd.diffusion.error_floor import FloorResult, linearized_floor
from amsgd.diffusion.stability import StabilityReport, stability_report
from amsgd.problem import Problem
from amsgd.simulate.delays import ConstantDelay, DelayModel
from amsgd.simulate.engine import StartSpec, simulate
from amsgd.simulate.result import SimulationResult
from amsgd.validation.checks import Predictions

#: Relative model tolerance of linearised predictions, in units of the predicted floor F.
LINEAR_TOLERANCE_FACTOR = 2.0
#: Escape-time tolerance in units of 1/a (a: growth rate of the unstable mode at e_2).
ESCAPE_TOLERANCE = 0.25
LINEAR_REASON = (
    "linearisation at e_1: the neglected terms are smaller than the kept ones by a factor of "
    "order E sin^2 = F; tolerance 2 F relative to the prediction"
)


@dataclass(frozen=True)
class Budget:
    """Monte Carlo sizes: replicates and iterations per kind of run, the seed and the threads."""

    replicates: int = 1024
    transient_replicates: int = 2048
    stationary_steps: int = 20_000
    sweep_replicates: int = 256
    sweep_steps: int = 20_000
    rate_steps: int = 1_500
    seed: int = 2018
    threads: int = 2


@dataclass
class Context:
    """One validation run: the problem and its derivation, the budget, the (perturbable) predictions."""

    problem: Problem
    budget: Budget = field(default_factory=Budget)
    predictions: Predictions = field(default_factory=Predictions)
    progress: bool | None = None

    @cached_property
    def derivation(self) -> Derivation:
        return derive(self.problem)

    @property
    def rates(self) -> np.ndarray:
        """Restoring rates a_i of the linear modes at e_1 (index 0: the radial mode), per unit η."""
        return self.derivation.optimum_modes.rates

    @property
    def noise(self) -> np.ndarray:
        return self.derivation.optimum_modes.noise_variances

    @cached_property
    def diffusion_floor(self) -> float:
        return self.derivation.value(self.derivation.stationary_error)

    def floor(self, eta: float, mu: float, delay: DelayModel | int | np.ndarray) -> FloorResult:
        """The exact linear floor at (η, μ, delay) for this problem's modes."""
        return linearized_floor(self.rates, self.noise, eta, mu, delay)

    def stability(self, eta: float, mu: float, delay: DelayModel | int = 0) -> StabilityReport:
        return stability_report(self.rates, eta, mu, delay)

    def tau_star(self, mu: float | None = None) -> int | None:
        """τ*: the largest stable constant delay at the problem's η and momentum ``mu``."""
        return self.stability(self.problem.eta, self.problem.mu if mu is None else mu).tau_max

    def linear_tolerance(self, predicted: float, floor: float | None = None) -> float:
        """``2 F · predicted`` (module docstring), F the linear floor at the run's parameters."""
        f = self.diffusion_floor if floor is None else floor
        return LINEAR_TOLERANCE_FACTOR * min(f, 1.0) * abs(predicted)

    def ode_drift_correction(self, problem: Problem | None = None) -> float:
        """``ε = η (λ_1 − λ_2) [(1 + μ)/(2 (1 − μ)²) + τ̄/(1 − μ)]`` (module docstring)."""
        p = problem or self.problem
        mu, gap = p.mu, p.eigengap
        return p.eta * gap * ((1 + mu) / (2 * (1 - mu) ** 2) + p.delay.mean / (1 - mu))

    def seed(self, *key: int) -> np.random.SeedSequence:
        """The stream of one run, keyed by its place in the validation (never by worker)."""
        return np.random.SeedSequence(self.budget.seed, spawn_key=tuple(key))

    def simulate(self, problem: Problem, steps: int, replicates: int, key: tuple[int, ...], *,
                 start: StartSpec = "e1", **options) -> SimulationResult:  # fmt: skip
        return simulate(
            problem, steps, replicates, rng=self.seed(*key), start=start,
            threads=self.budget.threads, progress=self.progress, **options,
        )  # fmt: skip


def zero_delay(problem: Problem) -> Problem:
    """The same problem without delay (Sync-MSGD)."""
    return problem.replace(delay=ConstantDelay(0))


def constant_delay(problem: Problem, tau: int) -> Problem:
    return problem.replace(delay=ConstantDelay(int(tau)))

"""What every experiment shares: the problem, its predictions, the simulation budget, the seeds,
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

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from amsgd.core.delays import ConstantDelay, DelayModel
from amsgd.core.problem import Problem
from amsgd.diffusion.theory import Predictions, PredictOptions, predict
from amsgd.diffusion.theory.divergence import DivergenceRisk
from amsgd.diffusion.theory.error_floor import FloorResult
from amsgd.diffusion.theory.phases import LIMIT_ESCAPE_TOLERANCE
from amsgd.diffusion.theory.report import AccuracyNote, accuracy_notes
from amsgd.diffusion.theory.stability import StabilityReport
from amsgd.simulate.engine import simulate
from amsgd.simulate.plan import StartSpec
from amsgd.simulate.result import SimulationResult
from amsgd.validation.budget import Budget
from amsgd.validation.checks import Perturbations

#: Relative model tolerance of linearised predictions, in units of the predicted floor F.
LINEAR_TOLERANCE_FACTOR = 2.0
#: Escape-time tolerance in units of 1/a (a: growth rate of the unstable mode at e_2): the theory's own, beyond
#: which it calls the limit's escape outside its range.
ESCAPE_TOLERANCE = LIMIT_ESCAPE_TOLERANCE
LINEAR_REASON = (
    "linearisation at e_1: the neglected terms are smaller than the kept ones by a factor of "
    "order E sin^2 = F; tolerance 2 F relative to the prediction"
)
RATE_REASON = (
    "finite-eta rate: the ratio's mean recursion with its drift c_i = eta s_i/(1 - mu_i), the restoring-force "
    "split and the radial friction (terms of relative order F); the terms it leaves out are of relative order "
    "F^2, with coefficients measured up to about 11 (Rademacher data at F = 0.076: 5% of the rate); tolerance "
    "2 F relative to the prediction, as for the linearisation"
)
#: The largest floor F at which a linearised (diffusion or exact linear) floor is checked: its error is of
#: order F, and the tolerance 2F relative to the prediction would accept almost anything beyond.
SMALL_NOISE_FLOOR = 0.25
#: Relative model tolerance of the finite-η floor (its stated accuracy; docs/linear-theory.md).
FINITE_ETA_TOLERANCE = 0.025
FINITE_ETA_REASON = (
    "finite-eta floor: exact for the random-coefficient linearisation, Gaussian ratios in the curvature of "
    "sin^2; its measured accuracy is 2.5% relative (the non-Gaussian ratios are left out)"
)

#: Runs that relax towards a stationary law last at most this many times the budget's iterations.
MAX_STEP_FACTOR = 10
#: A floor's runs from e_1 last at least this many relaxation times (1 − μ)/(η (λ_1 − λ_2)) of the
#: slowest tangent mode, so that its variance has settled before the averaged second half (the default
#: budget's 20 000 iterations are 100 of them on the default problem; at η 1e-5 they are 2).
STATIONARY_RELAXATIONS = 16


def relaxation_time(problem: Problem, mu: float | None = None) -> float:
    """``(1 − μ)/(η (λ_1 − λ_2))``, in iterations: the mean relaxation time of the slowest tangent mode
    (the escaping mode's e-folding time at the saddle) of ``problem``, at momentum ``mu`` when given."""
    return (1 - (problem.mu if mu is None else mu)) / (problem.eta * problem.eigengap)


def relaxed_steps(budget: int, problem: Problem, relaxations: float, mu: float | None = None) -> int:
    """Iterations of runs that must last ``relaxations`` relaxation times (:func:`relaxation_time`) of
    ``problem`` (at momentum ``mu`` when given): the ``budget``'s where that is longer, at most
    :data:`MAX_STEP_FACTOR` times it."""
    wanted = math.ceil(round(relaxations * relaxation_time(problem, mu), 6))
    return int(min(max(budget, wanted), MAX_STEP_FACTOR * budget))


@dataclass
class Context:
    """One validation run: the problem and its predictions, the budget, the perturbations of checks."""

    problem: Problem
    budget: Budget = field(default_factory=Budget)
    perturb: Perturbations = field(default_factory=Perturbations)
    progress: bool | None = None
    _notes: dict = field(default_factory=dict, init=False, repr=False)  # accuracy_notes by parameters
    _risks: dict = field(default_factory=dict, init=False, repr=False)  # divergence risks by parameters and steps
    _keys: set = field(default_factory=set, init=False, repr=False)  # the streams' keys given out (:meth:`seed`)

    @cached_property
    def theory(self) -> Predictions:
        """The predictions of :func:`amsgd.predict` for the problem."""
        return predict(self.problem)

    @property
    def rates(self) -> np.ndarray:
        """Restoring rates a_i of the linear modes at e_1 (index 0: the radial mode), per unit η."""
        return self.theory.modes.rates

    @property
    def diffusion_floor(self) -> float:
        return self.theory.diffusion_floor

    def at(self, eta: float, mu: float, delay: DelayModel | int) -> Predictions:
        """The predictions at another (η, μ, delay) of the same Σ and data law."""
        if not isinstance(delay, DelayModel):
            delay = ConstantDelay(int(delay))
        return self.theory.at(eta=eta, mu=mu, delay=delay)

    def accuracy_notes(self, problem: Problem) -> tuple[AccuracyNote, ...]:
        """Where the finite-η floor of ``problem`` (this Σ; its own η, μ, delay and data law) lies outside
        the range its accuracy was measured on, in ``derive``'s words (its ``accuracy_notes``)."""
        key = _parameters(problem)
        if key not in self._notes:
            theory = self.at(problem.eta, problem.mu, problem.delay)
            if problem.distribution.spec != self.problem.distribution.spec:
                theory = theory.at(distribution=problem.distribution)
            self._notes[key] = tuple(accuracy_notes(theory))
        return self._notes[key]

    def divergence(self, problem: Problem, steps: int) -> DivergenceRisk:
        """``predict``'s divergence risk of ``problem`` (this Σ) over runs of ``steps`` iterations, predicted
        once per parameters: several checks hold the same runs, or the same delay, to it."""
        key = (*_parameters(problem), int(steps))
        if key not in self._risks:
            self._risks[key] = predict(problem, PredictOptions(steps=int(steps))).divergence
        return self._risks[key]

    def floor(self, eta: float, mu: float, delay: DelayModel | int) -> FloorResult:
        """The exact linear floor at (η, μ, delay) for this problem's modes."""
        return self.at(eta, mu, delay).linearized

    def stability(self, eta: float, mu: float, delay: DelayModel | int = 0) -> StabilityReport:
        return self.at(eta, mu, delay).stability

    def tau_star(self, mu: float | None = None) -> int | None:
        """τ*: the largest stable constant delay at the problem's η and momentum ``mu``."""
        return self.at(self.problem.eta, self.problem.mu if mu is None else mu, 0).tau_max

    def finite_eta(self, problem: Problem) -> float:
        """The finite-η floor of ``problem`` (the same Σ and data law, any η, μ, delay)."""
        return self.at(problem.eta, problem.mu, problem.delay).finite_eta.value

    def linear_tolerance(self, predicted: float, floor: float | None = None) -> float:
        """``2 F · predicted`` (module docstring), F the linear floor at the run's parameters."""
        f = self.diffusion_floor if floor is None else floor
        return LINEAR_TOLERANCE_FACTOR * min(f, 1.0) * abs(predicted)

    def ode_drift_correction(self, problem: Problem | None = None) -> float:
        """``ε = η (λ_1 − λ_2) [(1 + μ)/(2 (1 − μ)²) + τ̄/(1 − μ)]`` (module docstring)."""
        p = problem or self.problem
        mu, gap = p.mu, p.eigengap
        return p.eta * gap * ((1 + mu) / (2 * (1 - mu) ** 2) + p.delay.mean / (1 - mu))

    def stationary_steps(self, problem: Problem) -> int:
        """Iterations of a floor's runs of ``problem`` from e_1 (:data:`STATIONARY_RELAXATIONS`)."""
        return relaxed_steps(self.budget.stationary_steps, problem, STATIONARY_RELAXATIONS)

    def seed(self, *key: int) -> np.random.SeedSequence:
        """The stream of one run, keyed by its place in the validation (never by worker). A run's
        blocks and their data extend its key (:mod:`amsgd.simulate.seeding`), so no run's key may
        extend another's: run ``(6, 0, 0)``'s block 1 would draw the stream of run ``(6, 0, 0, 1)``.
        Such a pair is refused (a :class:`RuntimeError`, an error in the validation's own keys); the
        same key twice is allowed (paired replicates)."""
        key = tuple(int(k) for k in key)
        for other in self._keys:
            short, long = sorted((key, other), key=len)
            if len(short) < len(long) and long[: len(short)] == short:
                raise RuntimeError(f"validation streams {short} and {long}: one key extends the other, so their "
                                   "blocks would share seeds")  # fmt: skip
        self._keys.add(key)
        return np.random.SeedSequence(self.budget.seed, spawn_key=key)

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


def _parameters(problem: Problem) -> tuple:
    """What tells apart the problems of one validation (one Σ): η, μ, the delay and the data law."""
    return problem.eta, problem.mu, problem.delay.spec, problem.distribution.spec

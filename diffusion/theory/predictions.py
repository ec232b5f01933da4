"""``predict(problem)``: every number the toolkit claims, from the derived limits and the exact
finite-η, finite-τ linear theory, in one result object.

The symbolic stage (:mod:`amsgd.derivations`) derives the OU limits, the stationary error and the
phase formulas; here they are evaluated at the problem's spectrum, η, μ and delay, and the linear
modes at e_1 (restoring rates ``a_i``, noise variances ``s_i²``) feed the exact theory of
:mod:`.error_floor`, :mod:`.stability` and :mod:`.tradeoff`. Every part is computed on first use,
so asking for one number does not pay for the others, and :meth:`Predictions.at` re-predicts at
another (η, μ, delay) without deriving again (the modes do not depend on them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property

import numpy as np

from amsgd.core import checks
from amsgd.core.errors import ProblemError
from amsgd.core.problem import Problem
from amsgd.derivations.delay_stability import a as rate_symbol
from amsgd.derivations.derivation import Derivation, derive
from amsgd.derivations.recursion import eta as eta_symbol
from amsgd.derivations.recursion import mu as mu_symbol
from amsgd.diffusion.theory.conditions import DelayConditions, delay_conditions, ode_bound
from amsgd.diffusion.theory.coupling import coefficients_for
from amsgd.diffusion.theory.delay_family import FamilyBoundary, family_boundary
from amsgd.diffusion.theory.divergence import DivergenceRisk, divergence_risk
from amsgd.diffusion.theory.error_floor import FloorResult, linearized_floor
from amsgd.diffusion.theory.heavy_tails import heavy_tail_factor
from amsgd.diffusion.theory.linear_recursion import DelayLaw, delay_law
from amsgd.diffusion.theory.modes import (
    OptimumModes,
    PointValues,
    diffusion_floor,
    optimum_modes,
    point_values,
)
from amsgd.diffusion.theory.noise_to_signal import NoiseToSignalValues, noise_to_signal_values
from amsgd.diffusion.theory.options import SCALING_MUS, PredictOptions
from amsgd.diffusion.theory.phases import Phases, phases
from amsgd.diffusion.theory.report import predictions_dict
from amsgd.diffusion.theory.sdde_floor import SDDEFloor, sdde_floor
from amsgd.diffusion.theory.second_moments import (
    Coefficients,
    FiniteEtaFloor,
    MeanSquare,
    mean_square,
    second_moment_operator_radius,
    stationary_floor,
)
from amsgd.diffusion.theory.second_moments import mean_square_stable as is_mean_square_stable
from amsgd.diffusion.theory.stability import (
    StabilityReport,
    critical_delay,
    largest_stable_delay,
    stability_report,
)
from amsgd.diffusion.theory.tradeoff import TradeoffResult, tradeoff


@dataclass(frozen=True)
class DelayBoundary:
    """The stable region in (μ, τ) at one η: per momentum the exact largest stable delay τ*, the
    delay-differential boundary ``π (1 − μ)/(2 a_max η)`` and the published sufficient condition."""

    mus: np.ndarray
    tau_max: np.ndarray  # −1 where no delay is stable
    delay_differential: np.ndarray
    paper_ode_bound: np.ndarray
    gamma: float


@dataclass(frozen=True, eq=False)
class Predictions:
    """The predictions for one problem; each part is computed on first use.

    ``modes`` are the linear modes at e_1 and ``options`` the :class:`PredictOptions` (δ², ε, γ, the
    tradeoff grid, the run length of the divergence risk). ``given_derivation`` is the symbolic
    derivation (the property ``derivation`` derives it on first use where none was given), and
    ``given_coefficients`` likewise the random coefficients at e_1 (``coefficients``).
    """

    problem: Problem
    modes: OptimumModes
    options: PredictOptions = field(default_factory=PredictOptions)
    given_derivation: Derivation | None = field(default=None, repr=False)
    given_coefficients: Coefficients | None = field(default=None, repr=False)

    def __getstate__(self) -> dict:
        """Pickled as its fields: the parts computed so far hold local functions (of the derivation, of
        the formula texts), which pickle cannot take; they are computed again, the same, on use."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @cached_property
    def derivation(self) -> Derivation:
        return self.given_derivation or derive(self.problem)

    def at(self, **changes) -> Predictions:
        """The predictions for this problem with ``eta``, ``mu``, ``delay`` (or ``distribution`` or
        ``covariance``) changed, checked as :func:`predict` checks a problem (a delay or a distribution
        may be given as :class:`~amsgd.core.problem.Problem` takes it: a spec, or an integer τ).

        The modes and the random coefficients are reused unless the distribution or Σ changes (they
        depend on Σ and the data law only); a derivation given on a route is taken again on that route.
        """
        problem = self.problem.replace(**changes)
        route = self.given_derivation.route if self.given_derivation is not None else None
        if "distribution" in changes or "covariance" in changes:
            return predict(problem, self.options, route=route)
        problem.require_resolvable_step()
        derivation = derive(problem, route) if route is not None else None  # derived lazily, when a part asks
        return Predictions(problem, self.modes, self.options, derivation, given_coefficients=self.coefficients)

    @cached_property
    def points(self) -> tuple[PointValues, ...]:
        """The OU limit at every stationary point, evaluated."""
        return point_values(self.derivation)

    @cached_property
    def diffusion_floor(self) -> float:
        """The leading-order stationary error ``E sin²`` of the diffusion limit (its derived formula)."""
        return diffusion_floor(self.derivation)

    @cached_property
    def delay_law(self) -> DelayLaw:
        """The delay law the linear theory uses: the problem's, or for the event-driven server its
        stationary staleness law taken as i.i.d. (an approximation, stated in the JSON)."""
        return delay_law(self.problem.delay, as_iid=True)

    @cached_property
    def coefficients(self) -> Coefficients:
        """The random coefficients of the linearisation at e_1: rates, couplings, additive noise."""
        return self.given_coefficients or coefficients_for(self.problem)

    @cached_property
    def linearized(self) -> FloorResult:
        """The exact floor of the additive linear theory at the problem's η, μ and delay."""
        return linearized_floor(self.modes.rates, self.modes.noise_variances, self.problem.eta, self.problem.mu,
                                self.delay_law)  # fmt: skip

    @cached_property
    def finite_eta(self) -> FiniteEtaFloor:
        """The finite-η floor with multiplicative noise and the curvature of sin² (:mod:`.second_moments`),
        for Student-t data under the heavy-tailed law of the ratios (:mod:`.heavy_tails`); none
        (:meth:`~.second_moments.FiniteEtaFloor.without_stationary_law`) where the whole linearisation,
        the radial mode included, is not mean-square stable at the problem's delay, though the tangent
        block alone would give a number."""
        c, p = self.coefficients, self.problem
        floor = stationary_floor(c, p.eta, p.mu, self.delay_law, self.mean_square_stable)
        slowest = self.stability.spectral_radii[self.slowest_error_mode()[0]]  # the tangent modes' largest radius
        factor = heavy_tail_factor(p.distribution, c.rates[c.tangent], floor.variances, p.eta, p.mu, self.delay_law,
                                   slowest)  # fmt: skip
        return floor.with_heavy_tail(factor)  # unchanged without a factor or a stationary law

    @property
    def delay_time(self) -> float:
        """``s = τ η`` of the problem's delay (for a random delay, its mean times η)."""
        fixed = self.problem.delay.fixed_delay
        return self.problem.eta * (fixed if fixed is not None else self.delay_law.mean)

    @cached_property
    def sdde(self) -> SDDEFloor:
        """The floor of the finite-delay (SDDE) limit at ``s = τ η`` (:mod:`.sdde_floor`); for a random
        delay, the distributed-delay equation over its law (:mod:`.distributed_delay`). A constant delay
        needs no delay law: its floor is given beyond the lags the discrete theory's numerics take."""
        constant = self.problem.delay.fixed_delay is not None or self.delay_law.constant is not None
        return sdde_floor(self.modes.rates, self.modes.noise_variances, self.problem.eta, self.problem.mu,
                          self.delay_time, None if constant else self.delay_law.pmf)  # fmt: skip

    @cached_property
    def noise_to_signal(self) -> NoiseToSignalValues:
        """The noise-to-signal ratio N/G at the limit's and the algorithm's stationary law (:mod:`.noise_to_signal`)."""
        return noise_to_signal_values(self)

    @cached_property
    def stability(self) -> StabilityReport:
        """Stability of the mean of every mode at the problem's delay, and τ*."""
        return stability_report(self.modes.rates, self.problem.eta, self.problem.mu, self.delay_law)

    @cached_property
    def mean_square(self) -> MeanSquare:
        """Mean-square stability of the random-coefficient linearisation (every mode, radial included)."""
        c, p = self.coefficients, self.problem
        return mean_square(c, p.eta, p.mu, self.delay_law, critical_delay(c.rates, p.eta, p.mu), self.operator_radius,
                           self.mean_square_stable)  # fmt: skip

    @cached_property
    def mean_square_stable(self) -> bool:
        """Whether the whole linearisation is mean-square stable at the problem's delay (the verdict of
        :attr:`mean_square`, shared with :attr:`finite_eta`; :func:`.second_moments.mean_square_stable`,
        without the search for the radius or τ*)."""
        return is_mean_square_stable(self.coefficients, self.problem.eta, self.problem.mu, self.delay_law)

    @cached_property
    def operator_radius(self) -> tuple[float, int]:
        """The spectral radius of the whole linearisation's second-moment operator at the problem's delay and
        the mode that sets it (:attr:`mean_square`)."""
        return second_moment_operator_radius(self.coefficients, self.problem.eta, self.problem.mu, self.delay_law)

    @cached_property
    def family_boundary(self) -> FamilyBoundary | None:
        """The largest mean-square-stable member of a random delay's family (None for a constant delay)."""
        return family_boundary(self.coefficients, self.problem.eta, self.problem.mu, self.problem.delay)

    @property
    def tau_max(self) -> int | None:
        """τ*: the largest stable constant delay at the problem's η and μ (None: not even τ = 0)."""
        return largest_stable_delay(self.modes.rates, self.problem.eta, self.problem.mu)

    def limiting_mode(self) -> dict:
        """The mode (number, kind, rate) that sets τ*: the one with the smallest critical delay."""
        tau_c = critical_delay(self.modes.rates, self.problem.eta, self.problem.mu)
        return self.modes.describe(int(np.argmin(tau_c)))

    def slowest_error_mode(self) -> tuple[int, float]:
        """The tangent mode (index into ``modes``) whose mean decays slowest at the problem's delay,
        and its rate ``−log ρ`` per iteration: the local rate of the error sin²."""
        radii = np.array(self.stability.spectral_radii)
        index = max(self.modes.tangent, key=lambda k: radii[k])
        return index, float(-np.log(radii[index]))

    def ou_rate(self, index: int) -> float:
        """The diffusion limit's rate ``η a/(1 − μ)`` of mode ``index`` (0 the radial mode, then the
        tangent ones, as in ``modes``), per iteration (delay-free)."""
        if not (checks.is_whole_number(index) and 0 <= index < len(self.modes.rates)):
            raise ProblemError(f"mode index must be 0 … {len(self.modes.rates) - 1}; got {index!r}")
        return self.problem.eta * float(self.modes.rates[index]) / (1 - self.problem.mu)

    def tau_max_delay_differential(self, mu: float | None = None) -> float:
        """``π (1 − μ)/(2 a η)`` for the fastest mode: the delay-differential limit's largest stable delay
        (at the problem's μ, or at ``mu`` in [0, 1))."""
        if mu is not None:
            number = checks.is_number(mu) or (isinstance(mu, np.ndarray) and mu.ndim == 0 and mu.dtype.kind in "fiu")
            if not (number and 0 <= mu < 1):
                raise ProblemError(f"mu must lie in [0, 1), got {mu!r}")
            mu = float(mu)
        formula = self.derivation.delay_differential.critical_delay
        values = {rate_symbol: float(self.modes.rates.max()), eta_symbol: self.problem.eta,
                  mu_symbol: self.problem.mu if mu is None else mu}  # fmt: skip
        return float(formula.subs(values))

    @cached_property
    def divergence(self) -> DivergenceRisk:
        """The expected fraction of runs of ``options.steps`` iterations that blow up (:mod:`.divergence`)."""
        radius = float(np.max(self.stability.spectral_radii))
        return divergence_risk(self.problem, self.delay_law, self.options.steps, radius < 1.0, self.mean_square.stable,
                               relaxation=1.0 / (1.0 - radius) if radius < 1.0 else float("inf"))  # fmt: skip

    @cached_property
    def phases(self) -> Phases:
        """The three phases from the worst saddle; their convergence law takes the tangent modes' stationary
        variances from :attr:`finite_eta` (computed once, when first needed). Without mean-square
        stability at e_1 there is no phase III (:attr:`.phases.Phases.converges`). A given ε is checked
        against the finite-η floor too, and the default ε set from both floors."""
        return phases(self.derivation, self.points, self.diffusion_floor, self.options.delta_sq, self.options.epsilon,
                      lambda: self.finite_eta.variances, self.mean_square.stable,
                      lambda: self.finite_eta.value, self.stability.stable)  # fmt: skip

    @cached_property
    def tradeoff(self) -> TradeoffResult:
        """Floor, local rate and stability over momenta × round-robin workers (τ = M − 1); refused where a
        momentum of the table leaves a step too small to resolve (checked here, not in :func:`predict`:
        the other sections do not read these momenta)."""
        self.problem.require_resolvable_momenta(self.options.tradeoff_mus, "tradeoff momenta (--tradeoff-mu)")
        return tradeoff(self.coefficients, self.problem.eta, self.options.tradeoff_mus,
                        np.asarray(self.options.tradeoff_workers))  # fmt: skip

    @cached_property
    def delay_conditions(self) -> DelayConditions:
        return delay_conditions(self.problem, self.options.gamma)

    @cached_property
    def tau_scaling(self) -> dict:
        """τ* over the momenta of the published experiment, its fitted power of 1 − μ, and the
        published sufficient condition (1 − μ)²/(λ_1 η^{1−γ}) at the same momenta."""
        boundary = self.delay_boundary(SCALING_MUS)
        tau_max = [None if t < 0 else int(t) for t in boundary.tau_max]
        usable = [(m, t) for m, t in zip(SCALING_MUS, tau_max) if t]
        exponent = None
        if len(usable) >= 2:
            x = np.log([1 - m for m, _ in usable])
            y = np.log([float(t) for _, t in usable])  # τ* may exceed int64 at a tiny η
            exponent = float(np.polyfit(x, y, 1)[0])
        return {
            "mu": list(SCALING_MUS),
            "tau_max": tau_max,
            "tau_max_delay_differential": boundary.delay_differential.tolist(),
            "paper_ode_bound": boundary.paper_ode_bound.tolist(),
            "fitted_exponent": exponent,
            "paper_exponent": 2,
        }

    def delay_boundary(self, mus) -> DelayBoundary:
        """The stable region in (μ, τ) at the problem's η over the momenta ``mus`` (one or a list, in [0, 1))."""
        mus = np.atleast_1d(checks.real_array("mus (the momenta)", mus))
        if mus.ndim != 1 or mus.size == 0 or not np.all((mus >= 0) & (mus < 1)):
            raise ProblemError(f"mus (the momenta) must be one momentum or a list of them in [0, 1), got {mus.tolist()}")
        tau_max = [largest_stable_delay(self.modes.rates, self.problem.eta, m) for m in mus]
        gamma = self.options.gamma
        return DelayBoundary(
            mus,
            np.array([-1 if t is None else t for t in tau_max]),
            np.array([self.tau_max_delay_differential(m) for m in mus]),
            np.array([ode_bound(self.problem, gamma, m) for m in mus]),
            gamma,
        )

    def to_dict(self, sections: Sequence[str] | None = None) -> dict:
        """The JSON document of ``amsgd derive``: formulas and their numbers. ``sections`` names the
        parts to compute (:data:`.sections.PCA_SECTIONS`, e.g. ``["stability"]``; all by default): the
        others are left out, and their work is not done (the sampled phase laws take seconds)."""
        return predictions_dict(self, sections)

    def document(self, fmt: str) -> str:
        """The derivation as a Markdown (``"markdown"``) or LaTeX (``"latex"``) document with these numbers."""
        from amsgd.derivations.document import render

        numbers = {**self.to_dict(), "optimum_modes": self.modes.to_dict()}
        return render(self.derivation, fmt, numbers)


def predict(
    problem: Problem, options: PredictOptions | None = None, *, modes: OptimumModes | None = None,
    route: str | None = None,
) -> Predictions:
    """The predictions for ``problem``: ``to_dict()`` has ``stationary_error``, ``stability``,
    ``phases`` and ``tradeoff`` (and the derived limits they come from).

    ``options`` (a :class:`PredictOptions`; its defaults where None) sets what ``derive``'s
    ``--delta-sq``, ``--epsilon``, ``--gamma``, ``--tradeoff-mu``, ``--tradeoff-workers`` and ``--steps`` set
    on the command line. ``modes`` skips the derivation of the linear modes at e_1 when they are known (they depend on Σ
    and the data law only); parts that need formulas still derive them when asked. ``route`` chooses
    the derivation's route (:func:`amsgd.derivations.derive`; indexed by default).
    """
    if not isinstance(problem, Problem):
        raise ProblemError(f"predict needs a Problem (a model: predict_model), got {type(problem).__name__}")
    if options is None:
        options = PredictOptions()
    elif not isinstance(options, PredictOptions):
        raise ProblemError(f"predict's options must be a PredictOptions, got {type(options).__name__}")
    if min(options.tradeoff_mus) < 0:
        raise ProblemError(f"tradeoff momenta must lie in [0, 1) for streaming PCA (negative momentum is for the "
                           f"other models), got {list(options.tradeoff_mus)}")  # fmt: skip
    problem.require_eigengap()
    problem.require_resolvable_step()
    if modes is not None:
        return Predictions(problem, modes, options)
    derivation = derive(problem, route)
    return Predictions(problem, optimum_modes(derivation), options, derivation)


def modes_at_optimum(problem: Problem, route: str | None = None) -> OptimumModes:
    """The linear modes at e_1 of ``problem``, to pass to :func:`predict` as ``modes``: they depend
    on Σ and the data law only, not on η, μ or the delay (so any step size will do here)."""
    problem.require_eigengap()
    return optimum_modes(derive(problem, route))



"""The three phases from the saddle e_2 evaluated for a problem (formulas in
:mod:`amsgd.derivations.phases`), and the escape, travel and convergence of single runs.

Two different numbers answer "how long is the escape": the time at which the *mean* of h_1² over
runs crosses δ² (the diffusion limit's formula, ``mean_curve``), and the mean over runs of each run's
first passage (``escape_iterations``, with its law: :mod:`.first_passage`). The second is later: a run
starts from noise. Travel has two: the ODE's, the same for every run (``mean_curve``, the diffusion
limit's), and the mean over runs of each run's travel (``travel_iterations``, with its law:
:mod:`.travel_law`), longer where the other coordinates' fluctuations count in the error. Convergence
too has two: the crossing of the mean error curve (``mean_curve``, the diffusion limit's formula) and
the mean over runs of each run's first passage below ε after its arrival (``converge_iterations``,
with its law, from the same runs as the travel's): a run arrives moving and its error fluctuates
about the floor, so it crosses ε on a dip, soon after it arrives; the law is wide, its median well
before the mean curve's crossing. A stationary window should start when the mean error over runs
from the saddle has settled at ε (``settled_iterations``, from the runs of :mod:`.travel_law`
averaged per iteration), not at a run's first dip: runs escape at widely spread times, so the mean
settles later than the sum of the means of the phases, and later than the sum of the limit's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import sympy as sp

from amsgd.core.delays import DelayModel
from amsgd.core.errors import ProblemError
from amsgd.core.estimates import json_float
from amsgd.core.problem import Problem
from amsgd.core.threads import thread_map
from amsgd.derivations import phases as ph
from amsgd.derivations.derivation import Derivation
from amsgd.derivations.recursion import eta, mu
from amsgd.diffusion.theory.first_passage import (
    CURVE_PATH_STEPS,
    CURVE_PATHS,
    ESCAPE_PATHS,
    MAX_ITERATIONS,
    PATHS,
    REACH,
    ConvergeLaw,
    CurveCrossing,
    EscapeNoise,
    EscapeRecursion,
    FirstPassageLaw,
    SaddleOthers,
    converge_law,
    converge_start,
    curve_crossing,
    escape_recursion,
    iterations_for,
    passage_law,
    paths_for,
    ratio_rates,
)
from amsgd.diffusion.theory.linear_recursion import delay_law
from amsgd.diffusion.theory.modes import ModeValues, PointValues, evaluate
from amsgd.diffusion.theory.options import default_epsilon
from amsgd.diffusion.theory.transient import variance_crossing
from amsgd.diffusion.theory.travel_law import (
    MAX_UNARRIVED,
    NO_ARRIVAL_FLOOR,
    TRAVEL_REACH,
    PlaneModel,
    SaddleRuns,
    mean_error_curve,
    saddle_runs,
)

#: What the numbers of ``phases`` are (its JSON note).
PHASES_NOTE = (
    "escape_iterations is the mean over runs of each run's first passage of h_1^2/|h|^2 >= delta^2 "
    "(escape_law: its law); mean_curve.escape_iterations is when the mean of h_1^2 over runs "
    "crosses delta^2 (the diffusion limit), an earlier and different number; "
    "mean_curve.escape_iterations_saturated is that crossing at the problem's eta, mu and delay from the "
    "escape law's own paths, each run's h_1^2/|h|^2 saturating below 1 (escape_iterations_linearized, "
    "from the linear variance, leaves that out and is early); travel_iterations is "
    "the mean over runs of each run's iterations from its escape to its first error <= delta^2 "
    "(travel_law: its law, from the plane's angle and the other coordinates' fluctuations), "
    "mean_curve.travel_iterations the ODE's travel; converge_iterations is the mean over runs of "
    "each run's iterations from its arrival to its first error <= epsilon (converge_law: its law, "
    "from the same runs, the other coordinates' noise at e_1 that of converge_noise), a different "
    "number from "
    "mean_curve.converge_iterations (and converge_time, in diffusion time), when the mean error "
    "curve crosses epsilon; "
    "total_iterations adds the per-run means (where epsilon >= delta^2 a run's error first reaches epsilon on its "
    "travel, and the total is the escape's mean and the mean from a run's escape to that passage); "
    "settled_iterations is when the mean error over runs from "
    "the saddle reaches epsilon (later than total_iterations: runs escape at widely spread times, and the "
    "mean waits for the slow ones; where a stationary window should start)"
)
#: What phase III and the totals report per run (null without convergence), in JSON order.
_PHASE_THREE_KEYS = ("converge_time", "converge_iterations", "converge_law", "converge_noise", "total_iterations",
                     "settled_iterations")  # fmt: skip
#: The escape law's quantiles the mean curve's paths are followed to, the second where the mean has not
#: reached δ² by the first (:attr:`Phases.escape_curve`): it usually crosses before half the runs escape.
CURVE_REACH = (0.5, 0.95)
#: The mean error curve of :attr:`Phases.settled_curve`: its runs are followed to SETTLED_REACH times the
#: iteration by which all but SETTLED_SHARE of the sampled runs have first reached ε (the mean reaches ε
#: about when all but a share ε − F of them have, F the floor), on SETTLED_PATH_STEPS path-steps (a
#: path-step per coordinate and iteration) or those of the runs to their own passages, whichever is
#: more (where the latter are few, in many dimensions, the curve costs at most as much as they did),
#: with at least SETTLED_MIN_PATHS paths.
SETTLED_SHARE = 1e-3
SETTLED_REACH = 1.25
SETTLED_PATH_STEPS = 20_000_000
SETTLED_MIN_PATHS = 50
#: Why a problem that is not mean-square stable at e_1 has no phase III (prefixed to the note).
NO_CONVERGENCE = (
    "no convergence phase: the iteration is not mean-square stable at e_1 at this eta, mu and delay "
    "(stability.mean_square), so the error has no floor to settle at and epsilon, phase III and the "
    "totals are null; escape and travel are those of the dynamics from e_2"
)

#: Why the travel's law is null beyond the mean boundary (prefixed to the note).
BEYOND_MEAN = (
    "travel_law is null: beyond the mean-dynamics boundary (stability.tau_max) the norm of v, which the travel's "
    "reduced model leaves out, oscillates with growing amplitude, and runs blow up or saturate "
    "(stability.divergence_risk) rather than travel; the escape law holds"
)
#: Why the travel's and the convergence's laws are null where the floor is at or above δ².
NO_ARRIVAL = "; travel_law, converge_law and the totals are null: the diffusion floor {floor:.3g} is {why}"
UNARRIVED = (
    "at or above delta^2, where a run's error reaches delta^2 only on a dip, and {unarrived} of the {escaped} "
    "sampled runs that escaped had not within the {iterations} iterations followed{given_up} (a larger "
    "--delta-sq, below 1/2, gives a travel)"
)
GAVE_UP = (
    f", more than {MAX_UNARRIVED:.0%} of all {{paths}} paths, which decides it: the sampling stopped after "
    "the first {followed}"
)
FAR_FLOOR = f"at or above {NO_ARRIVAL_FLOOR:g}: the error stays far from e_1, and the arrivals are not followed"
#: Added to FAR_FLOOR where the diffusion floor is not below 1, the largest error there is.
OUTSIDE_RANGE = " (a floor of 1 or more is outside the range of sin^2: the diffusion limit does not hold here)"
#: How far the diffusion limit's escape (the mean curve's crossing) may lie from the finite-η crossing
#: (the escape law's own mean curve's, else the exact linear escaping mode's), in e-folding times
#: ``(1 − μ)/(η |a|)`` of the limit's escaping mode: a quarter, a factor
#: e^(1/2) in amplitude (the limit fixes the growth rate, the starting amplitude only to
#: ``1 + O(η |a|/(1 − μ)²)``). Beyond it the limit is outside its range, and ``mean_curve`` says so.
LIMIT_ESCAPE_TOLERANCE = 0.25
LIMIT_ESCAPE_NOTE = (
    "the diffusion limit's escape_iterations lies {gap:.0f} iterations ({share:.0%}) from {reference}, "
    "more than {tolerance:.0f} (a quarter of the limit's e-folding time): the limit leaves out {delay}the "
    "momentum's build-up over about mu/(1-mu) = {lag:.0f} iterations and the finite step's slower growth, "
    "of relative order eta |a|/(1-mu)^2 = {order:.3g}{saturation}; {name} holds here{caveat}"
)
#: The crossings :attr:`Phases.limit_escape_note` measures the limit's against: how the note names each, and
#: what it adds to the limit's omissions.
_LIMIT_REFERENCES = {
    "escape_iterations_saturated": ("the escape law's own mean curve's escape_iterations_saturated",
                                    ", and each run's share of the norm saturating below 1"),
    "escape_iterations_linearized": ("the exact linear escaping mode's escape_iterations_linearized", ""),
}
#: Where the saddle's other coordinates have no stationary second moments (``phases.escape_law_note``).
SADDLE_UNSTABLE_NOTE = (
    "the other coordinates at the saddle are mean-square unstable in its linearisation (their multiplicative "
    "noise outgrows their restoring rates): their share S of |h|^2 grows until the law's schedule holds it, "
    "while in runs it grows on, so the law is early (eta 5e-4, mu 0.9: by 4% on the eigenvalues 0.99^i, "
    "d = 4, and 25% at the median on 0.995^i, d = 1000)"
)
#: Above this δ² the escape law's level lies where its linearisation of the ratio's noise about 0 falls
#: short (``phases.escape_law_note``).
LARGE_DELTA_SQ = 0.15
LARGE_DELTA_NOTE = (
    "delta_sq {delta_sq:g} puts the escape's level at a ratio h_1/h_2 near {ratio:.2g}, where the ratio's "
    "noise and rate correction, linearised about 0, grow with it: the law is late there (on the default problem "
    "against 8000 runs: 2% at delta_sq 0.2, 3-4% from 0.3 to 0.49, 0.0% at 0.1)"
)
#: Above this effective step ``η λ_1/(1 − μ)`` the travel's reduced model drifts from the runs (:attr:`Phases.large_step_note`).
LARGE_STEP = 0.1
LARGE_STEP_NOTE = (
    "at the effective step eta lambda_1/(1-mu) = {step:.3g}, above {limit:g}, the travel's reduced model (the "
    "plane's angle and the other coordinates, linear about the current point) drifts from the runs: on "
    "Sigma = diag(4, 3, 2, 1) against 4000 runs its travel was 11% long at 0.2 (mu 0.99) and 14% at 0.13 "
    "(eta 1e-2, mu 0.7), 2-3% at 0.08-0.1, and the escape law 2-5% early"
)
#: What the mean curve's crossing from the escape law's paths inherits at a large δ² (its paths are the law's).
LARGE_DELTA_CAVEAT = (
    ", though at this delta_sq it inherits the escape law's lateness (escape_law_note: on the default problem at "
    "delta_sq 0.49, 500 against 474.5 [469.7, 479.6] from 8000 runs)"
)
#: Why a per-run law is null, or partly unfinished, and why ``settled_iterations`` is (appended to the note).
NOT_SAMPLED = (
    "; a per-run law that is null was not sampled: the mean curve crosses beyond "
    f"{REACH * MAX_ITERATIONS:.0f} iterations, where no sampled run would finish within the "
    f"{MAX_ITERATIONS} followed (the mean curve's numbers stand)"
)
NONE_FINISHED = (
    "; {name} is null: none of its {paths} sampled paths got there within the {followed} iterations followed "
    "(the mean curve's numbers stand)"
)
UNFINISHED = (
    "; {name}: {unfinished} of its {paths} sampled paths had not got there within the {followed} iterations "
    "followed, so its mean is that of the others, a lower bound, and a quantile among the unfinished is null"
)
UNSETTLED = "; settled_iterations is null: the mean error of the sampled runs had not reached epsilon {why}"


@dataclass(frozen=True)
class Phases:
    """Phase durations: per run (``escape_law``, ``travel_law``, ``converge_law``) and for the mean curve
    in diffusion time (iterations = time/η), from the diffusion limits.

    ``tangent_rates`` and ``tangent_noise`` are ``(a_i, s_i²)`` of the tangent modes i = 2 .. d at e_1
    before the time scaling (additive noise), ``saddle_modes`` the same of the coordinates i ≠ j at the
    worst saddle e_j (the escaping one first: its rate is negative); ``problem`` gives the finite-η stationary variances the
    convergence law is calibrated to, unless ``tangent_variances`` returns them (computed elsewhere for
    the same problem, e.g. :attr:`.predictions.Predictions.finite_eta`): it is called on first use only."""

    delta_sq: float
    epsilon: float
    worst_saddle: int
    escape_time: float  # the mean curve's crossing (diffusion limit)
    travel_time: float
    converge_time: float
    eta: float
    escaping_mode: tuple[float, float]  # (a, s²) of the escaping mode before the time scaling
    delay: DelayModel
    mu: float
    escape_iterations_linearized: int | None = None
    tangent_rates: tuple[float, ...] = ()
    tangent_noise: tuple[float, ...] = ()
    problem: Problem | None = field(default=None, repr=False, compare=False)
    tangent_variances: Callable[[], Sequence[float]] | None = field(default=None, repr=False, compare=False)
    converges: bool = True  # False: not mean-square stable at e_1, so no floor and no phase III
    saddle_modes: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())
    floor: float = math.nan  # the diffusion floor the phases were built with (the default ε: options.default_epsilon)
    mean_stable: bool = True  # False: the mean dynamics at e_1 is unstable (beyond τ*), the travel law not given

    @property
    def _escape_followed(self) -> int:
        """The iterations the escape law's paths are followed (0: not sampled, :func:`.first_passage.iterations_for`)."""
        return iterations_for(self.escape_time / self.eta)

    @cached_property
    def _escape_recursion(self) -> EscapeRecursion:
        """The escape's linear recursion (:func:`.first_passage.escape_recursion`), built on first use."""
        rate, noise = self.escaping_mode
        return escape_recursion(rate, noise, self.eta, self.mu, self.delay, self.delta_sq, self._escape_followed,
                                self.escape_coupling, self._escape_noise(), self.saddle_others)  # fmt: skip

    @cached_property
    def escape_law(self) -> FirstPassageLaw:
        """The law of one run's escape (:func:`.first_passage.escape_law`), sampled on first use."""
        paths = paths_for(self.escape_time / self.eta, ESCAPE_PATHS)
        return passage_law(self._escape_recursion, paths, self._escape_followed)

    @cached_property
    def escape_curve(self) -> CurveCrossing | None:
        """The mean curve of single runs (:func:`.first_passage.curve_crossing`), its paths followed to the
        escape law's median, or where the mean has not reached δ² by then to its 95th percentile; None
        where more than 5% of the law's paths had not escaped."""
        ordered = np.sort(np.where(np.isnan(self.escape_law.samples), np.inf, self.escape_law.samples))
        crossing = None
        for q in CURVE_REACH:  # the empirical quantile, unfinished paths counted as never passing
            reach = float(ordered[max(math.ceil(q * ordered.size), 1) - 1]) if ordered.size else math.inf
            if not math.isfinite(reach):
                return crossing
            horizon = math.ceil(reach) + 1
            paths = paths_for(horizon / 3.0, CURVE_PATHS, CURVE_PATH_STEPS)  # each path runs the whole horizon
            crossing = curve_crossing(self._escape_recursion, self.delta_sq, paths, horizon)
            if crossing.iterations is not None:
                break
        return crossing

    @cached_property
    def saddle_others(self) -> SaddleOthers | None:
        """The coordinates i ∉ {1, j} at the worst saddle e_j (:func:`.first_passage.escape_schedule`): their
        rates and noise variances there, their noise ``E[Y_1² Y_i²]`` at e_1 (the cross moment with the
        escaping coordinate) and, with a problem, their multiplicative noise ``Var A_il`` there
        (:func:`.coupling.saddle_coupling`); None without them. Computed once: the escape law and
        :attr:`saddle_note` both use it."""
        rates, noise = (np.array(v) for v in self.saddle_modes)
        if rates.size < 2 or len(self.tangent_noise) == 0:
            return None
        at_saddle, at_optimum = self._other_coordinates()
        coupling = None
        if self.problem is not None:
            from amsgd.diffusion.theory.coupling import saddle_coupling

            coupling = saddle_coupling(self.problem, self.worst_saddle, [i + 2 for i in at_optimum])
        return SaddleOthers(rates[at_saddle], noise[at_saddle], np.array(self.tangent_noise)[at_optimum], coupling)

    def _other_coordinates(self) -> tuple[list[int], list[int]]:
        """Where the coordinates i ∉ {1, j} (j the worst saddle) sit in the saddle's arrays (which skip
        coordinate j and hold coordinate 1 first) and among the tangent modes at e_1 (coordinates 2 .. d)."""
        j = self.worst_saddle
        others = [i for i in range(2, len(self.tangent_rates) + 2) if i != j]  # 1-based
        return [i - 1 if i < j else i - 2 for i in others], [i - 2 for i in others]

    @cached_property
    def escape_coupling(self) -> float:
        """``Var A`` of the escaping mode's multiplicative noise at the worst saddle (0 without a problem)."""
        from amsgd.diffusion.theory.coupling import escape_coupling

        return 0.0 if self.problem is None else escape_coupling(self.problem, self.worst_saddle)

    def _escape_noise(self) -> EscapeNoise | None:
        """How the escape law draws its noise from the data law (:func:`.coupling.escape_noise`; None
        without a problem: Gaussian stand-ins)."""
        from amsgd.diffusion.theory.coupling import escape_noise

        return None if self.problem is None else escape_noise(self.problem, self.worst_saddle)

    @property
    def escape_iterations(self) -> float:
        """The mean over runs of the escape's first passage."""
        return self.escape_law.mean.mean

    @cached_property
    def _plane_model(self) -> PlaneModel:
        """The reduced model of runs from the worst saddle (:mod:`.travel_law`)."""
        rates, noise = (np.array(v) for v in self.saddle_modes)
        if rates.size == 0 or len(self.tangent_rates) == 0:
            raise ProblemError("these phases carry no modes at the saddle and e_1; build them with phases(...)")
        j = self.worst_saddle
        optimum_rates = np.array(self.tangent_rates)
        optimum_noise = self._calibrated if self._calibrated is not None else np.array(self.tangent_noise)
        at_saddle, at_optimum = self._other_coordinates()
        return PlaneModel(
            optimum_rates[j - 2], noise[0], self.escape_coupling,
            np.stack([rates[at_saddle], optimum_rates[at_optimum]], axis=1),
            np.stack([noise[at_saddle], optimum_noise[at_optimum]], axis=1),
        )  # fmt: skip

    @cached_property
    def saddle_runs(self) -> SaddleRuns:
        """Runs of the reduced model from the saddle (:mod:`.travel_law`), followed to ε where the
        iteration converges (on the travel where ε >= δ²); sampled on first use."""
        model = self._plane_model
        below = not self._floor_at_least(self.delta_sq)
        arrive = not self._floor_at_least(NO_ARRIVAL_FLOOR)
        epsilon = self.epsilon if self.converges and arrive else None
        expected = (self.escape_time + self.travel_time + (self.converge_time if epsilon else 0.0)) / self.eta
        paths = paths_for(expected * (model.rates.shape[0] + 1))
        # at or above δ², more than MAX_UNARRIVED of all paths unarrived decides :attr:`arrives`: give up there
        give_up = None if below else math.floor(MAX_UNARRIVED * paths)
        return saddle_runs(model, self.eta, self.mu, self.delay, self.delta_sq, paths,
                           min(iterations_for(expected), int(TRAVEL_REACH * expected)), epsilon, arrive,
                           give_up)  # fmt: skip

    @cached_property
    def settled_curve(self) -> np.ndarray | None:
        """The mean error over runs from the saddle after each iteration (entry k: iteration k + 1;
        :func:`.travel_law.mean_error_curve`), followed to :data:`SETTLED_REACH` times the iteration by
        which all but :data:`SETTLED_SHARE` of the runs of :attr:`saddle_runs` have reached ε; None
        without phase III, or where more of them had not within the iterations followed."""
        if not (self.converges and self.arrives):
            return None
        runs = self.saddle_runs
        reached = runs.converged if runs.converged is not None else runs.arrival  # ε >= δ²: at the arrival
        ordered = np.sort(np.where(np.isnan(reached), np.inf, reached))
        last = ordered[min(math.ceil((1.0 - SETTLED_SHARE) * ordered.size), ordered.size) - 1]
        if not math.isfinite(last):
            return None
        horizon = min(runs.iterations, math.ceil(SETTLED_REACH * last) + 1)
        model = self._plane_model
        width = model.rates.shape[0] + 1  # the plane and the other coordinates
        followed = np.minimum(np.nan_to_num(reached, nan=runs.iterations), runs.iterations).sum()
        budget = max(SETTLED_PATH_STEPS, followed * width)
        paths = int(np.clip(budget // (horizon * width), SETTLED_MIN_PATHS, PATHS))
        return mean_error_curve(model, self.eta, self.mu, self.delay, self.delta_sq, paths, horizon)

    def _floor_at_least(self, level: float) -> bool:
        return math.isfinite(self.floor) and self.floor >= level

    @property
    def arrives(self) -> bool:
        """Whether a run's travel ends. Where the floor is at or above δ² a run's error reaches δ² only
        on a dip: the travel counts as ending when at most :data:`.travel_law.MAX_UNARRIVED` of the
        sampled runs that escaped had not reached δ² within the iterations followed (the sampled
        travel matched simulated runs at floors 0.12–0.17 against δ² = 0.1, docs/linear-theory.md),
        never where the floor is at or above :data:`.travel_law.NO_ARRIVAL_FLOOR`. The sampling gives up
        once more than that share of all its paths are unarrived, which decides it."""
        if not self._floor_at_least(self.delta_sq):
            return True
        escaped, unarrived = self.saddle_runs.unarrived
        return escaped > 0 and unarrived <= MAX_UNARRIVED * escaped  # false where the sampling gave up

    @property
    def travel_law(self) -> FirstPassageLaw:
        """The law of one run's travel, from its escape to its arrival (:mod:`.travel_law`); every
        sample NaN where the travel does not end (:attr:`arrives`), and beyond the mean boundary, where
        the norm the reduced model leaves out oscillates with growing amplitude (runs blow up or
        saturate: 37% of 1000 runs of the default problem at τ = 100 diverged within 1500 iterations,
        where the law had every run arrive)."""
        travel = self.saddle_runs.travel
        return travel if self.arrives and self.mean_stable else FirstPassageLaw(np.full(travel.samples.size, np.nan))

    @property
    def travel_iterations(self) -> float:
        """The mean over runs of the travel, from a run's escape to its arrival."""
        return self.travel_law.mean.mean

    @property
    def converge_law(self) -> FirstPassageLaw:
        """The law of one run's convergence, from its arrival to its first error ``<= ε`` (the runs of
        :attr:`saddle_runs`, which arrive moving, with the other coordinates at their fluctuations);
        every run 0 when ε >= δ² (it has converged when it arrives)."""
        runs = self.saddle_runs
        if runs.converged is None or self.epsilon >= self.delta_sq:
            return FirstPassageLaw(np.where(np.isnan(self.travel_law.samples), np.nan, 0.0))
        return runs.convergence

    @property
    def converge_noise(self) -> str:
        """How the other coordinates' noise at e_1 was chosen: ``"finite-eta"`` (calibrated to the
        finite-η stationary variances), ``"additive"``, or ``"none"`` where phase III takes no time."""
        if self.epsilon >= self.delta_sq:
            return "none"
        return "finite-eta" if self._calibrated is not None else "additive"

    @cached_property
    def converge_law_at_rest(self) -> ConvergeLaw:
        """The law of the convergence of a run *started* at the travel's end point at rest
        (:func:`.first_passage.converge_law`: the linear tangent modes, their noise calibrated to the
        finite-η stationary variances, their rates those of the ratio coordinates,
        :func:`.first_passage.ratio_rates`): slower than a run's own phase III, which starts moving."""
        noise = np.array(self.tangent_noise)
        if noise.size == 0:
            raise ProblemError("these phases carry no tangent modes at e_1; build them with phases(...)")
        rates = ratio_rates(np.array(self.tangent_rates), noise, self.eta, self.mu)
        start = converge_start(self.delta_sq, rates.size, self.worst_saddle - 2)
        expected = self.converge_time / self.eta
        paths = paths_for(expected * rates.size)  # a path-step per mode and iteration
        variances = self._stationary_variances if self.epsilon < self.delta_sq else None  # else: no time
        return converge_law(rates, noise, self.eta, self.mu, self.delay, start, self.epsilon, paths,
                            stationary_variances=variances, iterations=iterations_for(expected))  # fmt: skip

    @cached_property
    def _calibrated(self) -> np.ndarray | None:
        """The tangent modes' noise at e_1 that gives their additive linear recursion the finite-η
        stationary variances, ``v_i/G_i`` (:mod:`.second_moments`: the multiplicative noise included),
        or None where a mode has no finite gain or the finite-η theory no variances."""
        from amsgd.diffusion.theory.second_moments import gains

        variances = self._stationary_variances
        if variances is None:
            return None
        g = gains(np.array(self.tangent_rates), self.eta, self.mu, delay_law(self.delay, as_iid=True))
        return variances / g if np.all(np.isfinite(g) & (g > 0)) else None

    @cached_property
    def _stationary_variances(self) -> np.ndarray | None:
        """The finite-η theory's stationary variances of the tangent modes, multiplicative noise
        included (:mod:`.second_moments`), or None where it has none.

        Those of ``tangent_variances`` when it gives finite positive ones (the same solve of
        ``(I − diag(G) C) v = G ⊙ s``); otherwise, and without it, solved here, where the sign test of
        :func:`_tangent_variances` decides whether there are any."""
        if self.problem is None:
            return None
        try:
            if self.tangent_variances is not None:
                given = np.array(self.tangent_variances(), dtype=float)
                if np.all(np.isfinite(given)) and np.all(given > 0):
                    return given
            return _tangent_variances(self.problem)
        except (ProblemError, ArithmeticError, ValueError):
            return None

    @property
    def converge_iterations(self) -> float:
        """The mean over runs of the convergence's first passage below ε."""
        return self.converge_law.mean.mean

    @property
    def total_iterations(self) -> float:
        """Per run: the means of the escape, the travel and the convergence. Where ε >= δ² a run's error
        first reaches ε on its travel, before δ²: the escape's mean and the mean from a run's escape to
        that passage (the travel to δ² would overstate it: 380 against the runs' 346 at μ 0.95)."""
        if self.epsilon < self.delta_sq or self.saddle_runs.converged is None or not self.arrives:
            return self.escape_iterations + self.travel_iterations + self.converge_iterations
        return self.escape_iterations + self.saddle_runs.reach.mean.mean

    @property
    def settled_iterations(self) -> float:
        """When the *mean* error over runs from the saddle first reaches ε (:attr:`settled_curve`; NaN
        where it was not followed that far). Later than the mean of the runs' own first passages
        (``total_iterations``): runs escape at widely spread times, and the mean waits for the slow
        ones. A stationary window starts here, when the ensemble, not one run, is near the floor."""
        curve = self.settled_curve
        below = np.flatnonzero(curve <= self.epsilon) if curve is not None else np.zeros(0, dtype=int)
        return float(below[0] + 1) if below.size else float("nan")

    def sample(self) -> None:
        """Sample the escape law and the runs from the saddle at once, on two threads where
        ``AMSGD_THREADS`` allows (:mod:`amsgd.core.threads`): both are compiled loops that release the
        GIL, and each draws from its own seeded stream, so the laws are those of sampling one after the
        other. What both use is computed first."""
        _ = self.escape_coupling, self.saddle_others, self._calibrated
        thread_map(lambda name: getattr(self, name), ("escape_law", "saddle_runs"))

    def to_dict(self) -> dict:
        """The JSON ``phases`` object; without convergence (``converges`` false) every quantity of phase
        III, the totals and ε are null and the note says why. The laws are sampled by :meth:`sample`."""
        self.sample()
        phase_three = self._phase_three() if self.converges else dict.fromkeys(_PHASE_THREE_KEYS)
        curve = self.converge_time if self.converges else None  # the mean curve's convergence
        return {
            "delta_sq": self.delta_sq,
            "epsilon": self.epsilon if self.converges else None,
            "worst_saddle": self.worst_saddle,
            "converges": self.converges,
            "mean_stable": self.mean_stable,
            "arrives": self.arrives,
            "escape_iterations": json_float(self.escape_iterations),
            "escape_law": self.escape_law.to_dict(),
            "escape_law_note": "; ".join(filter(None, (self.saddle_note, self.large_delta_note))) or None,
            "large_step_note": self.large_step_note or None,
            "travel_iterations": json_float(self.travel_iterations),
            "travel_law": self.travel_law.to_dict(),
            **phase_three,
            "mean_curve": {
                "escape_time": self.escape_time,
                "escape_iterations": self.escape_time / self.eta,
                "escape_iterations_linearized": self.escape_iterations_linearized,
                **self._saturated_crossing(),
                "travel_time": self.travel_time,
                "travel_iterations": self.travel_time / self.eta,
                "converge_time": curve,
                "converge_iterations": None if curve is None else curve / self.eta,
                "accuracy_note": self.limit_escape_note or None,
            },
            "note": ("" if self.converges else NO_CONVERGENCE + "; ") + ("" if self.mean_stable else BEYOND_MEAN + "; ")
                    + PHASES_NOTE + self._unsampled_note(),
        }

    def _saturated_crossing(self) -> dict:
        """The escape law's mean curve in JSON: its crossing and that crossing's 95% interval (nulls where
        it was not sampled or not reached)."""
        curve = self.escape_curve
        return {"escape_iterations_saturated": None if curve is None else curve.iterations,
                "escape_iterations_saturated_interval": None if curve is None else list(curve.interval)}  # fmt: skip

    @cached_property
    def saddle_note(self) -> str:
        """:data:`SADDLE_UNSTABLE_NOTE` where the saddle's other coordinates have no stationary second
        moments in the linearisation there (a mode without a stationary law of its own, or the Perron
        root of ``diag(G) C`` at or above 1, G their stationary gains, C their ``Var A_il``), else ""."""
        from amsgd.diffusion.theory.second_moments import Coefficients, stationary_variances

        others = self.saddle_others
        if others is None or others.coupling is None:
            return ""
        stable = others.rates > 0
        at_saddle = Coefficients(others.rates[stable], others.coupling[np.ix_(stable, stable)], others.noise[stable])
        variances = stationary_variances(at_saddle, self.eta, self.mu, delay_law(self.delay, as_iid=True))
        return "" if np.all(np.isfinite(variances)) else SADDLE_UNSTABLE_NOTE

    @property
    def large_step_note(self) -> str:
        """:data:`LARGE_STEP_NOTE` where ``η λ_1/(1 − μ)`` exceeds :data:`LARGE_STEP` (λ_1 the problem's
        largest eigenvalue; "" without a problem)."""
        if self.problem is None:
            return ""
        step = self.eta * float(np.max(self.problem.eigenvalues)) / (1.0 - self.mu)
        return LARGE_STEP_NOTE.format(step=step, limit=LARGE_STEP) if step > LARGE_STEP else ""

    @property
    def large_delta_note(self) -> str:
        """:data:`LARGE_DELTA_NOTE` where δ² exceeds :data:`LARGE_DELTA_SQ`, else ""."""
        if self.delta_sq <= LARGE_DELTA_SQ:
            return ""
        return LARGE_DELTA_NOTE.format(delta_sq=self.delta_sq, ratio=math.sqrt(self.delta_sq / (1.0 - self.delta_sq)))

    @property
    def limit_escape_note(self) -> str:
        """Why the diffusion limit's escape is outside its range here ("" where it is not): the finite-η
        crossing of the mean curve lies more than :data:`LIMIT_ESCAPE_TOLERANCE` e-folding times of the
        limit's escaping mode away from the limit's crossing. That crossing is the escape law's own
        mean curve's (:attr:`escape_curve`, which carries each run's saturating share) where it was
        reached, else the exact linear escaping mode's."""
        saturated = None if self.escape_curve is None else self.escape_curve.iterations
        name, crossing = (("escape_iterations_saturated", saturated) if saturated is not None else
                          ("escape_iterations_linearized", self.escape_iterations_linearized))  # fmt: skip
        rate = abs(self.escaping_mode[0])
        if crossing is None or rate == 0.0:
            return ""
        limit = self.escape_time / self.eta
        tolerance = LIMIT_ESCAPE_TOLERANCE * (1.0 - self.mu) / (self.eta * rate)
        gap = abs(crossing - limit)
        if gap <= tolerance:
            return ""
        order = self.eta * rate / (1.0 - self.mu) ** 2
        lag = self.mu / (1.0 - self.mu)
        mean_delay = self.delay.mean
        delay = f"the delay (mean {mean_delay:.3g}), " if mean_delay > 0 else ""
        reference, saturation = _LIMIT_REFERENCES[name]
        caveat = LARGE_DELTA_CAVEAT if self.delta_sq > LARGE_DELTA_SQ and saturated is not None else ""
        return LIMIT_ESCAPE_NOTE.format(gap=gap, share=gap / limit, reference=reference, tolerance=tolerance,
                                        delay=delay, lag=lag, order=order, saturation=saturation, name=name,
                                        caveat=caveat)  # fmt: skip

    def _unsampled_note(self) -> str:
        if not self.arrives:
            runs = self.saddle_runs
            escaped, unarrived = runs.unarrived
            given_up = "" if runs.followed is None else GAVE_UP.format(paths=runs.escape.size, followed=runs.followed)
            far = FAR_FLOOR + (OUTSIDE_RANGE if self._floor_at_least(1.0) else "")
            why = (far if self._floor_at_least(NO_ARRIVAL_FLOOR) else
                   UNARRIVED.format(unarrived=unarrived, escaped=escaped, iterations=runs.iterations, given_up=given_up))
            return NO_ARRIVAL.format(floor=self.floor, why=why)
        laws = {"escape_law": self.escape_law, "travel_law": self.travel_law}
        if self.converges:
            laws["converge_law"] = self.converge_law
        notes = [self._censored_note(name, law) for name, law in laws.items()]
        if self.converges and not math.isfinite(self.settled_iterations):
            curve = self.settled_curve
            notes.append(UNSETTLED.format(why=f"within the {curve.size} iterations followed" if curve is not None else
                                          f"(more than {SETTLED_SHARE:.1%} of them had not reached it)"))  # fmt: skip
        return "".join(dict.fromkeys(notes))  # NOT_SAMPLED once

    def _censored_note(self, name: str, law: FirstPassageLaw) -> str:
        """Why a per-run law is null, or how many of its paths had not finished ("" where all had)."""
        unfinished, paths = int(np.isnan(law.samples).sum()), law.samples.size
        if unfinished == 0:
            return ""
        followed = self._escape_followed if name == "escape_law" else self.saddle_runs.iterations
        if followed == 0:
            return NOT_SAMPLED
        text = NONE_FINISHED if unfinished == paths else UNFINISHED
        return text.format(name=name, unfinished=unfinished, paths=paths, followed=followed)

    def _phase_three(self) -> dict:
        """The per-run numbers of phase III and the totals (:data:`_PHASE_THREE_KEYS`)."""
        return {
            "converge_time": self.converge_time,
            "converge_iterations": json_float(self.converge_iterations),
            "converge_law": self.converge_law.to_dict(),
            "converge_noise": self.converge_noise,
            "total_iterations": json_float(self.total_iterations),
            "settled_iterations": json_float(self.settled_iterations),
        }


def worst_saddle(points: tuple[PointValues, ...]) -> int:
    """The saddle whose fastest escape rate is the slowest; for distinct eigenvalues, e_2."""
    saddles = [p for p in points if p.kind != "minimum" and p.j != 1]
    return min(saddles, key=lambda p: p.fastest.drift_rate).j


def phases(
    derivation: Derivation,
    points: tuple[PointValues, ...],
    floor: float,
    delta_sq: float,
    epsilon: float | None,
    tangent_variances: Callable[[], Sequence[float]] | None = None,
    converges: bool = True,
    finite_floor: Callable[[], float] | None = None,
    mean_stable: bool = True,
) -> Phases:
    """Escape (unstable OU from rest), travel (ODE closed form) and convergence (slowest tangent mode),
    with the modes the per-run laws sample.

    ``tangent_variances``, when given, returns the finite-η stationary variances of the tangent modes at
    e_1 already computed for this problem (:attr:`Phases.tangent_variances`); without it they are
    solved when the convergence law first needs them. ``converges`` false (the iteration is not
    mean-square stable at e_1): there is no floor, so ε is not checked against it and the result
    reports no phase III; ``mean_stable`` false (beyond the mean boundary) no travel law either. A given
    ε is refused at or below the floor the mean error settles at: ``finite_floor()``, the finite-η
    floor, where it is given (a sampled mean curve would cross a lower ε only on a dip; it lies above
    the diffusion ``floor`` with a delay, below it with Rademacher data or at a large step, where the
    diffusion floor can exceed 1), else ``floor``; none given,
    :func:`~amsgd.diffusion.theory.options.default_epsilon` sets it from both floors.
    """
    f = derivation.phase_formulas
    problem = derivation.problem
    finite = finite_floor() if converges and finite_floor is not None else None
    known = finite is not None and math.isfinite(finite)
    settles = finite if known else floor  # where the mean error settles
    if epsilon is None:
        epsilon = default_epsilon(floor, settles)
    elif converges and epsilon <= settles:
        which = "finite-eta stationary error floor" if known else "stationary error floor"
        raise ProblemError(f"epsilon = {epsilon:g} is at or below the {which} {settles:g}; it is never reached on average")
    saddle = next(p for p in points if p.j == worst_saddle(points))
    escape_mode = saddle.fastest
    optimum = next(p for p in points if p.j == 1)
    slow_mode = max((m for m in optimum.modes if m.kind == "tangent"), key=lambda m: m.drift_rate)
    escape = f.escape_time.subs(
        {ph.a: escape_mode.drift_rate, ph.sigma2: escape_mode.diffusion**2, ph.delta2: delta_sq, eta: problem.eta}
    )
    # The ODE's log-ratio log(h_1²/h_2²) grows at twice the escape rate (λ1 − λ2)/(1 − μ).
    travel = f.travel_time_scaled.subs(ph.delta2, delta_sq) / escape_mode.drift_rate
    converge = f.converge_time.subs(
        {
            ph.a: -slow_mode.drift_rate,
            ph.sigma2: slow_mode.diffusion**2,
            ph.delta2: delta_sq,
            ph.floor: floor,
            ph.epsilon: epsilon,
            eta: problem.eta,
        }
    )
    # Already below ε when travel ends (ε >= δ²): phase III takes no time.
    converge_time = max(float(sp.re(converge)), 0.0) if epsilon < delta_sq else 0.0
    rate, noise = _escaping_mode(derivation, escape_mode)
    tangent_rates, tangent_noise = _modes_at(derivation, optimum)
    # a time is >= 0: at δ² = 1e-300 the formula's rounding gave −5.6e-18
    return Phases(
        delta_sq, epsilon, saddle.j, max(float(escape), 0.0), float(travel), converge_time, problem.eta,
        (rate, noise), problem.delay, problem.mu, _linear_escape(derivation, rate, noise, delta_sq),
        tuple(tangent_rates.tolist()), tuple(tangent_noise.tolist()), problem, tangent_variances, converges,
        _saddle_modes(derivation, saddle), float(floor), mean_stable,
    )  # fmt: skip


def _escaping_mode(derivation: Derivation, mode: ModeValues) -> tuple[float, float]:
    """``(a, s²)`` of the escaping mode before the time scaling (``a < 0``): its drift rate over the drift
    scale and its diffusion squared over the noise gain squared."""
    scale, gain = _time_scales(derivation)
    return -mode.drift_rate / scale, mode.diffusion**2 / gain**2


def _time_scales(derivation: Derivation) -> tuple[float, float]:
    """The drift scale and the noise gain of the time scaling at the problem's μ."""
    values = {mu: derivation.problem.mu}
    return evaluate(derivation.timing.drift_scale, values), evaluate(derivation.timing.noise_gain, values)


def _modes_at(derivation: Derivation, point: PointValues) -> tuple[np.ndarray, np.ndarray]:
    """``(a_i, s_i²)`` of the modes i ≠ j at ``point`` e_j before the time scaling (at e_1 the tangent
    modes, ``a_i > 0``), as :func:`_escaping_mode` has them: drift rates over the drift scale,
    diffusions squared over the noise gain squared."""
    scale, gain = _time_scales(derivation)
    tangent = np.arange(point.dim) != point.j - 1
    return -point.drift_rates[tangent] / scale, point.diffusions[tangent] ** 2 / gain**2


def _saddle_modes(derivation: Derivation, saddle: PointValues) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """:func:`_modes_at` the worst saddle, with each rate ``λ_j − λ_i`` within the problem's
    :attr:`~amsgd.core.problem.Problem.rounding_gap` of 0 made 0: eigenvalues given 1e-12 apart below
    λ1 (``--spectrum 4,1.000000000001,1,1``) are the equal eigenvalues of a rotated Σ, whose merged
    values give exact zeros; a rate of 1e-12 instead made the saddle's stationary solve singular."""
    rates, noise = _modes_at(derivation, saddle)
    rates = np.where(np.abs(rates) <= derivation.problem.rounding_gap, 0.0, rates)
    return tuple(rates.tolist()), tuple(noise.tolist())


def _tangent_variances(problem: Problem) -> np.ndarray | None:
    """The stationary variances ``v`` of the tangent block of the random-coefficient linearisation at
    e_1 (:mod:`.second_moments`): ``(I − diag(G) C) v = G ⊙ s``. With ``s > 0`` and ``diag(G) C >= 0``
    a positive solution exists iff the Perron root is below one (then ``v = Σ_k (diag(G) C)^k G ⊙ s``;
    conversely ``v > 0`` with ``diag(G) C v < v`` bounds the root below one), so the sign of the solve
    decides without an eigenvalue problem; None where there is no positive solution."""
    from amsgd.diffusion.theory.coupling import coefficients_for
    from amsgd.diffusion.theory.linear_recursion import delay_law
    from amsgd.diffusion.theory.second_moments import gains, stationary_variances

    c = coefficients_for(problem)
    tangent = c.block(c.tangent)
    law = delay_law(problem.delay, as_iid=True)
    g = gains(tangent.rates, problem.eta, problem.mu, law)
    if not np.all(np.isfinite(g)):
        return None
    if not np.all(tangent.additive > 0):  # the sign test needs s > 0: the Perron root decides
        v = stationary_variances(tangent, problem.eta, problem.mu, law, g)
    else:
        v = np.linalg.solve(np.eye(g.size) - g[:, None] * tangent.coupling, g * tangent.additive)
    return v if np.all(np.isfinite(v)) and np.all(v > 0) else None


def _linear_escape(derivation: Derivation, rate: float, noise: float, delta_sq: float) -> int | None:
    """First iteration at which the escaping mode's exact linear variance reaches δ² (a constant delay,
    or an i.i.d. law with the delay's spread fed back, :mod:`.transient`; the event-driven server's
    stationary staleness law taken as i.i.d.): the mean curve's crossing at finite η."""
    problem = derivation.problem
    return variance_crossing(rate, noise, problem.eta, problem.mu, delay_law(problem.delay, as_iid=True), delta_sq)


def saddle_arrival(problem: Problem, start: str) -> tuple[float | None, float | None]:
    """For runs started at the saddle ``start`` (``"eJ"``, the worst saddle of the phases), the mean
    escape and the arrival near the floor, in iterations: :attr:`Phases.settled_iterations` (when the
    mean error over runs reaches ε, not a run's first dip below ε); (None, None) for another start, or
    when the theory has no prediction (no eigengap, infinite fourth moments, unstable modes). A
    stationary window should start after the arrival."""
    if not (start.startswith("e") and start[1:].isdigit() and start != "e1"):
        return None, None
    from amsgd.diffusion.theory import predict

    try:
        found = predict(problem).phases
    except (ProblemError, ArithmeticError, ValueError):
        return None, None
    if found.worst_saddle != int(start[1:]):
        return None, None
    return found.escape_iterations, found.settled_iterations

"""The theory at a model's minimum against simulation, for any model and data (``amsgd validate --model``).

Everything is predicted first, from the Hessian at the minimum x* (:func:`~amsgd.diffusion.theory.
model_predictions.predict_model`), before any run (:mod:`~amsgd.validation.model_prediction`); then three sets of
runs measure it:

* **Loss floor** at the given (η, μ, delay): R runs start at x*; each run's training loss averaged
  over the second half of N iterations, minus L(x*), is one sample of the stationary excess loss,
  ``E L(x) − L(x*) ≈ ½ tr(Λ X)``, X the stationary covariance in the Hessian's eigenbasis. Where the
  full second moments apply (at most ``FULL_MOMENTS_MAX`` parameters, a constant delay of at most
  ``FULL_MOMENTS_MAX_DELAY``: :attr:`ModelPredictions.full_moments`) X is the whole covariance and
  they also decide the cell's mean-square stability (feedback radius below one); elsewhere the
  diagonal theory's variances ``v_i`` (``ModelPredictions.floor``), whose floor is reported beside
  the full one in any case. N is the shortest run (at least :data:`MIN_STEPS`) in which the
  start at x* biases that average by less than :data:`WINDOW_BIAS` of the floor: by the linear theory
  mode i reaches its stationary variance as ``1 − ρ_i^{2k}``, so the window average misses
  ``½ Σ_i λ_i v_i · mean_{N/2 <= k <= N} ρ_i^{2k}``. The check passes when the predicted floor lies
  in the 95% Student-t interval over replicates widened by the model tolerance (:func:`floor_tolerance`)
  and no run diverged: for least squares with the full second moments the theory is exact (minibatches
  drawn with replacement, as the runs draw them), so the tolerance is the window bias alone,
  :data:`WINDOW_BIAS` of the floor; otherwise :data:`FLOOR_TOLERANCE` (the loss's higher derivatives
  for the full moments of another model, :data:`FLOOR_REASON_QUADRATIC`; the dropped cross-covariances
  for the diagonal theory, :data:`FLOOR_REASON`).
* **Breakdown at the given cell**, when the full second moments call it mean-square unstable while
  the diagonal theory calls it stable: the runs from x* at the given cell, :data:`BREAKDOWN_LENGTH`
  times N long, break down by the rule of the stability runs below, the bounded reference being the
  runs at τ_ms; with no bounded runs, more than half of them diverge.
* **Stability boundary** over constant delays τ (round-robin workers M = τ + 1 when the delay is
  ``workers:M``): at the largest mean-square-stable delay τ_ms the theory reports, runs from x* do
  not diverge (the Clopper–Pearson interval of the diverged fraction reaches below
  :data:`DIVERGENCE_TOLERANCE`); at ``τ_u = ⌈1.5 τ_c⌉`` (τ_c the mean-stability boundary of the
  stiffest mode, so the mean grows there by ``ρ(τ_u) > 1`` per iteration) the runs break down: more
  than half of them diverge (the whole interval above :data:`DIVERGED_LIMIT`), or, when at most half
  do, the stationary excess loss of the others is above :data:`BREAKDOWN_RATIO` times that of the
  bounded runs (the interval of the ratio above it; the streaming-PCA breakdown rule). The data
  gradient of logistic regression and a tanh MLP is bounded, so their runs do not diverge: far from
  x* the loss grows only linearly, and the instability holds the runs in a large oscillation instead.
  The first mean-square-unstable delay τ_ms + 1 is run and reported beside them, without a check. At
  τ_u the divergence risk's fate (:mod:`~amsgd.diffusion.theory.model_divergence`: the noise-free
  recursion along the stiffest mode blows up or saturates) is checked too: more than half of the
  runs diverge, or (saturates) the diverged fraction's interval reaches below
  :data:`DIVERGENCE_TOLERANCE`. A replicate diverges when ‖x‖ leaves 1e6
  or turns non-finite; the runs at τ_u are long enough for the mean to grow from the floor's scale to
  that norm twice over. Where the full second moments apply to the model (constant delays up to
  ``FULL_MOMENTS_MAX_DELAY``) they give τ_ms (bisection) and the labels and floors of these delays;
  elsewhere the diagonal theory does.
* **Rate**: the slowest ranking mode q_j (the one that sets ``ModelPredictions.rate``, with the run
  length N as the ranking's horizon) is perturbed both ways, x* ± δ q_j, in runs that share every
  random number; ``y_k = q_jᵀ(x_k⁺ − x_k⁻)/2`` removes the noise common to both and its mean follows
  the mode's mean recursion ``m_k`` (:mod:`~amsgd.diffusion.theory.linear_recursion`, history δ).
  Runs of K/3, 2K/3 and K iterations (K the time for ``ρ^K = e^{−2}``, at most N) give the mean of
  y_k at those k; the measured mean is fitted as ``c^k m_k`` (weighted least squares on the means,
  percentile bootstrap over replicates), and the measured rate is ``−log ρ − log c``. For least
  squares with a constant or i.i.d. delay ``E y_k = m_k`` exactly (the loss is quadratic and the
  minibatch Hessian is independent of the stale iterate), so the tolerance is rounding only;
  otherwise :data:`RATE_TOLERANCE`.

A wrong prediction must fail: ``perturb`` scales ``loss-floor`` (the predicted floor),
``stable-delay`` (the τ_ms at which the bounded runs are placed) or ``rate``.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from amsgd.core import checks as arguments
from amsgd.core.errors import ProblemError
from amsgd.core.models import ModelProblem
from amsgd.core.progress import plan as progress_plan
from amsgd.core.progress import stage
from amsgd.core.seeding import child_sequence, root_sequence
from amsgd.validation.model_prediction import (
    DIVERGENCE_NORM,
    UNSTABLE_FACTOR,
    ModelPrediction,
    StabilityPoint,
    delay_at,
    floor_tolerance,
    predict,
)

if TYPE_CHECKING:  # loaded on use: the command line checks its options before SciPy loads
    from amsgd.core.estimates import Estimate
    from amsgd.validation.checks import Check, Perturbations

#: Relative model tolerance of the rate when the mean recursion is not exact (see the module docstring).
RATE_TOLERANCE = 0.03
RATE_REASON_EXACT = ("rounding only (1e-6 relative): for least squares with a constant or i.i.d. delay the "
                     "mean of the antithetic difference follows the mode's mean recursion exactly")  # fmt: skip
RATE_REASON_LINEAR = (
    "3% of the predicted rate: the gradient is not linear in x (or the delays are not i.i.d.), so the "
    "difference of the paired runs sees the Hessian along the runs rather than at x*, a change of the "
    "order of the floor's own documented accuracy"
)
#: Model tolerance of a diverged fraction predicted to be 0 (absolute).
DIVERGENCE_TOLERANCE = 0.05
BOUNDED_REASON = ("0.05 absolute: near the mean-square boundary the stationary law has heavy tails; the check fails "
                  "when the interval shows that more than 5% of the runs diverge")  # fmt: skip
FATE_REASON = ("0.05 absolute where the runs are predicted to saturate: the fate is that of the noise-free recursion "
               "along the stiffest mode, and the noise may still carry an occasional run beyond the divergence norm")  # fmt: skip
#: Beyond the boundary, more than this fraction of the runs diverge...
DIVERGED_LIMIT = 0.5
#: ...or, where the gradient is bounded (logistic, tanh MLP) and nothing diverges, the excess loss exceeds
#: this multiple of that of the bounded runs (the breakdown rule of the streaming-PCA stability check).
BREAKDOWN_RATIO = 1.5
#: The fewest replicates a model's validation takes: with fewer, even every run diverging leaves the
#: lower end of the diverged fraction's 95% Clopper–Pearson interval, ``0.025^(1/n)``, at or below
#: DIVERGED_LIMIT, so a breakdown check could never pass (6: 0.54; 5: 0.48).
MIN_REPLICATES = math.floor(math.log(0.025) / math.log(DIVERGED_LIMIT)) + 1
#: Records of the training loss per run (the window average is over them).
RECORDS = 500
#: Bootstrap resamples of the fitted rate (fixed seed: a report is reproducible).
BOOTSTRAP = 400
BOOTSTRAP_SEED = 20180601


@dataclass(frozen=True)
class ModelSetup:
    """The budget: ``steps`` per run (None: from the prediction, see the module docstring),
    ``replicates`` per set of runs, and the ``seed`` of every run."""

    steps: int | None = None
    replicates: int = 64
    seed: int = 2018

    def __post_init__(self) -> None:
        if self.steps is not None:
            object.__setattr__(self, "steps", arguments.positive_int("--steps", self.steps))
        object.__setattr__(self, "replicates", arguments.positive_int("--replicates", self.replicates))
        if self.replicates < MIN_REPLICATES:
            raise ProblemError(f"--replicates must be at least {MIN_REPLICATES} (with fewer, a diverged fraction's 95% "
                               f"interval cannot lie above {DIVERGED_LIMIT:g} even when every run diverges), "
                               f"got {self.replicates}")  # fmt: skip
        object.__setattr__(self, "seed", arguments.integer("--seed", self.seed))


@dataclass(frozen=True, eq=False)
class FloorRuns:
    """The runs from x* at the given cell: the excess training loss per replicate and record."""

    iterations: np.ndarray
    excess: np.ndarray  # (replicates, records), NaN after a divergence
    window_start: int
    estimate: Estimate
    diverged: int
    replicates: int
    stationarity: dict

    def interval(self) -> Estimate:
        """The diverged fraction with its Clopper–Pearson 95% interval."""
        from amsgd.validation.statistics import proportion_interval

        return proportion_interval(self.diverged, self.replicates)


@dataclass(frozen=True, eq=False)
class RateRuns:
    """The paired runs from x* ± δ q_j: the mean of y_k/δ at each length, the fit and its interval, over
    the ``kept`` of ``pairs`` replicates whose two runs did not diverge at any length."""

    lengths: tuple[int, ...]
    means: tuple[Estimate, ...]  # of y_k / δ
    rate: float
    ci_low: float
    ci_high: float
    kept: int
    pairs: int


@dataclass(frozen=True, eq=False)
class ModelValidation:
    """The problem, the prediction made before the runs, the measurements, the checks and the time."""

    problem: ModelProblem
    setup: ModelSetup
    prediction: ModelPrediction
    floor: FloorRuns
    stability: tuple[StabilityPoint, ...]
    rate: RateRuns | None
    checks: list[Check]
    elapsed: float
    perturb: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict:
        f = self.floor
        out = {
            "problem": self.problem.to_dict(),
            "setup": asdict(self.setup),
            "prediction": self.prediction.to_dict(),
            "measured": {
                "floor": {"excess_loss": f.estimate.to_dict(), "diverged": f.diverged, "replicates": f.replicates,
                          "window_start": f.window_start, "steps": int(f.iterations[-1]),
                          "stationarity": f.stationarity},
                "stability": [p.to_dict(self.prediction.family) for p in self.stability],
            },
            "elapsed_seconds": round(self.elapsed, 1),
            "machine": f"{platform.machine()}, Python {platform.python_version()}",
            "passed": self.passed,
            "checks_passed": sum(c.passed for c in self.checks),
            "checks_total": len(self.checks),
            "perturb": self.perturb,
        }  # fmt: skip
        if self.rate is not None:
            r = self.rate
            out["measured"]["rate"] = {"rate": r.rate, "ci": [r.ci_low, r.ci_high], "lengths": list(r.lengths),
                                       "mean_over_delta": [e.to_dict() for e in r.means]}  # fmt: skip
        return out


#: The checks whose predictions ``perturb`` scales; any other name is refused before the runs.
PERTURBABLE = ("loss-floor", "stable-delay", "rate")


def run_model_validation(problem: ModelProblem, setup: ModelSetup | None = None, *,
                         perturb: dict[str, float] | None = None, progress: bool | None = None,
                         announce: Callable[[ModelPrediction], None] | None = None) -> ModelValidation:  # fmt: skip
    """Predict at x*, then run the floor, stability and rate runs and compare (module docstring).

    ``perturb`` scales named predictions (``loss-floor``, ``stable-delay``, ``rate``) to show that a wrong
    one fails; ``announce`` receives the prediction before the first run."""
    from amsgd.simulate.model_engine import simulate_model
    from amsgd.validation.checks import Perturbations

    setup = setup or ModelSetup()
    perturbations = Perturbations(perturb)
    unknown = [name for name in perturbations.perturb if name not in PERTURBABLE]
    if unknown:
        raise ProblemError(f"perturb names no check of a model's validation: {', '.join(unknown)}; "
                           f"its checks: {', '.join(PERTURBABLE)}")  # fmt: skip
    began = time.perf_counter()
    with stage("prediction at the minimum"):
        theory, pred = predict(problem, setup.steps, perturbations)
    if announce is not None:
        announce(pred)
    progress_plan(2 + len(pred.stability), "sets of runs")
    root = root_sequence(setup.seed)
    r = setup.replicates

    def simulate(p: ModelProblem, steps: int, key: tuple[int, ...], start: np.ndarray, last_only: bool = False):
        return simulate_model(p, steps, r, rng=child_sequence(root, *key), start=start,
                              record_every=steps if last_only else max(1, steps // RECORDS),
                              divergence_norm=DIVERGENCE_NORM, progress=progress)  # fmt: skip

    with stage("floor runs from x*"):
        run = simulate(problem, pred.given_steps, (0,), theory.point.x)
        floor = _floor_runs(run, pred.loss_at_minimum)
    stability = []
    for point in pred.stability:
        with stage(f"stability runs, {_where(pred.family, point.tau)}"):
            runs = simulate(problem.replace(delay=delay_at(pred.family, point.tau)), point.steps, (1, point.tau),
                            theory.point.x)  # fmt: skip
            diverged = int(np.sum(runs.diverged_at >= 0))
            stability.append(StabilityPoint(point.tau, point.label, point.growth, point.floor, point.steps, diverged, r,
                                            _excess(runs, pred.loss_at_minimum)))  # fmt: skip
    with stage("rate runs from x* ± δ q"):
        rate = _rate_runs(problem, theory, pred, simulate) if math.isfinite(pred.rate) else None
    checks = floor_checks(problem, pred, floor, perturbations)
    checks += given_cell_checks(pred, stability, floor)
    checks += stability_checks(pred, stability, floor)
    if rate is not None:
        checks.append(rate_check(problem, pred, rate, perturbations))
    unused = perturbations.unused()
    if unused:
        raise ProblemError(f"perturb names no check of this run: {', '.join(unused)}")
    return ModelValidation(problem, setup, pred, floor, tuple(stability), rate, checks, time.perf_counter() - began,
                           dict(perturb or {}))  # fmt: skip


def _where(family: str, tau: int) -> str:
    return f"M = {tau + 1} workers" if family == "workers" else f"tau = {tau}"


def _excess(run, loss_at_minimum: float) -> Estimate:
    """The stationary excess training loss ``E L(x) − L(x*)`` of the runs that did not diverge; its interval
    cut at 0, below which an excess over the objective's minimum cannot lie (the loss's own interval, cut at
    0 before ``L(x*)`` was taken off, reached down to ``−L(x*)``), unless the mean itself is below (an x*
    short of the minimum)."""
    from amsgd.core.estimates import Estimate

    est = run.stationary_loss()
    mean = est.mean - loss_at_minimum
    low = est.ci_low - loss_at_minimum if mean < 0.0 else max(est.ci_low - loss_at_minimum, 0.0)
    return Estimate(mean, low, est.ci_high - loss_at_minimum, est.std_error, est.n)


def _floor_runs(run, loss_at_minimum: float) -> FloorRuns:
    excess = run.values["train_loss"] - loss_at_minimum
    return FloorRuns(run.iterations, excess, run.window_start, _excess(run, loss_at_minimum),
                     int(np.sum(run.diverged_at >= 0)), run.replicates, run.stationarity.to_dict())  # fmt: skip


def _rate_runs(problem: ModelProblem, theory, pred: ModelPrediction, simulate) -> RateRuns:
    """Paired runs from x* ± δ q_j of each length (one seed: every replicate's runs share their numbers).
    Their lengths follow the rate, not ``--steps``, and the predicted path they are held to has the delay
    in it: a delay of half their length is no reason to warn (the warning told the user to raise --steps)."""
    import warnings

    from amsgd.core.errors import RunWarning
    from amsgd.core.estimates import t_interval

    q = theory.point.vectors[:, pred.rate_mode]
    x = theory.point.x
    samples = []
    for n in pred.rate_lengths:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="the mean delay", category=RunWarning)
            plus = simulate(problem, n, (2,), x + pred.rate_delta * q, True)
            minus = simulate(problem, n, (2,), x - pred.rate_delta * q, True)
        alive = (plus.diverged_at < 0) & (minus.diverged_at < 0)  # a frozen pair would read as no decay at all
        y = ((plus.last_iterates - minus.last_iterates) / 2) @ q / pred.rate_delta
        samples.append(np.where(alive, y, np.nan))
    y = np.stack(samples, axis=1)  # (replicates, lengths)
    pairs = y.shape[0]
    y = y[np.all(np.isfinite(y), axis=1)]
    means = tuple(t_interval(y[:, i]) for i in range(y.shape[1]))
    if y.shape[0] < 2:  # (almost) every pair diverged: nothing to fit
        nan = math.nan
        return RateRuns(pred.rate_lengths, means, nan, nan, nan, y.shape[0], pairs)
    lengths = np.array(pred.rate_lengths, dtype=float)
    path = np.array(pred.rate_path)
    log_c = _scale_fit(y, lengths, path)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    picks = rng.integers(0, y.shape[0], size=(BOOTSTRAP, y.shape[0]))
    boots = np.array([_scale_fit(y[i], lengths, path) for i in picks])
    low, high = np.percentile(pred.rate - boots, [2.5, 97.5])
    return RateRuns(pred.rate_lengths, means, pred.rate - log_c, float(low), float(high), y.shape[0], pairs)


def _scale_fit(y: np.ndarray, lengths: np.ndarray, path: np.ndarray) -> float:
    """``log c`` minimising ``Σ_k ((ȳ_k − c^k m_k)/se_k)²`` (ȳ_k the mean over rows of ``y``)."""
    import scipy.optimize

    mean = y.mean(axis=0)
    se = np.maximum(y.std(axis=0, ddof=1) / math.sqrt(y.shape[0]), 1e-12 * np.abs(path) + 1e-300)
    span = 2.0 / lengths.max()  # log c within ± 2/K: the rate within ± its own size at the horizon

    def cost(u: float) -> float:
        return float(np.sum(((mean - np.exp(u * lengths) * path) / se) ** 2))

    res = scipy.optimize.minimize_scalar(cost, bounds=(-span, span), method="bounded",
                                         options={"xatol": 1e-12 * span})  # fmt: skip
    return float(res.x)


def floor_checks(problem: ModelProblem, pred: ModelPrediction, floor: FloorRuns, perturb: Perturbations) -> list[Check]:
    """The loss floor at the given cell (none when the theory calls it unstable): the full second moments'
    where they apply, else the diagonal theory's, within :func:`floor_tolerance`."""
    from amsgd.validation.checks import Check

    if not pred.stable:
        return []
    predicted = perturb("loss-floor", pred.floor)
    relative, reason = floor_tolerance(problem.model, pred.floor_theory, pred.window_bias)
    e = floor.estimate
    return [Check(
        name="loss-floor", group="floor", predicted=predicted, measured=e.mean, ci_low=e.ci_low, ci_high=e.ci_high,
        tolerance=relative * abs(predicted), tolerance_reason=reason, unit="excess training loss",
        criterion="ci_low - tolerance <= predicted <= ci_high + tolerance, and no run diverged",
        extra_pass=floor.diverged == 0,
        context={"eta": problem.eta, "mu": problem.mu, "delay": problem.delay.spec, "steps": pred.steps,
                 "window_start": floor.window_start, "replicates": floor.replicates, "diverged": floor.diverged,
                 "floor_theory": pred.floor_theory, "diagonal_floor": pred.floor_diagonal,
                 "feedback_radius": None if math.isnan(pred.feedback_radius) else pred.feedback_radius,
                 "additive_linear_floor": pred.floor_additive, "loss_at_minimum": pred.loss_at_minimum,
                 "perturbation": perturb.factor("loss-floor")},
    )]  # fmt: skip


def stability_checks(pred: ModelPrediction, points: list[StabilityPoint], floor: FloorRuns) -> list[Check]:
    """No divergence at the largest mean-square-stable delay; breakdown at ⌈1.5 τ_c⌉ (module docstring)."""
    from amsgd.validation.checks import Check

    out = []
    by_tau = {p.tau: p for p in points}
    where = "workers" if pred.family == "workers" else "tau"

    def value(tau: int) -> int:
        return tau + 1 if pred.family == "workers" else tau

    # the bounded runs: those at τ_ms, else the given cell's where the theory calls it stable, else none
    reference = floor.estimate if pred.stable else None
    if pred.bounded_tau is not None:
        p = by_tau[pred.bounded_tau]
        e = p.interval()
        reference = p.excess
        out.append(Check(
            name=f"bounded-at-{where}-{value(p.tau)}", group="stability", predicted=0.0, measured=e.mean,
            ci_low=e.ci_low, ci_high=e.ci_high, tolerance=DIVERGENCE_TOLERANCE, unit="diverged fraction",
            tolerance_reason=BOUNDED_REASON,
            criterion="at the theory's largest mean-square-stable delay: ci_low - 0.05 <= 0 (Clopper-Pearson 95%)",
            context={"tau": p.tau, "largest_mean_square_stable_tau": pred.tau_ms, "steps": p.steps,
                     "diverged": p.diverged, "replicates": p.replicates, "predicted_label": p.label,
                     "excess_loss": p.excess.to_dict(), "interval": "Clopper-Pearson 95%"},
        ))  # fmt: skip
    if pred.unstable_tau is not None:
        p = by_tau[pred.unstable_tau]
        context = {"tau": p.tau, "tau_c": pred.tau_c, "mean_growth_per_iteration": p.growth, "steps": p.steps,
                   "diverged": p.diverged, "replicates": p.replicates, "excess_loss": p.excess.to_dict(),
                   "reference_excess_loss": None if reference is None else reference.to_dict()}  # fmt: skip
        beyond = f"beyond the mean-stability boundary (at ceil({UNSTABLE_FACTOR:g} tau_c))"
        out.append(breakdown_check(f"breakdown-at-{where}-{value(p.tau)}", beyond, p.interval(), p.excess, reference,
                                   context))  # fmt: skip
        out.append(fate_check(f"fate-at-{where}-{value(p.tau)}", pred.unstable_fate, p))
    return out


def fate_check(name: str, fate: str, point: StabilityPoint) -> Check:
    """The divergence risk's fate beyond the boundary against the runs there: ``"blows up"`` passes when
    more than :data:`DIVERGED_LIMIT` of them diverge (the whole Clopper–Pearson interval above it),
    ``"saturates"`` when the interval reaches below :data:`DIVERGENCE_TOLERANCE` (as for bounded runs)."""
    from amsgd.validation.checks import Check

    e = point.interval()
    context = {"tau": point.tau, "steps": point.steps, "diverged": point.diverged, "replicates": point.replicates,
               "predicted_fate": fate, "interval": "Clopper-Pearson 95%"}  # fmt: skip
    if fate == "blows up":
        return Check(name=name, group="stability", predicted=DIVERGED_LIMIT, measured=e.mean, ci_low=e.ci_low,
                     ci_high=e.ci_high, relation="above", unit="diverged fraction", context=context,
                     criterion=("the noise-free recursion along the stiffest mode blows up: the diverged fraction's "
                                f"interval lies above {DIVERGED_LIMIT}"))  # fmt: skip
    return Check(name=name, group="stability", predicted=0.0, measured=e.mean, ci_low=e.ci_low, ci_high=e.ci_high,
                 tolerance=DIVERGENCE_TOLERANCE, unit="diverged fraction", tolerance_reason=FATE_REASON,
                 context=context, criterion=("the noise-free recursion along the stiffest mode saturates: runs stay "
                                             "finite, ci_low - 0.05 <= 0"))  # fmt: skip


def breakdown_check(name: str, where: str, diverged: Estimate, excess: Estimate, reference: Estimate | None,
                    context: dict, reason: str = "") -> Check:  # fmt: skip
    """The runs at ``where`` break down: more than :data:`DIVERGED_LIMIT` of them diverge (the whole
    Clopper–Pearson interval of the ``diverged`` fraction above it), or, when at most that many do, the
    stationary ``excess`` loss of the others is above :data:`BREAKDOWN_RATIO` times the bounded
    ``reference`` (the delta-method interval of the ratio above it). Without a reference the fraction
    alone decides."""
    from amsgd.validation.checks import Check
    from amsgd.validation.statistics import ratio_interval

    criterion = (f"{where} the runs break down: the diverged fraction's interval (Clopper-Pearson 95%) lies above "
                 f"{DIVERGED_LIMIT}")  # fmt: skip
    if reference is not None:
        criterion += (f", or, when at most half diverge, the stationary excess loss is above {BREAKDOWN_RATIO:g} times "
                      "that of the bounded runs (delta-method 95% interval of the ratio)")  # fmt: skip
    if diverged.mean > DIVERGED_LIMIT or reference is None:
        measured, predicted, unit = diverged, DIVERGED_LIMIT, "diverged fraction"
    else:
        measured, predicted, unit = ratio_interval(excess, reference), BREAKDOWN_RATIO, "excess loss ratio"
    return Check(
        name=name, group="stability", predicted=predicted, measured=measured.mean, ci_low=measured.ci_low,
        ci_high=measured.ci_high, relation="above", unit=unit, criterion=criterion, context=context,
        tolerance_reason=reason,
    )  # fmt: skip


def given_cell_checks(pred: ModelPrediction, points: list[StabilityPoint], floor: FloorRuns) -> list[Check]:
    """Where the full second moments call the given cell mean-square unstable and the diagonal theory
    stable: its runs from x* break down (:func:`breakdown_check`; the bounded reference is the runs at
    the largest delay the full second moments call mean-square stable, ``pred.bounded_tau``, or none)."""
    if not pred.given_breakdown:
        return []
    by_tau = {p.tau: p for p in points}
    ref = by_tau.get(pred.bounded_tau) if pred.bounded_tau is not None else None
    reference = ref.excess if ref is not None else None
    if reference is None:
        reason = (f"no model tolerance; more than {DIVERGED_LIMIT:g} of the runs diverge is the rule alone: the full "
                  "second moments call no constant delay mean-square stable, so no bounded runs serve as the "
                  "reference of the excess loss")  # fmt: skip
    else:
        reason = (f"no model tolerance; the bounded reference is the runs at {_where(pred.family, ref.tau)}, which the "
                  "full second moments call mean-square stable")  # fmt: skip
    context = {"feedback_radius": pred.feedback_radius, "diagonal_floor": pred.floor_diagonal,
               "steps": int(floor.iterations[-1]), "diverged": floor.diverged, "replicates": floor.replicates,
               "excess_loss": floor.estimate.to_dict(),
               "reference_excess_loss": None if reference is None else reference.to_dict()}  # fmt: skip
    where = (f"at the given cell, which the full second moments call mean-square unstable (feedback radius "
             f"{pred.feedback_radius:.3g}) and the diagonal theory stable,")  # fmt: skip
    return [breakdown_check("breakdown-at-given-cell", where, floor.interval(), floor.estimate, reference, context,
                            reason)]  # fmt: skip


def rate_check(problem: ModelProblem, pred: ModelPrediction, rate: RateRuns, perturb: Perturbations) -> Check:
    """The measured decay rate of the perturbed mode's mean against ``ModelPredictions.rate``."""
    from amsgd.validation.checks import Check

    exact = problem.model == "least-squares" and problem.delay.is_iid
    predicted = perturb("rate", pred.rate)
    return Check(
        name="rate", group="rate", predicted=predicted, measured=rate.rate, ci_low=rate.ci_low, ci_high=rate.ci_high,
        tolerance=(1e-6 if exact else RATE_TOLERANCE) * abs(predicted),
        tolerance_reason=RATE_REASON_EXACT if exact else RATE_REASON_LINEAR, unit="per iteration",
        criterion="ci_low - tolerance <= predicted <= ci_high + tolerance (percentile bootstrap over replicates), "
        "and no run diverged",
        extra_pass=rate.kept == rate.pairs,
        context={"replicates": rate.kept, "diverged_fraction": 1.0 - rate.kept / rate.pairs,
                 "mode_eigenvalue": pred.rate_eigenvalue, "lengths": list(pred.rate_lengths), "delta": pred.rate_delta,
                 "predicted_mean_over_delta": list(pred.rate_path),
                 "measured_mean_over_delta": [e.mean for e in rate.means], "perturbation": perturb.factor("rate")},
    )  # fmt: skip

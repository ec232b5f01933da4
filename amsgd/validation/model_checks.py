"""The theory at a model's minimum against simulation, for any model and data (``amsgd validate --model``).

Everything is predicted first, from the Hessian at the minimum x* (:func:`~amsgd.diffusion.theory.
model_predictions.predict_model`), before any run; then three sets of runs measure it:

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
from amsgd.core.delays import ConstantDelay, DelayModel, RoundRobinDelay
from amsgd.core.errors import ProblemError
from amsgd.core.models import ModelProblem
from amsgd.core.progress import plan as progress_plan
from amsgd.core.progress import stage
from amsgd.core.seeding import child_sequence, root_sequence

if TYPE_CHECKING:  # loaded on use: the command line checks its options before SciPy loads
    from amsgd.core.estimates import Estimate
    from amsgd.diffusion.theory.model_predictions import ModelPredictions
    from amsgd.validation.checks import Check, Perturbations

#: Relative model tolerance of the loss floor (see :data:`FLOOR_REASON`).
FLOOR_TOLERANCE = 0.03
FLOOR_REASON = (
    "3% of the predicted floor: the theory keeps the variances of the per-example Hessian's entries in "
    "its eigenbasis and drops their cross-covariances; on the documented problems with light-tailed "
    "features that moves the floor by at most 1% for least squares and logistic regression and 2.5% for "
    "an MLP (docs/models.md); on heavy-tailed features (digits pixels) the floor is 13-18% low and the "
    "check fails"
)
FLOOR_REASON_QUADRATIC = (
    "3% of the predicted floor: the full second moments keep every cross-covariance of the per-example Hessians "
    "but take the loss as quadratic at x*; its higher derivatives move the floor (2.8% for the MLP 4-5-3, "
    "docs/models.md)"
)
FLOOR_REASON_EXACT = (
    "the window bias only ({bias:g} of the predicted floor): for least squares with minibatches drawn with "
    "replacement the full second moments are exact (the loss is quadratic, every cross-covariance of the "
    "per-example Hessians is kept), and the second-half average of runs from x* misses the stationary value "
    "by less than this"
)
#: Which theory gave the floor and the stability of the given cell: the names of
#: ``amsgd.diffusion.theory.full_moments``, restated so that this module loads without SciPy (the command
#: line checks its options first); a test keeps them equal.
FULL_THEORY, DIAGONAL_THEORY = "full second moments", "diagonal"
#: Runs at a given cell that the full second moments call mean-square unstable (and the diagonal theory
#: stable) last this multiple of N (at most :data:`MAX_STEPS`): the variance grows by the feedback radius
#: per pass through the modes' memories, which N spans several times over, a rate the theory does not
#: give per iteration (least squares on digits, N = 2000: radius 1.51, every run diverged within 5800).
BREAKDOWN_LENGTH = 10
#: Relative model tolerance of the rate when the mean recursion is not exact (see the module docstring).
RATE_TOLERANCE = 0.03
#: The rate runs start at x* ± δ q with δ this fraction of ``sqrt(2 F/λ)`` (:func:`rate_delta`). Logistic regression
#: on the blobs of docs/validation.md at η 0.1, μ 0.9, τ 1, B 32, l2 0.001 (sqrt(2 F/λ) = 1.23, ten times the
#: mode's own stationary spread): the mean of the paired difference after 24 iterations, over the recursion's,
#: 0.938 at the fraction 1, 0.993 at 0.3, 0.998 at 0.1 and 0.03 (± 0.002 at every fraction; 256 pairs).
RATE_DELTA_FRACTION = 0.1
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
#: The clearly unstable delay is this multiple of the mean-stability boundary τ_c (rounded up).
UNSTABLE_FACTOR = 1.5
#: The largest bias of the floor runs' window average from their start at x*, relative to the floor.
WINDOW_BIAS = 1e-3
MIN_STEPS = 2000
MAX_STEPS = 200_000
#: Records of the training loss per run (the window average is over them).
RECORDS = 500
#: A feature whose standardised fourth moment exceeds this is heavy-tailed (Gaussian: 3).
HEAVY_TAIL_KURTOSIS = 10.0
#: The runs' divergence threshold on ‖x‖ (that of ``amsgd simulate``).
DIVERGENCE_NORM = 1e6
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
        if self.replicates < 2:
            raise ProblemError(f"--replicates must be at least 2 (an interval needs two runs), got {self.replicates}")
        object.__setattr__(self, "seed", arguments.integer("--seed", self.seed))


@dataclass(frozen=True)
class StabilityPoint:
    """One delay of the stability runs: what the theory says there, and (once run) what happened."""

    tau: int
    label: str  # "mean-square stable", "mean-square unstable, mean stable" or "mean unstable"
    growth: float  # log of the largest mean radius per iteration (> 0: the mean grows)
    floor: float  # the theory's excess-loss floor at this delay (inf: no stationary law)
    steps: int
    diverged: int = -1
    replicates: int = 0
    excess: Estimate | None = None  # stationary excess loss of the runs that did not diverge

    def interval(self) -> Estimate:
        from amsgd.validation.statistics import proportion_interval

        return proportion_interval(self.diverged, self.replicates)

    def to_dict(self, family: str) -> dict:
        out = {"tau": self.tau, "predicted": self.label, "mean_growth_per_iteration": _number(self.growth),
               "predicted_floor": _number(self.floor), "steps": self.steps}  # fmt: skip
        if family == "workers":
            out["workers"] = self.tau + 1
        if self.replicates:
            e = self.interval()
            out.update(diverged=self.diverged, replicates=self.replicates, diverged_fraction=e.mean,
                       diverged_ci=[e.ci_low, e.ci_high], excess_loss=self.excess.to_dict())  # fmt: skip
        return out


@dataclass(frozen=True, eq=False)
class ModelPrediction:
    """What the theory says before any run (see the module docstring)."""

    loss_at_minimum: float
    gradient_norm: float
    parameters: int
    hessian_top: tuple[float, ...]
    kurtosis: float
    floor: float  # the floor checked: the full second moments' where they apply, else the diagonal theory's
    floor_diagonal: float  # the diagonal theory's floor (ModelPredictions.floor), reported beside it
    floor_theory: str  # FULL_THEORY or DIAGONAL_THEORY
    floor_tolerance: float  # the floor check's model tolerance, relative to the floor (floor_tolerance())
    floor_additive: float
    feedback_radius: float  # the full second moments' ρ(T) (NaN where they do not apply)
    stable: bool  # mean-square stability of the given cell by the theory that gave the floor
    stable_diagonal: bool
    steps: int
    given_steps: int  # length of the runs at the given cell (steps, or BREAKDOWN_LENGTH × steps)
    given_breakdown: bool  # full moments unstable, diagonal stable: the breakdown is checked at the given cell
    window_bias: float
    family: str  # "delay" or "workers"
    tau_ms: int | None
    boundary_theory: str  # which theory placed tau_ms and labelled the stability runs
    tau_c: float
    bounded_tau: int | None  # τ_ms, or the perturbed placement of the bounded runs
    unstable_tau: int | None
    unstable_fate: str | None  # at τ_u, "blows up" or "saturates" (the divergence risk's line recursion)
    stability: tuple[StabilityPoint, ...]
    rate: float
    rate_eigenvalue: float
    rate_mode: int
    rate_noise: float  # the mode's additive gradient noise s_j (0: only the ridge penalty curves it)
    rate_lengths: tuple[int, ...]
    rate_delta: float
    rate_path: tuple[float, ...]  # m_k / δ at rate_lengths
    rate_curve: tuple[tuple[int, ...], tuple[float, ...]]  # (k, m_k / δ) from 0 to the longest length
    relaxation: float
    notes: tuple[str, ...]

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "stability"}
        d["stability"] = [p.to_dict(self.family) for p in self.stability]
        return {k: (_number(v) if isinstance(v, float) else v) for k, v in d.items()}


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
    """The paired runs from x* ± δ q_j: the mean of y_k/δ at each length, the fit and its interval."""

    lengths: tuple[int, ...]
    means: tuple[Estimate, ...]  # of y_k / δ
    rate: float
    ci_low: float
    ci_high: float


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


def _number(x: float) -> float | None:
    """``x``, or None where JSON has no number (NaN, ±inf)."""
    return float(x) if math.isfinite(x) else None


def delay_at(family: str, tau: int) -> DelayModel:
    """The delay τ of the stability runs: round-robin workers M = τ + 1, or a constant τ."""
    return RoundRobinDelay(tau + 1) if family == "workers" else ConstantDelay(tau)


def feature_kurtosis(problem: ModelProblem) -> float:
    """The largest standardised fourth moment ``E z⁴ / (E z²)²`` of a non-constant training feature."""
    z = problem.data.x_train
    z = z - z.mean(axis=0)
    var = np.mean(z**2, axis=0)
    keep = var > 0
    if not keep.any():
        return math.nan
    return float(np.max(np.mean(z[:, keep] ** 4, axis=0) / var[keep] ** 2))


def window_bias(theory, steps: int, window: float = 0.5, floor: float | None = None) -> float:
    """The predicted shortfall of the window average of the excess loss from x*, relative to the floor:
    ``½ Σ_i λ_i G_i s_i · mean_{k in window} ρ_i^{2k}`` over the curved modes (additive noise; an i.i.d.
    delay as its mean, rounded), divided by ``floor`` (default the diagonal theory's)."""
    from amsgd.diffusion.theory.linear_recursion import spectral_radii
    from amsgd.diffusion.theory.second_moments import gains

    p, point = theory.problem, theory.point
    floor = theory.floor.value if floor is None else floor
    if not (math.isfinite(floor) and floor > 0):
        return 0.0
    curved = ~point.flat()
    lam, s = point.eigenvalues[curved], point.additive[curved]
    keep = lam > 0
    lam, s = lam[keep], s[keep]
    law = theory.law
    tau = law.constant if law.constant is not None else int(round(law.mean))
    rho = spectral_radii(lam, p.eta, p.mu, tau)
    g = gains(lam, p.eta, p.mu, tau)
    weight = np.where(np.isfinite(g), 0.5 * lam * g * s, 0.0)
    start = int(math.floor((1 - window) * steps))
    length = steps - start + 1
    r2 = np.clip(rho**2, 0.0, 1.0 - 1e-15)
    mean = r2**start * (1 - r2**length) / (length * (1 - r2))
    return float(weight @ mean / floor)


def floor_steps(theory, floor: float | None = None) -> tuple[int, float]:
    """The shortest run length (a multiple of 500 from :data:`MIN_STEPS`, by doubling then bisection,
    at most :data:`MAX_STEPS`) whose :func:`window_bias` (relative to ``floor``, default the diagonal
    theory's) is below :data:`WINDOW_BIAS`; and that bias."""

    def bias(n: int) -> float:
        return window_bias(theory, n, floor=floor)

    n = MIN_STEPS
    if bias(n) <= WINDOW_BIAS:
        return n, bias(n)
    while n < MAX_STEPS and bias(n) > WINDOW_BIAS:
        n = min(2 * n, MAX_STEPS)
    low, high = n // 2, n
    while high - low > 500:
        mid = (low + high) // 2
        if bias(mid) > WINDOW_BIAS:
            low = mid
        else:
            high = mid
    high = int(math.ceil(high / 500) * 500)
    return high, bias(high)


def floor_tolerance(model: str, theory: str, bias: float = 0.0) -> tuple[float, str]:
    """The floor check's model tolerance, relative to the predicted floor, and why: where the theory is
    exact (least squares with the full second moments) the window bias alone, :data:`WINDOW_BIAS` or the
    predicted ``bias`` of runs shorter than :func:`floor_steps` gives; else :data:`FLOOR_TOLERANCE` with
    what the theory drops (the loss's higher derivatives for the full second moments of another model,
    the cross-covariances for the diagonal theory)."""
    if theory == FULL_THEORY:
        if model == "least-squares":
            rel = max(WINDOW_BIAS, bias)
            return rel, FLOOR_REASON_EXACT.format(bias=float(f"{rel:.2g}"))
        return FLOOR_TOLERANCE, FLOOR_REASON_QUADRATIC
    return FLOOR_TOLERANCE, FLOOR_REASON


def _label(theory, eta: float, mu: float, family: str, tau: int, moments_at=None) -> tuple[str, float, float]:
    """What the theory says at the constant delay τ, the log of the largest mean radius, and the floor
    there (``inf`` unless mean-square stable); ``moments_at`` (:func:`_full_moments_over_delays`) gives
    the full second moments' verdict and floor where they apply (τ up to ``FULL_MOMENTS_MAX_DELAY``),
    else the diagonal theory's."""
    from amsgd.diffusion.theory.full_moments import FULL_MOMENTS_MAX_DELAY
    from amsgd.diffusion.theory.linear_recursion import spectral_radii
    from amsgd.diffusion.theory.model_predictions import loss_floor

    top = theory.point.eigenvalues[: theory.point.top]
    growth = float(np.log(np.max(spectral_radii(top[top > 0], eta, mu, tau))))
    if growth >= 0:
        return "mean unstable", growth, math.inf
    if moments_at is not None and tau <= FULL_MOMENTS_MAX_DELAY:
        full = moments_at(tau)
        stable, floor = full.stable, full.floor
    else:
        stable = theory.cell(eta, mu, delay_at(family, tau)).stable
        floor = loss_floor(theory.point, eta, mu, delay_at(family, tau)).value if stable else math.inf
    return ("mean-square stable" if stable else "mean-square unstable, mean stable"), growth, floor


def _fate(theory, tau: int) -> str:
    """Beyond the mean boundary, at the constant delay τ: whether the noise-free recursion along the
    stiffest mode blows up or saturates (:func:`~amsgd.diffusion.theory.model_divergence.line_fate`)."""
    from amsgd.diffusion.theory.linear_recursion import delay_law
    from amsgd.diffusion.theory.model_divergence import line_fate, stiffest_line

    p, point = theory.problem, theory.point
    return line_fate(stiffest_line(p, point), p.eta, p.mu, delay_law(tau), float(point.eigenvalues[0]))


def _full_moments_over_delays(theory):
    """``τ ↦`` the full second moments at the constant delay τ (cached), where they apply to the model
    (:func:`~amsgd.diffusion.theory.full_moments.moments_over_delays`); None elsewhere."""
    from functools import lru_cache

    from amsgd.diffusion.theory.full_moments import applies, moments_over_delays
    from amsgd.diffusion.theory.linear_recursion import delay_law

    p, point = theory.problem, theory.point
    if not applies(point.x.size, delay_law(0), point.full):
        return None
    return lru_cache(maxsize=None)(moments_over_delays(p, point, p.eta, p.mu))


def rate_delta(floor: float, curvature: float, x: np.ndarray) -> float:
    """The perturbation δ of the rate runs: :data:`RATE_DELTA_FRACTION` of ``sqrt(2 F/λ)``, the displacement
    along the mode whose loss is the whole floor F (``1e-3 max(1, ‖x*‖)`` without a floor). The paired
    difference's noise relative to δ does not depend on δ (it comes from the minibatch Hessians), but
    the curvature of the loss along the runs biases its mean by O(δ²)."""
    if floor <= 0:
        return 1e-3 * max(1.0, float(np.linalg.norm(x)))
    return RATE_DELTA_FRACTION * math.sqrt(2 * floor / curvature)


def _rate_mode(theory) -> tuple[int, float]:
    """The position (in ``point.eigenvalues``) and curvature of the mode that sets ``theory.rate``."""
    from amsgd.diffusion.theory.linear_recursion import spectral_radius

    p = theory.problem
    c, modes = theory.ranking(p.eta)
    radii = [spectral_radius(c.rates[i], p.eta, p.mu, theory.law) for i in modes]
    lam = float(c.rates[modes[int(np.argmax(radii))]])
    return int(np.argmin(np.abs(theory.point.eigenvalues - lam))), lam


def mean_path(rate: float, eta: float, mu: float, law, lengths: list[int]) -> np.ndarray:
    """``m_k/δ`` at each k of ``lengths``: the mode's mean recursion (its companion matrix, from
    :func:`~amsgd.diffusion.theory.linear_recursion.companion_matrix`) from the history δ at every lag."""
    from amsgd.diffusion.theory.linear_recursion import companion_matrix

    a, _ = companion_matrix(rate, eta, mu, law)
    state = np.ones(a.shape[0])
    out, k = {}, 0
    for target in sorted(lengths):
        state = np.linalg.matrix_power(a, target - k) @ state
        k = target
        out[target] = float(state[0])
    return np.array([out[n] for n in lengths])


def _stability_runs(theory, family: str, steps: int, moments_at, perturb: Perturbations, notes: list[str],
                    stable_diagonal: bool) -> tuple[float, int | None, int | None, int | None, list[StabilityPoint]]:  # fmt: skip
    """The boundary over constant delays and the stability runs (module docstring): ``(τ_c, τ_ms, the
    bounded runs' delay, τ_u, the runs)``; the full second moments place τ_ms where they apply
    (``moments_at``), else the diagonal theory; what is not run is said in ``notes``."""
    from amsgd.diffusion.theory.full_moments import FULL_MOMENTS_MAX_DELAY
    from amsgd.diffusion.theory.linear_recursion import MAX_DELAY
    from amsgd.diffusion.theory.second_moments import last_stable_delay

    p, point = theory.problem, theory.point
    tau_c = float(theory.critical.min())
    if moments_at is None:
        tau_ms = theory.mean_square.tau_max
    else:  # the full second moments decide the boundary too, up to the delays they take
        high = min(math.ceil(tau_c) - 1 if math.isfinite(tau_c) else FULL_MOMENTS_MAX_DELAY, FULL_MOMENTS_MAX_DELAY)
        tau_ms = last_stable_delay(lambda tau: moments_at(tau).stable, high)
        if tau_ms == FULL_MOMENTS_MAX_DELAY and math.ceil(tau_c) - 1 > FULL_MOMENTS_MAX_DELAY:
            notes.append(f"the full second moments call every constant delay up to {FULL_MOMENTS_MAX_DELAY}, the "
                         "longest they take, mean-square stable: the bounded runs are placed there")  # fmt: skip
    bounded = None if tau_ms is None else max(0, int(round(perturb("stable-delay", tau_ms))))
    unstable = int(math.ceil(UNSTABLE_FACTOR * tau_c)) if math.isfinite(tau_c) else None
    if unstable is not None and tau_ms is not None:
        unstable = max(unstable, tau_ms + 1)
    if unstable is not None and unstable > MAX_DELAY:
        notes.append(f"the unstable delay {unstable} lies beyond the {MAX_DELAY} the linear numerics take: not run")
        unstable = None
    if tau_ms is None:
        notes.append("the theory calls every constant delay mean-square unstable at this eta and mu: no bounded runs")
    elif tau_ms >= MAX_DELAY:
        notes.append(f"the largest mean-square-stable delay reaches the numerics' limit {MAX_DELAY}: no bounded runs")
        bounded = None
    scale = math.sqrt(2 * theory.floor.additive_linear / point.eigenvalues[0]) if stable_diagonal else 1e-2
    points = []
    for tau in sorted({t for t in (bounded, None if tau_ms is None else tau_ms + 1, unstable) if t is not None}):
        label, growth, at = _label(theory, p.eta, p.mu, family, tau, moments_at)
        n = steps
        if tau == unstable:  # long enough for the mean to grow from the fluctuations to the divergence norm twice over
            reach = math.log(DIVERGENCE_NORM / min(max(scale, 1e-8), 1.0)) / growth
            n = min(MAX_STEPS, max(steps, int(math.ceil(2 * reach))))
        points.append(StabilityPoint(tau, label, growth, at, max(n, 10 * tau)))
    return tau_c, tau_ms, bounded, unstable, points


def predict(problem: ModelProblem, setup: ModelSetup,
            perturb: Perturbations | None = None) -> tuple[ModelPredictions, ModelPrediction]:  # fmt: skip
    """The theory at x* and the :class:`ModelPrediction` of every run (nothing is simulated here)."""
    from amsgd.diffusion.theory.full_moments import FULL_MOMENTS_MAX_DELAY
    from amsgd.diffusion.theory.model_predictions import ModelPredictions, predict_model
    from amsgd.diffusion.theory.options import PredictOptions
    from amsgd.validation.checks import Perturbations

    perturb = perturb or Perturbations()
    theory = predict_model(problem)
    moments_at = _full_moments_over_delays(theory)  # None where the full second moments do not apply
    given = theory.law.constant
    full = moments_at(given) if moments_at is not None and given is not None and given <= FULL_MOMENTS_MAX_DELAY else None
    checked = full.floor if full is not None and full.stable else None  # the window bias is relative to it
    if setup.steps:
        steps, bias = setup.steps, window_bias(theory, setup.steps, floor=checked)
    else:
        steps, bias = floor_steps(theory, floor=checked)
    theory = ModelPredictions(problem, theory.point, PredictOptions(steps=steps))  # the run length ranks the rate
    point, notes = theory.point, []
    floor = theory.floor
    stable_diagonal = bool(np.isfinite(floor.value) and theory.cell(problem.eta, problem.mu, problem.delay).stable)
    if full is None:
        stable, floor_value, floor_theory, radius = stable_diagonal, floor.value, DIAGONAL_THEORY, math.nan
    else:
        stable, floor_value, floor_theory, radius = full.stable, full.floor, FULL_THEORY, full.radius
    tolerance, _ = floor_tolerance(problem.model, floor_theory, bias)
    given_breakdown = full is not None and stable_diagonal and not stable
    if full is not None and stable != stable_diagonal:
        notes.append(f"the full second moments call the given cell mean-square {'' if stable else 'un'}stable "
                     f"(feedback radius {radius:.3g}) where the diagonal theory calls it "
                     f"{'' if stable_diagonal else 'un'}stable" + (f" with a floor of {floor.value:.4g}: the floor "
                     "is not checked, the runs at the given cell are checked to break down" if given_breakdown
                     else ""))  # fmt: skip
    elif not stable:
        notes.append("the theory calls the given (eta, mu, delay) mean-square unstable: no floor to check")
    family = "workers" if isinstance(problem.delay, RoundRobinDelay) else "delay"
    if family == "delay" and not isinstance(problem.delay, ConstantDelay):
        notes.append(f"the stability boundary is over constant delays; the given delay {problem.delay.spec} "
                     "enters the floor and the rate only")  # fmt: skip
    tau_c, tau_ms, bounded, unstable, points = _stability_runs(theory, family, steps, moments_at, perturb, notes,
                                                               stable_diagonal)  # fmt: skip
    rate, lam, j, lengths, delta, path, curve, noise = _rate_prediction(theory, stable_diagonal, steps, notes)
    prediction = ModelPrediction(
        loss_at_minimum=point.loss, gradient_norm=point.gradient_norm, parameters=int(point.x.size),
        hessian_top=tuple(float(v) for v in point.eigenvalues[: point.top]), kurtosis=feature_kurtosis(problem),
        floor=floor_value, floor_diagonal=floor.value, floor_theory=floor_theory, floor_tolerance=tolerance,
        floor_additive=floor.additive_linear, feedback_radius=radius, stable=stable, stable_diagonal=stable_diagonal,
        steps=steps, given_steps=max(steps, min(MAX_STEPS, BREAKDOWN_LENGTH * steps)) if given_breakdown else steps,
        given_breakdown=given_breakdown, window_bias=bias,
        family=family, tau_ms=tau_ms, boundary_theory=DIAGONAL_THEORY if moments_at is None else FULL_THEORY,
        tau_c=tau_c, bounded_tau=bounded, unstable_tau=unstable,
        unstable_fate=None if unstable is None else _fate(theory, unstable), stability=tuple(points),
        rate=rate, rate_eigenvalue=lam, rate_mode=j, rate_noise=noise, rate_lengths=lengths, rate_delta=delta, rate_path=path,
        rate_curve=curve, relaxation=theory.relaxation_iterations, notes=tuple(notes),
    )  # fmt: skip
    return theory, prediction


def _rate_prediction(theory: ModelPredictions, stable_diagonal: bool, steps: int, notes: list[str]) -> tuple:
    """The rate check's prediction: ``(rate, λ, mode, lengths, δ, path, curve, noise)``, the decay rate
    −log ρ of the slowest ranking mode (index ``mode``, curvature λ, additive noise ``noise``), the run
    lengths at which its perturbed mean is measured (a third, two thirds and all of ``2/rate`` or the
    run), the perturbation δ, the mean recursion at those lengths and on a grid for the figure; NaN and
    empty where the theory gives no finite rate (a note says so)."""
    problem, point, rate = theory.problem, theory.point, theory.rate
    if not (stable_diagonal and math.isfinite(rate) and rate > 0):
        notes.append("the theory gives no finite decay rate here: the rate is not checked")
        return math.nan, math.nan, -1, (), math.nan, (), ((), ()), math.nan
    j, lam = _rate_mode(theory)
    noise = float(point.additive[j])
    if noise <= 1e-12 * float(point.additive.max()):
        notes.append(f"the rate is set by a mode of curvature {lam:.4g} that carries no gradient noise (the data "
                     "do not curve it, only the ridge penalty does): its decay is deterministic")  # fmt: skip
    horizon = min(int(math.ceil(2 / rate)), steps)
    lengths = tuple(sorted({max(1, round(horizon * f)) for f in (1 / 3, 2 / 3, 1.0)}))
    delta = rate_delta(theory.floor.value, lam, point.x)
    path = tuple(mean_path(lam, problem.eta, problem.mu, theory.law, list(lengths)))
    ks = sorted({int(k) for k in np.linspace(0, lengths[-1], min(lengths[-1], 200) + 1)})
    curve = (tuple(ks), tuple(mean_path(lam, problem.eta, problem.mu, theory.law, ks)))
    return rate, lam, j, lengths, delta, path, curve, noise


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
    began = time.perf_counter()
    with stage("prediction at the minimum"):
        theory, pred = predict(problem, setup, perturbations)
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
    """The stationary excess training loss ``E L(x) − L(x*)`` of the runs that did not diverge."""
    from amsgd.core.estimates import Estimate

    est = run.stationary_loss()
    return Estimate(est.mean - loss_at_minimum, est.ci_low - loss_at_minimum, est.ci_high - loss_at_minimum,
                    est.std_error, est.n)  # fmt: skip


def _floor_runs(run, loss_at_minimum: float) -> FloorRuns:
    excess = run.values["train_loss"] - loss_at_minimum
    return FloorRuns(run.iterations, excess, run.window_start, _excess(run, loss_at_minimum),
                     int(np.sum(run.diverged_at >= 0)), run.replicates, run.stationarity.to_dict())  # fmt: skip


def _rate_runs(problem: ModelProblem, theory, pred: ModelPrediction, simulate) -> RateRuns:
    """Paired runs from x* ± δ q_j of each length (one seed: every replicate's runs share their numbers)."""
    from amsgd.core.estimates import t_interval

    q = theory.point.vectors[:, pred.rate_mode]
    x = theory.point.x
    samples = []
    for n in pred.rate_lengths:
        plus = simulate(problem, n, (2,), x + pred.rate_delta * q, True).last_iterates
        minus = simulate(problem, n, (2,), x - pred.rate_delta * q, True).last_iterates
        samples.append(((plus - minus) / 2) @ q / pred.rate_delta)
    y = np.stack(samples, axis=1)  # (replicates, lengths)
    y = y[np.all(np.isfinite(y), axis=1)]
    lengths = np.array(pred.rate_lengths, dtype=float)
    path = np.array(pred.rate_path)
    log_c = _scale_fit(y, lengths, path)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    picks = rng.integers(0, y.shape[0], size=(BOOTSTRAP, y.shape[0]))
    boots = np.array([_scale_fit(y[i], lengths, path) for i in picks])
    low, high = np.percentile(pred.rate - boots, [2.5, 97.5])
    return RateRuns(pred.rate_lengths, tuple(t_interval(y[:, i]) for i in range(y.shape[1])), pred.rate - log_c,
                    float(low), float(high))  # fmt: skip


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

    reference = floor.estimate
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
                   "reference_excess_loss": reference.to_dict()}  # fmt: skip
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
        criterion="ci_low - tolerance <= predicted <= ci_high + tolerance (percentile bootstrap over replicates)",
        context={"mode_eigenvalue": pred.rate_eigenvalue, "lengths": list(pred.rate_lengths), "delta": pred.rate_delta,
                 "predicted_mean_over_delta": list(pred.rate_path),
                 "measured_mean_over_delta": [e.mean for e in rate.means], "perturbation": perturb.factor("rate")},
    )  # fmt: skip

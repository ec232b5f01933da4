"""What the theory predicts for ``amsgd validate --model``, before any run: the run length N, the loss
floor at the given cell and the theory that gives it, the stability runs' delays with their labels,
and the mode, perturbation and mean path of the rate runs (the protocol is described in
:mod:`amsgd.validation.model_checks`, which runs and checks them).

Everything here comes from the Hessian at the minimum x* (:func:`~amsgd.diffusion.theory.
model_predictions.predict_model`); the window bias of a run of N iterations from x* is
``½ Σ_i λ_i v_i · mean_{N/2 <= k <= N} ρ_i^{2k}`` (:func:`window_bias`), and N is the shortest run whose
bias is below :data:`WINDOW_BIAS` of the floor (:func:`floor_steps`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from amsgd.core.delays import ConstantDelay, DelayModel, RoundRobinDelay
from amsgd.core.models import ModelProblem

if TYPE_CHECKING:  # loaded on use: the command line checks its options before SciPy loads
    from amsgd.core.estimates import Estimate
    from amsgd.diffusion.theory.model_predictions import ModelPredictions
    from amsgd.validation.checks import Perturbations

#: Relative model tolerance of the loss floor (see :data:`FLOOR_REASON`).
FLOOR_TOLERANCE = 0.03
FLOOR_REASON = (
    "3% of the predicted floor: the theory keeps the variances of the per-example Hessian's entries in "
    "its eigenbasis and drops their cross-covariances; on the documented problems with light-tailed "
    "features that moves the floor by at most 1% for least squares and logistic regression and 2.5% for "
    "an MLP (docs/models.md); on heavy-tailed features (digits pixels) the floor has been 13-18% low, which "
    "the check finds at the default budget (a few short runs give an interval wide enough to take it)"
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
#: The rate runs start at x* ± δ q with δ this fraction of ``sqrt(2 F/λ)`` (:func:`rate_delta`). Logistic regression
#: on the blobs of docs/validation.md at η 0.1, μ 0.9, τ 1, B 32, l2 0.001 (sqrt(2 F/λ) = 1.23, ten times the
#: mode's own stationary spread): the mean of the paired difference after 24 iterations, over the recursion's,
#: 0.938 at the fraction 1, 0.993 at 0.3, 0.998 at 0.1 and 0.03 (± 0.002 at every fraction; 256 pairs).
RATE_DELTA_FRACTION = 0.1
#: The clearly unstable delay is this multiple of the mean-stability boundary τ_c (rounded up).
UNSTABLE_FACTOR = 1.5
#: The largest bias of the floor runs' window average from their start at x*, relative to the floor.
WINDOW_BIAS = 1e-3
MIN_STEPS = 2000
MAX_STEPS = 200_000
#: A feature whose standardised fourth moment exceeds this is heavy-tailed (Gaussian: 3).
HEAVY_TAIL_KURTOSIS = 10.0
#: The runs' divergence norm (that of ``amsgd simulate``: ``‖x‖``, for least squares measured from the
#: targets' mean in their standard deviation, :func:`~amsgd.simulate.models.divergence_ball`).
DIVERGENCE_NORM = 1e6


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

    @property
    def tau_ms_at_limit(self) -> bool:
        """Whether ``tau_ms`` is only the longest delay the full second moments take (stable there, the
        mean boundary further out): a lower bound of the boundary, not the boundary."""
        from amsgd.diffusion.theory.full_moments import FULL_MOMENTS_MAX_DELAY

        return (self.boundary_theory == FULL_THEORY and self.tau_ms == FULL_MOMENTS_MAX_DELAY
                and math.ceil(self.tau_c) - 1 > FULL_MOMENTS_MAX_DELAY)  # fmt: skip

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "stability"}
        d["stability"] = [p.to_dict(self.family) for p in self.stability]
        return {k: (_number(v) if isinstance(v, float) else v) for k, v in d.items()}


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

    point = theory.point
    curved = point.eigenvalues[: point.top][point.curved()[: point.top]]  # a flat mode's radius is 1 up to rounding
    growth = float(np.log(np.max(spectral_radii(curved, eta, mu, tau))))
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
    (:attr:`~amsgd.diffusion.theory.model_predictions.ModelPredictions.full_cells`); None elsewhere."""
    cells, p = theory.full_cells, theory.problem
    return None if cells is None else lambda tau: cells(p.eta, p.mu, tau)


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
            unit = p.data.target_scale  # the divergence ball's radius is DIVERGENCE_NORM of these
            reach = math.log(DIVERGENCE_NORM / min(max(scale / unit, 1e-8), 1.0)) / growth
            n = min(MAX_STEPS, max(steps, int(math.ceil(2 * reach))))
        points.append(StabilityPoint(tau, label, growth, at, max(n, 10 * tau)))
    return tau_c, tau_ms, bounded, unstable, points


class _GivenCell(NamedTuple):
    """The given cell by the theory that gives its floor: the full second moments where they apply,
    else the diagonal theory (``theory``); ``breakdown`` where the full moments call it unstable and the
    diagonal theory stable."""

    stable: bool
    stable_diagonal: bool
    floor: float
    theory: str
    radius: float  # the full second moments' feedback radius ρ(T), NaN where they do not apply
    breakdown: bool


def _given_cell(theory: ModelPredictions, full, notes: list[str]) -> _GivenCell:
    """Mean-square stability and the floor of the given cell (``full``: the full second moments there,
    or None); an unstable cell, or a disagreement between the two theories, is said in ``notes``."""
    p, floor = theory.problem, theory.floor
    stable_diagonal = bool(np.isfinite(floor.value) and theory.cell(p.eta, p.mu, p.delay).stable)
    if full is None:
        cell = _GivenCell(stable_diagonal, stable_diagonal, floor.value, DIAGONAL_THEORY, math.nan, False)
    else:
        cell = _GivenCell(full.stable, stable_diagonal, full.floor, FULL_THEORY, full.radius,
                          stable_diagonal and not full.stable)  # fmt: skip
    if full is not None and cell.stable != stable_diagonal:
        notes.append(f"the full second moments call the given cell mean-square {'' if cell.stable else 'un'}stable "
                     f"(feedback radius {cell.radius:.3g}) where the diagonal theory calls it "
                     f"{'' if stable_diagonal else 'un'}stable" + (f" with a floor of {floor.value:.4g}: the floor "
                     "is not checked, the runs at the given cell are checked to break down" if cell.breakdown
                     else ""))  # fmt: skip
    elif not cell.stable:
        notes.append("the theory calls the given (eta, mu, delay) mean-square unstable: no floor to check")
    if cell.stable and (saturated := theory.floor_note):  # the floor is checked, and known to overstate here
        notes.append(saturated)
    return cell


def predict(problem: ModelProblem, steps: int | None = None,
            perturb: Perturbations | None = None) -> tuple[ModelPredictions, ModelPrediction]:  # fmt: skip
    """The theory at x* and the :class:`ModelPrediction` of every run, for runs of ``steps`` iterations
    (None: :func:`floor_steps`); nothing is simulated here."""
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
    if steps:
        bias = window_bias(theory, steps, floor=checked)
    else:
        steps, bias = floor_steps(theory, floor=checked)
    theory = ModelPredictions(problem, theory.point, PredictOptions(steps=steps))  # the run length ranks the rate
    point, notes = theory.point, []
    cell = _given_cell(theory, full, notes)
    tolerance, _ = floor_tolerance(problem.model, cell.theory, bias)
    family = "workers" if isinstance(problem.delay, RoundRobinDelay) else "delay"
    if family == "delay" and not isinstance(problem.delay, ConstantDelay):
        notes.append(f"the stability boundary is over constant delays; the given delay {problem.delay.spec} "
                     "enters the floor and the rate only")  # fmt: skip
    tau_c, tau_ms, bounded, unstable, points = _stability_runs(theory, family, steps, moments_at, perturb, notes,
                                                               cell.stable_diagonal)  # fmt: skip
    rate, lam, j, lengths, delta, path, curve, noise = _rate_prediction(theory, cell.stable_diagonal, steps, notes)
    prediction = ModelPrediction(
        loss_at_minimum=point.loss, gradient_norm=point.gradient_norm, parameters=int(point.x.size),
        hessian_top=tuple(float(v) for v in point.eigenvalues[: point.top]), kurtosis=feature_kurtosis(problem),
        floor=cell.floor, floor_diagonal=theory.floor.value, floor_theory=cell.theory, floor_tolerance=tolerance,
        floor_additive=theory.floor.additive_linear, feedback_radius=cell.radius, stable=cell.stable,
        stable_diagonal=cell.stable_diagonal, steps=steps,
        given_steps=max(steps, min(MAX_STEPS, BREAKDOWN_LENGTH * steps)) if cell.breakdown else steps,
        given_breakdown=cell.breakdown, window_bias=bias,
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

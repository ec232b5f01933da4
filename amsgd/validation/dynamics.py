"""Checks of the dynamics: the ODE mean trajectory, the phases from the saddle e_2, the local rate.

* **ODE.** From the tilted start ``h_0 ∝ (1, ..., 1)`` the mean error is compared with the closed
  form ``h(t) ∝ exp(Λ t/(1 − μ)) h_0`` at the times it falls to 3/4, 1/2 and 1/4 of its initial
  value. The first step has no momentum (``v_{−1} = v_0``): the velocity builds up as
  ``η g (1 − μ^{k+1})/(1 − μ)``, so the iterate lags the ODE by ``μ/(1 − μ)`` iterations (the
  initial layer); the ODE is evaluated at ``t = (k − μ/(1 − μ)) η``.
* **Escape.** The derived escape time is when the unstable OU variance gives ``E h_1² = δ²``. It is
  compared with the first iteration at which the mean over replicates of ``h_1²/‖h‖² = 1 − sin²``
  reaches δ², with the crossings of its pointwise 95% band as interval; so are the exact linear
  escaping mode's crossing and the escape law's own mean curve (each run's share saturating). A
  single run escapes later: the mean over replicates of each run's first passage is checked against
  the mean of the first-passage law of the exact linear escaping recursion
  (:mod:`amsgd.diffusion.theory.first_passage`).
* **Travel.** Per replicate, the iterations from ``sin² <= 1 − δ²`` to ``sin² <= δ²``; their mean
  with a t-interval, against the mean of the per-run travel law (:mod:`amsgd.diffusion.theory.travel_law`),
  the ODE's travel beside it.
* **Local rate.** Two runs share every random number (the same seed): one from e_1 and one tilted
  by ``sin² = min(0.02, F/2)`` toward the slowest tangent mode e_i (F the linear floor: the
  curvature of sin² along the decay biases the rate by a relative amount of order the tilt, which
  must stay inside the check's tolerance of 2F). Their per-replicate difference of
  ``h_i`` removes the common noise; for the linear recursion it is exactly the mean dynamics,
  decaying like ``ρ^k`` with ρ the spectral radius of the mode's companion matrix (exact linear
  theory, any i.i.d. delay); for a complex dominant root it oscillates, ``ρ^k cos(ω k + φ)``, and
  is fitted as such. The fitted rate ``−log ρ`` per iteration is checked against the finite-η rate:
  ``−log ρ`` of the mode's mean recursion with the ratio's drift ``c_i = η s_i/(1 − μ_i)``, the
  restoring-force split and the radial friction (:attr:`.norm_coupling.NormCoupling.decay_rates`;
  the exact linear rate where the floor has no norm coupling), terms of relative order F that put
  the exact linear rate 5–41% above the measured one (docs/linear-theory.md section 5). The exact linear rate and the OU rate
  ``η (λ_1 − λ_i)/(1 − μ)`` are reported beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from amsgd.core.estimates import Estimate, t_interval
from amsgd.core.problem import Problem
from amsgd.diffusion.ode import integrate_ode
from amsgd.diffusion.ou import sample_ou
from amsgd.diffusion.theory.first_passage import CurveCrossing, FirstPassageLaw
from amsgd.diffusion.theory.linear_recursion import dominant_frequency
from amsgd.validation.checks import Check
from amsgd.validation.context import (
    ESCAPE_TOLERANCE,
    LINEAR_REASON,
    RATE_REASON,
    SMALL_NOISE_FLOOR,
    Context,
    relaxation_time,
)
from amsgd.validation.statistics import (
    RateFit,
    crossing_interval,
    decay_rate,
    pointwise_band,
)

#: Fractions of the initial error at which the mean trajectory is checked.
ODE_LEVELS = (0.75, 0.5, 0.25)
#: The longest run of the ODE checks, in iterations.
ODE_MAX_STEPS = 200_000
#: A dominant root with ``|arg z| > OSCILLATING · (−log |z|)`` is fitted as a damped oscillation: below, the
#: phase turns by under 0.04 rad over the four e-folds of the window and a straight line on the log fits.
OSCILLATING = 0.01
#: Largest tilt of the start of the local-rate runs, as sin² of the angle to e_1 (:func:`rate_tilt`).
RATE_TILT = 0.02
#: The most records of the phase runs and grid points of the OU escape paths (every iteration up to this
#: many, then every ``ceil(steps/PHASE_RECORDS)``): 2048 runs and 4000 OU paths of a slow escape would
#: otherwise fill the memory.
PHASE_RECORDS = 20_000


@dataclass(frozen=True)
class Trajectory:
    iterations: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    ode: np.ndarray  # the ODE error at the lagged times
    ode_unlagged: np.ndarray
    floor: float
    check_iterations: tuple[int, ...]
    checks: tuple[Check, ...]


def ode_start(problem: Problem) -> np.ndarray:
    """``v_0 = Q h_0`` with ``h_0 = (1, ..., 1)/√d``: every eigen-direction present."""
    return problem.from_eigen(np.full(problem.dim, 1 / math.sqrt(problem.dim)))


def startup_lag(problem: Problem) -> float:
    """``μ/(1 − μ)`` iterations: the delay of the iterate behind the ODE caused by ``v_{−1} = v_0``."""
    return problem.mu / (1 - problem.mu)


def ode_trajectory(ctx: Context, key: int = 1) -> Trajectory:
    """Mean error from the tilted start against the ODE closed form (module docstring)."""
    p = ctx.problem
    v0 = ode_start(p)
    lag = startup_lag(p)
    floor = ctx.diffusion_floor
    # run until the ODE error is a tenth of the floor (the mean then sits on the floor)
    probe = integrate_ode(p, v0, np.arange(0, ODE_MAX_STEPS + 1, 50, dtype=float))
    settled = probe.iterations[np.argmax(probe.error < 0.1 * floor)] if (probe.error < 0.1 * floor).any() else ODE_MAX_STEPS
    steps = int(min(max(1.5 * settled + lag, 200), ODE_MAX_STEPS))
    record = max(1, steps // 300)
    result = ctx.simulate(p, steps, ctx.budget.transient_replicates, (key,), start=v0, record_every=record)
    k = result.iterations
    errors = result.error[~result.diverged]
    mean, low, high = pointwise_band(errors)
    ode = integrate_ode(p, v0, np.clip(k - lag, 0, None)).error
    ode_plain = integrate_ode(p, v0, k.astype(float)).error
    eps = ctx.ode_drift_correction()
    checks, at = [], []
    e0 = ode[0]
    for level in ODE_LEVELS:
        reached = ode <= level * e0
        i = int(np.argmax(reached)) if reached.any() else k.size - 1  # not reached: the run's end, undecided
        at.append(int(k[i]))
        est = t_interval(errors[:, i])
        name = f"ode-mean-error-at-{int(round(100 * level))}pct"
        predicted = ctx.perturb(name, ode[i])
        tol = floor + eps * abs(e0 - ode[i])
        checks.append(Check(
            name=name, group="ode", predicted=predicted, measured=est.mean, ci_low=est.ci_low,
            ci_high=est.ci_high, tolerance=tol, unit="sin^2",
            tolerance_reason=(
                "O(eta) terms of the ODE limit: the noise adds the tangent-mode variance (at most the "
                f"diffusion floor {floor:.4g}) and the modified equation changes the drift by the "
                f"relative amount {eps:.3g}"
            ),
            context={"iteration": int(k[i]), "start": "h0 = (1,...,1)/sqrt(d)", "startup_lag_iterations": lag,
                     "replicates": est.n, "perturbation": ctx.perturb.factor(name)},
            out_of_range=_ode_out_of_range(floor),
            undecided="" if reached.any() else _ode_unreached(level, p, steps),
        ))  # fmt: skip
    return Trajectory(k, mean, low, high, ode, ode_plain, floor, tuple(at), tuple(checks))


def _ode_unreached(level: float, problem: Problem, steps: int) -> str:
    """Why an ODE check cannot be decided where the ODE's error stays above ``level`` of its start for the
    whole run (at most :data:`ODE_MAX_STEPS`): at iteration 0 prediction and runs agree by construction."""
    relaxation = relaxation_time(problem)
    return (f"the ODE's error does not fall to {level:.0%} of its start within the {steps} iterations run "
            f"(at most {ODE_MAX_STEPS}; the relaxation time (1 - mu)/(eta (lambda_1 - lambda_2)) is "
            f"{relaxation:.3g} iterations): a larger eta checks the ODE")


def _ode_out_of_range(floor: float) -> str:
    """Why the ODE checks lie outside their theory's range ("" where they do not): a diffusion floor above
    :data:`SMALL_NOISE_FLOOR`, where the tolerance (the floor) would accept almost any mean error."""
    if floor > SMALL_NOISE_FLOOR:
        return (f"the diffusion floor F = {floor:.3g} is above {SMALL_NOISE_FLOOR:g}: the noise is no longer small "
                "beside the ODE's error, and the tolerance F would accept almost any measurement")
    return ""


@dataclass(frozen=True)
class PhaseRun:
    iterations: np.ndarray
    h1_mean: np.ndarray
    h1_low: np.ndarray
    h1_high: np.ndarray
    delta_sq: float
    escape_predicted: float
    travel_predicted: float
    escape_samples: np.ndarray  # per-replicate first passage of sin² <= 1 − δ²
    travel_samples: np.ndarray
    ou_escape_samples: np.ndarray  # the same first passage for the unstable OU limit at e_2
    checks: tuple[Check, ...]
    escape_saturated: int | None = None  # the escape law's own mean curve's crossing (None: not sampled)
    escape_law_mean: float | None = None  # the per-run first-passage law's mean (``escape-iterations-per-run``)


def escape_mode(ctx: Context) -> tuple[float, float]:
    """``(a, σ)`` of the unstable mode of the OU limit at the worst saddle (per unit time)."""
    theory = ctx.theory
    saddle = next(p for p in theory.points if p.j == theory.phases.worst_saddle)
    return saddle.fastest.drift_rate, saddle.fastest.diffusion


def ou_escape_times(ctx: Context, horizon: float, paths: int = 4000, key: int = 90) -> np.ndarray:
    """First iteration at which ``η U² >= δ²`` for the unstable OU ``dU = a U dt + σ dB``, ``U(0) = 0``.

    Exact transitions (:func:`amsgd.diffusion.ou.sample_ou`) on a grid of one iteration, or of
    ``ceil(horizon/PHASE_RECORDS)`` for a slow escape (a passage then counted at the middle of the grid
    step it happened in, as the phase runs' are).
    """
    a, sigma = escape_mode(ctx)
    eta = ctx.problem.eta
    grid = math.ceil(int(horizon) / PHASE_RECORDS)
    times = eta * np.arange(0, int(horizon) + 1, grid)
    rng = np.random.default_rng(ctx.seed(key).generate_state(4))
    u = sample_ou(np.array([[a]]), np.array([[sigma]]), np.zeros(1), times, paths=paths, rng=rng).u[:, :, 0]
    hit = eta * u**2 >= ctx.theory.phases.delta_sq
    return np.where(hit.any(axis=0), grid * np.argmax(hit, axis=0) - (grid - 1) / 2, np.nan).astype(float)


def first_passage(iterations: np.ndarray, errors: np.ndarray, level: float) -> np.ndarray:
    """Per row, the first recorded iteration with ``error <= level`` (NaN when never)."""
    below = errors <= level
    return np.where(below.any(axis=1), iterations[np.argmax(below, axis=1)], np.nan).astype(float)


def phases(ctx: Context, key: int = 2) -> PhaseRun:
    """Escape from e_2 and travel to e_1 against the derivation's phases (module docstring)."""
    p = ctx.problem
    ph = ctx.theory.phases
    dsq = ph.delta_sq
    esc_pred, travel_pred = ph.escape_time / p.eta, ph.travel_time / p.eta
    # long enough for a run's own escape and travel (their laws' tails reach past 3 times the mean
    # curve's): a run that has not arrived is left out of the travel's mean, which it would bias low
    per_run = np.nan_to_num(ph.escape_iterations + ph.travel_iterations, nan=esc_pred + travel_pred)
    steps = int(max(3 * (esc_pred + travel_pred), 4 * per_run, 500))
    record = math.ceil(steps / PHASE_RECORDS)  # every iteration but for slow escapes
    result = ctx.simulate(p, steps, ctx.budget.transient_replicates, (key,), start="e2", record_every=record)
    k = result.iterations.astype(float)
    errors = result.error[~result.diverged]
    h1 = 1.0 - errors
    mean, low, high = pointwise_band(h1)
    shift = (record - 1) / 2  # a passage first seen at a record lies in the span before it: its middle
    escape = first_passage(k, errors, 1 - dsq) - shift
    travel = first_passage(k, errors, dsq) - shift - escape
    crossing, replicates = crossing_interval(k, h1, dsq), int(errors.shape[0])
    linear = ph.escape_iterations_linearized  # None: not reached within the iterations the theory follows
    saturated = ph.escape_curve  # None: not sampled
    law = _escape_law_check(ctx, escape)
    checks = (
        _escape_check(ctx, crossing, escape, replicates),
        *(() if linear is None else (_escape_check(ctx, crossing, escape, replicates, linear),)),
        *(() if saturated is None or saturated.iterations is None else
          (_saturated_check(ctx, crossing, saturated, replicates),)),
        law,
        _travel_check(ctx, travel),
    )
    ou = ou_escape_times(ctx, horizon=steps)
    return PhaseRun(k, mean, low, high, dsq, esc_pred, travel_pred, escape, travel, ou, checks,
                    None if saturated is None else saturated.iterations, law.predicted)  # fmt: skip


#: What the escape checks of the mean curve measure.
MEAN_CROSSING = "first iteration at which the mean of h_1^2/|h|^2 over replicates reaches delta^2"


def _escape_check(ctx: Context, crossing: Estimate, escape: np.ndarray, replicates: int,
                  linearized: int | None = None) -> Check:  # fmt: skip
    """A mean-curve escape time against the crossing of δ² by the mean of h_1²/|h|²: the diffusion
    limit's, or with ``linearized`` the exact linear escaping mode's at the problem's η, μ and delay."""
    name = "escape-iterations" if linearized is None else "escape-iterations-linearized"
    a, _ = escape_mode(ctx)
    ph = ctx.theory.phases
    predicted = ph.escape_time / ctx.problem.eta if linearized is None else float(linearized)
    scope = ("the limit fixes the growth rate a of the unstable mode" if linearized is None else
             "the linear recursion fixes the growth at the problem's eta, mu and delay")  # fmt: skip
    return Check(
        name=name, group="phases", predicted=ctx.perturb(name, predicted),
        measured=crossing.mean, ci_low=crossing.ci_low, ci_high=crossing.ci_high,
        tolerance=ESCAPE_TOLERANCE / (a * ctx.problem.eta), unit="iterations",
        out_of_range=ph.limit_escape_note if linearized is None else "",
        tolerance_reason=(
            f"the escape time is logarithmic in 1/eta: {scope}, its starting amplitude only to "
            "1 + O(eta a/(1-mu)^2) + O(delta^2); a factor e^(1/2) in amplitude is 1/(4a) in time"
            if linearized is None else
            f"the escape time is logarithmic: {scope}, the nonlinear terms move its amplitude by "
            "1 + O(delta^2); a factor e^(1/2) in amplitude is 1/(4a) in time"
        ),
        context={"measured_as": MEAN_CROSSING,
                 "predicted_as": ("the diffusion limit's escape time" if linearized is None else
                                  "first iteration at which the exact linear escaping mode's variance from rest reaches "
                                  "delta^2 (a random delay's spread fed back)"),
                 "delta_sq": ph.delta_sq, "start": "e2", "replicates": replicates,
                 "mean_first_passage_iterations": float(np.nanmean(escape)),
                 "perturbation": ctx.perturb.factor(name)},
    )  # fmt: skip


def _saturated_check(ctx: Context, crossing: Estimate, curve: CurveCrossing, replicates: int) -> Check:
    """The escape law's own mean curve (each run's h_1²/|h|² saturating) against the runs' crossing of δ²,
    within the larger side of its sampled crossing's interval (up to the paths' horizon where the interval
    has no upper end); outside its range where the escape law is."""
    name = "escape-iterations-saturated"
    low, high = curve.interval
    predicted = float(curve.iterations)
    tolerance = max(predicted - low, (curve.horizon if high is None else high) - predicted, 1.0)
    return Check(
        name=name, group="phases", predicted=ctx.perturb(name, predicted),
        measured=crossing.mean, ci_low=crossing.ci_low, ci_high=crossing.ci_high, tolerance=tolerance,
        unit="iterations", out_of_range=ctx.theory.phases.saddle_note,
        tolerance_reason=("the predicted crossing is itself sampled: the larger side of its 95% interval (to the "
                          "paths' horizon where the interval has no upper end)"),
        context={"measured_as": MEAN_CROSSING,
                 "predicted_as": ("first iteration at which the mean over the escape law's paths of "
                                  "r^2/(1 + r^2 + S) reaches delta^2 (r the linear ratio, S the other "
                                  "coordinates' mean share)"),
                 "predicted_interval": [low, high], "paths": curve.paths, "delta_sq": ctx.theory.phases.delta_sq,
                 "start": "e2", "replicates": replicates, "perturbation": ctx.perturb.factor(name)},
    )  # fmt: skip


def _escape_law_check(ctx: Context, escape: np.ndarray) -> Check:
    """The mean of the single-run escape law against the replicates' first passages."""
    return _law_check(
        ctx, "escape-iterations-per-run", ctx.theory.phases.escape_law, escape,
        out_of_range=ctx.theory.phases.saddle_note,
        measured_as="mean over replicates of the first iteration with h_1^2/|h|^2 >= delta^2",
        predicted_as="mean of the first-passage law of the exact linear escaping recursion",
    )  # fmt: skip


def _travel_check(ctx: Context, travel: np.ndarray) -> Check:
    """The mean of the per-run travel law against the replicates' iterations from escape to arrival."""
    ph = ctx.theory.phases
    return _law_check(
        ctx, "travel-iterations", ph.travel_law, travel,
        measured_as="per replicate, iterations from sin^2 <= 1 - delta^2 to sin^2 <= delta^2",
        predicted_as="mean of the travel law: the plane's angle and the other coordinates, from rest at the saddle",
        ode_iterations=ph.travel_time / ctx.problem.eta, delta_sq=ph.delta_sq,
    )  # fmt: skip


def _law_check(ctx: Context, name: str, law: FirstPassageLaw, samples: np.ndarray, out_of_range: str = "",
               **context) -> Check:  # fmt: skip
    """A sampled per-run law's mean against the replicates' ``samples``, within the half-width of the
    law's own 95% interval (``out_of_range``: why the law is outside its theory's range, "" where it is not)."""
    measured = t_interval(samples)
    return Check(
        name=name, group="phases", predicted=ctx.perturb(name, law.mean.mean),
        measured=measured.mean, ci_low=measured.ci_low, ci_high=measured.ci_high,
        tolerance=(law.mean.ci_high - law.mean.ci_low) / 2, unit="iterations", out_of_range=out_of_range,
        undecided=_unfinished(law.samples, "of the law's sampled paths") or _unfinished(samples, "replicates"),
        tolerance_reason="the predicted law is itself sampled: the half-width of its mean's 95% interval",
        context={**context, "predicted_median": law.quantile(0.5), "measured_median": float(np.nanmedian(samples)),
                 "law_paths": int(law.samples.size), "replicates": measured.n,
                 "unfinished_replicates": int(np.isnan(samples).sum()),
                 "perturbation": ctx.perturb.factor(name)},
    )  # fmt: skip


def _unfinished(passages: np.ndarray, what: str) -> str:
    """Why a mean first passage cannot be checked ("" where it can): some passages were not reached
    within the iterations followed (NaN), and the mean over the others is biased low."""
    missing = int(np.isnan(passages).sum())
    if not missing:
        return ""
    return (f"{missing} of {passages.size} {what} did not get there within the iterations followed: the mean over "
            "the others is biased low")


@dataclass(frozen=True)
class LocalRate:
    problem: Problem
    mode: int  # 0-based coordinate of the slowest tangent mode
    fit: RateFit
    exact: float  # −log ρ per iteration, exact linear theory
    ou: float  # η a/(1 − μ) per iteration
    check: Check
    finite: float | None = None  # −log ρ per iteration at finite η (None: the floor has no norm coupling)


def rate_tilt(floor: float) -> float:
    """sin² of the tilted start: :data:`RATE_TILT`, or ``F/2`` when smaller. Along the decay
    ``h_i = r/√(1 + r²)`` (r = h_i/h_1 the coordinate that decays geometrically), so the fitted rate
    of ``h_i`` is low by a relative amount of order the tilt: 0.16% at η = 1e-7, where the tolerance
    2F is 1.7e-5."""
    return min(RATE_TILT, floor / 2) if math.isfinite(floor) and floor > 0 else RATE_TILT


def local_rate(ctx: Context, problem: Problem | None = None, key: tuple[int, ...] = (3,),
               name: str = "convergence-rate-near-e1", group: str = "rate") -> LocalRate:  # fmt: skip
    """Fitted decay of the common-noise difference of the slowest tangent coordinate (module docstring)."""
    p = problem or ctx.problem
    theory = ctx.at(p.eta, p.mu, p.delay)
    mode, exact = theory.slowest_error_mode()
    coupling = theory.finite_eta.coupling
    finite = None if coupling is None else coupling.decay_rates[mode - 1]  # tangent modes from coordinate 1
    floor = theory.linearized.floor
    tilt = rate_tilt(floor)
    h0 = np.zeros(p.dim)
    h0[0], h0[mode] = math.sqrt(1 - tilt), math.sqrt(tilt)
    steps = ctx.budget.rate_steps
    ou = theory.ou_rate(mode)
    steps = int(max(steps, 4.5 / ou))  # long enough to fall by e^-4
    record = max(1, steps // 300)
    common = dict(record_every=record, coordinates="all")
    tilted = ctx.simulate(p, steps, ctx.budget.replicates, key, start=p.from_eigen(h0), **common)
    base = ctx.simulate(p, steps, ctx.budget.replicates, key, start="e1", **common)
    ok = ~(tilted.diverged | base.diverged)
    diff = tilted.coordinates[ok][:, :, mode] - base.coordinates[ok][:, :, mode]
    # the second root of the momentum/delay filter decays like max(μ, q)^k: skip its transient
    transient = 3.0 / (1 - max(p.mu, p.delay.mean / (1 + p.delay.mean)))
    omega = dominant_frequency(float(theory.modes.rates[mode]), p.eta, p.mu, theory.delay_law)
    # a complex root: the mean oscillates within the window, and the fit must follow it
    fit = decay_rate(tilted.iterations, diff, first=transient, frequency=omega if omega > OSCILLATING * exact else 0.0)
    raw = exact if finite is None else finite
    check = Check(
        name=name, group=group, predicted=ctx.perturb(name, raw), measured=fit.rate, ci_low=fit.ci_low,
        ci_high=fit.ci_high, tolerance=ctx.linear_tolerance(raw, floor), unit="1/iteration",
        tolerance_reason=LINEAR_REASON if finite is None else RATE_REASON,
        context={"mode": mode + 1, "exact_linear_rate": exact, "finite_eta_rate": finite, "ou_rate": ou,
                 "tilt_sin2": tilt, "fit_window_iterations": list(fit.window),
                 "measured_as": "decay rate of the mean over replicates of h_i(tilted) - h_i(e_1), common random numbers",
                 "eta": p.eta, "mu": p.mu, "delay": p.delay.spec, "replicates": int(ok.sum()),
                 "interval": "percentile bootstrap over replicates", "perturbation": ctx.perturb.factor(name)},
    )  # fmt: skip
    return LocalRate(p, mode, fit, exact, ou, check, finite)

"""Error against delay: the stability knee τ*, the linear floor up to it, and the breakdown beyond.

The measured knee and the stability checks are stated in :data:`amsgd.validation.texts.KNEE` and
:data:`~amsgd.validation.texts.STABILITY`; the constants below fix them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from amsgd.core.estimates import Estimate
from amsgd.core.progress import shares
from amsgd.validation.checks import Check
from amsgd.validation.context import (
    FINITE_ETA_REASON,
    FINITE_ETA_TOLERANCE,
    Context,
    constant_delay,
    relaxed_steps,
)
from amsgd.validation.stationary import divergence_verdict, divergence_within_risk, finite_eta_floor_check
from amsgd.validation.statistics import proportion_interval, ratio_interval

#: Breakdown threshold on the error ratio to τ = 0, times the ratio the exact linear floor predicts at that
#: delay where it rises above 1 (up to τ*; beyond it the theory has no floor, and the factor stands alone).
KNEE_FACTOR = 1.5
#: Diverged fraction above which a delay counts as broken down.
DIVERGED_LIMIT = 0.5
#: Accepted knee window (τ*, KNEE_SLACK · τ* + grid step].
KNEE_SLACK = 1.25
#: A sweep's runs last at least this many relaxation times (1 − μ)/(η (λ_1 − λ_2)) of the escaping mode
#: (the default budget's 20 000 iterations are 33 of them at η = 5e-4, μ = 0.7), so that runs from a
#: random start have left the saddle before the averaging half; at most MAX_STEP_FACTOR times the budget.
SWEEP_RELAXATIONS = 32
#: Intervals of the default delay grid, which spans 0 .. about 1.4 τ* of the smallest momentum.
SWEEP_INTERVALS = 16
#: The most delays, besides the grid's, at which a curve's exact linear floor is computed (every one up to
#: τ* below this many): at η 5e-5 on a spectrum of 13 eigenvalues τ* reached 1183 and the floor at every
#: delay took minutes (0.02–0.04 s each).
LINEAR_CURVE_POINTS = 200
KNEE_CRITERION = (
    f"measured knee = smallest grid tau with diverged fraction > {DIVERGED_LIMIT} or mean stationary "
    f"error > {KNEE_FACTOR} x its tau = 0 value x the exact linear floor's predicted ratio to tau = 0 where above 1 "
    f"(up to tau*); pass iff tau* < knee <= {KNEE_SLACK} tau* + grid step, or, where the predicted divergence "
    f"risk over the runs' length may pass {DIVERGED_LIMIT} at a grid tau up to tau* (heavy tails), iff the grid tau "
    f"before the first that may < knee <= the first whose whole risk interval is above {DIVERGED_LIMIT} "
    f"(else {KNEE_SLACK} tau* + grid step)"
)


@dataclass(frozen=True)
class DelayCurve:
    """Stationary error against constant delay at one momentum."""

    mu: float
    taus: np.ndarray
    error: tuple[Estimate, ...]
    diverged_fraction: np.ndarray
    tau_star: int | None
    tau_dde: float
    linear_taus: np.ndarray  # 0 .. τ*: every stable delay, or LINEAR_CURVE_POINTS of them and the grid's
    linear_floor: np.ndarray
    diffusion_floor: float
    knee: float  # NaN: no breakdown on the grid
    steps: int  # iterations of each run
    replicates: int = 0  # runs at each delay
    finite_taus: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))  # the grid's delays up to τ*
    finite_floor: np.ndarray = field(default_factory=lambda: np.zeros(0))  # the finite-η floor there

    @property
    def mean(self) -> np.ndarray:
        return np.array([e.mean for e in self.error])

    @property
    def ci(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array([e.ci_low for e in self.error]), np.array([e.ci_high for e in self.error])

    def breakdown_ratios(self) -> np.ndarray:
        """Per grid delay: the ratio of the error to its τ = 0 value above which the delay has broken
        down, :data:`KNEE_FACTOR` times the exact linear floor's predicted rise (:func:`predicted_rise`)."""
        return KNEE_FACTOR * np.array([predicted_rise(self.linear_taus, self.linear_floor, int(t)) for t in self.taus])

    def broken(self) -> np.ndarray:
        """Per grid delay: breakdown by the knee criterion (:data:`KNEE_CRITERION`)."""
        ratio = np.where(np.isfinite(self.mean), self.mean / self.error[0].mean, np.inf)
        return (self.diverged_fraction > DIVERGED_LIMIT) | (ratio > self.breakdown_ratios())


def predicted_rise(linear_taus: np.ndarray, linear_floor: np.ndarray, tau: int) -> float:
    """How much the exact linear floor rises from τ = 0 to ``tau`` (``linear_floor`` at the delays
    ``linear_taus``, the first 0), where it rises and is finite; 1 elsewhere, beyond τ* and at a delay it
    was not computed at included. On the published problem it stays below 1.35 up to τ*, on
    Σ = diag(10, 1) at η 2e-4, μ 0.9 it reaches 1.69 at 0.8 τ*: the error's own rise there is not a
    breakdown."""
    at = np.flatnonzero(np.asarray(linear_taus) == tau)
    if not at.size or not (np.isfinite(linear_floor[at[0]]) and linear_floor[0] > 0):
        return 1.0
    return max(1.0, float(linear_floor[at[0]] / linear_floor[0]))


def linear_delays(tau_star: int | None, grid: np.ndarray) -> np.ndarray:
    """The delays at which a curve's exact linear floor is computed: every one from 0 to τ* up to
    :data:`LINEAR_CURVE_POINTS` of them, else that many spread evenly over 0 .. τ* and the ``grid``'s
    own up to τ* (where the knee's threshold needs it); none without a τ*."""
    if tau_star is None:
        return np.zeros(0, dtype=int)
    if tau_star < LINEAR_CURVE_POINTS:
        return np.arange(tau_star + 1)
    spread = np.rint(np.linspace(0, tau_star, LINEAR_CURVE_POINTS)).astype(int)
    grid = np.asarray(grid, dtype=int)
    return np.union1d(spread, grid[grid <= tau_star])


def measured_knee(taus: np.ndarray, broken: np.ndarray) -> float:
    return float(taus[np.argmax(broken)]) if broken.any() else math.nan


def delay_curve(ctx: Context, mu: float, taus: Sequence[int], key: tuple[int, ...], *, start: str = "e1",
                replicates: int | None = None, steps: int | None = None) -> DelayCurve:  # fmt: skip
    """Simulate the stationary error on the grid ``taus`` (must start at 0) at momentum ``mu``."""
    taus = np.asarray(sorted(set(int(t) for t in taus)))
    if taus[0] != 0:
        raise ValueError("the delay grid must contain 0: the knee is measured relative to tau = 0")
    p = ctx.problem.replace(mu=mu)
    reps = replicates or ctx.budget.sweep_replicates
    steps = steps or ctx.budget.sweep_steps
    errors, diverged = [], []
    for j, tau in enumerate(shares(taus)):
        run = ctx.simulate(constant_delay(p, tau), steps, reps, (*key, j), start=start, record_every=steps)
        errors.append(run.stationary_error)
        diverged.append(run.diverged_fraction)
    tau_star = ctx.tau_star(mu)
    lin_taus = linear_delays(tau_star, taus)
    lin = np.array([ctx.floor(p.eta, mu, int(t)).floor for t in lin_taus])
    finite_taus = taus[taus <= lin_taus[-1]] if lin_taus.size else taus[:0]
    finite = np.array([ctx.finite_eta(constant_delay(p, int(t))) for t in finite_taus])
    curve = DelayCurve(
        mu, taus, tuple(errors), np.array(diverged), tau_star, ctx.theory.tau_max_delay_differential(mu),
        lin_taus, lin, ctx.diffusion_floor * (1 - ctx.problem.mu) / (1 - mu), math.nan, steps, reps,
        finite_taus, finite,
    )  # fmt: skip
    return replace(curve, knee=measured_knee(taus, curve.broken()))


def knee_check(ctx: Context, curve: DelayCurve, group: str = "stability") -> Check:
    name = f"knee-mu-{curve.mu:g}"
    tau_star = curve.tau_star if curve.tau_star is not None else -1
    predicted = ctx.perturb(name, tau_star)
    step = float(np.median(np.diff(curve.taus))) if curve.taus.size > 1 else 1.0
    window = (predicted, KNEE_SLACK * predicted + step)
    early = divergence_knee(ctx, curve)
    if early:  # heavy tails: the runs break where the predicted risk passes one half (a perturbation scales it)
        first = int(np.flatnonzero(curve.taus == early["may"])[0])
        lower = ctx.perturb(name, float(curve.taus[first - 1]) if first else -1.0)
        window = (lower, window[1] if early["must"] is None else ctx.perturb(name, early["must"]))
    broken = curve.broken()
    i = int(np.argmax(broken)) if broken.any() else curve.taus.size
    below = float(curve.taus[i - 1]) if i > 0 else math.nan
    return Check(
        name=name, group=group, predicted=predicted, measured=curve.knee, ci_low=below, ci_high=curve.knee,
        relation="window", window=window, unit="iterations of delay", criterion=KNEE_CRITERION,
        context={"mu": curve.mu, "eta": ctx.problem.eta, "tau_grid_step": step,
                 "ci_meaning": "last grid delay without breakdown, first with",
                 "tau_max_delay_differential": curve.tau_dde, "perturbation": ctx.perturb.factor(name),
                 **({"divergence_knee": early} if early else {}),
                 **({} if broken.any() else {"unmeasured": f"no delay of the grid (up to {curve.taus[-1]:g}) broke down"})},
    )  # fmt: skip


def divergence_knee(ctx: Context, curve: DelayCurve) -> dict | None:
    """Where heavy tails break the runs before τ*: the smallest grid delay up to τ* whose predicted
    divergence risk over the curve's run length may pass :data:`DIVERGED_LIMIT` (its 95% interval reaches
    above), and the smallest where it must (the whole interval above; None where none does), with the
    predicted fractions. The grid is scanned down from τ*, and the scan stops at the first delay where the
    risk may not pass: it grows with the delay (one prediction where no delay breaks so, as for Gaussian
    data). None where the risk may not pass even at the largest grid delay up to τ*."""
    if curve.tau_star is None:
        return None
    found: dict = {"may": None, "must": None, "fractions": {}}
    for tau in sorted((int(t) for t in curve.taus if t <= curve.tau_star), reverse=True):
        problem = constant_delay(ctx.problem.replace(mu=curve.mu), tau)
        risk = ctx.divergence(problem, curve.steps)
        low, high = risk.interval
        if not high > DIVERGED_LIMIT:
            break
        found["may"], found["fractions"][str(tau)] = float(tau), risk.fraction
        if low > DIVERGED_LIMIT:
            found["must"] = float(tau)
    return found if found["may"] is not None else None


@dataclass(frozen=True)
class Sweep:
    curves: tuple[DelayCurve, ...]
    checks: tuple[Check, ...]

    def knee_table(self) -> list[dict]:
        """Per momentum: predicted τ*, the delay-differential τ, and the measured knee with its bracket."""
        rows = []
        for c in self.curves:
            broken = c.broken()
            i = int(np.argmax(broken)) if broken.any() else c.taus.size
            rows.append({
                "mu": c.mu, "tau_star": c.tau_star, "tau_delay_differential": c.tau_dde,
                "measured_knee": None if math.isnan(c.knee) else c.knee,
                "last_delay_without_breakdown": float(c.taus[i - 1]) if i > 0 else None,
                "error_tau0": c.error[0].mean, "linear_floor_tau0": float(c.linear_floor[0]) if c.linear_floor.size else None,
                "finite_eta_floor_tau0": float(c.finite_floor[0]) if c.finite_floor.size else None,
                "diffusion_floor": c.diffusion_floor,
            })  # fmt: skip
        return rows


def sweep_steps(ctx: Context, mu: float) -> int:
    """Iterations of a sweep's runs at momentum ``mu``: the budget's, or SWEEP_RELAXATIONS relaxation
    times ``(1 − μ)/(η (λ_1 − λ_2))`` where that is longer, at most MAX_STEP_FACTOR times the budget's."""
    return relaxed_steps(ctx.budget.sweep_steps, ctx.problem, SWEEP_RELAXATIONS, mu)


def default_taus(ctx: Context, mus: Sequence[float], fallback: Sequence[int]) -> tuple[int, ...]:
    """The delay grid 0, Δ, .., SWEEP_INTERVALS Δ with Δ = ⌈τ*/11.5⌉ for the largest τ* over ``mus``:
    it reaches past every knee window (τ*, 1.25 τ* + Δ] (16 Δ ≥ 1.25 τ* + Δ as 15 Δ ≥ 1.3 τ*), and is
    0, 10, .., 160 for the published problem (τ* = 115 at μ = 0.7). ``fallback`` where no τ* exists."""
    stars = [t for t in (ctx.tau_star(mu) for mu in mus) if t]
    if not stars:
        return tuple(fallback)
    step = max(1, math.ceil(round(max(stars) / 11.5, 9)))
    return tuple(range(0, SWEEP_INTERVALS * step + 1, step))


def sweep(ctx: Context, mus: Sequence[float], taus: Sequence[int], key: int = 7, start: str = "random") -> Sweep:
    """The published experiment: error against τ for each μ (runs of :func:`sweep_steps`); per μ the
    knee and the finite-η floor at τ = 0 and at the largest grid τ <= 0.8 τ*."""
    curves, checks = [], []
    for n, mu in enumerate(shares(mus)):
        curve = delay_curve(ctx, mu, taus, (key, n), start=start, steps=sweep_steps(ctx, mu))
        curves.append(curve)
        checks.append(knee_check(ctx, curve, group="sweep"))
        grid = [0]
        if curve.tau_star:
            grid.append(int(curve.taus[curve.taus <= 0.8 * curve.tau_star][-1]))
        for tau in sorted(set(grid)):
            finite = ctx.at(ctx.problem.eta, mu, tau).finite_eta.value
            checks.append(_sweep_floor_check(ctx, f"floor-mu-{mu:g}-tau-{tau}", curve, tau, finite, f"finite-eta, tau = {tau}"))
    return Sweep(tuple(curves), tuple(checks))


def _sweep_floor_check(ctx: Context, name: str, curve: DelayCurve, tau: int, predicted: float, kind: str) -> Check:
    """The finite-η floor at one delay of a sweep's curve; its runs may diverge only as often as the
    predicted divergence risk says (:func:`.stationary.divergence_within_risk`)."""
    j = int(np.flatnonzero(curve.taus == tau)[0])
    est = curve.error[j]
    diverged = round(float(curve.diverged_fraction[j]) * curve.replicates)
    problem = constant_delay(ctx.problem.replace(mu=curve.mu), tau)
    allowed, risk = divergence_within_risk(ctx, problem, diverged, curve.replicates, curve.steps)
    return Check(
        name=name, group="sweep", predicted=ctx.perturb(name, predicted), measured=est.mean,
        ci_low=est.ci_low, ci_high=est.ci_high, tolerance=FINITE_ETA_TOLERANCE * abs(predicted),
        tolerance_reason=FINITE_ETA_REASON, unit="sin^2",
        context={"prediction": kind, "mu": curve.mu, "tau": tau, "eta": ctx.problem.eta, "replicates": est.n,
                 "diverged_fraction": float(curve.diverged_fraction[j]), **risk,
                 "perturbation": ctx.perturb.factor(name)},
        extra_pass=allowed, accuracy_notes=ctx.accuracy_notes(problem),
    )  # fmt: skip


@dataclass(frozen=True)
class Stability:
    curve: DelayCurve
    checks: tuple[Check, ...]


def breakdown_check(ratio: Check, diverged: int, replicates: int) -> Check:
    """The breakdown at 1.5 τ*: the survivors' error ``ratio`` to τ = 0 above its threshold, or, where more
    than :data:`DIVERGED_LIMIT` of the runs diverged and the ratio does not show it, the diverged fraction
    (its Clopper–Pearson interval) above that limit."""
    if diverged <= DIVERGED_LIMIT * replicates or ratio.passed:
        return ratio
    frac = proportion_interval(diverged, replicates)
    return replace(ratio, measured=frac.mean, ci_low=frac.ci_low, ci_high=frac.ci_high, predicted=DIVERGED_LIMIT,
                   unit="diverged fraction")  # fmt: skip


def stability(ctx: Context, key: int = 5, grid_points: int = 9) -> Stability:
    """Bounded at 0.8 τ*, broken at 1.5 τ*, the linear floor at 0.8 τ*, and the knee on a small grid."""
    p = ctx.problem
    raw = ctx.tau_star()
    if raw is None:
        return Stability(delay_curve(ctx, p.mu, [0], (key, 9)), ())
    tau_star = ctx.perturb("tau-star", raw)
    low, high = int(math.floor(0.8 * tau_star)), int(math.ceil(1.5 * tau_star))
    steps, reps = ctx.stationary_steps(p), ctx.budget.replicates
    base = ctx.simulate(constant_delay(p, 0), steps, reps, (key, 0))
    bounded = ctx.simulate(constant_delay(p, low), steps, reps, (key, 1))
    broken = ctx.simulate(constant_delay(p, high), steps, max(reps // 4, 64), (key, 2))
    ratio_low = ratio_interval(bounded.stationary_error, base.stationary_error)
    ratio_high = ratio_interval(broken.stationary_error, base.stationary_error)
    div_low = proportion_interval(int(bounded.diverged.sum()), bounded.replicates)
    lin0 = ctx.floor(p.eta, p.mu, 0).floor
    lin_low = ctx.floor(p.eta, p.mu, low)
    k_ratio = KNEE_FACTOR
    # the knee's threshold at 0.8 τ*
    bound = KNEE_FACTOR * predicted_rise(np.array([0, low]), np.array([lin0, lin_low.floor]), low)
    context = {"tau_star": raw, "eta": p.eta, "mu": p.mu, "perturbation": ctx.perturb.factor("tau-star")}
    floor = finite_eta_floor_check(ctx, "{}-floor-at-0.8-tau-star", constant_delay(p, low), bounded,
                                ctx.finite_eta(constant_delay(p, low)), lin_low.floor, f"tau = {low}")
    risk_ok, risk = divergence_verdict(floor)  # the same runs: the risk is predicted once
    checks = [
        floor,
        Check(
            name="bounded-at-0.8-tau-star", group="stability", predicted=bound, measured=ratio_low.mean,
            ci_low=ratio_low.ci_low, ci_high=ratio_low.ci_high, relation="below", unit="ratio to tau = 0",
            criterion=f"no more replicates diverge than the predicted divergence risk allows (none without heavy "
            f"tails) and the error ratio to tau = 0 has ci_high < {k_ratio} x the exact linear floor's ratio where "
            "above 1",
            extra_pass=risk_ok,
            context={**context, "tau": low, "linear_ratio": lin_low.floor / lin0,
                     "diverged_fraction": div_low.mean, "diverged_ci": [div_low.ci_low, div_low.ci_high], **risk},
        ),
        Check(
            name="breakdown-at-1.5-tau-star", group="stability", predicted=k_ratio, measured=ratio_high.mean,
            ci_low=ratio_high.ci_low, ci_high=ratio_high.ci_high, relation="above", unit="ratio to tau = 0",
            criterion=f"diverged fraction > {DIVERGED_LIMIT} or the error ratio to tau = 0 has ci_low > {k_ratio}",
            context={**context, "tau": high, "linear_prediction": "unstable (no finite floor)",
                     "diverged_fraction": broken.diverged_fraction},
        ),
    ]  # fmt: skip
    checks[-1] = breakdown_check(checks[-1], int(broken.diverged.sum()), broken.replicates)
    grid = np.unique(np.round(np.linspace(0, 1.6 * raw, grid_points)).astype(int))
    curve = delay_curve(ctx, p.mu, grid, (key, 10))
    checks.append(knee_check(ctx, curve))
    return Stability(curve, tuple(checks))

"""Checks of the stationary error near e_1 against the diffusion floor and the exact linear floor.

From a start at e_1, each replicate's time average of ``sin²`` over the second half of the run is
one sample; the t-interval across replicates is the measured interval (replicates are independent,
so the time correlation inside a run is accounted for).

* The **diffusion floor** ``η Σ_{i>1} α_i1²/(2 (1 − μ)(λ_1 − λ_i))`` is delay-free; it is checked at
  τ = 0, where the exact linear floor differs from it only at O(η).
* The **linearised floor** (exact finite-η, finite-τ Lyapunov solution, :mod:`amsgd.diffusion.theory.error_floor`)
  is checked at τ = 0 and, when the problem has one, at its own i.i.d. delay.

The eigen-coordinates of the τ = 0 run are kept, so the histograms of ``U_i = h_i/√η`` can be drawn
against the OU stationary law ``N(0, α_i1²/(2 (1 − μ)(λ_1 − λ_i)))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from amsgd.core.problem import Problem
from amsgd.diffusion.theory.report import AccuracyNote
from amsgd.simulate.result import SimulationResult
from amsgd.validation.checks import Check
from amsgd.validation.context import (
    FINITE_ETA_REASON,
    FINITE_ETA_TOLERANCE,
    LINEAR_REASON,
    SMALL_NOISE_FLOOR,
    STATIONARY_RELAXATIONS,
    Context,
    relaxation_time,
    zero_delay,
)
from amsgd.validation.statistics import proportion_interval


@dataclass(frozen=True)
class Stationary:
    result: SimulationResult  # τ = 0 from e_1, every replicate's coordinates recorded
    u_samples: np.ndarray  # (samples, d): U = h/√η at the recorded iterations of the window
    ou_variances: np.ndarray  # per coordinate (0 for the radial one)
    linear_variances: np.ndarray
    checks: tuple[Check, ...]


def floor_check(ctx: Context, name: str, problem: Problem, result: SimulationResult, predicted: float,
                kind: str, tolerance_floor: float | None, group: str = "stationary", *,
                finite: float | None = None) -> Check:  # fmt: skip
    """The stationary error of ``result`` against ``predicted``: with the linear model tolerance (2 F)
    for a linearised floor, or the finite-η floor's stated accuracy when ``tolerance_floor`` is None.
    The check fails, saying why, where the prediction is outside its theory's range: a sin² above 1,
    a linearised floor with F above :data:`~.context.SMALL_NOISE_FLOOR`, or one from which the finite-η
    floor at the same parameters (``finite``, which leaves out less) lies farther than the tolerance.
    A finite-η floor's check carries ``derive``'s accuracy notes at its parameters
    (:meth:`~.context.Context.accuracy_notes`): they say where a failure was to be expected."""
    est = result.stationary_error
    allowed, risk = divergence_within_risk(ctx, problem, int(result.diverged.sum()), result.replicates, result.steps)
    notes: tuple[AccuracyNote, ...] = ()
    if tolerance_floor is None:
        tolerance, reason = FINITE_ETA_TOLERANCE * abs(predicted), FINITE_ETA_REASON
        notes = ctx.accuracy_notes(problem)
    else:
        tolerance, reason = ctx.linear_tolerance(predicted, tolerance_floor), LINEAR_REASON
    out_of_range = _out_of_range(predicted, tolerance_floor) or _beyond_finite_eta(predicted, tolerance, finite)
    return Check(
        name=name, group=group, predicted=ctx.perturb(name, predicted), measured=est.mean,
        ci_low=est.ci_low, ci_high=est.ci_high, tolerance=tolerance, tolerance_reason=reason, unit="sin^2",
        context={"prediction": kind, "eta": problem.eta, "mu": problem.mu, "delay": problem.delay.spec,
                 "replicates": est.n, "steps": result.steps, "window_start": result.window_start,
                 "diverged_fraction": result.diverged_fraction, **risk, "perturbation": ctx.perturb.factor(name)},
        extra_pass=allowed, out_of_range=out_of_range, undecided=unsettled(problem, result), accuracy_notes=notes,
    )  # fmt: skip


def unsettled(problem: Problem, result: SimulationResult) -> str:
    """Why a floor's runs cannot decide its check ("" where they can). Runs of at least
    :data:`~.context.STATIONARY_RELAXATIONS` relaxation times have settled by construction; shorter ones
    (the budget's cap reached, at a small η) are asked whether their window's two halves differ (it is
    not stationary, :attr:`~amsgd.simulate.result.SimulationResult.stationarity`) or differ by more than
    the replicates can tell from noise. Asked of every run, the 99% test would flag one in a hundred by
    chance (an sdde-limit rung of 18 relaxation times did, its halves 6% apart)."""
    if result.steps >= STATIONARY_RELAXATIONS * relaxation_time(problem):
        return ""
    stationarity = replace(result.stationarity, advice="")
    if stationarity.stationary is False:
        return (f"{stationarity.message}: the runs have not settled at the floor in their {result.steps} iterations "
                "(at most ten times the budget's); at a larger eta they settle sooner")
    return stationarity.message if stationarity.undecided else ""



def divergence_within_risk(ctx: Context, problem: Problem, diverged: int, replicates: int,
                           steps: int) -> tuple[bool, dict]:  # fmt: skip
    """Whether ``diverged`` of ``replicates`` runs of ``steps`` iterations are as many as the theory
    expects, and the prediction: none diverged, or the Clopper–Pearson interval of the diverged
    fraction meets the interval of the predicted divergence risk over those iterations (``predict``'s
    ``divergence``: heavy tails carry a small fraction of runs off at any delay, Student-t 10 at
    η 1e-3, μ 0.9, τ 10 about 0.4% in 10 000 iterations). The floor is then that of the others. The risk
    is ``ctx``'s, predicted once per parameters (:meth:`~.context.Context.divergence`)."""
    if diverged == 0:
        return True, {}
    risk = ctx.divergence(problem, steps)
    low, high = risk.interval
    measured = proportion_interval(diverged, replicates)
    return bool(measured.ci_low <= high and low <= measured.ci_high), {
        "predicted_diverged_fraction": risk.fraction, "predicted_diverged_interval": [low, high],
    }  # fmt: skip


def divergence_verdict(check: Check) -> tuple[bool, dict]:
    """A floor check's verdict on its runs' divergence (:func:`divergence_within_risk`) and the
    predicted risk it holds, for another check on the same runs: the risk is predicted once."""
    return check.extra_pass, {k: v for k, v in check.context.items() if k.startswith("predicted_diverged")}


def finite_eta_floor_check(ctx: Context, name: str, problem: Problem, result: SimulationResult, finite: float,
                           linear: float, where: str, group: str = "stationary") -> Check:  # fmt: skip
    """The floor of a run (``name`` with ``{}`` for the theory, ``finite-eta`` or ``linear``): the finite-η
    floor, the floor ``predict`` reports, within its stated accuracy, the exact linear floor beside it in
    the context; where the finite-η theory has no floor (beyond the mean-square boundary), the exact
    linear floor within 2F. The additive linear floor leaves out the data law's fourth moments, which can
    move the floor by more than 2F: near the boundary (Rademacher data on Σ = diag(3, 2, 1), η 5e-4,
    μ 0.9, τ 36 = 0.8 τ*: 6.6% above the runs, F = 0.024; the finite-η floor 0.3%), or with a large
    eigenvalue ratio (Σ = diag(10, 1), η 2e-4, μ 0.9: 1.8–2.3% below the runs, F = 0.0011)."""
    if not math.isfinite(finite):
        return floor_check(ctx, name.format("linear"), problem, result, linear, f"exact linear, {where}", linear,
                           group)  # fmt: skip
    check = floor_check(ctx, name.format("finite-eta"), problem, result, finite, f"finite-eta, {where}", None, group)
    return replace(check, context={**check.context, "exact_linear_floor": linear})


def _out_of_range(predicted: float, floor: float | None) -> str:
    """Why a floor prediction lies outside its theory's range, in words ("" where it does not): a sin² above 1,
    a linearised floor (its F given) or a finite-η one (``floor`` None) above :data:`~.context.SMALL_NOISE_FLOOR`."""
    if math.isfinite(predicted) and predicted > 1.0:  # an infinite one is "no finite prediction"
        return f"a predicted sin^2 of {predicted:.3g} is above 1, the largest error there is"
    if floor is not None and math.isfinite(floor) and floor > SMALL_NOISE_FLOOR:  # an infinite F: no floor
        return (f"the floor F = {floor:.3g} is above {SMALL_NOISE_FLOOR:g}, where the linearisation's error (of order F) "
                "is no longer small and the tolerance 2F would accept almost any measurement")
    if floor is None and math.isfinite(predicted) and predicted > SMALL_NOISE_FLOOR:
        return (f"the finite-eta floor {predicted:.3g} is above {SMALL_NOISE_FLOOR:g}: its error, of relative order F^2 "
                "(4.3-4.7% at 0.21; it was checked up to 0.15), is no longer small beside its 2.5% tolerance")
    return ""


def _beyond_finite_eta(predicted: float, tolerance: float, finite: float | None) -> str:
    """Why a linearised floor is outside its range where the finite-η floor lies farther from it than its
    tolerance 2F: the terms the finite-η theory adds (the data's fourth moments through the multiplicative
    noise, of relative order η Var A_ii/(a_i (1 − μ)), which can be many times F; the curvature of sin²;
    the norm) move the floor by more than the linearisation claims ("" where they do not)."""
    if finite is None or not (math.isfinite(finite) and math.isfinite(predicted)) or predicted <= 0:
        return ""
    gap = finite - predicted
    if abs(gap) <= tolerance:
        return ""
    return (f"the finite-eta floor {finite:.4g} lies {gap / predicted:+.1%} from it, more than its tolerance "
            f"{tolerance / predicted:.2%} (2F): the terms that floor adds, the data's fourth moments first, are "
            "larger here than the linearisation's error of order F, and the finite-eta floor is the one to hold")


def stationary(ctx: Context, key: int = 4) -> Stationary:
    """Stationary error at τ = 0 (diffusion and linear floors) and at the problem's delay (linear)."""
    p0 = zero_delay(ctx.problem)
    steps = ctx.stationary_steps(p0)  # the delay does not enter: the same for the problem's delay
    run0 = ctx.simulate(p0, steps, ctx.budget.replicates, (key, 0), record_every=max(1, steps // 200),
                        coordinates="all")  # fmt: skip
    lin0, finite0 = ctx.floor(p0.eta, p0.mu, 0), ctx.finite_eta(p0)
    checks = [
        floor_check(ctx, "stationary-error-diffusion-floor", p0, run0, ctx.diffusion_floor, "diffusion (leading order)",
                    lin0.floor, finite=finite0),
        floor_check(ctx, "stationary-error-linearized-floor", p0, run0, lin0.floor, "exact linear, tau = 0", lin0.floor,
                    finite=finite0),
        floor_check(ctx, "stationary-error-finite-eta-floor", p0, run0, finite0, "finite-eta, tau = 0", None),
    ]  # fmt: skip
    delay = ctx.problem.delay
    if delay.is_iid and delay.max_delay > 0:
        run = ctx.simulate(ctx.problem, steps, ctx.budget.replicates, (key, 1))
        lin = ctx.floor(ctx.problem.eta, ctx.problem.mu, delay)
        if lin.stable:
            finite = ctx.finite_eta(ctx.problem)  # none beyond the mean-square boundary, as the linear one beyond τ*
            checks.append(floor_check(ctx, "stationary-error-linearized-floor-problem-delay", ctx.problem, run,
                                      lin.floor, f"exact linear, delay {delay.spec}", lin.floor, finite=finite))  # fmt: skip
            if math.isfinite(finite):
                checks.append(floor_check(ctx, "stationary-error-finite-eta-floor-problem-delay", ctx.problem, run,
                                          finite, f"finite-eta, delay {delay.spec}", None))  # fmt: skip
    window = run0.iterations >= run0.window_start
    coords = run0.coordinates[~run0.diverged][:, window, :]
    u = coords.reshape(-1, p0.dim) / np.sqrt(p0.eta)
    ou_var = np.array(lin0.diffusion_variances) / p0.eta
    return Stationary(run0, u, ou_var, np.array(lin0.variances) / p0.eta, tuple(checks))

"""The finite-η theory against simulation beyond the validated problem's own data law and step size.

* **Floors.** The finite-η floor (random coefficients, curvature of sin²; :mod:`amsgd.diffusion.theory.second_moments`)
  for the same Σ with Rademacher and Student-t (ν = 8) data, and with Gaussian data at a large step
  (η chosen so that the floor is about 0.1, μ = 0, or smaller where ``η λ_1`` would pass 0.1), each from e_1; tolerance: the floor's stated
  accuracy, 2.5% relative.
* **Divergence risk.** Student-t data with ν = 6 at delays 0.3 τ* and 0.6 τ* (well inside the stable
  region) and at the large step: the predicted fraction of runs that blow up against the simulated
  fraction with its Clopper–Pearson interval, widened by the half-width of the prediction's own 95%
  Monte Carlo interval (the fraction is a conditional Monte Carlo estimate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from amsgd.core.delays import ConstantDelay
from amsgd.core.distributions import Rademacher, StudentT
from amsgd.core.problem import Problem
from amsgd.diffusion.theory.report import CHECKED_STEP_MAX
from amsgd.validation.checks import Check
from amsgd.validation.context import Context
from amsgd.validation.stationary import floor_check
from amsgd.validation.statistics import proportion_interval

#: The floor aimed at by the large-step case.
LARGE_STEP_FLOOR = 0.1
#: Iterations of the divergence runs.
DIVERGENCE_STEPS = 40_000
HEAVY_TAIL = StudentT(6.0)


@dataclass(frozen=True)
class FiniteEta:
    large_eta: float
    rows: tuple[dict, ...]
    checks: tuple[Check, ...]


def large_step(ctx: Context) -> float:
    """A step size at which the diffusion floor at μ = 0 is about :data:`LARGE_STEP_FLOOR`, or at which the
    step ``η λ_1`` reaches :data:`~amsgd.diffusion.theory.report.CHECKED_STEP_MAX`, the largest the finite-η
    floor was checked on, if that comes first (2 digits): with a large eigenvalue ratio a floor of 0.1
    lies beyond the stable steps (Σ = diag(10, 1): η 0.18, η λ_1 = 1.8, where every run diverges)."""
    per_eta = ctx.diffusion_floor * (1 - ctx.problem.mu) / ctx.problem.eta  # the floor is η/(1 − μ) times this
    eta = min(LARGE_STEP_FLOOR / per_eta, CHECKED_STEP_MAX / ctx.problem.eigenvalues[0])
    return float(f"{eta:.2g}")


def finite_eta(ctx: Context, key: int = 11) -> FiniteEta:
    big = large_step(ctx)
    cases = (
        ("rademacher", {"distribution": Rademacher()}),
        ("student-t-8", {"distribution": StudentT(8.0)}),
        (f"large-eta-{big:g}", {"eta": big, "mu": 0.0}),
    )
    checks, rows = [], []
    for n, (label, changes) in enumerate(cases):
        theory = ctx.theory.at(delay=0, **changes)
        problem = theory.problem
        steps = ctx.stationary_steps(problem)
        run = ctx.simulate(problem, steps, ctx.budget.replicates, (key, n), record_every=steps)
        predicted = theory.finite_eta.value
        checks.append(floor_check(ctx, f"finite-eta-floor-{label}", problem, run, predicted, "finite-eta", None, group="finite-eta"))
        rows.append({"case": label, "finite_eta": predicted, "first_order": theory.finite_eta.first_order,
                     "additive_linear": theory.linearized.floor,
                     "measured": run.stationary_error.to_dict()})  # fmt: skip
    for n, problem in enumerate(_divergence_cases(ctx, big)):
        checks.append(_divergence_check(ctx, problem, (key, 10 + n)))
    return FiniteEta(big, tuple(rows), tuple(checks))


def _divergence_cases(ctx: Context, big: float) -> list[Problem]:
    """Student-t 6 data at 0.3 and 0.6 τ*, at the large step, and (where there is one) at the delay
    halfway between the heavy-tailed data's mean-square τ* and the mean τ*."""
    heavy = ctx.problem.replace(distribution=HEAVY_TAIL)
    tau_star = ctx.tau_star() or 0
    tau_big = ctx.at(big, 0.0, 0).tau_max or 0
    cases = [
        heavy.replace(delay=ConstantDelay(int(math.floor(0.3 * tau_star)))),
        heavy.replace(delay=ConstantDelay(int(math.floor(0.6 * tau_star)))),
        heavy.replace(eta=big, mu=0.0, delay=ConstantDelay(int(math.floor(0.5 * tau_big)))),
    ]
    mean_square = ctx.theory.at(distribution=HEAVY_TAIL, delay=ConstantDelay(0)).mean_square.tau_max
    if mean_square is not None and mean_square + 1 < tau_star:
        cases.append(heavy.replace(delay=ConstantDelay((mean_square + 1 + tau_star) // 2)))
    return cases


def _divergence_check(ctx: Context, problem: Problem, key: tuple[int, ...]) -> Check:
    name = f"divergence-eta-{problem.eta:g}-mu-{problem.mu:g}-tau-{problem.tau}"
    risk = ctx.divergence(problem, DIVERGENCE_STEPS)
    replicates = max(ctx.budget.replicates // 2, 64)
    run = ctx.simulate(problem, DIVERGENCE_STEPS, replicates, key, record_every=DIVERGENCE_STEPS)
    frac = proportion_interval(int(run.diverged.sum()), run.replicates)
    low, high = risk.interval
    return Check(
        name=name, group="finite-eta", predicted=ctx.perturb(name, risk.fraction), measured=frac.mean,
        ci_low=frac.ci_low, ci_high=frac.ci_high, tolerance=max(risk.fraction - low, high - risk.fraction, 0.0),
        unit="fraction of runs",
        tolerance_reason="the prediction is a conditional Monte Carlo estimate: the half-width of its own 95% interval",
        context={"distribution": problem.distribution.spec, "eta": problem.eta, "mu": problem.mu, "tau": problem.tau,
                 "steps": DIVERGENCE_STEPS, "replicates": run.replicates, "critical_impulse": risk.critical_impulse,
                 "per_iteration": risk.per_iteration, "predicted_interval": [low, high], "interval": "Clopper-Pearson 95%",
                 "perturbation": ctx.perturb.factor(name)},
    )  # fmt: skip

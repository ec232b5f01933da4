"""The finite-delay (SDDE) limit against the discrete algorithm: τ = s/η as η → 0.

With the delay time ``s = τ η`` held fixed, Async-MSGD near e_1 tends to the linear SDDEs
``dX_i = −c_i X_i(t − s) dt + b_i dW_i`` (``c_i = a_i/(1 − μ)``, ``b_i² = η σ_i²/(1 − μ)²``;
:mod:`amsgd.diffusion.theory.sdde_floor`), whose floor ``Σ_i b_i² (1 + sin c_i s)/(2 c_i cos c_i s)``
is proportional to η. The quantity with a limit is therefore the floor per unit step, ``E sin²/η``:
the SDDE gives it exactly, independent of η, and the discrete algorithm approaches it at the rate η.

The experiment fixes ``s`` at :data:`DELAY_FRACTION` of the SDDE's boundary ``s* = π (1 − μ)/(2 a_max)``
(rounded to a whole delay at the coarsest step), and runs Async-MSGD from e_1 at the steps
``η_0/m``, m in :data:`LADDER`, with ``τ = m τ_0`` and ``m`` times the iterations, so every run covers
the same diffusion time, that of the budget's stationary runs at the problem's η. ``η_0`` is
:data:`COARSEST_FACTOR` times the problem's η (where the O(η) gap is plain), halved while ``τ_0``
exceeds :data:`STABLE_FRACTION` of the exact τ* there or the finite-η floor the largest it was checked
on, then doubled while the finite-η floor's gap to the SDDE's is under :data:`MIN_GAP` of it
(:func:`coarsest_step`); the first half of every run, discarded,
lasts at least :data:`MIN_RELAXATIONS` relaxation times ``1/(−log ρ)`` of the slowest mode. Per step, the measured floor (each replicate's average
of sin² over the second half of its run; t-interval over replicates) is set beside the exact
finite-η linear floor, the finite-η floor, the SDDE floor and the τ-free diffusion floor.

Checks (``g`` = measured floor per unit step, ``S`` = the SDDE's, perturbable as ``sdde-floor``):

* **the exact linear floor** at every step: inside the interval widened by the linear tolerance 2F;
* **the limit**: the weighted quadratic in η through ``(η, g)`` extrapolated to η = 0 contains ``S``
  within its 95% interval, widened by the fit's own bias (the same fit through the theory's floors
  misses ``S`` by that much: the orders it leaves out);
* **the approach**: ``|g − S|`` is smaller at the finest step than at the coarsest (the difference
  with its normal 95% interval lies above 0); undecided, and failed as such, where the finite-η floors
  predict a shrink under :data:`RESOLVED` times that interval's half-width;
* **the finest step**: ``S`` lies inside the interval there, widened by the finite-η gap the theory
  predicts at that step (``exact − S`` or ``finite-η − S``, the larger);
* **the delay matters**: at the finest step the measured interval lies above the diffusion floor,
  and ``S`` differs from that floor by more than the interval's half-width.

The knee needs no simulation: the exact continuous critical delay ``τ_c`` of the discrete recursion
(τ* = ⌈τ_c⌉ − 1) gives ``τ_c η → s*`` (perturbable as ``sdde-critical-delay-time``). Checked: the
Richardson extrapolation ``R = 2 f(h) − f(2h)`` of ``f = τ_c η`` from the finest step h contains s*
within ``|R − R'|``, ``R' = 2 f(2h) − f(4h)`` (for ``f = s* − K η + L η²``, ``R − s* = −2 L h²`` and
``|R − R'| = 6 |L| h²``, three times R's remainder), and the observed order of ``s* − τ_c η`` at the finest pair is 1 (the gap
shrinks like η), accepted in (0.75, 1.25].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NoReturn

import numpy as np
from scipy import stats

from amsgd.core.errors import ProblemError
from amsgd.core.estimates import CONFIDENCE, Estimate
from amsgd.diffusion.theory.report import CHECKED_FLOOR_MAX
from amsgd.simulate.result import SimulationResult
from amsgd.validation.checks import Check
from amsgd.validation.context import Context, constant_delay
from amsgd.validation.stationary import divergence_verdict, finite_eta_floor_check

#: The delay time s as a fraction of the SDDE's boundary s* (well inside the stable region).
DELAY_FRACTION = 0.5
#: The steps, as divisors of the coarsest η_0: τ and the iterations scale with them.
LADDER = (1, 2, 4, 8, 16)
#: The coarsest step tried first, in units of the problem's η (a larger step shows the O(η) gap).
COARSEST_FACTOR = 2.0
#: The coarsest step is halved until τ_0 is at most this fraction of the exact τ* there.
STABLE_FRACTION = 0.8
#: Halvings of the problem's η allowed in finding η_0.
MAX_HALVINGS = 8
#: Where the finite-η floor at η_0 differs from the SDDE's by less than this fraction of it, η_0 is
#: doubled (at most MAX_DOUBLINGS times, while τ_0 stays inside the stable region and at least
#: MIN_COARSE_DELAY, and the step ηλ_1/(1 − μ) at most MAX_COARSE_STEP, beyond which the finite-η floor
#: with a delay has been off by 3% and more and its gap is no guide): a smaller gap is below the resolution of the default
#: replicates (about ±1.5% per floor). Where the finite-η floors predict a shrink under RESOLVED times
#: the interval's half-width it cannot be decided (at twice the half-width it passes with probability
#: about 95–97% if they are right: the measured |g − S| at the finest step is biased up by its noise),
#: and it fails, saying so (``Check.undecided``).
MIN_GAP = 0.03
MAX_DOUBLINGS = 4
MIN_COARSE_DELAY = 4
MAX_COARSE_STEP = 0.06
RESOLVED = 2.0
#: The coarsest step is also halved while its finite-η floor lies above the largest floor that theory
#: was checked on (``CHECKED_FLOOR_MAX``, 0.15), at most MAX_RANGE_HALVINGS times (then it is kept and
#: its floor check says why), and doubled only below it: a rung whose floor the finite-η theory does not
#: claim fails its floor check whatever the limit does (Σ = diag(5, 4.5, 1), η 3e-4: 0.189 at 2η against
#: the runs' 0.170).
MAX_RANGE_HALVINGS = 4
#: The discarded first half of every run lasts at least this many relaxation times of the slowest mode.
MIN_RELAXATIONS = 10
#: Accepted window of the observed order of s* − τ_c η at the finest pair of steps.
ORDER_WINDOW = (0.75, 1.25)
#: Degree in η of the fit extrapolated to η = 0 (the floor per step is S + B η + C η² + O(η³)).
FIT_DEGREE = 2
GROUP = "sdde-limit"


@dataclass(frozen=True)
class Rung:
    """One step of the ladder: the run and every prediction at its (η, τ)."""

    eta: float
    tau: int
    result: SimulationResult  # from e_1; ``stationary_error`` over the second half of each run
    exact: float  # exact finite-η linear floor (additive noise)
    finite_eta: float  # with multiplicative noise and the curvature of sin²
    sdde: float  # the SDDE floor at this η (proportional to η)
    diffusion: float  # the τ-free diffusion floor at this η
    tau_star: int | None
    critical_delay: float  # τ_c: the exact continuous boundary, τ* = ⌈τ_c⌉ − 1
    relaxation: float  # iterations: 1/(−log ρ) of the slowest mode at this (η, τ)

    @property
    def steps(self) -> int:
        return self.result.steps

    @property
    def measured(self) -> Estimate:
        return self.result.stationary_error

    @property
    def diverged_fraction(self) -> float:
        return self.result.diverged_fraction

    def per_step(self, value: float) -> float:
        return value / self.eta

    def to_dict(self) -> dict:
        return {
            "eta": self.eta, "tau": self.tau, "delay_time": self.tau * self.eta, "steps": self.steps,
            "measured": self.measured.to_dict(), "diverged_fraction": self.diverged_fraction,
            "exact_linear": self.exact, "finite_eta": self.finite_eta, "sdde": self.sdde,
            "diffusion": self.diffusion, "tau_star": self.tau_star,
            "tau_star_times_eta": None if self.tau_star is None else self.tau_star * self.eta,
            "critical_delay": self.critical_delay, "critical_delay_time": self.critical_delay * self.eta,
            "relaxation_iterations": self.relaxation,
        }  # fmt: skip


@dataclass(frozen=True)
class LimitFit:
    """``g ≈ c_0 + c_1 η + c_2 η²`` by weighted least squares (weights 1/SE²); ``c_0`` is the limit
    η → 0, with its standard error."""

    coefficients: tuple[float, ...]
    intercept_se: float

    @property
    def intercept(self) -> float:
        return self.coefficients[0]

    def __call__(self, eta: np.ndarray | float) -> np.ndarray:
        return np.polynomial.polynomial.polyval(eta, self.coefficients)

    def interval(self) -> tuple[float, float]:
        z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
        return self.intercept - z * self.intercept_se, self.intercept + z * self.intercept_se


@dataclass(frozen=True)
class SDDELimit:
    """The ladder of steps at one delay time, the SDDE's numbers, the knee's, and the checks."""

    mu: float
    delay_time: float
    critical_delay_time: float
    limiting_mode: dict
    sdde_per_step: float  # S: the SDDE floor per unit step (the same at every η)
    diffusion_per_step: float
    rungs: tuple[Rung, ...]
    fit: LimitFit
    checks: tuple[Check, ...]

    @property
    def etas(self) -> np.ndarray:
        return np.array([r.eta for r in self.rungs])

    def table(self) -> list[dict]:
        return [r.to_dict() for r in self.rungs]

    def markdown_table(self) -> str:
        """The floors per unit step and the knee per step, as a Markdown table."""
        def num(x: float | None, digits: int = 4) -> str:
            return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"

        lines = [
            "Floors per unit step (E sin²/η; measured with its 95% CI) and the knee, per step:",
            "",
            "| η | τ | iterations | measured | exact linear | finite-η | SDDE | diffusion | τ* | τ*η | τ_c η | s* |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in self.rungs:
            m = r.measured
            lines.append(
                f"| {r.eta:g} | {r.tau} | {r.steps} | {num(r.per_step(m.mean))} [{num(r.per_step(m.ci_low))}, "
                f"{num(r.per_step(m.ci_high))}] | {num(r.per_step(r.exact))} | {num(r.per_step(r.finite_eta))} "
                f"| {num(r.per_step(r.sdde))} | {num(r.per_step(r.diffusion))} | {r.tau_star} "
                f"| {num(None if r.tau_star is None else r.tau_star * r.eta)} | {num(r.critical_delay * r.eta, 5)} "
                f"| {num(self.critical_delay_time, 5)} |"
            )
        low, high = self.fit.interval()
        lines += ["", f"Extrapolated to η = 0: {num(self.fit.intercept)} [{num(low)}, {num(high)}] "
                  f"(SDDE {num(self.sdde_per_step)}, diffusion {num(self.diffusion_per_step)}).", ""]
        return "\n".join(lines)


def weighted_fit(etas: np.ndarray, values: np.ndarray, errors: np.ndarray, degree: int = FIT_DEGREE) -> LimitFit:
    """The weighted least-squares polynomial ``values ≈ Σ_j c_j etas^j`` (j ≤ ``degree``), weights ``1/errors²``."""
    x = np.vander(np.asarray(etas, dtype=float), degree + 1, increasing=True)
    w = 1.0 / np.asarray(errors, dtype=float) ** 2
    cov = np.linalg.inv(x.T @ (w[:, None] * x))
    coef = cov @ x.T @ (w * np.asarray(values, dtype=float))
    return LimitFit(tuple(float(c) for c in coef), float(math.sqrt(cov[0, 0])))


def coarsest_step(ctx: Context, delay_time: float) -> tuple[float, int]:
    """``(η_0, τ_0)``: :data:`COARSEST_FACTOR` times the problem's η, halved until
    ``τ_0 = round(s/η_0)`` (at least 1) is at most :data:`STABLE_FRACTION` of τ* at η_0, and further
    while its finite-η floor is above ``CHECKED_FLOOR_MAX`` (at most :data:`MAX_RANGE_HALVINGS` times);
    then doubled while the finite-η floor's gap to the SDDE's is under :data:`MIN_GAP` of it and the
    doubled step keeps τ_0 stable, at least :data:`MIN_COARSE_DELAY` and its floor at most
    ``CHECKED_FLOOR_MAX``, and the step ``ηλ_1/(1 − μ)`` at most :data:`MAX_COARSE_STEP` (at most
    :data:`MAX_DOUBLINGS` times)."""
    eta = COARSEST_FACTOR * ctx.problem.eta
    for _ in range(MAX_HALVINGS + 1):
        tau = max(1, round(delay_time / eta))
        if _stable(ctx, eta, tau):
            break
        eta /= 2
    else:
        _too_large(ctx, delay_time)
    for _ in range(MAX_RANGE_HALVINGS):
        if _floor_in_range(ctx, eta, tau):
            break
        eta, tau = eta / 2, 2 * tau
    for _ in range(MAX_DOUBLINGS):
        coarser = max(1, round(delay_time / (2 * eta)))
        step = 2 * eta * ctx.problem.eigenvalues[0] / (1 - ctx.problem.mu)
        if (_relative_gap(ctx, eta, tau) >= MIN_GAP or coarser < MIN_COARSE_DELAY or step > MAX_COARSE_STEP
                or not _stable(ctx, 2 * eta, coarser) or not _floor_in_range(ctx, 2 * eta, coarser)):  # fmt: skip
            break
        eta, tau = 2 * eta, coarser
    return eta, tau


def _stable(ctx: Context, eta: float, tau: int) -> bool:
    tau_star = ctx.at(eta, ctx.problem.mu, 0).tau_max
    return tau_star is not None and tau <= STABLE_FRACTION * tau_star


def _floor_in_range(ctx: Context, eta: float, tau: int) -> bool:
    """Whether the finite-η floor at ``(eta, tau)`` exists and is at most ``CHECKED_FLOOR_MAX``."""
    floor = ctx.at(eta, ctx.problem.mu, tau).finite_eta.value
    return floor is not None and floor <= CHECKED_FLOOR_MAX


def _relative_gap(ctx: Context, eta: float, tau: int) -> float:
    """``|finite-η floor − SDDE floor| / SDDE floor`` at step ``eta`` and delay ``tau`` (inf where the
    finite-η floor does not exist: second moments not stable there)."""
    theory = ctx.at(eta, ctx.problem.mu, tau)
    value = theory.finite_eta.value
    return math.inf if value is None else abs(value - theory.sdde.floor) / theory.sdde.floor


def _too_large(ctx: Context, delay_time: float) -> NoReturn:
    p = ctx.problem
    raise ProblemError(
        f"eta = {p.eta:g} is too large for the sdde-limit experiment at mu = {p.mu:g}: even eta/2^{MAX_HALVINGS} "
        f"puts the delay time {delay_time:.3g} beyond {STABLE_FRACTION} tau*; use a smaller eta"
    )


def _rung(ctx: Context, eta: float, tau: int, steps: int, key: tuple[int, ...]) -> Rung:
    p = ctx.problem
    theory = ctx.at(eta, p.mu, tau)
    stab = theory.stability
    relaxation = 1.0 / -math.log(max(stab.spectral_radii))
    steps = max(steps, int(math.ceil(2 * MIN_RELAXATIONS * relaxation)))
    run = ctx.simulate(constant_delay(p.replace(eta=eta), tau), steps, ctx.budget.replicates, key,
                       record_every=steps)  # fmt: skip
    return Rung(
        eta=eta, tau=tau, result=run, exact=theory.linearized.floor, finite_eta=theory.finite_eta.value, sdde=theory.sdde.floor,
        diffusion=theory.diffusion_floor, tau_star=stab.tau_max, critical_delay=float(min(stab.critical_delays)),
        relaxation=relaxation,
    )  # fmt: skip


def sdde_limit(ctx: Context, key: int = 14) -> SDDELimit:
    """Run the ladder of steps at the delay time ``DELAY_FRACTION · s*`` and check the SDDE limit."""
    p = ctx.problem
    sdde0 = ctx.at(p.eta, p.mu, 0).sdde
    s_star = sdde0.critical_delay_time
    eta0, tau0 = coarsest_step(ctx, DELAY_FRACTION * s_star)
    horizon = ctx.budget.stationary_steps * p.eta  # the diffusion time of every run
    rungs = tuple(
        _rung(ctx, eta0 / m, tau0 * m, int(round(horizon * m / eta0)), (key, n)) for n, m in enumerate(LADDER)
    )
    mode = ctx.theory.modes.describe(sdde0.limiting_mode)
    return limit_checks(ctx, rungs, s_star, mode)


def limit_checks(ctx: Context, rungs: tuple[Rung, ...], s_star: float, limiting_mode: dict) -> SDDELimit:
    """The checks of the module docstring on measured ``rungs`` (perturbations taken from ``ctx``)."""
    first = rungs[0]
    raw_sdde = first.per_step(first.sdde)
    floors = _Floors(
        sdde=ctx.perturb("sdde-floor", raw_sdde),
        diffusion=first.per_step(first.diffusion),
        measured=np.array([r.per_step(r.measured.mean) for r in rungs]),
        std_errors=np.array([r.per_step(r.measured.std_error) for r in rungs]),
        context={"mu": ctx.problem.mu, "delay_time": first.tau * first.eta, "critical_delay_time": s_star,
                 "sdde_floor_per_step": raw_sdde, "perturbation": ctx.perturb.factor("sdde-floor"),
                 "unit_note": "floor per unit step, E sin^2 / eta"},
    )  # fmt: skip
    checks = [
        finite_eta_floor_check(ctx, f"sdde-limit-{{}}-floor-eta-{r.eta:g}",
                            constant_delay(ctx.problem.replace(eta=r.eta), r.tau), r.result, r.finite_eta, r.exact,
                            f"eta = {r.eta:g}, tau = {r.tau}", GROUP)
        for r in rungs
    ]  # fmt: skip
    fit, extrapolated = _extrapolation_check(rungs, floors, raw_sdde)
    diverged = divergence_verdict(checks[-1])  # the finest step's floor check, on the same runs
    checks += [extrapolated, _gap_check(rungs, floors), *_finest_step_checks(rungs[-1], floors, diverged)]
    checks += knee_checks(ctx, rungs, s_star)
    return SDDELimit(ctx.problem.mu, first.tau * first.eta, s_star, limiting_mode, raw_sdde, floors.diffusion, rungs,
                     fit, tuple(checks))  # fmt: skip


@dataclass(frozen=True)
class _Floors:
    """The floors per unit step the limit checks compare: the SDDE's (perturbed as asked), the τ-free
    diffusion floor, each rung's measured mean with its standard error, and the checks' context."""

    sdde: float
    diffusion: float
    measured: np.ndarray
    std_errors: np.ndarray
    context: dict


def _extrapolation_check(rungs: tuple[Rung, ...], floors: _Floors, raw_sdde: float) -> tuple[LimitFit, Check]:
    """The weighted fit of the measured floors in η, and the check that its intercept is the SDDE floor
    (tolerance: how far the same fit through the exact linear and the finite-η floors misses it)."""
    etas, se = np.array([r.eta for r in rungs]), floors.std_errors
    fit = weighted_fit(etas, floors.measured, se)
    bias = max(abs(weighted_fit(etas, np.array([r.per_step(v) for r, v in zip(rungs, values)]), se).intercept - raw_sdde)
               for values in ([r.exact for r in rungs], [r.finite_eta for r in rungs]))  # fmt: skip
    low, high = fit.interval()
    return fit, Check(
        name="sdde-limit-extrapolated-floor", group=GROUP, predicted=floors.sdde, measured=fit.intercept, ci_low=low,
        ci_high=high, tolerance=bias, unit="sin^2 per unit eta",
        tolerance_reason=f"the fit of degree {FIT_DEGREE} in eta leaves out the higher orders: the same weighted "
        "fit through the exact linear and the finite-eta floors misses the SDDE floor by at most this much",
        context={**floors.context, "etas": etas.tolist(), "coefficients": list(fit.coefficients),
                 "interval": f"weighted least squares of degree {FIT_DEGREE} in eta on the measured floors per "
                 "unit step, normal 95%"},
    )  # fmt: skip


def _gap_check(rungs: tuple[Rung, ...], floors: _Floors) -> Check:
    """The gap between the measured floor per unit step and the SDDE's shrinks from the coarsest step to
    the finest; undecided where the runs that diverged at either end (heavy tails) could move its mean
    by more than the interval's half-width, or where the predicted shrink is too small for the runs."""
    first, last = rungs[0], rungs[-1]
    g, se = floors.measured, floors.std_errors
    gap_first, gap_last = abs(g[0] - floors.sdde), abs(g[-1] - floors.sdde)
    z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
    half = z * math.hypot(se[0], se[-1])
    shrink = gap_first - gap_last
    raw = first.per_step(first.sdde)  # the unperturbed SDDE floor: the predicted shrink is the theory's
    predicted = abs(first.per_step(first.finite_eta) - raw) - abs(last.per_step(last.finite_eta) - raw)
    replicates = first.measured.n
    # runs that diverged take their errors out of a step's mean: by about their share times the floor
    lost = max((first, last), key=lambda r: r.diverged_fraction)
    moved = lost.diverged_fraction * lost.per_step(lost.measured.mean)
    if moved > half:
        unresolved = (f"{lost.diverged_fraction:.1%} of the runs at eta = {lost.eta:g} diverged: the others' mean "
                      f"leaves out errors that could move it by about {moved:.3g} (their share times the floor), more "
                      f"than the interval's half-width {half:.3g}, so the measured gaps are not the floors' (the floor "
                      "checks hold the others to the finite-eta floor)")
    elif predicted <= 0:
        unresolved = (f"the finite-eta floors predict no shrink ({predicted:.3g}): at these steps the gap does not "
                      "close, and no number of runs can show the approach")
    elif predicted < RESOLVED * half:
        unresolved = (f"the finite-eta floors predict a shrink of {predicted:.3g}, under {RESOLVED:g} times the "
                      f"interval's half-width {half:.3g}: {replicates} runs per step cannot show the approach "
                      f"(about {math.ceil(replicates * (RESOLVED * half / predicted) ** 2)} could: --replicates)")
    else:
        unresolved = ""
    return Check(
        name="sdde-limit-gap-shrinks", group=GROUP, predicted=0.0, measured=shrink, ci_low=shrink - half,
        ci_high=shrink + half, relation="above", unit="sin^2 per unit eta",
        criterion=f"|g - S| at eta = {first.eta:g} minus |g - S| at eta = {last.eta:g} (g: measured floor per unit "
        "step, S: the SDDE's) has ci_low > 0",
        context={**floors.context, "gap_coarsest": gap_first, "gap_finest": gap_last,
                 "predicted_shrink": predicted, "interval": "normal 95% of the difference of two independent means"},
        undecided=unresolved,
    )  # fmt: skip


def _finest_step_checks(last: Rung, floors: _Floors, diverged: tuple[bool, dict]) -> list[Check]:
    """At the finest step: the measured floor per unit step is the SDDE's within the finite-η gap the
    theory predicts there (its runs diverging no more often than ``diverged``, the verdict of the
    step's floor check, allows: :func:`.stationary.divergence_within_risk`), and it lies above the
    τ-free diffusion floor, from which the SDDE's differs."""
    allowed, risk = diverged
    sdde, diffusion, measured = floors.sdde, floors.diffusion, floors.measured[-1]
    gap = max(abs(last.exact - last.sdde), abs(last.finite_eta - last.sdde)) / last.eta
    ci_low, ci_high = last.per_step(last.measured.ci_low), last.per_step(last.measured.ci_high)
    return [
        Check(
            name="sdde-limit-floor-at-finest-eta", group=GROUP, predicted=sdde, measured=measured, ci_low=ci_low,
            ci_high=ci_high, tolerance=gap, unit="sin^2 per unit eta",
            tolerance_reason="the finite-eta gap the theory predicts at the finest step: the exact linear or the "
            "finite-eta floor minus the SDDE floor, whichever is larger",
            context={**floors.context, "eta": last.eta, "tau": last.tau, "exact_per_step": last.per_step(last.exact),
                     "finite_eta_per_step": last.per_step(last.finite_eta), "diverged_fraction": last.diverged_fraction,
                     **risk},
            extra_pass=allowed,
        ),
        Check(
            name="sdde-limit-delay-matters", group=GROUP, predicted=diffusion, measured=measured, ci_low=ci_low,
            ci_high=ci_high, relation="above", unit="sin^2 per unit eta",
            criterion="at the finest step the measured interval lies above the tau-free diffusion floor, and the "
            "SDDE floor differs from it by more than the interval's half-width",
            extra_pass=abs(sdde - diffusion) > (ci_high - ci_low) / 2,
            context={**floors.context, "eta": last.eta, "sdde_minus_diffusion": sdde - diffusion},
        ),
    ]  # fmt: skip


def knee_checks(ctx: Context, rungs: tuple[Rung, ...], s_star: float) -> list[Check]:
    """``τ_c η → s*``: Richardson extrapolation from the two finest steps, and the order of the gap."""
    predicted = ctx.perturb("sdde-critical-delay-time", s_star)
    f = np.array([r.critical_delay * r.eta for r in rungs])
    fine = 2 * f[-1] - f[-2]
    coarse = 2 * f[-2] - f[-3]
    remainder = abs(fine - coarse)  # three times the leading O(η²) remainder of ``fine``
    gaps = predicted - f
    with np.errstate(divide="ignore", invalid="ignore"):
        orders = np.log2(gaps[:-1] / gaps[1:])
    context = {"mu": ctx.problem.mu, "etas": [r.eta for r in rungs], "critical_delay_times": f.tolist(),
               "tau_star": [r.tau_star for r in rungs], "perturbation": ctx.perturb.factor("sdde-critical-delay-time")}  # fmt: skip
    order = float(orders[-1])
    finite = orders[np.isfinite(orders)]
    return [
        Check(
            name="sdde-limit-knee-extrapolated", group=GROUP, predicted=predicted, measured=fine,
            ci_low=fine - remainder, ci_high=fine + remainder, unit="delay time tau * eta",
            criterion="s* inside [R - |R - R'|, R + |R - R'|]: R = 2 f(h) - f(2h) at the finest step h, R' = 2 f(2h) "
            "- f(4h), f = tau_c eta (tau_c: the exact critical delay of the discrete recursion)",
            context={**context, "ci_meaning": "three times the leading remainder of the extrapolation"},
        ),
        Check(
            name="sdde-limit-knee-order", group=GROUP, predicted=1.0, measured=order,
            ci_low=float(finite.min()) if finite.size else math.nan,
            ci_high=float(finite.max()) if finite.size else math.nan, relation="window", window=ORDER_WINDOW,
            unit="order in eta",
            criterion=f"observed order log2[(s* - f(2h))/(s* - f(h))] at the finest step h in ({ORDER_WINDOW[0]}, "
            f"{ORDER_WINDOW[1]}]",
            context={**context, "orders": orders.tolist(), "gaps": gaps.tolist(),
                     "ci_meaning": "the smallest and largest observed order over consecutive pairs of steps"},
        ),
    ]  # fmt: skip

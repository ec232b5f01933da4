"""SVAG: is the SDE (τ = 0) or SDDE (τ > 0) limit valid at the problem's η, μ and τ?

Li, Malladi and Arora (2021) test an SDE description of SGD at a finite step η by SVAG runs
(:mod:`amsgd.simulate.svag`): step η/L, L times the steps, two samples per step combined with
weights that keep the drift and the noise covariance per unit time, the delay Lτ steps so that the
delay time τη is kept. As L grows the runs converge to the limit. If an observable at L = 1 (the
algorithm) and at the largest L agree, the limit describes the algorithm at η for that observable;
if they differ, the discretisation matters at η.

Two observables, in original iterations (``k = n/L``):

* the **floor**: the stationary error ``sin²∠(v, e_1)``, each replicate's average over the second half
  of a run from e_1 of ``steps`` iterations (default: 40 relaxation times ``(1 − μ)/(η (λ_1 − λ_2))``
  of the slowest tangent mode, at least 2000);
* the **escape time**: each replicate's first iteration with ``sin² <= 1 − δ²`` from e_2 (the error
  recorded at every iteration), averaged over the replicates; a run that has not escaped by the end
  (forty times the diffusion limit's mean-curve escape) is censored and counted.

The verdict per observable is a :class:`~amsgd.validation.checks.Check`: the 95% Welch interval of
``value(L_max) − value(1)`` must contain 0, with no replicate diverged at any L; the relative
difference and its interval (delta method) are reported beside it. The limit is called valid only
where every relative interval also lies within ±:data:`EQUIVALENCE_MARGIN`; an interval that holds 0
but reaches beyond it makes its check undecided (it fails, and the verdict is none). Beside the floors stand the
limit's floor (the diffusion floor at τ = 0, the SDDE floor at τ > 0, both leading order in η) and
the exact finite-η floor of the SVAG recursion itself from the random-coefficient linear theory
(:func:`amsgd.diffusion.theory.second_moments.finite_eta_floor` with step η/L, delay Lτ and the
gradient's coupling and noise moments times ``w_1² + w_2² = L``, the radial friction's data constants
times the factors of :func:`amsgd.derivations.svag.svag_kernel_factors`), which tends as L grows to the SDE's
floor with its state-dependent noise and the curvature of sin² — above the leading-order diffusion
floor by terms of relative order η that SVAG does not remove.

Beside the verdict stands the noise-to-signal necessary condition of Li, Malladi and Arora: the
ratio ``N/G`` of the gradient noise to the squared mean gradient where the run sits must be large for
an SDE to describe it (:mod:`amsgd.diffusion.theory.noise_to_signal`: in closed form at the limit's
law, from the exact second moments at the algorithm's, and the floor excess it implies at τ = 0),
and the ratio measured at L = 1: each replicate's average over the second half of a run from e_1 of
the SME's exact ``‖g(h)‖²`` and ``tr C(h)`` along its iterates, as a ratio of means with its
delta-method interval, over all directions and over the tangent ones that the predictions describe
(:func:`measured_noise_to_signal`). The radial direction (the norm of v) adds signal that the tangent
predictions leave out; near the delay's stability boundary it dominates.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from amsgd.core import checks
from amsgd.core.errors import ProblemError
from amsgd.core.problem import Problem

if TYPE_CHECKING:  # loaded on use: the checks of --svag run before SciPy loads
    from amsgd.core.estimates import Estimate
    from amsgd.diffusion.theory.noise_to_signal import NoiseToSignalValues
    from amsgd.validation.checks import Check

#: Confidence of every interval here (that of :mod:`amsgd.core.estimates`).
CONFIDENCE = 0.95

#: The floor runs last this many relaxation times (1 − μ)/(η (λ_1 − λ_2)) of the slowest tangent mode.
RELAXATION_TIMES = 40
#: Escape runs last this many times the diffusion limit's mean-curve escape.
ESCAPE_MARGIN = 40
#: Escape runs record every iteration; skip them when that is more numbers than this.
MAX_ESCAPE_NUMBERS = 50_000_000
#: The equivalence margin of the verdict: the limit is called valid for an observable only where the
#: interval of its relative difference lies within ±EQUIVALENCE_MARGIN (an interval that holds 0 but
#: reaches beyond it shows no difference for want of precision, and the verdict says there is none).
EQUIVALENCE_MARGIN = 0.1


@dataclass(frozen=True)
class SvagSetup:
    """The amplifications L, replicates, floor steps (None: :data:`RELAXATION_TIMES` relaxation times),
    δ² of the escape, whether to run the escape, the seed (every L uses the same seed) and threads."""

    amplifications: tuple[int, ...] = (1, 2, 4, 8)
    replicates: int = 1000
    steps: int | None = None
    delta_sq: float = 0.1
    escape: bool = True
    seed: int = 2018
    threads: int = 2  # as every validation's default (the runs do not depend on it)

    def __post_init__(self) -> None:
        if checks.positive_int("--svag-replicates", self.replicates) < 2:
            raise ProblemError(f"--svag-replicates must be at least 2 (an interval needs two runs), got {self.replicates}")


@dataclass(frozen=True)
class SvagPoint:
    """One amplification: the measured floor and escape time with their 95% intervals, the SVAG
    recursion's finite-η floor (None when L τ is beyond the linear numerics), divergences and speed."""

    amplification: int
    weights: tuple[float, float]
    floor: Estimate
    floor_stationary: bool | None
    floor_theory: float | None
    escape: Estimate | None
    escape_censored: int
    diverged: int
    svag_steps_per_second: float

    def to_dict(self) -> dict:
        from amsgd.core.estimates import json_float

        return {
            "L": self.amplification,
            "weights": list(self.weights),
            "floor": self.floor.to_dict(),
            "floor_window_stationary": self.floor_stationary,
            "floor_theory_finite_eta": None if self.floor_theory is None else json_float(self.floor_theory),
            "escape_iterations": None if self.escape is None else self.escape.to_dict(),
            "escape_censored": self.escape_censored,
            "diverged_replicates": self.diverged,
            "svag_steps_per_second": json_float(self.svag_steps_per_second),
        }


@dataclass(frozen=True)
class Difference:
    """``value(L_max) − value(1)`` with its 95% Welch interval, and relative to ``value(1)``."""

    difference: Estimate
    relative: Estimate

    def to_dict(self) -> dict:
        return {"difference": self.difference.to_dict(), "relative_difference": self.relative.to_dict()}


@dataclass(frozen=True, eq=False)
class SvagReport:
    problem: Problem
    setup: SvagSetup
    steps: int
    escape_steps: int | None
    points: list[SvagPoint]
    limit_name: str
    limit_floor: float
    elapsed: float
    noise_to_signal: NoiseToSignalValues | None = None
    measured_noise_to_signal: MeasuredNoiseToSignal | None = None
    differences: dict[str, Difference] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def limit_kind(self) -> str:
        return "SDE" if self.problem.delay.max_delay == 0 else "SDDE"

    def verdict(self) -> str:
        """One sentence: whether the limit is valid at the problem's η, μ, τ for the observables run."""
        p = self.problem
        where = f"η = {p.eta:g}, μ = {p.mu:g}, τ = {p.delay.max_delay}"
        names = ", ".join(c.context.get("observable", c.name) for c in self.checks)
        if self.passed:
            return (f"the {self.limit_kind} limit is valid at {where}: the {names} at L = 1 and at the largest L agree "
                    f"within ±{EQUIVALENCE_MARGIN:.0%} (the 95% intervals of their relative differences)")  # fmt: skip
        lost = [str(pt.amplification) for pt in self.points if pt.floor.n == 0]
        if lost:
            return f"no verdict at {where}: every floor run diverged at L = {', '.join(lost)}; lower --eta"
        failed = [c for c in self.checks if not c.passed and not c.undecided]
        if not failed:
            vague = next(c for c in self.checks if c.undecided)
            return f"no verdict at {where}: the {vague.context['observable']} at L = 1 and at the largest L {vague.undecided}"
        names = ", ".join(c.context.get("observable", c.name) for c in failed)
        return f"the {self.limit_kind} limit is not valid at {where}: the {names} at L = 1 and at the largest L differ"

    def to_dict(self) -> dict:
        from amsgd.core.estimates import json_float

        return {
            "problem": self.problem.to_dict(),
            "setup": {**self.setup.__dict__, "amplifications": list(self.setup.amplifications)},
            "floor_steps": self.steps,
            "escape_steps": self.escape_steps,
            "limit": {"name": self.limit_name, "floor": json_float(self.limit_floor)},
            "points": [pt.to_dict() for pt in self.points],
            "differences": {k: v.to_dict() for k, v in self.differences.items()},
            "verdict": self.verdict(),
            "passed": self.passed,
            "noise_to_signal_condition": self._noise_to_signal(),
            "elapsed_seconds": round(self.elapsed, 1),
        }


    def _noise_to_signal(self) -> dict | None:
        if self.noise_to_signal is None:
            return None
        measured = self.measured_noise_to_signal
        return {**self.noise_to_signal.to_dict(), "measured_at_L1": None if measured is None else measured.to_dict()}


def amplifications(values: Sequence[int]) -> tuple[int, ...]:
    """The amplifications, checked: positive integers, distinct, including 1 (the algorithm), two at least."""
    out = []
    for v in values:
        if not checks.is_whole_number(v) or v < 1:
            raise ProblemError(f"--svag takes positive integers L (1 = the algorithm itself), got {v!r}")
        out.append(int(v))
    if len(set(out)) != len(out) or 1 not in out or len(out) < 2:
        raise ProblemError(
            f"--svag needs distinct amplifications including 1 and a larger one, such as 1,2,4,8; got {','.join(map(str, out))}"
        )
    return tuple(sorted(out))


def relaxation_iterations(problem: Problem) -> float:
    """The relaxation time of the slowest tangent mode, ``(1 − μ)/(η (λ_1 − λ_2))`` iterations."""
    lam = np.asarray(problem.eigenvalues, dtype=float)
    return (1.0 - problem.mu) / (problem.eta * (lam[0] - lam[1]))


def floor_steps(problem: Problem) -> int:
    """:data:`RELAXATION_TIMES` relaxation times of the slowest tangent mode, at least 2000 iterations."""
    return int(max(2000, math.ceil(RELAXATION_TIMES * relaxation_iterations(problem) / 100.0) * 100))


def _require_floor_runs(problem: Problem, steps: int) -> None:
    """Refuse floor runs shorter than two relaxation times: from e_1 the error is then still rising
    and the floors compared would be transients."""
    shortest = math.ceil(2 * relaxation_iterations(problem))
    if steps < shortest:
        raise ProblemError(f"floor runs of {steps} iterations (--svag-steps) are shorter than two relaxation times of the slowest "
                           f"mode ({shortest} iterations): the floors would still be rising from e_1; give at least "
                           f"{shortest} (the default is {floor_steps(problem)})")  # fmt: skip


def run_svag(problem: Problem, setup: SvagSetup = SvagSetup()) -> SvagReport:
    """Run the floor (and escape) at every amplification, compare L = 1 with the largest L."""
    from amsgd.diffusion.theory import predict
    from amsgd.simulate.svag import check_svag, simulate_svag

    amps = amplifications(setup.amplifications)
    for amp in amps:
        check_svag(problem, amp)  # refuse bad input before any run
    problem.require_eigengap()
    steps = setup.steps or floor_steps(problem)
    _require_floor_runs(problem, steps)
    began = time.perf_counter()
    predictions = predict(problem)
    if not predictions.stability.stable:
        largest = "no delay is" if predictions.tau_max is None else f"tau* = {predictions.tau_max} is the largest"
        raise ProblemError(f"the delay {problem.delay.spec} is not stable at eta = {problem.eta:g}, mu = {problem.mu:g} "
                           f"({largest} stable): no run settles at e_1 (they saturate at a higher error or blow up), so "
                           "there is no floor for SVAG to measure; lower --eta or the delay")  # fmt: skip
    tau = problem.delay.max_delay
    limit_name, limit = ("diffusion floor (SDE)", predictions.diffusion_floor) if tau == 0 else (
        "SDDE floor", predictions.sdde.floor)  # fmt: skip
    escape_steps = None
    if setup.escape:
        escape_steps = int(math.ceil(ESCAPE_MARGIN * predictions.phases.escape_time / problem.eta))
        if escape_steps * setup.replicates > MAX_ESCAPE_NUMBERS:
            escape_steps = None
    points = []
    for amp in amps:
        run = simulate_svag(problem, steps, setup.replicates, amp, rng=setup.seed, start="e1", threads=setup.threads)
        escape, censored = None, 0
        if escape_steps is not None:
            escaping = simulate_svag(problem, escape_steps, setup.replicates, amp, rng=setup.seed + 1, start="e2",
                                     record_every=1, window=0.0, threads=setup.threads)  # fmt: skip
            escape, censored = first_passage(escaping.error, escaping.iterations, 1.0 - setup.delta_sq)
        points.append(SvagPoint(
            amp, run.weights, run.stationary_error, run.stationarity.stationary, svag_floor_theory(problem, amp),
            escape, censored, int(run.diverged.sum()), run.svag_steps_per_second,
        ))  # fmt: skip
    measured = measured_noise_to_signal(problem, steps, setup.replicates, setup.seed + 2, setup.threads)
    report = SvagReport(problem, setup, steps, escape_steps, points, limit_name, float(limit),
                        time.perf_counter() - began, predictions.noise_to_signal, measured)  # fmt: skip
    _compare(report)
    return report


@dataclass(frozen=True)
class MeasuredNoiseToSignal:
    """``N/G`` measured at L = 1: over every direction (the ratio's definition, the radial signal of the
    norm of v included) and over the tangent directions alone (what the predictions describe)."""

    all_directions: Estimate
    tangent: Estimate

    def to_dict(self) -> dict:
        return {"all_directions": self.all_directions.to_dict(), "tangent": self.tangent.to_dict()}


def measured_noise_to_signal(problem: Problem, steps: int, replicates: int, seed: int,
                             threads: int = 1) -> MeasuredNoiseToSignal:  # fmt: skip
    """``N/G`` of the algorithm (L = 1) from e_1: per replicate the averages over the second half of the
    run of ``tr C(h)`` and ``‖g(h)‖²`` (the SME's noise covariance and mean map at each recorded iterate,
    200 records), as ratios of means with their delta-method intervals; the tangent ratio keeps the
    coordinates i >= 2 of both."""
    from amsgd.core.estimates import ratio_of_means
    from amsgd.diffusion.coefficients import sme_coefficients
    from amsgd.simulate import simulate

    run = simulate(problem, steps, replicates, rng=seed, start="e1", coordinates="all",
                   record_every=max(1, steps // 200), threads=threads, progress=False)  # fmt: skip
    h = run.coordinates[:, run.iterations >= steps // 2]
    sme = sme_coefficients(problem)
    signal = np.square((1.0 - problem.mu) * sme.drift(h))
    noise = np.diagonal(sme.noise_covariance(h), axis1=-2, axis2=-1)

    def ratio(columns: slice) -> Estimate:
        return ratio_of_means(noise[..., columns].sum(-1).mean(axis=1), signal[..., columns].sum(-1).mean(axis=1))

    return MeasuredNoiseToSignal(ratio(slice(None)), ratio(slice(1, None)))


def first_passage(error: np.ndarray, iterations: np.ndarray, level: float) -> tuple[Estimate, int]:
    """Per replicate the first recorded iteration with ``error <= level``; the mean over the replicates
    that crossed with its 95% interval, and how many did not cross (censored, or diverged before)."""
    from amsgd.core.estimates import t_interval

    crossed = error <= level
    hit = crossed.any(axis=1)
    first = iterations[np.argmax(crossed, axis=1)].astype(float)
    return t_interval(first[hit]), int((~hit).sum())


def svag_floor_theory(problem: Problem, amplification: int) -> float | None:
    """The finite-η floor of the SVAG recursion from the random-coefficient linear theory: step η/L,
    delay Lτ and the combined sample's moments (:func:`amsgd.diffusion.theory.coupling.svag_coefficients`);
    None beyond the linear numerics, inf where that recursion has no stationary law
    (:func:`~.second_moments.stationary_floor`)."""
    from amsgd.diffusion.theory.coupling import svag_coefficients
    from amsgd.diffusion.theory.linear_recursion import MAX_DELAY
    from amsgd.diffusion.theory.second_moments import stationary_floor

    delay = amplification * problem.delay.max_delay
    if delay > MAX_DELAY:
        return None
    scaled = svag_coefficients(problem, amplification)
    return float(stationary_floor(scaled, problem.eta / amplification, problem.mu, delay).value)


def _within(interval: Sequence[float], margin: float) -> bool:
    """Whether ``[low, high]`` lies within ``[−margin, margin]`` (false where it is not finite)."""
    low, high = interval
    return bool(math.isfinite(low) and math.isfinite(high) and -margin <= low and high <= margin)


def welch_difference(first: Estimate, last: Estimate, confidence: float = CONFIDENCE) -> Difference:
    """``last − first`` of two independent means with the Welch interval, and ``(last − first)/first``
    with the delta-method interval on the same degrees of freedom."""
    from scipy import stats

    from amsgd.core.estimates import Estimate
    diff = last.mean - first.mean
    v1, v2 = first.std_error**2, last.std_error**2
    se = math.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (v1**2 / max(first.n - 1, 1) + v2**2 / max(last.n - 1, 1)) if se > 0 else math.inf
    q = float(stats.t.ppf(0.5 + confidence / 2, df)) if math.isfinite(df) else float(stats.norm.ppf(0.5 + confidence / 2))
    rel = diff / first.mean
    rel_se = math.sqrt(v2 + (last.mean / first.mean) ** 2 * v1) / abs(first.mean)
    n = min(first.n, last.n)
    return Difference(Estimate(diff, diff - q * se, diff + q * se, se, n),
                      Estimate(rel, rel - q * rel_se, rel + q * rel_se, rel_se, n))  # fmt: skip


def undecided_reason(difference: Difference) -> str:
    """Why a difference whose 95% interval holds 0 decides nothing ("" where it does): its relative
    interval reaches beyond ±:data:`EQUIVALENCE_MARGIN`, so the agreement is for want of precision."""
    low, high = difference.relative.ci_low, difference.relative.ci_high
    if _within((low, high), EQUIVALENCE_MARGIN):
        return ""
    return (f"differ by between {low:+.1%} and {high:+.1%}, an interval that holds 0 but reaches beyond the "
            f"±{EQUIVALENCE_MARGIN:.0%} within which they would be called equal; raise --svag-replicates")  # fmt: skip


def _compare(report: SvagReport) -> None:
    """The verdict's checks: per observable, the interval of ``value(L_max) − value(1)`` contains 0 and
    that of the relative difference lies within ±:data:`EQUIVALENCE_MARGIN` (else the check is undecided)."""
    from amsgd.validation.checks import Check

    first, last = report.points[0], report.points[-1]
    diverged = sum(pt.diverged for pt in report.points)
    observables = [("floor", first.floor, last.floor, "")]
    if first.escape is not None and last.escape is not None:
        observables.append(("escape time", first.escape, last.escape, "iterations"))
    for name, a, b, unit in observables:
        diff = welch_difference(a, b)
        report.differences[name] = diff
        censored = first.escape_censored + last.escape_censored if name == "escape time" else 0
        clean = diverged == 0 and censored == 0
        agrees = diff.difference.ci_low <= 0 <= diff.difference.ci_high and clean
        report.checks.append(Check(
            name=f"svag {name}: L = 1 against L = {last.amplification}", group="svag", predicted=0.0,
            measured=diff.difference.mean, ci_low=diff.difference.ci_low, ci_high=diff.difference.ci_high,
            unit=unit, extra_pass=clean,
            criterion="the 95% Welch interval of value(L_max) - value(1) contains 0, no replicate diverged at any L"
            + (" and every run escaped" if name == "escape time" else "")
            + f", and the relative difference's interval lies within ±{EQUIVALENCE_MARGIN:.0%}",
            undecided=undecided_reason(diff) if agrees else "",
            context={"observable": name, "value_at_1": a.mean, "value_at_L_max": b.mean,
                     "relative_difference": diff.relative.mean,
                     "relative_difference_ci": [diff.relative.ci_low, diff.relative.ci_high]},
        ))  # fmt: skip


def write_svag_report(report: SvagReport, out_dir: str | Path, figures: Sequence[Path] = (),
                      command: str | None = None) -> list[Path]:  # fmt: skip
    """``report.json`` (the run, the verdict and its checks) and ``report.md`` in ``out_dir`` (an earlier
    run's summary.json removed)."""
    from amsgd.validation.report import write_report_files

    data = {"command": command, **report.to_dict(), "checks": [c.to_dict() for c in report.checks]}
    return write_report_files(out_dir, data, None, markdown(report, figures, command))


def _interval(e: Estimate | None, digits: int = 4) -> str:
    from amsgd.validation.report import fmt_number

    if e is None:
        return "—"
    return f"{fmt_number(e.mean, digits)} [{fmt_number(e.ci_low, digits)}, {fmt_number(e.ci_high, digits)}]"


def noise_to_signal_lines(report: SvagReport) -> list[str]:
    """The noise-to-signal paragraph of report.md."""
    from amsgd.validation.report import fmt_number

    nsr, measured = report.noise_to_signal, report.measured_noise_to_signal
    if nsr is None:
        return []
    lines = [
        "Noise-to-signal ratio N/G (the gradient noise over the squared mean gradient at the stationary law; "
        "an SDE describes the algorithm only where N/G is large — necessary, not sufficient): "
        f"{fmt_number(nsr.limit_ratio)} at the {nsr.limit_name}'s law (closed form `{nsr.formula}`, "
        "σ_i² = E[Y_1² Y_i²], a_i = λ_1 − λ_i), "
        f"{fmt_number(nsr.finite_eta_ratio)} at the algorithm's law (exact second moments), "
        f"measured at L = 1: {_interval(measured.tangent, 4)} over the tangent directions (what the predictions "
        f"describe) and {_interval(measured.all_directions, 4)} over all, the signal of the norm of v included.",
    ]
    if nsr.floor_excess is not None:
        lines += ["", f"For linear modes the algorithm's floor exceeds the SDE's by (1 − μ)/((1 + μ) N/G) per mode: "
                      f"{100 * nsr.floor_excess:.3g}% here; the rest of a difference comes from the noise's "
                      "dependence on the state and the curvature of sin², which the SDE keeps."]  # fmt: skip
    return lines


def markdown(report: SvagReport, figures: Sequence[Path], command: str | None) -> str:
    """``report.md``: the runs, the table of floors and escapes per L, their differences, the noise-to-signal
    lines, the checks and the figures."""
    from amsgd.validation.report import check_table

    lines = [
        *_setup_lines(report, command),
        *_result_lines(report),
        "",
        "What SVAG tests: the limit as a stochastic equation, with its state-dependent noise. The leading-order "
        f"{report.limit_name} leaves out terms of relative order η that the equation keeps (the multiplicative "
        "noise and the curvature of sin²), so the floors approach the finite-η theory's large-L value, above "
        f"the {report.limit_name}, rather than the {report.limit_name} itself.",
        "",
        *noise_to_signal_lines(report),
        "",
        "## Checks",
        "",
        *check_table(report.checks),
        "",
        *[f"![{Path(f).stem}]({Path(f).name})" for f in figures],
    ]
    return "\n".join(lines) + "\n"


def _setup_lines(report: SvagReport, command: str | None) -> list[str]:
    """The title, the runs, the verdict and the head of the table of floors and escapes."""
    p, s = report.problem, report.setup
    return [
        "# Validation report: SVAG (is the limit valid at this η?)",
        "",
        f"Command: `{command}`" if command else "",
        "",
        f"Σ = diag({', '.join(f'{x:g}' for x in p.eigenvalues)}), {p.distribution.spec} data, η = {p.eta:g}, "
        f"μ = {p.mu:g}, delay {p.delay.spec}. SVAG runs (Li, Malladi & Arora 2021) at L ∈ "
        f"{{{', '.join(str(pt.amplification) for pt in report.points)}}}: step η/L, L·steps iterations, delay Lτ, "
        "each gradient `w1 g(ξ1) + w2 g(ξ2)` of two independent samples with `w1,2 = (1 ± sqrt(2L − 1))/2`, so the "
        "drift and the noise covariance per unit time are those at η. Iterations are original iterations k = n/L.",
        "",
        f"**Verdict: {report.verdict()}.** ({sum(c.passed for c in report.checks)}/{len(report.checks)} checks pass, "
        f"{report.elapsed:.0f} s.)",
        "",
        f"Floor: {s.replicates} runs from e_1 of {report.steps} iterations per L, the error averaged over the "
        "second half. " + (
            f"Escape: {s.replicates} runs from e_2 of {report.escape_steps} iterations, the first iteration with "
            f"sin² <= 1 − δ² = {1 - s.delta_sq:g}." if report.escape_steps else
            "Escape: not run (" + ("too long to record" if s.escape else "--svag-no-escape") + ").")
        + f" Seed {s.seed} (escape: {s.seed + 1}) at every L.",
        "",
        f"| L | w1, w2 | floor [95% CI] | SVAG finite-η theory | {report.limit_name} | escape iterations [95% CI] "
        "| censored | diverged |",
        "|---|---|---|---|---|---|---|---|",
    ]


def _result_lines(report: SvagReport) -> list[str]:
    """The table's rows (one per L) and the differences between the largest L and L = 1."""
    from amsgd.validation.report import fmt_number

    lines = []
    for pt in report.points:
        lines.append(
            f"| {pt.amplification} | {pt.weights[0]:.4g}, {pt.weights[1]:.4g} | {_interval(pt.floor)} "
            f"| {fmt_number(pt.floor_theory)} | {fmt_number(report.limit_floor)} | {_interval(pt.escape)} "
            f"| {pt.escape_censored} | {pt.diverged} |"
        )
    lines += ["", "Differences, largest L against L = 1 (95% Welch interval):", ""]
    for name, d in report.differences.items():
        r = d.relative
        lines.append(f"- {name}: {_interval(d.difference)}; relative {100 * r.mean:+.2f}% "
                     f"[{100 * r.ci_low:+.2f}%, {100 * r.ci_high:+.2f}%]")  # fmt: skip
    return lines

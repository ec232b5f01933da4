"""Write the report of ``amsgd validate --model``: ``report.json`` (the checks), ``summary.json``
(the prediction and every measurement) and ``report.md`` (the prediction made before the runs, the
checks, the stability and rate runs, and findings computed from them)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from amsgd.validation.model_checks import BREAKDOWN_RATIO, ModelValidation
from amsgd.validation.model_prediction import (
    BREAKDOWN_LENGTH,
    DIVERGENCE_NORM,
    FULL_THEORY,
    HEAVY_TAIL_KURTOSIS,
    UNSTABLE_FACTOR,
    WINDOW_BIAS,
)
from amsgd.validation.report import check_table, fmt_number, write_report_files


def write_model_report(report: ModelValidation, out_dir: str | Path, figures: Sequence[Path] = (),
                       command: str | None = None) -> list[Path]:  # fmt: skip
    return write_report_files(out_dir, [c.to_dict() for c in report.checks], {"command": command, **report.to_dict()},
                              markdown(report, figures, command))  # fmt: skip


def _interval(e, digits: int = 4) -> str:
    return f"{fmt_number(e.mean, digits)} [{fmt_number(e.ci_low, digits)}, {fmt_number(e.ci_high, digits)}]"


def _where(family: str, tau: int) -> str:
    return f"M = {tau + 1}" if family == "workers" else f"τ = {tau}"


def problem_line(report: ModelValidation) -> str:
    p, d = report.problem, report.problem.data
    kind = f"{d.classes} classes" if d.classes else "real targets"
    net = f", {p.hidden} hidden units ({p.activation})" if p.model == "mlp" else ""
    return (f"Model `{p.model}`{net} ({report.prediction.parameters} parameters) on `{d.name}` ({d.examples} training "
            f"examples, {d.features} features, {kind}); minibatch {p.batch}, ridge {p.l2:g}; η = {p.eta:g}, "
            f"μ = {p.mu:g}, delay `{p.delay.spec}`.")  # fmt: skip


def prediction_lines(report: ModelValidation) -> list[str]:
    """What the theory said before any run."""
    pr = report.prediction
    lines = [
        f"- **Minimum x\\***: training objective L(x\\*) = {pr.loss_at_minimum:.6g} (gradient norm "
        f"{pr.gradient_norm:.1e}); top Hessian eigenvalues {', '.join(f'{v:.4g}' for v in pr.hessian_top[:5])}"
        f"{', …' if len(pr.hessian_top) > 5 else ''}. Largest standardised fourth moment of a feature "
        f"{fmt_number(pr.kurtosis, 3)} (Gaussian: 3; heavy-tailed above {HEAVY_TAIL_KURTOSIS:g}).",
        _floor_line(report),
        _stability_line(pr),
    ]
    if math.isfinite(pr.rate):
        lines.append(
            f"- **Rate**: −log ρ = {pr.rate:.5g} per iteration (the slowest ranking mode, curvature "
            f"{pr.rate_eigenvalue:.4g}, over a horizon of {pr.steps} iterations); from x\\* ± δ q with δ = "
            f"{pr.rate_delta:.3g}, the mean of q·(x⁺ − x⁻)/(2δ) after "
            + ", ".join(f"{k}" for k in pr.rate_lengths) + " iterations: "
            + ", ".join(f"{v:.4g}" for v in pr.rate_path) + "."
        )  # fmt: skip
    lines += [f"- Note: {n}." for n in pr.notes]
    return lines


def _floor_line(report: ModelValidation) -> str:
    """The predicted floor at the given cell, or why there is none."""
    pr, p = report.prediction, report.problem
    if pr.stable:
        return (
            f"- **Loss floor** at η = {p.eta:g}, μ = {p.mu:g}, delay `{p.delay.spec}`, by the {theory_name(pr)}: "
            f"E L(x) − L(x\\*) = {pr.floor:.5g} (additive noise alone: {pr.floor_additive:.5g}{beside(pr)}); accepted "
            f"within ±{pr.floor_tolerance:.1%} = ±{pr.floor_tolerance * pr.floor:.3g} beyond the 95% interval. "
            f"Runs of {pr.steps} iterations from x\\*, averaged over the second half: the start biases that average by "
            f"{pr.window_bias:.1e} of the floor ({_bias_bound(pr.window_bias, pr.floor_tolerance)}); the slowest curved "
            "mode relaxes in "
            f"{fmt_number(pr.relaxation, 3)} iterations."
        )  # fmt: skip
    if pr.given_breakdown:
        return (
            f"- **Loss floor**: none — the full second moments call η = {p.eta:g}, μ = {p.mu:g}, delay "
            f"`{p.delay.spec}` mean-square unstable (feedback radius {pr.feedback_radius:.3g} > 1), where the diagonal "
            f"theory calls it stable with a floor of {pr.floor_diagonal:.5g}. The runs from x\\* there, "
            f"{pr.given_steps} iterations long ({BREAKDOWN_LENGTH} × {pr.steps}), are checked to break down"
            + (f" (reference: the bounded runs at {_where(pr.family, pr.bounded_tau)})."
               if pr.bounded_tau is not None else " (more than half diverge: no bounded reference).")
        )  # fmt: skip
    radius = f" (full second moments, feedback radius {pr.feedback_radius:.3g})" if pr.floor_theory == FULL_THEORY else ""
    return (f"- **Loss floor**: none — the linearisation at x\\* is not mean-square stable at η = {p.eta:g}, "
            f"μ = {p.mu:g}, delay `{p.delay.spec}`{radius}.")  # fmt: skip


def _bias_bound(bias: float, tolerance: float) -> str:
    """Where the window's bias stands against :data:`WINDOW_BIAS`: within it (the run length the toolkit
    chooses), or beyond it where ``--steps`` set a shorter run, and then whether the floor's ``tolerance``
    (relative) covers it: only the exact theory's tolerance is the bias itself."""
    if bias <= WINDOW_BIAS:
        return f"at most {WINDOW_BIAS:g}"
    covered = "the tolerance takes the bias" if tolerance >= bias else "beyond the tolerance: raise --steps"
    return f"above the {WINDOW_BIAS:g} of the run length the toolkit would choose: --steps set it, and {covered}"


def _stability_line(pr) -> str:
    """The boundary over constant delays and what the theory says at each delay of the stability runs."""
    fam = "round-robin workers M = τ + 1" if pr.family == "workers" else "constant delays τ"
    ms = "none" if pr.tau_ms is None else _where(pr.family, pr.tau_ms)
    if pr.tau_ms_at_limit:
        ms = f"at least {ms} (the longest delay the full second moments take)"
    return (
        f"- **Stability** over {fam}: the mean of the stiffest mode is stable for τ < τ_c = {fmt_number(pr.tau_c, 5)}; "
        f"the largest mean-square-stable delay is {ms}. Runs at "
        + ", ".join(f"{_where(pr.family, s.tau)} ({s.label}"
                    + (f", mean grows ×e every {1 / s.growth:.3g} iterations" if s.growth > 0 else "")
                    + (f", floor {s.floor:.4g}" if math.isfinite(s.floor) else "") + ")" for s in pr.stability)
        + f"; ⌈{UNSTABLE_FACTOR:g} τ_c⌉ is the clearly unstable one"
        + (f", where the noise-free dynamics along the stiffest mode {pr.unstable_fate} (the divergence risk's fate)."
           if pr.unstable_fate else ".")
    )  # fmt: skip


def theory_name(pr) -> str:
    """Which theory gave the floor and the stability of the given cell."""
    if pr.floor_theory == FULL_THEORY:
        return "full second moments (every cross-covariance of the per-example Hessians kept)"
    return "diagonal theory (the variances in the Hessian's eigenbasis, their cross-covariances dropped)"


def beside(pr) -> str:
    """The diagonal theory's floor and the feedback radius beside the full second moments' floor."""
    if pr.floor_theory != FULL_THEORY:
        return ""
    diagonal = f"{pr.floor_diagonal:.5g}" if math.isfinite(pr.floor_diagonal) else "none (unstable)"
    return f"; diagonal theory: {diagonal}; feedback radius {pr.feedback_radius:.3g}"


def stability_table(report: ModelValidation) -> list[str]:
    fam = report.prediction.family
    head = "M" if fam == "workers" else "τ"
    lines = [f"| {head} | theory | predicted floor | steps | diverged | fraction [95%] | excess loss of the others [95%] |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for s in report.stability:
        e = s.interval()
        value = s.tau + 1 if fam == "workers" else s.tau
        lines.append(f"| {value} | {s.label} | {fmt_number(s.floor)} | {s.steps} | {s.diverged}/{s.replicates} "
                     f"| {_interval(e, 3)} | {_interval(s.excess)} |")  # fmt: skip
    return lines


def rate_table(report: ModelValidation) -> list[str]:
    r, pr = report.rate, report.prediction
    if r is None:
        return []
    lines = ["| iterations k | predicted mean m_k/δ | measured [95%] |", "|---|---|---|"]
    for k, m, e in zip(r.lengths, pr.rate_path, r.means):
        lines.append(f"| {k} | {m:.5g} | {_interval(e, 5)} |")
    return lines


def findings(report: ModelValidation) -> list[str]:
    """Findings computed from the measurements (no fixed prose about the outcome): the floor, the
    stability runs, the rate (each when run) and the verdict."""
    out = [_floor_finding(report)]
    if report.stability:
        out.append(_stability_finding(report))
    if report.rate is not None:
        out.append(_rate_finding(report))
    failed = [c.name for c in report.checks if not c.passed]
    out.append(f"**Verdict.** {len(report.checks) - len(failed)} of {len(report.checks)} checks pass"
               + (f"; failing: {', '.join(f'`{n}`' for n in failed)}." if failed else "."))  # fmt: skip
    return out


def _floor_finding(report: ModelValidation) -> str:
    """The measured floor against the prediction (or why it was not checked)."""
    pr, f = report.prediction, report.floor
    if not pr.stable and pr.given_breakdown:
        return (f"**Floor.** Not checked: the full second moments call the given cell mean-square unstable "
                f"(feedback radius {pr.feedback_radius:.3g}) where the diagonal theory predicts a floor of "
                f"{pr.floor_diagonal:.4g}; {f.diverged} of {f.replicates} runs from x\\* diverged there within "
                f"{int(f.iterations[-1])} iterations" + (f", the others' excess loss {_interval(f.estimate, 3)}."
                                                         if f.estimate.n else "."))  # fmt: skip
    if not pr.stable:
        return (f"**Floor.** Not checked: the theory calls the given cell mean-square unstable; {f.diverged} of "
                f"{f.replicates} runs from x\\* diverged there.")  # fmt: skip
    e = f.estimate
    if e.n < 2:  # every run diverged, or all but one: no interval to set beside the prediction
        return (f"**Floor.** Nothing was measured: {f.diverged} of the {f.replicates} runs from x\\* diverged although "
                f"the theory calls the cell stable (predicted {pr.floor:.4g}).")  # fmt: skip
    rel = (e.mean / pr.floor - 1) if pr.floor else math.nan
    lo, hi = e.ci_low / pr.floor - 1, e.ci_high / pr.floor - 1
    check = next((c for c in report.checks if c.name == "loss-floor"), None)
    inside = check is not None and check.ci_low - check.tolerance <= check.predicted <= check.ci_high + check.tolerance
    text = (f"**Floor.** Measured {_interval(e, 4)} against the predicted {pr.floor:.4g} ({pr.floor_theory}): the "
            f"measurement lies {abs(rel):.1%} {'above' if rel > 0 else 'below'} the prediction (its interval from "
            f"{lo:+.1%} to {hi:+.1%}), " + ("within" if inside else "outside")
            + f" the {pr.floor_tolerance:.1%} tolerance.")  # fmt: skip
    if pr.floor_theory == FULL_THEORY and math.isfinite(pr.floor_diagonal) and pr.floor_diagonal > 0:
        d_lo, d_hi = e.ci_low / pr.floor_diagonal - 1, e.ci_high / pr.floor_diagonal - 1
        text += (f" Against the diagonal theory's {pr.floor_diagonal:.4g} the interval lies from {d_lo:+.1%} to "
                 f"{d_hi:+.1%}.")  # fmt: skip
    if f.diverged:
        text += f" {f.diverged} of {f.replicates} runs diverged although the theory calls the cell stable."
    if pr.kurtosis > HEAVY_TAIL_KURTOSIS and pr.floor_theory != FULL_THEORY:
        text += (f" The features are heavy-tailed (largest standardised fourth moment {pr.kurtosis:.0f}): there the "
                 "dropped cross-covariances of the per-example Hessian make the predicted floor low, as documented "
                 "for the digits pixels (docs/models.md); read it as a lower bound.")  # fmt: skip
    if f.stationarity.get("stationary") is False:
        text += (f" The averaging window drifts: its halves differ by "
                 f"{f.stationarity.get('relative_difference', math.nan):.1%} of the estimate; longer runs "
                 "(--steps) would settle it.")  # fmt: skip
    return text


def _stability_finding(report: ModelValidation) -> str:
    """What the runs at each delay did, and what the runs beyond the boundary show."""
    pr, f = report.prediction, report.floor
    parts = []
    for s in report.stability:
        frac = s.interval()
        part = f"{_where(pr.family, s.tau)} ({s.label}): {s.diverged} of {s.replicates} diverged"
        if s.excess.n:
            part += f", excess loss {fmt_number(s.excess.mean, 3)}"
            if math.isfinite(s.floor) and s.floor > 0:
                part += f" against the predicted {fmt_number(s.floor, 3)}"
        parts.append(part + f" (fraction {fmt_number(frac.mean, 2)})")
    text = "**Stability.** " + "; ".join(parts) + "."
    top = next((s for s in report.stability if s.tau == pr.unstable_tau), None)
    if top is not None and top.diverged * 2 <= top.replicates and top.excess.n:
        ref = next((s for s in report.stability if s.tau == pr.bounded_tau), None)
        ratio = top.excess.mean / (ref.excess.mean if ref is not None else f.estimate.mean)
        why = (f"{top.diverged} of {top.replicates} runs diverge within {top.steps} iterations"
               if top.diverged else "no run diverges")
        if report.problem.data.classes and not top.diverged:
            why += " (the data gradient is bounded: far from x\\* the loss grows only linearly)"
        text += (f" Beyond the boundary {why}: the instability shows as a stationary loss {ratio:.3g} times that "
                 f"of the bounded runs (the check asks for more than {BREAKDOWN_RATIO:g}).")
    at_ms = next((s for s in report.stability if s.tau == pr.tau_ms), None)
    if pr.boundary_theory == FULL_THEORY:
        text += (" The boundary and these labels are the full second moments' (every cross-covariance of the "
                 "per-example Hessians kept; beyond a delay of 64, the diagonal theory's)" + (", which call the given cell mean-square unstable where the "
                 "diagonal theory does not." if pr.given_breakdown else "."))  # fmt: skip
    if at_ms is not None and at_ms.excess.n and math.isfinite(at_ms.floor) and at_ms.floor > 0:
        ratio = at_ms.floor / at_ms.excess.mean
        if abs(ratio - 1) > 0.1 and pr.tau_ms_at_limit:  # the delay is where the solver stops, not the boundary
            text += (f" At {_where(pr.family, pr.tau_ms)}, the longest delay the full second moments take (the "
                     f"boundary lies beyond it), the linear floor is {ratio:.3g} times the measured one.")  # fmt: skip
        elif abs(ratio - 1) > 0.1:
            text += (f" At the last stable delay the linear floor is {ratio:.3g} times the measured one: near "
                     "the mean-square boundary the predicted variances grow without bound, the runs' do not "
                     "follow them exactly.")  # fmt: skip
    return text


def _rate_finding(report: ModelValidation) -> str:
    """The measured decay rate of the perturbed mode against the predicted one."""
    r, pr = report.rate, report.prediction
    if not math.isfinite(r.rate):
        return (f"**Rate.** Nothing was measured: in {r.pairs - r.kept} of the {r.pairs} pairs of runs from "
                f"x\\* ± δq a run diverged (predicted {pr.rate:.4g} per iteration).")  # fmt: skip
    rel = r.rate / pr.rate - 1
    kept = f" (over the {r.kept} of {r.pairs} pairs whose runs did not diverge)" if r.kept < r.pairs else ""
    return (f"**Rate.** The perturbed mode's mean decays{kept} at {fmt_number(r.rate, 4)} [{fmt_number(r.ci_low, 4)}, "
            f"{fmt_number(r.ci_high, 4)}] per iteration against the predicted {pr.rate:.4g} ({rel:+.1%}).")  # fmt: skip


def markdown(report: ModelValidation, figures: Sequence[Path], command: str | None) -> str:
    s = report.setup
    passed = sum(c.passed for c in report.checks)
    lines = [
        f"# Validation report: the theory at the minimum of `{report.problem.model}` on `{report.problem.data.name}`",
        "",
        f"Regenerate with `{command}`." if command else "",
        "",
        problem_line(report) + f" Seed {s.seed}; {s.replicates} runs per set; {report.elapsed:.0f} s on this machine.",
        "",
        f"**{passed} of {len(report.checks)} checks pass.** Every interval is a 95% interval over independent runs "
        f"(Student-t for means, Clopper–Pearson for fractions, percentile bootstrap for the rate), so even an exact "
        f"prediction fails a check without model tolerance about one time in twenty: rerun with another `--seed` to "
        f"tell chance from a real discrepancy. A run diverges when it turns non-finite or moves {DIVERGENCE_NORM:g} "
        f"further from the centre than its start (for least squares the centre holds the targets' mean at the "
        f"intercept and distances are in their standard deviation).",
        "",
    ]
    if report.perturb:
        lines += [f"Predictions deliberately perturbed: {report.perturb}.", ""]
    lines += ["## The prediction, made before the runs (linear theory at x\\*)", "", *prediction_lines(report), ""]
    lines += ["## Checks", "", *check_table(report.checks), ""]
    reasons = sorted({c.tolerance_reason for c in report.checks if c.tolerance_reason})
    criteria = sorted({c.criterion for c in report.checks if c.criterion})
    lines += [f"Tolerance: {r}." for r in reasons] + [f"Criterion: {c}." for c in criteria] + [""]
    if report.stability:
        lines += ["## Stability runs (from x\\*)", "", *stability_table(report), ""]
    if report.rate is not None:
        lines += ["## Rate runs (paired, from x\\* ± δ q)", "", *rate_table(report), ""]
    lines += ["## Findings", ""]
    for paragraph in findings(report):
        lines += [paragraph, ""]
    lines += [f"![{Path(f).stem.replace('_', ' ')}]({Path(f).name})" for f in figures]
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"

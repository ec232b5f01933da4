"""Figure of ``amsgd validate --model``: the floor runs against the predicted floor, the stability runs
against the predicted boundary, and (when run) the perturbed mode's mean against its predicted path."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from amsgd.core.delays import ConstantDelay, RoundRobinDelay
from amsgd.figures.style import COLORS, new_figure, save
from amsgd.validation.model_checks import ModelValidation
from amsgd.validation.model_prediction import FULL_THEORY
from amsgd.validation.statistics import pointwise_band


def model_validation_figure(report: ModelValidation, path: str | Path) -> Path:
    """Left: mean excess training loss of the runs from x* (95% band) and the predicted floor with its
    tolerance (and the diagonal theory's floor where the full second moments gave it). Middle: diverged
    fraction (Clopper–Pearson 95%) against the delay, with the largest mean-square-stable delay and τ_c,
    and the excess loss of the runs that stayed finite (right axis). Right, when run: the mean of the
    perturbed mode over δ against the mean recursion."""
    panels = 3 if report.rate is not None else 2
    fig, axes = new_figure(width=5.2 * panels, height=4.2, ncols=panels, squeeze=False)
    _floor_panel(axes[0][0], report)
    _stability_panel(axes[0][1], report)
    if report.rate is not None:
        _rate_panel(axes[0][2], report)
    fig.suptitle(f"{report.problem.model} on {report.problem.data.name}: theory at x* against simulation", fontsize=10)
    return save(fig, path)


def _floor_panel(ax, report: ModelValidation) -> None:
    """The floor runs' mean excess loss (95% band) against the predicted floors."""
    pr, p, f = report.prediction, report.problem, report.floor
    alive = np.all(np.isfinite(f.excess), axis=1)
    if alive.sum() >= 2:
        mean, low, high = pointwise_band(f.excess[alive])
        ax.plot(f.iterations, mean, color=COLORS[0], lw=1.2, label=f"mean of {int(alive.sum())} runs from x*")
        ax.fill_between(f.iterations, low, high, color=COLORS[0], alpha=0.25, lw=0, label="95% band")
    if pr.stable:
        ax.axhline(pr.floor, color="k", lw=1.2, label=f"predicted floor {pr.floor:.4g} ({pr.floor_theory})")
        ax.axhspan(pr.floor * (1 - pr.floor_tolerance), pr.floor * (1 + pr.floor_tolerance), color="k", alpha=0.08,
                   label=f"± {pr.floor_tolerance:.1%} tolerance")  # fmt: skip
        ax.axhline(pr.floor_additive, color=COLORS[1], lw=1, ls="--", label="additive noise alone")
    if pr.floor_theory == FULL_THEORY and math.isfinite(pr.floor_diagonal):
        ax.axhline(pr.floor_diagonal, color=COLORS[2], lw=1, ls="-.", label=f"diagonal theory {pr.floor_diagonal:.4g}")
    ax.axvline(f.window_start, color="0.5", lw=0.8, ls=":", label="window start")
    ax.set_xlabel("iteration")
    ax.set_ylabel("excess training loss L(x) − L(x*)")
    ax.set_title(f"floor at η = {p.eta:g}, μ = {p.mu:g}, {p.delay.spec}", fontsize=10)
    ax.legend(fontsize=7.5)


def _stability_panel(ax, report: ModelValidation) -> None:
    """Diverged fractions against the delay, the predicted boundaries, and the finite runs' loss."""
    pr, p, f = report.prediction, report.problem, report.floor
    workers = pr.family == "workers"
    if report.stability:
        shift = 1 if workers else 0
        taus = np.array([s.tau + shift for s in report.stability], dtype=float)
        est = [s.interval() for s in report.stability]
        mean = np.array([e.mean for e in est])
        yerr = np.array([[e.mean - e.ci_low for e in est], [e.ci_high - e.mean for e in est]])
        ax.errorbar(taus, mean, yerr=yerr, fmt="o", color=COLORS[3], capsize=3, label="diverged fraction (95%)")
        if pr.tau_ms is not None:
            ax.axvline(pr.tau_ms + shift, color="k", lw=1.2, label=f"largest mean-square-stable: {pr.tau_ms + shift}")
        if math.isfinite(pr.tau_c):
            ax.axvline(pr.tau_c + shift, color="k", lw=1, ls="--", label=f"mean boundary τ_c{' + 1' if workers else ''}")
        given = _given_delay(p.delay, workers)
        if given is not None:
            e = f.interval()
            ax.errorbar([given + shift], [e.mean], yerr=[[e.mean - e.ci_low], [e.ci_high - e.mean]], fmt="o", mfc="none",
                        color=COLORS[0], capsize=3, label="the floor runs (given delay)")  # fmt: skip
        ax.set_ylim(-0.05, 1.05)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        twin = ax.twinx()
        finite = [(t, s.excess) for t, s in zip(taus, report.stability) if s.excess.n]
        if given is not None and f.estimate.n:
            finite.append((given + shift, f.estimate))
        if finite:
            t, e = zip(*finite)
            twin.plot(t, [x.mean for x in e], "s", mfc="none", color=COLORS[2], label="excess loss of the finite runs")
            twin.set_yscale("log")
            twin.set_ylabel("stationary excess loss (finite runs)", color=COLORS[2])
            twin.grid(False)
        handles = [h for a in (ax, twin) for h in a.get_legend_handles_labels()[0]]
        ax.legend(handles=handles, fontsize=7.5, loc="upper left")
    ax.set_xlabel("round-robin workers M" if workers else "constant delay τ")
    ax.set_ylabel("fraction of runs diverged")
    ax.set_title("stability boundary", fontsize=10)


def _rate_panel(ax, report: ModelValidation) -> None:
    """The perturbed mode's measured mean against the mean recursion."""
    pr, r = report.prediction, report.rate
    k, m = pr.rate_curve
    ax.plot(k, m, color="k", lw=1, label=f"mean recursion, −log ρ = {pr.rate:.4g}")
    means = np.array([e.mean for e in r.means])
    yerr = np.array([[e.mean - e.ci_low for e in r.means], [e.ci_high - e.mean for e in r.means]])
    ax.errorbar(r.lengths, means, yerr=yerr, fmt="o", color=COLORS[4], capsize=3,
                label=f"measured (95%), rate {r.rate:.4g}")  # fmt: skip
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_xlabel("iteration k")
    ax.set_ylabel("mean of q·(x⁺ − x⁻)/(2δ)")
    ax.set_title(f"rate of the mode λ = {pr.rate_eigenvalue:.4g}", fontsize=10)
    ax.legend(fontsize=7.5)


def _given_delay(delay, workers: bool) -> int | None:
    """The given delay as a constant τ of the stability runs' family, or None when it is not one."""
    if workers:
        return delay.workers - 1 if isinstance(delay, RoundRobinDelay) else None
    return delay.tau if isinstance(delay, ConstantDelay) else None

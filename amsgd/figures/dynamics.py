"""Figures of the dynamics: mean trajectory against the ODE, escape times, the local decay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats

from amsgd.figures.style import COLORS, new_figure, save
from amsgd.validation.dynamics import LocalRate, PhaseRun, Trajectory


def trajectory_figure(traj: Trajectory, problem_label: str, path: str | Path) -> Path:
    """Mean sin² with its 95% band against the ODE closed form (lagged and not), log scale."""
    fig, ax = new_figure()
    k = traj.iterations
    bottom = max(min(traj.floor * 0.3, np.nanmin(traj.ode[traj.ode > 0])), 1e-4)
    # sin² lies in [0, 1]: a t band of few runs reaches beyond it, and below 0 the log axis left gaps
    ax.fill_between(k, np.clip(traj.low, bottom, 1.0), np.clip(traj.high, bottom, 1.0), color=COLORS[0], alpha=0.3,
                    lw=0, label="simulation: 95% CI of the mean")  # fmt: skip
    ax.plot(k, traj.mean, color=COLORS[0], lw=1.5, label="simulation: mean over replicates")
    ax.plot(k, traj.ode, color="k", ls="--", lw=1.2, label="ODE closed form, start-up lag μ/(1−μ)")
    ax.plot(k, traj.ode_unlagged, color="0.5", ls=":", lw=1.2, label="ODE closed form, no lag")
    ax.axhline(traj.floor, color=COLORS[3], lw=1, ls="-.", label="diffusion floor")
    for n, c in enumerate(traj.check_iterations):
        ax.axvline(c, color="0.7", lw=0.8, label="iterations where the ODE is checked" if n == 0 else None)
    ax.set_yscale("log")
    ax.set_ylim(bottom, 1.05)
    ax.set_xlabel("iteration k")
    ax.set_ylabel("optimisation error sin²∠(v_k, e₁)")
    ax.set_title(f"Mean trajectory from h₀ ∝ (1,…,1) against the ODE\n{problem_label}")
    ax.legend(loc="lower left")  # the upper right holds the mean's approach to the floor
    return save(fig, path)


def escape_figure(run: PhaseRun, problem_label: str, path: str | Path) -> Path:
    """Left: mean h₁² against the derived escape time and the escape law's own mean curve's crossing.
    Right: escape-time histograms, simulation vs OU, and the mean of the per-run first-passage law."""
    fig, (ax1, ax2) = new_figure(width=10.5, height=4.2, ncols=2)
    k = run.iterations
    # a share lies in [0, 1]: a t band of few runs reaches beyond it (−1 to 2.4 with two)
    ax1.fill_between(k, np.clip(run.h1_low, 0, 1), np.clip(run.h1_high, 0, 1), color=COLORS[0], alpha=0.3, lw=0)
    ax1.plot(k, run.h1_mean, color=COLORS[0], label="simulation: mean h₁²/‖h‖² (95% band)")
    ax1.axhline(run.delta_sq, color="0.4", ls=":", lw=1, label=f"δ² = {run.delta_sq:g}")
    ax1.axhline(1 - run.delta_sq, color="0.4", ls=":", lw=1)
    ax1.axvline(run.escape_predicted, color="k", ls="--", label="derived escape (E h₁² = δ²)")
    if run.escape_saturated is not None:
        ax1.axvline(run.escape_saturated, color=COLORS[1], ls="-.",
                    label="escape law's mean curve (finite η)")  # fmt: skip
    ax1.axvline(run.escape_predicted + run.travel_predicted, color=COLORS[3], ls="--",
                label="derived escape + ODE travel (diffusion limit)")  # fmt: skip
    ax1.set_xlim(0, min(k[-1], 2.2 * (run.escape_predicted + run.travel_predicted)))
    ax1.set_xlabel("iteration k")
    ax1.set_ylabel("h₁²/‖h‖²  (= 1 − sin²)")
    ax1.set_title("Escape from the saddle e₂ and travel to e₁")
    ax1.legend(loc="lower right")
    sim = run.escape_samples[np.isfinite(run.escape_samples)]
    ou = run.ou_escape_samples[np.isfinite(run.ou_escape_samples)]
    # each sample's own 99.5th percentile: a few runs far beyond the many OU paths keep a bar of their own
    hi = max([np.percentile(x, 99.5) for x in (sim, ou) if x.size], default=1.0)
    bins = np.linspace(0, hi, 50)
    if sim.size:
        ax2.hist(sim, bins=bins, density=True, color=COLORS[0], alpha=0.55, label=f"simulation ({sim.size} runs)")
        ax2.axvline(np.mean(sim), color=COLORS[0], ls="-", lw=1, label=f"simulation mean {np.mean(sim):.0f}")
    if ou.size:
        ax2.hist(ou, bins=bins, density=True, histtype="step", color="k", lw=1.5,
                 label=f"OU limit at e₂, exact sampling ({ou.size} paths)")  # fmt: skip
        ax2.axvline(np.mean(ou), color="k", ls="--", lw=1, label=f"OU mean {np.mean(ou):.0f}")
    if run.escape_law_mean is not None and np.isfinite(run.escape_law_mean):
        ax2.axvline(run.escape_law_mean, color=COLORS[1], ls="-.", lw=1.2,
                    label=f"first-passage law's mean {run.escape_law_mean:.0f} (finite η; the check's)")  # fmt: skip
    ax2.set_xlabel("escape time: first iteration with h₁²/‖h‖² ≥ δ²")
    ax2.set_ylabel("density (1/iteration)")
    ax2.set_title("Escape-time distribution")
    fig.suptitle(problem_label)
    ax2.set_ylim(top=ax2.get_ylim()[1] * 1.5)  # room above the bars for the legend
    ax2.legend(loc="upper right", fontsize=7.5)
    return save(fig, path)


def rate_figure(rates: list[LocalRate], path: str | Path, title: str = "Local convergence near e₁") -> Path:
    """Mean common-noise difference of the slowest tangent coordinate, log scale, with fitted and predicted
    slopes. Where the mean oscillates (a complex dominant root) its negative values are drawn as |mean|
    with open markers, and the fitted line is the fit's envelope ``A e^{−rk}``."""
    fig, ax = new_figure()
    for n, r in enumerate(rates):
        color = COLORS[n % len(COLORS)]
        f = r.fit
        k = f.iterations
        p = r.problem
        label = f"η={p.eta:g}, μ={p.mu:g}, delay {p.delay.spec}; coordinate {r.mode + 1}"
        ax.semilogy(k[f.mean > 0], f.mean[f.mean > 0], ".", ms=3, color=color, label=f"simulation: {label}")
        negative = f.mean < 0
        if negative.any():
            ax.semilogy(k[negative], -f.mean[negative], "o", ms=2.5, mfc="none", mew=0.6, color=color,
                        label="simulation: |mean| where negative")  # fmt: skip
        lo, hi = f.window
        kk = np.linspace(lo, hi, 50)
        within = (k >= lo) & (k <= hi)
        fitted = "fitted envelope" if negative[within].any() else "fit"
        ax.semilogy(kk, f.amplitude * np.exp(-f.rate * kk), color=color, lw=1.5,
                    label=f"{fitted} {f.rate:.3g} [{f.ci_low:.3g}, {f.ci_high:.3g}] /iter")  # fmt: skip
        a0 = f.amplitude * np.exp(-f.rate * lo)
        if r.finite is not None:
            ax.semilogy(kk, a0 * np.exp(-r.finite * (kk - lo)), color=color, ls="-.", lw=1,
                        label=f"finite-η {r.finite:.3g} /iter")  # fmt: skip
        ax.semilogy(kk, a0 * np.exp(-r.exact * (kk - lo)), color=color, ls="--", lw=1,
                    label=f"exact linear {r.exact:.3g} /iter")  # fmt: skip
        ax.semilogy(kk, a0 * np.exp(-r.ou * (kk - lo)), color=color, ls=":", lw=1, label=f"OU {r.ou:.3g} /iter")
    ax.set_xlabel("iteration k")
    ax.set_ylabel("mean of h_i(tilted) − h_i(from e₁)")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=7.5)
    return save(fig, path)


def stationary_figure(u: np.ndarray, ou_var: np.ndarray, linear_var: np.ndarray, problem_label: str,
                      path: str | Path) -> Path:  # fmt: skip
    """Histograms of ``U_i = h_i/√η`` (i ≥ 2) near e₁ against the OU stationary normal densities."""
    modes = [i for i in range(u.shape[1]) if ou_var[i] > 0]
    # at least two panels wide: one panel (d = 2) is narrower than the two-line title
    fig, axes = new_figure(width=3.2 * max(len(modes), 2), height=3.4, ncols=len(modes), squeeze=False)
    for ax, i in zip(axes[0], modes):
        x = u[:, i]
        sd = np.sqrt(ou_var[i])
        grid = np.linspace(-4.5 * sd, 4.5 * sd, 300)
        ax.hist(x, bins=np.linspace(grid[0], grid[-1], 60), density=True, color=COLORS[0], alpha=0.55,
                label=f"simulation, var {x.var():.3g}")  # fmt: skip
        ax.plot(grid, stats.norm.pdf(grid, scale=sd), "k--", lw=1.3, label=f"OU: N(0, {ou_var[i]:.3g})")
        ax.plot(grid, stats.norm.pdf(grid, scale=np.sqrt(linear_var[i])), color=COLORS[3], lw=1,
                label=f"exact linear var {linear_var[i]:.3g}")  # fmt: skip
        ax.set_xlabel(f"U_{i + 1} = h_{i + 1}/√η")
        ax.set_ylabel("density")
        ax.legend(loc="upper right", fontsize=7)
    fig.suptitle(f"Stationary coordinates near e₁ against the OU law\n{problem_label}")
    return save(fig, path)

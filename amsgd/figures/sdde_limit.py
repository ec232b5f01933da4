"""Figure of the finite-delay limit: the floor per unit step and the knee against η at fixed s = τη."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from amsgd.figures.style import COLORS, new_figure, save
from amsgd.validation.sdde_limit import SDDELimit


def sdde_limit_figure(result: SDDELimit, problem_label: str, path: str | Path) -> Path:
    """Left: measured E sin²/η (95% CIs) against η with the exact linear and finite-η floors, the fit
    extrapolated to η = 0, the SDDE floor and the diffusion floor. Right: τ*η and τ_c η against s*."""
    fig, (ax1, ax2) = new_figure(width=11.0, height=4.8, ncols=2)
    rungs = result.rungs
    etas = result.etas
    mean = np.array([r.per_step(r.measured.mean) for r in rungs])
    err = np.array([[r.per_step(r.measured.mean - r.measured.ci_low), r.per_step(r.measured.ci_high - r.measured.mean)]
                    for r in rungs]).T  # fmt: skip
    ax1.errorbar(etas, mean, yerr=err, fmt="o", color=COLORS[0], capsize=3, label="simulation (95% CI)", zorder=3)
    ax1.plot(etas, [r.per_step(r.exact) for r in rungs], "s--", ms=5, mfc="none", color=COLORS[1], lw=1,
             label="exact linear floor (finite η)")  # fmt: skip
    ax1.plot(etas, [r.per_step(r.finite_eta) for r in rungs], "^:", ms=5, mfc="none", color=COLORS[2], lw=1,
             label="finite-η floor (multiplicative noise, curvature)")  # fmt: skip
    grid = np.geomspace(etas.min() / 4, etas.max(), 100)
    low, high = result.fit.interval()
    ax1.plot(grid, result.fit(grid), color=COLORS[0], lw=0.9, alpha=0.6,
             label=f"weighted fit, η → 0: {result.fit.intercept:.4g} [{low:.4g}, {high:.4g}]")  # fmt: skip
    ax1.axhline(result.sdde_per_step, color="k", lw=1.5, label=f"SDDE floor (the limit), s = {result.delay_time:.3g}")
    ax1.axhline(result.diffusion_per_step, color="k", ls=":", lw=1.2, label="diffusion floor (τ-free)")
    ax1.set_xscale("log")
    ax1.set_xlabel("step η (τ = s/η)")
    ax1.set_ylabel("stationary error per unit step, E sin²/η")
    ax1.set_title(f"Floor at fixed delay time s = τη = {result.delay_time:.3g} ({result.delay_time / result.critical_delay_time:.2f} s*)")
    ax1.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
    tau_star = np.array([np.nan if r.tau_star is None else r.tau_star * r.eta for r in rungs])
    ax2.plot(etas, tau_star, "o", color=COLORS[3], label="exact τ* η (largest stable delay)")
    ax2.plot(etas, [r.critical_delay * r.eta for r in rungs], "x-", color=COLORS[4], lw=1,
             label="exact τ_c η (continuous boundary, τ* = ⌈τ_c⌉ − 1)")  # fmt: skip
    ax2.axhline(result.critical_delay_time, color="k", lw=1.5,
                label=f"SDDE boundary s* = π(1−μ)/(2 a_max) = {result.critical_delay_time:.4g}")  # fmt: skip
    ax2.set_xscale("log")
    ax2.set_xlabel("step η")
    ax2.set_ylabel("critical delay time τη")
    ax2.set_title("The knee: τ* η → s* as η → 0")
    ax2.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
    fig.suptitle(problem_label, fontsize=9)
    return save(fig, path)

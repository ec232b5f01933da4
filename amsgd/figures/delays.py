"""Figures of the delay: error against τ per momentum, and the stability phase diagram in (μ, τ)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from amsgd.diffusion.theory import Predictions
from amsgd.figures.style import COLORS, new_figure, save
from amsgd.figures.sweep import MOSTLY_DIVERGED
from amsgd.validation.delays import DIVERGED_LIMIT, KNEE_FACTOR, DelayCurve

#: Momenta at which the phase diagram's boundaries are evaluated.
DIAGRAM_MUS = np.linspace(0.0, 0.995, 400)
#: Where the phase diagram's log axis draws τ = 0, and where the axis starts (below it, so that the
#: simulated points at τ = 0 and a boundary τ* = 0 show whole).
ZERO_DELAY_AT = 0.5
AXIS_BOTTOM = 0.35


def delay_curves_figure(curves: Sequence[DelayCurve], problem_label: str, path: str | Path) -> Path:
    """Measured stationary error against τ (95% bands) with the finite-η floor at the grid's delays and the
    linear floor (additive noise) up to τ*, τ*, the diffusion floor."""
    fig, ax = new_figure(width=7.6, height=6.0)
    top = 0.0
    bottom = _lowest_positive(curves)
    for n, c in enumerate(curves):
        color = COLORS[n % len(COLORS)]
        ok = c.diverged_fraction <= MOSTLY_DIVERGED
        mean = np.where(ok, c.mean, np.nan)
        low, high = np.clip(c.ci, bottom, 1.0)  # E sin² in [0, 1]: below 0 the log axis left gaps in the band
        ax.fill_between(c.taus, np.where(ok, low, np.nan), np.where(ok, high, np.nan), color=color, alpha=0.25, lw=0)
        ax.plot(c.taus, mean, "o-", ms=3, color=color, lw=1.3, label=f"μ = {c.mu:g}: simulation (95% CI)")
        ax.plot(c.linear_taus, c.linear_floor, color=color, ls="--", lw=1.2)
        ax.plot(c.finite_taus, c.finite_floor, color=color, ls="-.", marker="x", ms=4, lw=1.0)
        ax.axhline(c.diffusion_floor, color=color, ls=":", lw=0.9)
        if c.tau_star is not None:
            ax.axvline(c.tau_star, color=color, lw=0.9, alpha=0.8)
        if np.isfinite(c.knee):  # drawn at the error the criterion allowed there
            allowed = c.breakdown_ratios()[np.flatnonzero(c.taus == c.knee)[0]] * c.error[0].mean
            ax.plot([c.knee], [allowed], marker="v", ms=8, color=color, mec="k")
        if np.isfinite(mean).any():  # every delay's runs may have diverged (nothing to scale the axis by)
            top = max(top, np.nanmax(mean))
    ax.plot([], [], "k-.", marker="x", ms=4, lw=1.0, label="finite-η floor (grid delays up to τ*)")
    ax.plot([], [], "k--", lw=1.2, label="linear floor, additive noise (up to τ*)")
    ax.plot([], [], "k:", lw=0.9, label="diffusion floor (τ-independent)")
    ax.plot([], [], "k-", lw=0.9, label="predicted knee τ* (linear stability)")
    ax.plot([], [], "kv", ms=7, label=f"measured knee (error > {KNEE_FACTOR}× τ = 0 × the linear floor's rise,\n"
                                     f"or > {DIVERGED_LIMIT:.0%} diverged), at the error allowed")
    ax.set_yscale("log")
    ax.set_xlabel("delay τ (iterations)")
    ax.set_ylabel("stationary error E sin²∠(v, e₁)")
    ax.set_title(f"Error against delay (runs more than half diverged are left out)\n{problem_label}")
    fig.legend(loc="outside lower center", fontsize=7.5, ncol=2)  # below the axes: inside, it hid the curves
    if top > 0:  # else nothing was measured: the predictions set the axis
        ax.set_ylim(bottom, top * 3)
    return save(fig, path)


def _lowest_positive(curves: Sequence[DelayCurve]) -> float:
    """The axis's bottom: half the smallest positive error drawn (measured means, their intervals'
    lower ends, the floors), where the bands of intervals reaching 0 or below are cut."""
    values = np.concatenate([np.ravel(v) for c in curves
                             for v in (c.mean, c.ci[0], c.linear_floor, c.finite_floor, [c.diffusion_floor])])  # fmt: skip
    positive = values[np.isfinite(values) & (values > 0)]
    return 0.5 * float(positive.min()) if positive.size else 1e-4


def phase_diagram_figure(theory: Predictions, path: str | Path, *, curves: Sequence[DelayCurve] = ()) -> Path:
    """Stable region in (μ, τ) at the problem's η: exact boundary τ*(μ), the delay-differential
    boundary π(1 − μ)/(2 a_max η), and the paper's sufficient condition (1 − μ)²/(λ₁ η^{1−γ}),
    all from :meth:`Predictions.delay_boundary`; simulated delays marked by breakdown or not."""
    problem = theory.problem
    boundary = theory.delay_boundary(DIAGRAM_MUS)
    mus, tau_max = boundary.mus, boundary.tau_max
    fig, ax = new_figure(width=7.0, height=4.8)
    some = tau_max >= 0  # −1: no delay is stable, not even τ = 0
    shown = np.where(some, np.maximum(tau_max, ZERO_DELAY_AT), np.nan)  # τ* = 0 on the log axis's τ = 0 line
    ax.fill_between(mus, AXIS_BOTTOM, np.where(some, shown, AXIS_BOTTOM), color=COLORS[2], alpha=0.15, lw=0,
                    label="stable (exact linear theory)")  # fmt: skip
    if not some.all():
        ax.fill_between(mus, AXIS_BOTTOM, 1e12, where=~some, color=COLORS[3], alpha=0.08, lw=0,
                        label="unstable at every delay, τ = 0 included")  # fmt: skip
    ax.plot(mus, shown, color=COLORS[2], lw=2, label="exact boundary τ*(μ)")
    ax.plot(mus, boundary.delay_differential, "k--", lw=1.2, label="delay-differential limit π(1−μ)/(2 a_max η)")
    ax.plot(mus, boundary.paper_ode_bound, color=COLORS[3], lw=1.5, ls="-.",
            label=f"paper's sufficient condition (1−μ)²/(λ₁ η^(1−γ)), γ = {boundary.gamma:g}")  # fmt: skip
    for n, c in enumerate(curves):
        broken = c.broken()
        label_ok = "simulation: no breakdown" if n == 0 else None
        label_bad = "simulation: breakdown" if n == 0 else None
        taus = np.maximum(c.taus, ZERO_DELAY_AT)
        ax.plot(np.full((~broken).sum(), c.mu), taus[~broken], "o", ms=4, mfc="none", color="k", label=label_ok)
        ax.plot(np.full(broken.sum(), c.mu), taus[broken], "x", ms=5, color=COLORS[3], label=label_bad)
    ax.set_yscale("log")
    ax.set_ylim(AXIS_BOTTOM, max(np.nanmax(boundary.delay_differential), 1.0) * 2)
    ax.set_xlim(-0.02, 1)  # simulated momenta of 0 are not cut in half
    ax.set_xlabel("momentum μ")
    ax.set_ylabel(f"constant delay τ (iterations; τ = 0 drawn at {ZERO_DELAY_AT:g})")
    lam = ", ".join(f"{x:g}" for x in problem.eigenvalues)
    ax.set_title(f"Stability in (μ, τ) at η = {problem.eta:g}, spectrum ({lam})")
    ax.legend(loc="lower left", fontsize=7.5)
    return save(fig, path)

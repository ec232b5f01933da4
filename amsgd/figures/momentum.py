"""Figure of the momentum–asynchrony comparison: floors and local rates per number of workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from amsgd.figures.style import COLORS, new_figure, save
from amsgd.validation.momentum import Momentum


def momentum_figure(result: Momentum, path: str | Path) -> Path:
    """Stationary error and local rate of Async-SGD (geometric staleness) and Sync-MSGD (μ = 1 − 1/M, η/M)."""
    fig, (ax1, ax2) = new_figure(width=10.5, height=5.2, ncols=2)
    m = np.array([r.workers for r in result.rows], dtype=float)
    for n, (attr, label, shift) in enumerate((("asynchronous", "Async-SGD, geometric staleness mean M−1, step η", -0.06),
                                               ("synchronous", "Sync-MSGD, μ = 1−1/M, step η/M", 0.06))):  # fmt: skip
        sides = [getattr(r, attr) for r in result.rows]
        x = m * (1 + shift)
        color = COLORS[n]
        mean = np.array([s.floor.mean for s in sides])
        err = np.array([[s.floor.mean - s.floor.ci_low, s.floor.ci_high - s.floor.mean] for s in sides]).T
        ax1.errorbar(x, mean, yerr=err, fmt="o", color=color, capsize=3, label=f"{label}: simulation")
        ax1.plot(m, [s.finite_eta_floor for s in sides], "_", ms=18, mew=2, color=color,
                 label=f"{label}: finite-η floor")  # fmt: skip
        ax1.plot(m, [s.linear_floor for s in sides], "x", ms=5, color=color, label=f"{label}: linear, additive noise")
        rate = np.array([s.rate.fit.rate for s in sides])
        rerr = np.array([[s.rate.fit.rate - s.rate.fit.ci_low, s.rate.fit.ci_high - s.rate.fit.rate] for s in sides]).T
        ax2.errorbar(x, rate, yerr=rerr, fmt="o", color=color, capsize=3, label=f"{label}: simulation")
        ax2.plot(m, [s.rate.exact for s in sides], "_", ms=18, mew=2, color="k")
        ax2.plot(m, [np.nan if s.rate.finite is None else s.rate.finite for s in sides], "_", ms=18, mew=2,
                 color=color, label=f"{label}: finite-η rate")  # fmt: skip
    ax1.axhline(result.rows[0].diffusion_floor, color="k", ls=":", lw=1, label="diffusion floor (both)")
    ax2.axhline(result.rows[0].asynchronous.rate.ou, color="k", ls=":", lw=1, label="OU rate (both)")
    ax2.plot([], [], "k_", ms=12, mew=2, label="exact linear rate (identical for both)")
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xticks(m, [f"{int(v)}" for v in m])
        ax.set_xlabel("workers M")
    ax1.set_ylabel("stationary error E sin²")
    ax1.set_title(f"Error floor, η = {result.eta_eff:g}")
    ax2.set_ylabel("local decay rate (1/iteration)")
    ax2.set_title("Local convergence rate of the slowest mode")
    for ax in (ax1, ax2):
        ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1, frameon=False)
    return save(fig, path)

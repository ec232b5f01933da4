"""Figure of the SVAG validation: the floor and the escape time against the amplification L."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from amsgd.figures.style import COLORS, new_figure, problem_label, save
from amsgd.validation.svag import SvagReport


def svag_figure(report: SvagReport, path: str | Path) -> Path:
    """Left: the measured floor ± 95% CI against L (log axis), the SVAG recursion's finite-η floor and
    the limit's floor beside it. Right: the mean escape iterations ± 95% CI against L, when run."""
    escape = [pt for pt in report.points if pt.escape is not None]
    fig, axes = new_figure(width=11 if escape else 6.4, height=4.2, ncols=2 if escape else 1, squeeze=False)
    amps = np.array([pt.amplification for pt in report.points], dtype=float)
    ax = axes[0][0]
    mean = np.array([pt.floor.mean for pt in report.points])
    err = np.array([pt.floor.ci_high - pt.floor.mean for pt in report.points])
    ax.errorbar(amps, mean, yerr=err, fmt="o-", color=COLORS[0], capsize=3, label="measured (95% CI)")
    theory = [(a, pt.floor_theory) for a, pt in zip(amps, report.points) if pt.floor_theory is not None]
    if theory:
        ax.plot(*zip(*theory), "s--", color=COLORS[1], mfc="none", label="SVAG recursion, finite-η theory")
    if np.isfinite(report.limit_floor):
        ax.axhline(report.limit_floor, color="k", lw=1, ls=":", label=report.limit_name)
    _amplification_axis(ax, amps, mean)
    ax.set_ylabel("stationary error sin²")
    ax.set_title("floor from e₁", fontsize=10)
    ax.legend(fontsize=7.5)
    if escape:
        ax = axes[0][1]
        la = np.array([pt.amplification for pt in escape], dtype=float)
        em = np.array([pt.escape.mean for pt in escape])
        ee = np.array([pt.escape.ci_high - pt.escape.mean for pt in escape])
        ax.errorbar(la, em, yerr=ee, fmt="o-", color=COLORS[2], capsize=3, label="measured (95% CI)")
        _amplification_axis(ax, la, em)
        ax.set_ylabel("mean escape iterations (original)")
        ax.set_title(f"escape from e₂ to sin² ≤ {1 - report.setup.delta_sq:g}", fontsize=10)
        ax.legend(fontsize=7.5)
    fig.suptitle(f"SVAG: {problem_label(report.problem)}", fontsize=10)
    return save(fig, path)


def _amplification_axis(ax, amps: np.ndarray, values: np.ndarray) -> None:
    """L on a base-2 log axis; where no value was measured (every run diverged) the panel says so and
    keeps a linear axis (a log axis needs a finite point)."""
    if np.isfinite(values).any():
        ax.set_xscale("log", base=2)
    else:
        ax.text(0.5, 0.5, "every run diverged", transform=ax.transAxes, ha="center", va="center")
    ax.set_xticks(amps, [f"{int(a)}" for a in amps])
    ax.set_xlabel("amplification L")

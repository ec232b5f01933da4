"""Figure of a convergence study: strong and weak errors against the step, with fitted orders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import NullFormatter

from amsgd.diffusion.convergence import ConvergenceStudy
from amsgd.figures.style import new_figure, save


def convergence_figure(study: ConvergenceStudy, path: str | Path) -> Path:
    """Log–log plot of strong and weak errors against Δt with CIs and fitted lines, saved to ``path``."""
    fig, axes = new_figure(width=10, height=4.2, ncols=2)
    for ax, kind in zip(axes, ("strong", "weak")):
        for result in study.results.values():
            err = getattr(result, f"{kind}_error")
            ci = getattr(result, f"{kind}_ci")
            fit = getattr(result, kind)
            (line,) = ax.plot(result.dt, err, "o", ls="none")
            # drawn from its ends: a percentile interval of an error's norm need not contain the estimate
            ax.vlines(result.dt, ci[:, 0], ci[:, 1], color=line.get_color())
            x = np.log(result.dt)
            intercept = np.mean(np.log(err)) - fit.order * x.mean()
            ax.loglog(
                result.dt,
                np.exp(intercept + fit.order * x),
                color=line.get_color(),
                label=f"{result.scheme}: {fit.order:.2f} [{fit.ci_low:.2f}, {fit.ci_high:.2f}] (stated {fit.stated:g})",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("step Δt (diffusion time t = kη)")
        steps = sorted({float(dt) for result in study.results.values() for dt in result.dt})
        ax.set_xticks(steps, [f"{dt:.3g}" for dt in steps])  # the compared steps, labelled
        ax.xaxis.set_minor_formatter(NullFormatter())  # the minor labels of a short log range overlap
        ax.set_ylabel(f"{kind} error")
        ax.set_title(f"{kind} convergence (reference: {study.reference}, {study.paths} paths)")
        ax.legend(fontsize=8)
    return save(fig, path)

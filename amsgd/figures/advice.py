"""Figure of ``amsgd advise``: the error's local rate against momentum, one curve per worker count."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from amsgd.advise import Advice
from amsgd.figures.style import COLORS, new_figure, save


def advice_figure(advice: Advice, path: str | Path) -> Path:
    """Rate per iteration of the slowest error (or loss) mode against μ for each M; the momenta that are
    not mean-square stable are left out, the fastest μ (``best mu (rate)``, which is not the best for
    a fixed budget: see ``best mu (loss after N)``) is ringed and the supremum of the μ at which the
    mean is stable marked by a dotted line (beyond the last point drawn where the second moments give
    out first). Where no momentum of the grid is mean-square stable the panel says so in words."""
    g = advice.grid
    fig, ax = new_figure()
    drawn = np.where(g.stable, g.error_rate, np.nan)
    for m, workers in enumerate(g.workers):
        color = COLORS[m % len(COLORS)]
        rate = drawn[m]
        ax.plot(g.mus, rate, "o-", color=color, label=f"M = {workers}")
        best = g.best_mu_rate[m]
        if np.isfinite(best):
            u = int(np.argmin(np.abs(g.mus - best)))
            ax.plot(best, rate[u], "o", ms=13, mfc="none", mec=color, mew=1.5)
        edge = advice.largest_stable_mu_mean[m]
        if np.isfinite(edge) and edge < 1:
            ax.axvline(edge, color=color, ls=":", lw=1)
    if np.any(drawn > 0):
        ax.set_yscale("log")
    else:  # nothing to draw on a log axis: say why instead, over the grid's momenta
        low, high = min(g.mus), max(g.mus)
        # one momentum: a span around it, inside the momenta there are (−1 < μ < 1)
        ax.set_xlim(*((low, high) if high > low else (max(low - 0.05, -1.0), min(high + 0.05, 1.0))))
        ax.set_yticks([])
        ax.text(0.5, 0.5, "no momentum of the grid is mean-square stable\nfor these worker counts: lower η",
                transform=ax.transAxes, ha="center", va="center")  # fmt: skip
    ax.set_xlabel("momentum μ")
    quantity = "error" if advice.loss_after is None else "loss"  # streaming PCA's sin², or a model's loss
    ax.set_ylabel(f"local rate of the {quantity} (1/iteration)")
    ax.set_title(f"{getattr(advice.problem, 'model', 'pca')}, η = {advice.problem.eta:g}: "
                 "rate of the mean-square stable momenta\n(ring: fastest; dotted: edge of the mean's stability)",
                 fontsize=9)  # fmt: skip
    ax.legend(fontsize=8)
    return save(fig, path)

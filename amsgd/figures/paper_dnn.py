"""Figure of the paper-dnn validation: final training loss against μ per worker count, with the
predicted stability and the predicted best momentum."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from amsgd.figures.style import COLORS, new_figure, save
from amsgd.validation.paper_dnn import DnnReport


def paper_dnn_figure(report: DnnReport, path: str | Path) -> Path:
    """One panel per (protocol, delay kind): mean final training loss ± 95% CI against μ, one curve per
    M; hollow markers where the theory predicts no mean-square stability, a star at the predicted best μ."""
    from amsgd.core.estimates import t_interval

    s = report.setup
    fig, axes = new_figure(width=11, height=8.5, ncols=len(s.delays), nrows=len(s.protocols), squeeze=False)
    for row, protocol in enumerate(s.protocols):
        for col, delay in enumerate(s.delays):
            ax = axes[row][col]
            cells = report.group(protocol, delay)
            best = {r["workers"]: r["predicted_best_mu"] for r in report.best(protocol, delay)}
            for k, m in enumerate(s.workers):
                color = COLORS[k % len(COLORS)]
                group = sorted((c for c in cells if c.workers == m), key=lambda c: c.mu)
                est = [t_interval(c.train_loss) for c in group]
                mus = np.array([c.mu for c in group])
                mean = np.array([e.mean for e in est])
                err = np.array([e.ci_high - e.mean for e in est])
                ax.errorbar(mus, mean, yerr=err, color=color, lw=1, capsize=2, label=f"M = {m}")
                stable = np.array([c.stable for c in group])
                ax.plot(mus[stable], mean[stable], "o", color=color, ms=5)
                ax.plot(mus[~stable], mean[~stable], "o", mfc="none", mec=color, ms=7)
                if best[m] is not None:
                    ax.plot(best[m], mean[int(np.argmin(np.abs(mus - best[m])))], "*", color=color, ms=13, mec="k")
            ax.set_yscale("log")
            ax.set_xlabel("momentum μ")
            ax.set_ylabel(f"training loss after {s.steps} steps")
            ax.set_title(f"{protocol}, {'round-robin' if delay == 'workers' else 'event-driven server'}", fontsize=10)
    axes[0][0].legend(fontsize=7.5, title="filled: predicted stable; ★ predicted best", title_fontsize=7.5)
    return save(fig, path)

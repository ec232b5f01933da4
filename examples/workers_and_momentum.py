"""Which momentum with M asynchronous workers? The advice for a model, then the runs that test it.

    python examples/workers_and_momentum.py [--out workers_and_momentum.png]

Multinomial logistic regression on scikit-learn's bundled digits at η = 0.2 (minibatches of 32).
With M round-robin workers every gradient is M − 1 updates stale. `advise` linearises the loss at
its minimum (Hessian eigenpairs and per-example gradient noise, JAX) and gives, per M, the
mean-square-stable momenta and the one with the lowest predicted training loss after the run. Each
(M, μ) cell is then run (`simulate_model`), and the figure shows the final training loss with 95%
intervals, the cells the theory calls unstable marked with crosses (their runs need not blow up: a
run beyond the boundary may saturate at a high loss). The best momentum falls as workers are added;
where the advice and the runs disagree, the advice errs toward the larger momentum next to the
stability boundary, as in the paper-dnn validation (docs/models.md). About 30 s.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from amsgd.advise import advise
from amsgd.core.delays import RoundRobinDelay
from amsgd.core.files import check_figure_file
from amsgd.core.models import ModelProblem, load_data
from amsgd.figures.style import new_figure, save
from amsgd.simulate.model_engine import simulate_model

WORKERS = (1, 8, 32)
MUS = (0.0, 0.3, 0.5, 0.7, 0.9)


def main(out: str = "workers_and_momentum.png", steps: int = 1000, replicates: int = 16) -> Path:
    """Print the advice and the measured losses, draw the figure to ``out``; runs of ``steps``
    iterations, ``replicates`` per cell."""
    out = check_figure_file(out, "--out")  # before the work: a missing folder or a bad suffix
    problem = ModelProblem("logistic", load_data("digits"), eta=0.2, batch=32)
    advice = advise(problem, WORKERS, MUS, steps=steps)
    print(advice.table())
    fig, ax = new_figure(7, 4.2)
    print(f"{'workers':>7} {'mu':>4} {'predicted':>10} {'final training loss [95%]':>32} {'diverged':>8}")
    for m, workers in enumerate(WORKERS):
        means = []
        for u, mu in enumerate(MUS):
            cell = problem.replace(mu=mu, delay=RoundRobinDelay(workers))
            run = simulate_model(cell, steps, replicates, rng=100 * m + u, progress=False)
            est = run.final("train_loss")
            stable = bool(advice.grid.stable[m, u])
            means.append(est.mean)
            print(f"{workers:>7} {mu:>4} {'stable' if stable else 'unstable':>10} "
                  f"{est.mean:>12.5f} [{est.ci_low:.5f}, {est.ci_high:.5f}] {run.diverged_fraction:>8.0%}")  # fmt: skip
            if np.isfinite(est.mean):
                ax.errorbar(mu, est.mean, yerr=[[est.mean - est.ci_low], [est.ci_high - est.mean]], color=f"C{m}",
                            fmt="o" if stable else "x", ms=5, capsize=3)  # fmt: skip
        ax.plot(MUS, means, color=f"C{m}", lw=0.8,
                label=f"M = {workers}: predicted best μ {advice.best_mu_loss(m)}, measured best μ "
                f"{MUS[int(np.nanargmin(means))] if np.isfinite(means).any() else 'none'}")  # fmt: skip
    ax.set_xlabel("momentum μ")
    ax.set_ylabel(f"training loss after {steps} steps")
    ax.set_yscale("log")
    ax.set_title("logistic regression on digits, η = 0.2: o predicted stable, x predicted unstable")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8)
    return save(fig, out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="workers_and_momentum.png")
    print(main(parser.parse_args().out))

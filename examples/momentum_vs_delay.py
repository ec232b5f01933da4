"""How much delay does each momentum tolerate, and what does the delay cost? Theory against runs.

    python examples/momentum_vs_delay.py [--out momentum_vs_delay.png]

For the published problem (Σ = diag(4, 3, 2, 1), Gaussian data, η = 5e-4) and three momenta, the
finite-η theory's error floor as a function of a constant delay τ (`predict(...).finite_eta`: the
multiplicative noise and the curvature of sin² included), up to the largest mean-square-stable
delay τ* (dotted line), against the stationary error of simulated runs started at the optimum, with
95% intervals. The larger the momentum, the higher the floor and the shorter the admissible delay:
asynchrony and momentum compete. The diffusion limit gives one floor per μ, whatever τ (dashed).
The delays drawn stop at 0.8 τ*, where the theory and the runs agree to within about 1%; nearer the
boundary its accuracy is in docs/linear-theory.md, section 5. About 10 to 20 s on 2 cores.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from amsgd import Problem, predict
from amsgd.core.delays import ConstantDelay
from amsgd.core.files import check_figure_file
from amsgd.figures.style import new_figure, save
from amsgd.simulate import simulate

MUS = (0.7, 0.8, 0.9)
#: The simulated delays, as fractions of each momentum's mean-square τ*.
FRACTIONS = (0.0, 0.4, 0.8)


def main(out: str = "momentum_vs_delay.png", steps: int = 8000, replicates: int = 2000) -> Path:
    """Draw the figure to ``out`` (runs of ``steps`` iterations, ``replicates`` per point) and print a table."""
    out = check_figure_file(out, "--out")  # before the work: a missing folder or a bad suffix
    base = predict(Problem.from_spectrum((4, 3, 2, 1), eta=5e-4, mu=0.9))
    fig, ax = new_figure(7, 4.2)
    print(f"{'mu':>4} {'tau':>4} {'theory':>9} {'simulated [95%]':>26}")
    for n, mu in enumerate(MUS):
        at_mu = base.at(mu=mu)
        tau_star = at_mu.mean_square.tau_max
        taus = np.arange(tau_star + 1)
        theory = [at_mu.at(delay=int(t)).finite_eta.value for t in taus]
        ax.plot(taus, theory, color=f"C{n}", label=f"μ = {mu}: finite-η theory, τ* = {tau_star}")
        ax.axhline(at_mu.diffusion_floor, color=f"C{n}", ls="--", lw=0.8)
        ax.axvline(tau_star, color=f"C{n}", ls=":", lw=0.8)
        for tau in sorted({int(round(f * tau_star)) for f in FRACTIONS}):
            problem = at_mu.problem.replace(delay=ConstantDelay(tau))
            est = simulate(problem, steps, replicates, rng=1000 * n + tau, start="e1", progress=False).stationary_error
            ax.errorbar(tau, est.mean, yerr=[[est.mean - est.ci_low], [est.ci_high - est.mean]], color=f"C{n}",
                        fmt="o", ms=4, capsize=3)  # fmt: skip
            print(f"{mu:>4} {tau:>4} {theory[tau]:>9.5f} {est.mean:>9.5f} [{est.ci_low:.5f}, {est.ci_high:.5f}]")
    ax.set_xlabel("constant delay τ (iterations)")
    ax.set_ylabel(r"stationary error $E \sin^2\angle(v, e_1)$")
    ax.set_yscale("log")
    ax.set_title(r"$\Sigma$ = diag(4, 3, 2, 1), $\eta$ = 5e-4: points are runs (95% CI), dashed the diffusion limit")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8)
    return save(fig, out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="momentum_vs_delay.png")
    print(main(parser.parse_args().out))

"""Plot the ODE limit and an SME ensemble against Monte Carlo runs of Async-MSGD.

    python examples/limit_vs_simulation.py [--out limit_vs_simulation.png]

The three curves share a start h0 near the saddle e_2: the ODE's error (closed form), the mean error
of the SME ensemble, and the mean error of simulated runs with its 95% band. The ODE goes to 0; the
SME settles at the diffusion limit's floor and the algorithm at the finite-η floor, 2.6% above it
here, both as `amsgd derive` predicts (`stationary_error.diffusion` and `finite_eta.value`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from amsgd import Problem, predict
from amsgd.core.files import check_figure_file
from amsgd.diffusion.ode import integrate_ode
from amsgd.diffusion.sme import integrate_sme
from amsgd.figures.style import new_figure, save
from amsgd.simulate import simulate


def main(out: str = "limit_vs_simulation.png", iterations: int = 3000, paths: int = 200, replicates: int = 500) -> Path:
    out = check_figure_file(out, "--out")  # before the work: a missing folder or a bad suffix
    problem = Problem.from_spectrum((4, 3, 2, 1), eta=5e-4, mu=0.9)
    h0 = np.array([0.1, 1.0, 0.1, 0.1])
    h0 /= np.linalg.norm(h0)

    grid = np.arange(0, iterations + 1, 10)
    ode = integrate_ode(problem, h0, grid, coordinates="eigen")
    sme = integrate_sme(problem, h0, iterations, dt=1.0, paths=paths, rng=1, save_every=10)
    runs = simulate(problem, iterations, replicates, rng=2, start=problem.from_eigen(h0), record_every=10)
    predictions = predict(problem)
    floor, finite = predictions.diffusion_floor, predictions.finite_eta.value

    error = runs.error[~runs.diverged]
    mean = error.mean(axis=0)
    half = 1.96 * error.std(axis=0, ddof=1) / np.sqrt(error.shape[0])

    fig, ax = new_figure(7, 4.2)
    ax.fill_between(runs.iterations, mean - half, mean + half, alpha=0.3, color="C0", lw=0)
    ax.plot(runs.iterations, mean, color="C0", label=f"Async-MSGD, mean of {error.shape[0]} runs (95% band)")
    ax.plot(sme.iterations, sme.error.mean(axis=1), color="C1", ls="--", label=f"SME ensemble, {paths} paths")
    ax.plot(ode.iterations, ode.error, color="k", lw=1, label="ODE limit")
    ax.axhline(floor, color="C2", ls=":", label=f"diffusion limit's floor {floor:.4f}")
    ax.axhline(finite, color="C3", ls=":", label=f"finite-$\\eta$ floor {finite:.4f}")
    ax.set_yscale("log")
    ax.set_ylim(floor / 5, 1.5)  # the ODE leaves the frame: without noise the error goes to 0
    ax.set_xlabel("iteration k")
    ax.set_ylabel(r"error $\sin^2\angle(v_k, e_1)$")
    ax.set_title(r"$\Sigma$ = diag(4, 3, 2, 1), $\eta$ = 5e-4, $\mu$ = 0.9")
    ax.legend(fontsize=8)
    return save(fig, out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="limit_vs_simulation.png")
    print(main(parser.parse_args().out))

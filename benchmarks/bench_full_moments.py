"""Cost of the full second moments of a small model: the stationary solve by its Neumann series
against a dense LU factorisation, per (η, μ, τ) cell.

Least squares at its minimum on two data sets: the bundled digits (65 parameters, all curved: 2145
unknowns) and 99 synthetic Gaussian features of spread 0.3 to 1.5 with a fixed seed (100
parameters: 5050 unknowns, the largest model the full theory takes). On each, the fluctuation
operator is built once and the cells μ 0 and 0.5, τ 0 and 3 (η 0.01 on digits, feedback radii 0.41,
0.43, 0.81 and 0.92, where the series would need more terms than it saves; η 0.06 on the synthetic set, radii
0.1–0.3) are solved both ways, interleaved, best of ``--repeats``; the two solutions agree to 1e-10
relative. Target: at 100 parameters the toolkit's solve
(:func:`~amsgd.diffusion.theory.full_moments.stationary_solution`: the series where it is cheaper)
at most 0.5 times the dense LU's time, and at 65 no slower than it (1.2 allowing for noise). Usage:
``python benchmarks/bench_full_moments.py [--repeats N]``.
"""

from __future__ import annotations

import argparse

import numpy as np
from ratios import emit  # benchmarks/ is on the path when a script runs
from timing import best_of_interleaved

from amsgd.core.models import ModelProblem, load_data, split_data
from amsgd.diffusion.theory import full_moments
from amsgd.diffusion.theory.model_point import find_minimum, model_point
from amsgd.diffusion.theory.second_moments import largest_modulus

CELLS = [(mu, tau) for mu in (0.0, 0.5) for tau in (0, 3)]


def synthetic(features: int = 99, examples: int = 1500, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((examples, features)) * np.linspace(0.3, 1.5, features)
    y = x @ rng.standard_normal(features) * 0.3 + rng.standard_normal(examples)
    return split_data("synthetic", x, y, classification=False)


def systems(problem: ModelProblem) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Per cell at the problem's η: the feedback operator F, the right-hand side and ρ(F), as the
    theory builds them."""
    point = model_point(problem, find_minimum(problem))
    rates = point.eigenvalues[~point.flat()]
    hessians, additive = full_moments.curved_statistics(problem, point)
    operator = full_moments._fluctuation_operator(hessians - hessians.mean(axis=0))
    a, b = np.triu_indices(rates.size)
    out = []
    for mu, tau in CELLS:
        g = full_moments.cross_gains(rates, problem.eta, mu, tau)
        feedback = g[a, b][:, None] * operator / problem.batch
        out.append((feedback, g[a, b] * additive[a, b], largest_modulus(feedback)))
    return out


def dense(feedback: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    return np.linalg.solve(np.eye(feedback.shape[0]) - feedback, rhs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each solve (default: %(default)s)")
    args = parser.parse_args()
    ratios = {}
    for name, data, eta in (("digits", load_data("digits", classification=False), 0.01), ("synthetic", synthetic(), 0.06)):
        cells = systems(ModelProblem("least-squares", data, eta=eta))
        assert all(radius < 1 for _, _, radius in cells)

        def series() -> list[np.ndarray]:
            return [full_moments.stationary_solution(f.copy(), r, radius) for f, r, radius in cells]

        (ours, reference), (t_ours, t_dense) = best_of_interleaved(
            args.repeats, series, lambda: [dense(f, r) for f, r, _ in cells])
        worst = max(float(np.abs(u - v).max() / np.abs(v).max()) for u, v in zip(ours, reference))
        assert worst < 1e-10, worst
        unknowns = cells[0][0].shape[0]
        radii = ", ".join(f"{radius:.2f}" for _, _, radius in cells)
        print(f"{name}: {unknowns} unknowns, radii {radii}; per cell {t_ours / len(cells):.3f} s against the dense "
              f"LU's {t_dense / len(cells):.3f} s (ratio {t_ours / t_dense:.2f}; largest difference {worst:.1e})")
        ratios[name] = (t_ours / t_dense, unknowns)
    big, small = ratios["synthetic"], ratios["digits"]
    emit("full second moments: stationary solve / dense LU, 100 parameters", big[0], target="<= 0.5", met=big[0] <= 0.5,
         note=f"least squares, {big[1]} unknowns, {len(CELLS)} cells")
    emit("full second moments: stationary solve / dense LU, 65 parameters", small[0], target="<= 1.2",
         met=small[0] <= 1.2, note=f"least squares on digits, {small[1]} unknowns, {len(CELLS)} cells")


if __name__ == "__main__":
    main()

"""Cost of the finite-η theory at d = 100 and τ = 200, against one dense eigenvalue problem.

Σ with λ_1 = 4 and 99 eigenvalues evenly spaced from 2 down to 0.02, Gaussian data, η = 5e-5, μ = 0.9, constant
τ = 200 (below the mean τ*, about 390). Timed, best of ``--repeats``: the coefficients of the
random-coefficient linearisation, the finite-η floor, and mean-square stability (the radius of the
second-moment operator at τ and the largest mean-square-stable delay, found by bisection). The
reference is the spectral radius of one mode's companion matrix at τ = 200 (LAPACK ``geev`` on a
201 × 201 matrix, called directly: the theory's own radii beyond 64 coefficients come from a
bisection and are kept once computed), timed in the same run. Target: the whole under 10 s on 2 cores.
The same for a user sampler (:class:`~amsgd.SampledDistribution` drawing the Gaussian law), whose
coefficients are estimated from its 200 000 moment draws, a new sampler each repeat (the draws and
the coefficients are kept per sampler): the draws, their checks and the estimates are in its time,
same target. Usage: ``python benchmarks/bench_theory.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.linalg
from ratios import emit  # benchmarks/ is on the path when a script runs

from amsgd import Problem, SampledDistribution
from amsgd.core.delays import ConstantDelay
from amsgd.diffusion.theory.coupling import coefficients_for
from amsgd.diffusion.theory.linear_recursion import ar_coefficients, companion
from amsgd.diffusion.theory.second_moments import finite_eta_floor, mean_square
from amsgd.diffusion.theory.stability import critical_delay

ETA, MU, TAU = 5e-5, 0.9, 200


def best_time(task, repeats: int) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeats):
        began = time.perf_counter()
        value = task()
        best = min(best, time.perf_counter() - began)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each part (default: %(default)s)")
    args = parser.parse_args()
    problem = Problem.from_spectrum(np.append(4.0, np.linspace(2.0, 0.02, 99)), eta=ETA, mu=MU, delay=ConstantDelay(TAU))
    dense = companion(ar_coefficients(1.0, ETA, MU, TAU))  # not spectral_radius: it keeps its answers
    reference, _ = best_time(lambda: np.abs(scipy.linalg.eigvals(dense, check_finite=False)).max(), args.repeats)
    t_coef, c = best_time(lambda: coefficients_for(problem), args.repeats)
    t_floor, floor = best_time(lambda: finite_eta_floor(c, ETA, MU, TAU), args.repeats)
    critical = critical_delay(c.rates, ETA, MU)
    t_ms, ms = best_time(lambda: mean_square(c, ETA, MU, TAU, critical), args.repeats)
    total = t_coef + t_floor + t_ms
    print(f"d = 100, tau = {TAU}, eta = {ETA}, mu = {MU}; best of {args.repeats}")
    print(f"one companion eigenvalue problem ({dense.shape[0]} x {dense.shape[0]}): {1e3 * reference:8.1f} ms")
    for name, t in (("coefficients", t_coef), ("finite-eta floor", t_floor), ("mean-square stability", t_ms)):
        print(f"{name:<24} {t:7.2f} s  ratio to the eigenvalue problem {t / reference:7.1f}")
    print(f"floor {floor.value:.5f}; mean-square tau* {ms.tau_max}, radius at tau {ms.radius:.6f}")
    print(f"total {total:.2f} s (target < 10 s): {'met' if total < 10 else 'NOT met'}")
    emit(f"theory: finite-eta floor and mean-square stability, d = 100, tau = {TAU}", total, unit="s",
         target="< 10 s", met=total < 10)

    def sampled_theory():
        scale = np.sqrt(problem.eigenvalues)
        law = SampledDistribution(lambda rng, n: rng.standard_normal((n, scale.size)) * scale, name="normal")
        c = coefficients_for(problem.replace(distribution=law))
        return c, finite_eta_floor(c, ETA, MU, TAU), mean_square(c, ETA, MU, TAU, critical_delay(c.rates, ETA, MU))

    t_sampled, (_, sampled_floor, sampled_ms) = best_time(sampled_theory, args.repeats)
    print(f"user sampler (Gaussian draws): {t_sampled:.2f} s, floor {sampled_floor.value:.5f} (Gaussian law "
          f"{floor.value:.5f}), mean-square tau* {sampled_ms.tau_max}")
    emit(f"theory with a user sampler (200 000 moment draws): finite-eta floor and mean-square stability, d = 100, "
         f"tau = {TAU}", t_sampled, unit="s", target="< 10 s", met=t_sampled < 10)


if __name__ == "__main__":
    main()

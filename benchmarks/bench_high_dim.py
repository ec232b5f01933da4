"""The simulator in high dimensions (d = 1000 and 10 000, η of order 1/d), as ratios in one run.

For each d the same problem (spectrum evenly spaced from 2 to 1, η = 0.2/d, μ = 0.5, constant delay
τ = 10, R replicates, start e_2) is run three ways, each the best of ``--repeats``:

* ``simulate``: :func:`amsgd.simulate.simulate`;
* floor: :func:`amsgd.simulate.engine.draw_only`, exactly the simulator's draws and nothing else;
  target: simulate <= 1.3 × floor;
* NumPy: the same recursion vectorised over replicates (``(R, d)`` arrays, a ring of τ + 1 past
  iterates, ``g = s (y − s v_stale)`` with ``s = yᵀ v_stale``), for reference.

Memory: the peak of traced allocations during ``simulate`` against ``8 (τ + 2) R d`` bytes, the
size of the history the recursion needs (target: O(τ R d), no d × d work or storage).
Usage: ``python benchmarks/bench_high_dim.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import tracemalloc

import numpy as np
from bench_simulate import best_of  # benchmarks/ is on the path when a script runs

from amsgd import Problem, parse_delay
from amsgd.simulate import simulate
from amsgd.simulate.engine import draw_only, warm_up

TAU = 10
#: (d, replicates, steps)
CASES = ((1000, 64, 1000), (10_000, 16, 300))


def make_problem(dim: int) -> Problem:
    return Problem.from_spectrum(np.linspace(2.0, 1.0, dim), eta=0.2 / dim, mu=0.5,
                                 delay=parse_delay(f"constant:{TAU}"))  # fmt: skip


def numpy_loop(problem: Problem, steps: int, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """The recursion vectorised over replicates in eigen-coordinates; returns the final errors."""
    d, eta, mu = problem.dim, problem.eta, problem.mu
    root = np.sqrt(np.asarray(problem.eigenvalues))
    ring = np.zeros((TAU + 2, replicates, d))
    ring[:, :, 1] = 1.0  # every past iterate at e_2
    for k in range(steps):
        now, prev, stale = ring[k % (TAU + 2)], ring[(k - 1) % (TAU + 2)], ring[(k - TAU) % (TAU + 2)]
        y = rng.standard_normal((replicates, d)) * root
        s = np.einsum("rd,rd->r", y, stale)[:, None]
        ring[(k + 1) % (TAU + 2)] = now + mu * (now - prev) + eta * s * (y - s * stale)
    v = ring[steps % (TAU + 2)]
    return 1.0 - v[:, 0] ** 2 / np.einsum("rd,rd->r", v, v)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warm_up()
    for dim, replicates, steps in CASES:
        problem = make_problem(dim)
        result = simulate(problem, steps, replicates, rng=1, progress=False)
        sim = best_of(args.repeats, lambda: simulate(problem, steps, replicates, rng=1, progress=False))
        floor = best_of(args.repeats, lambda: draw_only(problem, steps, replicates, rng=1))
        plain = best_of(1, lambda: numpy_loop(problem, steps, replicates, np.random.default_rng(1)))
        tracemalloc.start()
        simulate(problem, steps, replicates, rng=1, progress=False)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        history = 8 * (TAU + 2) * replicates * dim
        per = 1e9 / (replicates * steps)
        print(f"d = {dim}, R = {replicates}, {steps} steps (diverged {result.diverged_fraction:.0%}):")
        print(f"  simulate {per * sim:8.0f} ns per replicate-step, floor {per * floor:8.0f}, NumPy {per * plain:8.0f}")
        print(f"  simulate / floor {sim / floor:.2f} (target <= 1.3), NumPy / simulate {plain / sim:.1f}")
        print(f"  peak traced memory {peak / 2**20:.1f} MiB, history 8 (τ + 2) R d = {history / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()

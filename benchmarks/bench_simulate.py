"""Throughput and memory of ``amsgd.simulate``, as ratios measured in this run.

* floor: the time to make exactly the simulator's draws (same generators, blocks and chunks, so for
  Gaussian data the compiled ziggurat of :mod:`amsgd.simulate.ziggurat`), via
  :func:`amsgd.simulate.engine.draw_only`; target: simulation <= 1.5 x floor at d = 4 and d = 100;
  for reference, the time NumPy's ``Generator.standard_normal`` (PCG64) takes for the same numbers;
* loops: per-replicate, per-step Python loops with one draw per step and the full history.
  "literal" is the straightforward loop the target speaks of: the update as docs/theory.md writes it,
  X = Σ^{1/2} z and (I − v vᵀ) X Xᵀ v with d x d matrices; target: the simulator >= 200 x faster.
  "lean" is hand-optimised, for reference: eigen-coordinates and g = s (y − s v), s = yᵀv, so
  O(d) per step; no target (at d = 100 no simulator that draws these normals can be 200 x faster
  than it: the draws alone take more than 1/200 of its time);
* memory: peak RSS and peak traced allocations of R = 10 000, d = 100, τ = 100 (target <= 1 GiB),
  measured in a fresh process.

Times are the best of a few repeats. Usage: ``python benchmarks/bench_simulate.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np
from ratios import emit  # benchmarks/ is on the path when a script runs
from timing import best_of

from amsgd import Problem, parse_delay
from amsgd.simulate import simulate
from amsgd.simulate.engine import draw_only, warm_up
from amsgd.simulate.plan import chunk_steps
from amsgd.simulate.seeding import BLOCK_SIZE

REPLICATES = 1000


def make_problem(dim: int, tau: int) -> Problem:
    spectrum = np.linspace(2.0, 1.0, dim)
    return Problem.from_spectrum(spectrum, eta=1e-3, mu=0.5, delay=parse_delay(f"constant:{tau}"))


def numpy_draws(problem: Problem, steps: int, replicates: int) -> None:
    """The same Gaussian samples in the same blocks and chunks, drawn by NumPy (PCG64)."""
    rng = np.random.default_rng(1)
    lam = np.asarray(problem.eigenvalues)
    chunk = chunk_steps(problem.dim)
    for lo in range(0, replicates, BLOCK_SIZE):
        n = min(BLOCK_SIZE, replicates - lo)
        for k0 in range(0, steps, chunk):
            problem.distribution.sample(rng, n * min(chunk, steps - k0), lam, None)


def lean_loop(problem: Problem, steps: int, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """Async-MSGD one replicate and one step at a time, hand-optimised: eigen-coordinates, g = s (y − s v)."""
    lam, basis = np.asarray(problem.eigenvalues), np.asarray(problem.basis)
    eta, mu, tau = problem.eta, problem.mu, problem.tau
    errors = np.empty(replicates)
    for r in range(replicates):
        v0 = np.zeros(problem.dim)
        v0[1] = 1.0
        history = [v0]
        for k in range(steps):
            y = problem.distribution.sample(rng, 1, lam, basis)[0]
            stale = history[max(k - tau, 0)]
            prev = history[k - 1] if k else history[0]
            s = y @ stale
            history.append(history[k] + mu * (history[k] - prev) + eta * s * (y - s * stale))
        v = history[-1]
        errors[r] = 1 - v[0] ** 2 / (v @ v)
    return errors


def literal_loop(problem: Problem, steps: int, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """The formula as written, in the original coordinates: X = Σ^{1/2} z, (I − v vᵀ) X Xᵀ v."""
    lam, basis = np.asarray(problem.eigenvalues), np.asarray(problem.basis)
    sigma_half = basis @ np.diag(np.sqrt(lam)) @ basis.T
    eye = np.eye(problem.dim)
    eta, mu, tau = problem.eta, problem.mu, problem.tau
    errors = np.empty(replicates)
    for r in range(replicates):
        history = [basis[:, 1].copy()]
        for k in range(steps):
            x = sigma_half @ rng.standard_normal(problem.dim)
            stale = history[max(k - tau, 0)]
            prev = history[k - 1] if k else history[0]
            grad = (eye - np.outer(stale, stale)) @ np.outer(x, x) @ stale
            history.append(history[k] + mu * (history[k] - prev) + eta * grad)
        v = history[-1]
        errors[r] = 1 - (basis[:, 0] @ v) ** 2 / (v @ v)
    return errors


MEMORY_SCRIPT = """
import json, resource, time, tracemalloc
from amsgd import Problem, parse_delay
from amsgd.simulate import simulate
from amsgd.simulate.engine import warm_up
import numpy as np
warm_up()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
res = simulate(Problem.from_spectrum(np.linspace(2.0, 1.0, 100), eta=1e-3, mu=0.5,
               delay=parse_delay("constant:100")), {steps}, 10_000, rng=0)
traced = tracemalloc.get_traced_memory()[1]
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(dict(rss_before_kib=before, rss_peak_kib=after, traced_peak_bytes=traced,
                      rs_per_s=res.replicate_steps_per_second)))
"""


def run_length(steps: float, tau: int) -> int:
    """``steps`` as a whole number, at least three delays: a delay of half the run or more draws most
    gradients at the start point (``LongDelayWarning``), not the run this benchmark is about."""
    return max(10, int(steps), 3 * tau)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (noisier ratios)")
    args = parser.parse_args()
    scale = 0.3 if args.quick else 1.0
    repeats = 3
    warm_up()
    rows = []
    print(
        f"R = {REPLICATES}, Gaussian data, μ = 0.5; ns per replicate-step (floor, NumPy's sampler for the same "
        f"numbers, simulate, loops); best of {repeats}"
    )
    print(
        f"{'d':>4} {'tau':>4} {'floor':>9} {'numpy':>9} {'simulate':>9} {'ratio':>6} {'rs/s':>12} "
        f"{'lean':>8} {'x':>5} {'literal':>9} {'x':>6}"
    )
    for dim, full_steps, naive_steps in ((4, 20_000, 2000), (100, 600, 400)):
        for tau in (0, 100):
            steps = run_length(full_steps * scale, tau)
            problem = make_problem(dim, tau)
            floor = best_of(repeats, lambda: draw_only(problem, steps, REPLICATES, rng=1))
            numpy_normals = best_of(repeats, lambda: numpy_draws(problem, steps, REPLICATES))
            sim = best_of(repeats, lambda: simulate(problem, steps, REPLICATES, rng=1))
            n_naive = 3
            rng = np.random.default_rng(1)
            lean = best_of(repeats, lambda: lean_loop(problem, naive_steps, n_naive, rng))
            literal = best_of(repeats, lambda: literal_loop(problem, naive_steps, n_naive, rng))
            rs = REPLICATES * steps
            row = dict(
                d=dim, tau=tau, floor_ns=floor / rs * 1e9, numpy_ns=numpy_normals / rs * 1e9, simulate_ns=sim / rs * 1e9,
                ratio_to_floor=sim / floor, replicate_steps_per_s=rs / sim,
                lean_ns=lean / (n_naive * naive_steps) * 1e9,
                literal_ns=literal / (n_naive * naive_steps) * 1e9,
            )  # fmt: skip
            row["speedup_vs_lean"] = row["lean_ns"] / row["simulate_ns"]
            row["speedup_vs_literal"] = row["literal_ns"] / row["simulate_ns"]
            rows.append(row)
            print(
                f"{dim:>4} {tau:>4} {row['floor_ns']:>9.1f} {row['numpy_ns']:>9.1f} {row['simulate_ns']:>9.1f} "
                f"{row['ratio_to_floor']:>6.2f} {row['replicate_steps_per_s']:>12.3e} "
                f"{row['lean_ns']:>8.0f} {row['speedup_vs_lean']:>5.0f} "
                f"{row['literal_ns']:>9.0f} {row['speedup_vs_literal']:>6.0f}"
            )
    problem = make_problem(100, 100)
    steps = run_length(600 * scale, 100)
    two = best_of(repeats, lambda: simulate(problem, steps, REPLICATES, rng=1, threads=2))
    one = min(r["simulate_ns"] for r in rows if r["d"] == 100 and r["tau"] == 100) * REPLICATES * steps / 1e9
    print(f"d = 100, tau = 100 on 2 threads: {REPLICATES * steps / two:.3e} rs/s ({one / two:.2f}x one thread)")

    mem_steps = run_length(200, 100)
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT.format(steps=mem_steps)], capture_output=True, text=True, check=True
    )
    mem = json.loads(out.stdout)
    print(
        f"memory, R = 10000, d = 100, tau = 100, {mem_steps} steps: peak RSS {mem['rss_peak_kib'] / 2**20:.3f} GiB "
        f"(after import and compile {mem['rss_before_kib'] / 2**20:.3f} GiB), "
        f"peak traced allocations {mem['traced_peak_bytes'] / 2**20:.1f} MiB; target <= 1 GiB"
    )
    worst_floor = max(r["ratio_to_floor"] for r in rows)
    print(f"worst ratio to floor {worst_floor:.2f} (target <= 1.5): {'met' if worst_floor <= 1.5 else 'NOT met'}")
    for r in rows:
        emit(f"simulate / draw floor, d = {r['d']}, tau = {r['tau']}", r["ratio_to_floor"], target="<= 1.5",
             met=r["ratio_to_floor"] <= 1.5, note=f"{r['simulate_ns']:.1f} ns per replicate-step")
        emit(f"simulate: speed-up over NumPy's sampler alone, d = {r['d']}, tau = {r['tau']}",
             r["numpy_ns"] / r["simulate_ns"])
    gib = mem["rss_peak_kib"] / 2**20
    emit("simulate: peak RSS, R = 10000, d = 100, tau = 100", gib, unit="GiB", target="<= 1 GiB", met=gib <= 1)
    worst = min(r["speedup_vs_literal"] for r in rows)
    print(f"smallest speed-up over the literal loop {worst:.0f}x (target >= 200x): {'met' if worst >= 200 else 'NOT met'}")
    emit("simulate: speed-up over the literal Python loop (smallest)", worst, target=">= 200", met=worst >= 200)
    bound = min(r["lean_ns"] / r["floor_ns"] for r in rows)
    print(
        f"smallest speed-up over the lean loop {min(r['speedup_vs_lean'] for r in rows):.0f}x (no target; "
        f"the draws alone would allow at most {bound:.0f}x)"
    )


if __name__ == "__main__":
    main()

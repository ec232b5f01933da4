"""The simulator in high dimensions (d = 1000 and 10 000, η of order 1/d), as ratios in one run.

For each d the same problem (spectrum evenly spaced from 2 to 1, η = 0.2/d, μ = 0.5, constant delay
τ = 10, R replicates, 1000 steps, start e_2) is built (its time printed) and run six ways, the first
five each the best of ``--repeats``, run in turn so that a change in the machine's load falls on all,
and the NumPy loop, many times slower and only a reference, once:

* ``simulate``: :func:`amsgd.simulate.simulate` with its default recording (101 iterations, one
  every 10 steps, each adding the replicate's coordinates to the per-coordinate moments);
* ``simulate``, recording only iterations 0 and ``steps`` (``record_every = steps``): the same
  updates without the 99 recordings in between;
* ``simulate`` keeping no coordinates (``coordinates="none"``): the default recordings of the error
  and ``||v||²`` without the per-coordinate moments, the high-dimensional path whose memory is the
  history alone, O(τ R d); target: <= 1.3 × floor as well;
* floor: :func:`amsgd.simulate.engine.draw_only`, exactly the simulator's draws and nothing else;
  target: simulate <= 1.3 × floor;
* bare recursion: :func:`bare_recursion`, the same draws (same streams, one step's row at a time)
  and the two passes per step that the recursion needs (``s = yᵀ v_stale``, summed in the draw sweep
  where the simulator's pieces of samples are one step, d > 2048, then the update with ``||v||²``),
  with no bookkeeping: what this loop structure costs on the machine, the reference for
  how much of the simulator's time above the floor is the recursion itself;
* NumPy: the same recursion vectorised over replicates (``(R, d)`` arrays, a ring of τ + 1 past
  iterates, ``g = s (y − s v_stale)`` with ``s = yᵀ v_stale``), for reference.

Memory: the peak of traced allocations during ``simulate`` against ``8 (τ + 2) R d`` bytes, the
size of the history the recursion needs, and the recorded coordinate moments (sum and sum of
squares, ``2 · 8 · n_records · d`` bytes), which the result holds whatever the history unless it
keeps no coordinates (its peak is measured too). Target: O(τ R d), no d × d work or storage, checked
as a peak of at most :data:`MEMORY_SLACK` times the history and the moments it keeps (a d × d matrix
would be 763 MiB at d = 10 000). The Problem from a spectrum holds O(d) numbers (its diagonal and a
permutation of the axes), and its build time is printed.
Usage: ``python benchmarks/bench_high_dim.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from numba import njit
from ratios import emit  # benchmarks/ is on the path when a script runs
from timing import best_of, best_of_interleaved

from amsgd import Problem, parse_delay
from amsgd.simulate import simulate
from amsgd.simulate.engine import SAMPLE_PIECE, draw_only, warm_up
from amsgd.simulate.ziggurat import fill_scaled_normals, fill_scaled_normals_dot, replicate_states

TAU = 10
TARGET = 1.3
#: The most a run's peak of traced memory may be, as a multiple of the history and moments it keeps
#: (measured 1.1–1.3: the result's arrays and the kernels' scratch).
MEMORY_SLACK = 1.5
#: (d, replicates, steps): one recording every 10 steps in both
CASES = ((1000, 64, 1000), (10_000, 16, 1000))


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


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _bare_kernel(states, scale, ring, row, steps, tau, eta, mu, fused):
    """``steps`` steps of every replicate, one after the other, in the ring ``ring[b, k mod L]``; with
    ``fused`` the draw sweep also sums ``s``, as the simulator's does where a piece of samples is one step."""
    replicates, slots, dim = ring.shape
    total = 0.0
    for b in range(replicates):
        cur, prv, nxt = 0, slots - 1, 1
        for k in range(steps):
            stl = (cur - tau) % slots
            if fused:
                s = fill_scaled_normals_dot(states[b], scale, row[0], ring[b, stl])
            else:
                fill_scaled_normals(states[b], scale, row)
                s = 0.0
                for i in range(dim):
                    s += row[0, i] * ring[b, stl, i]
            nsq = 0.0
            for i in range(dim):
                hc = ring[b, cur, i]
                new = hc + mu * (hc - ring[b, prv, i]) + eta * s * (row[0, i] - s * ring[b, stl, i])
                ring[b, nxt, i] = new
                nsq += new * new
            total += nsq
            prv, cur = cur, nxt
            nxt = nxt + 1 if nxt + 1 < slots else 0
    return total


def bare_recursion(problem: Problem, steps: int, replicates: int, seed: int) -> float:
    """The recursion and its draws alone (module docstring): returns the sum of ``||v_k||²``."""
    dim = problem.dim
    ring = np.zeros((replicates, TAU + 2, dim))
    ring[:, :, 1] = 1.0
    states = replicate_states(np.random.SeedSequence(seed), replicates)
    scale = np.sqrt(np.asarray(problem.eigenvalues, dtype=float))
    fused = max(1, SAMPLE_PIECE // dim) == 1  # the simulator's rule (engine._replicate_buffer)
    return _bare_kernel(states, scale, ring, np.empty((1, dim)), steps, TAU, problem.eta, problem.mu, fused)


def peak_traced(fn) -> float:
    """The peak of the allocations traced while ``fn()`` runs, in bytes."""
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def measure(dim: int, replicates: int, steps: int, repeats: int) -> None:
    """Time one case six ways, trace its memory, print a few lines and emit the ratios."""
    began = time.perf_counter()
    problem = make_problem(dim)
    build = time.perf_counter() - began
    (result, _, _, _, _), (sim, bare, lean, floor, loop) = best_of_interleaved(
        repeats,
        lambda: simulate(problem, steps, replicates, rng=1, progress=False),
        lambda: simulate(problem, steps, replicates, rng=1, record_every=steps, progress=False),
        lambda: simulate(problem, steps, replicates, rng=1, coordinates="none", progress=False),
        lambda: draw_only(problem, steps, replicates, rng=1),
        lambda: bare_recursion(problem, steps, replicates, 1),
    )
    plain = best_of(1, lambda: numpy_loop(problem, steps, replicates, np.random.default_rng(1)))
    peak = peak_traced(lambda: simulate(problem, steps, replicates, rng=1, progress=False))
    lean_peak = peak_traced(lambda: simulate(problem, steps, replicates, rng=1, coordinates="none", progress=False))
    history = 8 * (TAU + 2) * replicates * dim
    moments = 2 * 8 * result.iterations.size * dim
    per = 1e9 / (replicates * steps)
    met = sim / floor <= TARGET
    print(f"d = {dim}, R = {replicates}, {steps} steps (diverged {result.diverged_fraction:.0%}):")
    print(f"  the Problem from its spectrum built in {build:.2f} s (a diagonal Σ: no eigen-solve)")
    print(f"  simulate {per * sim:8.0f} ns per replicate-step, floor {per * floor:8.0f}, NumPy {per * plain:8.0f}")
    print(f"  simulate / floor {sim / floor:.2f} (target <= {TARGET}: {'met' if met else 'NOT met'}), "
          f"NumPy / simulate {plain / sim:.1f}")  # fmt: skip
    print(f"  recording only iterations 0 and {steps}: simulate {per * bare:8.0f} ns per replicate-step, "
          f"/ floor {bare / floor:.2f}; the {result.iterations.size - 2} recordings between cost "
          f"{per * (sim - bare):.0f} ns per replicate-step")  # fmt: skip
    print(f"  keeping no coordinates: simulate {per * lean:8.0f} ns per replicate-step, / floor {lean / floor:.2f} "
          f"(target <= {TARGET}: {'met' if lean / floor <= TARGET else 'NOT met'})")  # fmt: skip
    print(f"  bare recursion {per * loop:8.0f} ns per replicate-step, / floor {loop / floor:.2f}; "
          f"simulate recording only the ends / bare recursion {bare / loop:.2f}")  # fmt: skip
    print(f"  peak traced memory {peak / 2**20:.1f} MiB: history 8 (τ + 2) R d = {history / 2**20:.1f} MiB, "
          f"recorded moments 16 n_records d = {moments / 2**20:.1f} MiB; keeping no coordinates "
          f"{lean_peak / 2**20:.1f} MiB")  # fmt: skip
    emit(f"simulate / draw floor, d = {dim}", sim / floor, target=f"<= {TARGET}", met=met,
         note=f"{per * sim:.0f} ns per replicate-step, R = {replicates}, {steps} steps, tau = {TAU}")  # fmt: skip
    emit(f"simulate recording only the ends / draw floor, d = {dim}", bare / floor,
         note=f"the {result.iterations.size - 2} recordings between cost {per * (sim - bare):.0f} ns per replicate-step")  # fmt: skip
    emit(f"simulate keeping no coordinates / draw floor, d = {dim}", lean / floor, target=f"<= {TARGET}",
         met=lean / floor <= TARGET, note="coordinates='none': the error and norm recorded, no per-coordinate moments")  # fmt: skip
    emit(f"bare recursion / draw floor, d = {dim}", loop / floor,
         note="the same draws and the two passes per step, no bookkeeping")  # fmt: skip
    emit(f"simulate recording only the ends / bare recursion, d = {dim}", bare / loop)
    emit(f"NumPy loop / simulate, d = {dim}", plain / sim)
    emit(f"Problem.from_spectrum, d = {dim}", build, unit="s")
    for name, used, kept in (("simulate", peak, history + moments), ("simulate keeping no coordinates", lean_peak, history)):
        emit(f"{name}: peak traced memory, d = {dim}", used / 2**20, unit="MiB",
             target=f"<= {MEMORY_SLACK} x {kept / 2**20:.1f} MiB kept (O(tau R d))", met=used <= MEMORY_SLACK * kept,
             note=f"history {history / 2**20:.1f} MiB" + (f", recorded moments {moments / 2**20:.1f} MiB" if kept > history else ""))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    warm_up()
    for dim, replicates, steps in CASES:
        measure(dim, replicates, steps, args.repeats)


if __name__ == "__main__":
    main()

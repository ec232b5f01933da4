"""Batched Euler–Maruyama against sdeint.itoEuler looped over paths, on the d = 4 SME of streaming PCA.

Run:  python benchmarks/bench_integrate.py [--paths 200] [--steps 10000] [--sdeint-paths 20]

The batched and looped integrators use the same lambdified SME coefficients
(amsgd.diffusion.coefficients.sme_coefficients); ``euler-jit`` evaluates the same SME with its compiled
kernels (benchmarks/bench_euler_jit.py times it against a plain numba loop).
Looping sdeint over all paths takes minutes, so sdeint integrates ``--sdeint-paths`` of them and its
time is scaled linearly to ``--paths`` (sdeint's cost is exactly linear in the number of paths: one
independent call per path). Printed, all measured in this run:

* wall times and the speed-up ratio, for the NumPy-batched Euler and for the same Euler compiled with
  numba (``euler-jit``, timed after its first call, which compiles it or loads it from numba's cache and
  is printed separately);
* weak statistics of both ensembles on independent noise — the final error and the per-path time
  average of the error over the second half — as means with 95% t-intervals;
* the largest path-by-path difference on shared noise (same Brownian increments);
* the same ratio for a linear SDE with cheap coefficients, which isolates the integrators' own cost
  from the cost of evaluating the SME coefficients.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from ratios import emit  # benchmarks/ is on the path when a script runs

from amsgd import Problem
from amsgd.core.estimates import Estimate, t_interval
from amsgd.diffusion.ode import sin2_error
from amsgd.diffusion.sde import integrate_sde
from amsgd.diffusion.sme import integrate_sme, sme_functions


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def weak_stats(sol) -> tuple[Estimate, Estimate]:
    error = sin2_error(sol.y)  # (T, P)
    half = error.shape[0] // 2
    return t_interval(error[-1]), t_interval(error[half:].mean(axis=0))


def fmt(e: Estimate) -> str:
    return f"{e.mean:.5f} [{e.ci_low:.5f}, {e.ci_high:.5f}] (n={e.n})"


def compare(label, drift, diffusion, h0, dt, args, stats: bool) -> float:
    """Time both integrators and print the ratio; returns the looped sdeint time scaled to all paths."""
    times = dt * np.arange(0, args.steps + 1, 10)  # save every 10 steps
    batched, t_batched = timed(
        lambda: integrate_sde(drift, diffusion, h0, times, dt=dt, paths=args.paths, rng=1, progress=False)
    )
    looped, t_loop = timed(
        lambda: integrate_sde(
            drift, diffusion, h0, times, dt=dt, paths=args.sdeint_paths, rng=2, scheme="sdeint-euler", progress=False
        )
    )
    scaled = t_loop * args.paths / args.sdeint_paths
    ratio = scaled / t_batched
    print(f"\n== {label}: {args.paths} paths x {args.steps} steps ==")
    print(f"batched euler      : {t_batched:8.2f} s")
    print(
        f"sdeint.itoEuler    : {t_loop:8.2f} s for {args.sdeint_paths} paths "
        f"-> {scaled:8.2f} s scaled to {args.paths} paths"
    )
    print(f"speed-up (batched vs looped sdeint): {ratio:.0f}x")
    emit(f"{label}: batched NumPy Euler over looped sdeint.itoEuler", ratio)
    per_path_loop = scaled
    if stats:
        for name, (b, s) in zip(("final error", "time-averaged error (2nd half)"), zip(weak_stats(batched), weak_stats(looped))):
            print(f"{name:32s} batched {fmt(b)}")
            print(f"{'':32s} sdeint  {fmt(s)}")
        few = integrate_sde(drift, diffusion, h0, times, dt=dt, paths=2, rng=3, progress=False)
        ref = integrate_sde(drift, diffusion, h0, times, dt=dt, brownian=few.brownian, scheme="sdeint-euler", progress=False)
        print(f"shared noise, 2 paths: max |batched - sdeint| = {np.abs(few.y - ref.y).max():.2e}")
    return per_path_loop


def compiled_vs_sdeint(problem: Problem, h0: np.ndarray, args, sdeint_seconds: float) -> None:
    """The same Euler–Maruyama compiled with numba (``euler-jit``), against the looped sdeint time."""
    run = lambda: integrate_sme(problem, h0, args.steps, paths=args.paths, rng=1, scheme="euler-jit", save_every=10)  # noqa: E731
    _, compile_and_run = timed(run)
    compiled, seconds = timed(run)
    batched = integrate_sme(problem, h0, args.steps, paths=args.paths, rng=1, scheme="euler", save_every=10)
    print(f"compiled euler-jit : {seconds:8.2f} s (first call {compile_and_run:.2f} s, including compilation or cache load)")
    print(f"speed-up (compiled batched Euler vs looped sdeint): {sdeint_seconds / seconds:.0f}x")
    emit("SME d = 4: euler-jit over looped sdeint.itoEuler", sdeint_seconds / seconds)
    print(f"same noise as batched euler: max |error difference| = {np.nanmax(np.abs(compiled.error - batched.error)):.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=200)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--sdeint-paths", type=int, default=20)
    args = parser.parse_args()

    problem = Problem.from_spectrum((4, 3, 2, 1), eta=5e-4, mu=0.9)
    drift, diffusion = sme_functions(problem)
    h0 = np.ones(4) / 2  # between the saddles and the optimum: travel, then fluctuation near e_1
    looped = compare("PCA SME, d = 4 (lambdified coefficients)", drift, diffusion, h0, problem.eta, args, stats=True)
    compiled_vs_sdeint(problem, h0, args, looped)

    a = np.full((4, 4), 0.05) - 1.55 * np.eye(4)
    b = np.full((4, 4), 0.01) + 0.19 * np.eye(4)
    compare(
        "linear SDE dX = AX dt + Σ_k BX dW_k, d = m = 4 (cheap coefficients)",
        lambda y: y @ a.T,
        lambda y: np.repeat((y @ b.T)[..., None], 4, axis=-1),
        np.ones(4),
        1e-3,
        args,
        stats=False,
    )


if __name__ == "__main__":
    main()

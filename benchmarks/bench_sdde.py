"""The compiled delayed-SME integrator against a plain numba Euler–Maruyama loop for the same SDDE.

Run:  python benchmarks/bench_sdde.py [--paths 200] [--steps 10000] [--tau 20] [--repeats 3]

Both integrate ``dH = b(H(t − s)) dt + σ(H(t − s)) dW`` for the d = 4 SME of streaming PCA (Σ = diag(4, 3,
2, 1), η = 5e-4, μ = 0.9) from e_1 with the same compiled coefficient kernels
(:func:`amsgd.diffusion.compiled.drift_into`, :func:`~amsgd.diffusion.compiled.covariance_into`), the same
step (dt = 1 iteration), paths, steps and delay, and save every 10 steps:

* ``euler_compiled_delayed`` (:mod:`amsgd.diffusion.compiled`, ``scheme="euler-jit"`` of
  :func:`amsgd.diffusion.sme.integrate_sme_delayed`) draws the keyed increments of
  :class:`~amsgd.diffusion.brownian.BrownianIncrements` inside its loop, one path at a time, and keeps a
  ring buffer of ``τ + 1`` states per path;
* the plain loop draws its normals inside the loop (numba's ``np.random.standard_normal``) and keeps
  the whole trajectory of each path, the most direct way to write the method (with explicit loops, no
  temporary arrays, so that it is as fast as numba makes it).

Printed, all measured in this run: the one-off compilation times, the best of ``--repeats`` wall times of
each, their ratio (compiled / plain; target <= 1.2: the keyed increments, which make a path's noise the
same whatever the batch, cost at most a fifth over the plainest loop), and the late-window mean error of
both ensembles (independent noise) with 95% t-intervals, to show they integrate the same equation.
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np
from ratios import emit  # benchmarks/ is on the path when a script runs

from amsgd import Problem
from amsgd.core.estimates import t_interval
from amsgd.diffusion.brownian import BrownianIncrements
from amsgd.diffusion.coefficients import sme_coefficients
from amsgd.diffusion.compiled import _root, covariance_into, drift_into, euler_compiled_delayed
from amsgd.diffusion.ode import sin2_error


@numba.njit(cache=False)
def plain_euler(h0, paths, steps, lag, dt, scale, every, lam, drift_scale, kurtosis, diagonal, fourth, seed):
    """Euler–Maruyama of the delayed SME, one path at a time, normals drawn here, full trajectory kept."""
    np.random.seed(seed)
    d = h0.size
    out = np.empty((steps // every + 1, paths, d))
    path = np.empty((steps + 1, d))
    a, s, root, dw, noise = np.empty(d), np.empty((d, d)), np.empty((d, d)), np.empty(d), np.empty(d)
    sqdt = np.sqrt(dt)
    for p in range(paths):
        path[0] = h0
        for n in range(steps):
            z = path[max(n - lag, 0)]
            drift_into(z, lam, drift_scale, a)
            covariance_into(z, lam, kurtosis, diagonal, fourth, s)
            _root(s, root)
            for j in range(d):
                dw[j] = sqdt * np.random.standard_normal()
            zn = 0.0
            for i in range(d):
                acc = 0.0
                for j in range(d):
                    acc += root[i, j] * dw[j]
                noise[i] = acc
                zn += z[i] * acc
            for i in range(d):
                path[n + 1, i] = path[n, i] + a[i] * dt + scale * (noise[i] - z[i] * zn)
        out[:, p] = path[::every]
    return out


def best_of(repeats, fn):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=200)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--tau", type=int, default=20, help="delay in iterations (= steps at dt = 1)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    problem = Problem.from_spectrum((4, 3, 2, 1), eta=5e-4, mu=0.9)
    coefficients = sme_coefficients(problem)
    lam, drift_scale, kurtosis, diagonal, fourth = coefficients.kernel_arguments()
    dt, every = problem.eta, 10
    h0 = np.eye(4)[0]
    save = np.arange(0, args.steps + 1, every)
    y0 = np.broadcast_to(h0, (args.paths, 4))

    def compiled(seed: int, paths: int = args.paths, steps: int = args.steps):
        brownian = BrownianIncrements.create(dt, steps, 4, paths, seed)
        return euler_compiled_delayed(coefficients, y0[:paths], args.tau, save[save <= steps], dt, brownian)

    def plain(seed: int, paths: int = args.paths, steps: int = args.steps):
        return plain_euler(h0, paths, steps, args.tau, dt, coefficients.noise_scale, every,
                           lam, drift_scale, kurtosis, diagonal, fourth, seed)  # fmt: skip

    start = time.perf_counter()
    compiled(0, 2, 20)
    compile_compiled = time.perf_counter() - start
    start = time.perf_counter()
    plain(0, 2, 20)
    compile_plain = time.perf_counter() - start
    ours, t_ours = best_of(args.repeats, lambda: compiled(1))
    theirs, t_theirs = best_of(args.repeats, lambda: plain(2))
    print(f"delayed SME, d = 4, {args.paths} paths x {args.steps} steps, tau = {args.tau} iterations (s = "
          f"{args.tau * problem.eta:g}), save every {every} steps")  # fmt: skip
    print(f"compilation: euler_compiled_delayed {compile_compiled:.2f} s, plain loop {compile_plain:.2f} s")
    print(f"euler_compiled_delayed (keyed increments drawn in the loop, ring buffer): {t_ours:.3f} s")
    print(f"plain numba loop (normals in the loop, full path):                {t_theirs:.3f} s")
    print(f"ratio compiled / plain: {t_ours / t_theirs:.2f}")
    emit(f"SDDE euler-jit / plain numba Euler-Maruyama, d = 4, tau = {args.tau}", t_ours / t_theirs, target="<= 1.2",
         met=t_ours / t_theirs <= 1.2, note=f"{args.paths} paths x {args.steps} steps")
    for label, states in (("compiled", ours), ("plain", theirs)):
        error = sin2_error(states)
        late = t_interval(error[error.shape[0] // 2 :].mean(axis=0))
        print(f"late mean error, {label}: {late.mean:.5f} [{late.ci_low:.5f}, {late.ci_high:.5f}]")


if __name__ == "__main__":
    main()

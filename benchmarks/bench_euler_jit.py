"""The compiled SME integrator ``euler-jit`` against a plain numba Euler–Maruyama loop, and its compilation.

Run:  python benchmarks/bench_euler_jit.py [--paths 200] [--steps 10000] [--paths-50 200] [--steps-50 2000] [--repeats 5]

Both integrate the SME of streaming PCA with Gaussian data (Σ = diag(4(d − i)/d), η = 2e-3/d, μ = 0.9, dt = 1
iteration) from h0 = (1, ..., 1)/√d, saving every 10 steps, at d = 4 and at d = 50:

* ``euler_compiled`` (:mod:`amsgd.diffusion.compiled`, ``scheme="euler-jit"`` of
  :func:`amsgd.diffusion.sme.integrate_sme`): the keyed Brownian increments drawn inside the kernel, one
  path at a time, one block generator per (path, block), the state stored at the save steps only;
* a plain loop: numba's ``np.random.standard_normal`` inside the loop, the same drift and covariance
  kernels (:func:`~amsgd.diffusion.compiled.drift_into`, :func:`~amsgd.diffusion.compiled.covariance_into`),
  a Cholesky factor per step (:func:`~amsgd.diffusion.compiled._root`), explicit loops, no temporaries.

Printed, all measured in this run: the best of ``--repeats`` wall times of each (run in turn) and their ratio (target
<= 1.1), the late-window mean error of both ensembles (independent noise) with 95% t-intervals, and the
compilation of a small ``euler-jit`` run in two fresh processes sharing an empty numba cache folder:
the first compiles (cold), the second must load everything from the cache (its dispatchers' cache hits
and misses are printed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numba
import numpy as np
from ratios import emit  # benchmarks/ is on the path when a script runs
from timing import best_of_interleaved

from amsgd import Problem
from amsgd.core.estimates import t_interval
from amsgd.diffusion.brownian import BrownianIncrements
from amsgd.diffusion.coefficients import sme_coefficients
from amsgd.diffusion.compiled import _root, covariance_into, drift_into, euler_compiled
from amsgd.diffusion.ode import sin2_error


@numba.njit(cache=False)
def plain_euler(h0, paths, steps, dt, noise_scale, every, lam, drift_scale, kurtosis, diagonal, fourth, seed):
    """Euler–Maruyama of the SME, one path at a time, normals drawn here, the state saved every ``every`` steps."""
    np.random.seed(seed)
    d = h0.size
    out = np.empty((steps // every + 1, paths, d))
    h, a, dw, z = np.empty(d), np.empty(d), np.empty(d), np.empty(d)
    s, root = np.empty((d, d)), np.empty((d, d))
    sqdt = np.sqrt(dt)
    for p in range(paths):
        h[:] = h0
        out[0, p] = h
        for n in range(steps):
            drift_into(h, lam, drift_scale, a)
            covariance_into(h, lam, kurtosis, diagonal, fourth, s)
            _root(s, root)
            for j in range(d):
                dw[j] = sqdt * np.random.standard_normal()
            hz = 0.0
            for i in range(d):
                acc = 0.0
                for j in range(d):
                    acc += root[i, j] * dw[j]
                z[i] = acc
                hz += h[i] * acc
            for i in range(d):
                h[i] += a[i] * dt + noise_scale * (z[i] - h[i] * hz)
            if (n + 1) % every == 0:
                out[(n + 1) // every, p] = h
    return out


def problem_of(d: int) -> Problem:
    """Σ = diag(4(d − i)/d), η = 2e-3/d, μ = 0.9: at d = 4 the default spectrum (4, 3, 2, 1) and η = 5e-4."""
    return Problem.from_spectrum(tuple(4.0 * (d - i) / d for i in range(d)), eta=2e-3 / d, mu=0.9)


def compare(d: int, paths: int, steps: int, repeats: int) -> float:
    """Time ``euler_compiled`` and the plain loop at dimension ``d``; print both and return the ratio."""
    problem = problem_of(d)
    coefficients = sme_coefficients(problem)
    lam, drift_scale, kurtosis, diagonal, fourth = coefficients.kernel_arguments()
    dt, every = problem.eta, 10
    h0 = np.ones(d) / np.sqrt(d)
    save = np.arange(0, steps + 1, every)

    def compiled(seed: int, paths: int = paths, steps: int = steps):
        brownian = BrownianIncrements.create(dt, steps, d, paths, seed)
        return euler_compiled(coefficients, np.broadcast_to(h0, (paths, d)), save[save <= steps], dt, brownian)

    def plain(seed: int, paths: int = paths, steps: int = steps):
        return plain_euler(h0, paths, steps, dt, coefficients.noise_scale, every, lam, drift_scale, kurtosis, diagonal,
                           fourth, seed)  # fmt: skip

    compiled(0, 2, 20), plain(0, 2, 20)  # compile (or load) both before the clock
    (ours, theirs), (t_ours, t_theirs) = best_of_interleaved(repeats, lambda: compiled(1), lambda: plain(2))
    ratio = t_ours / t_theirs
    print(f"\n== SME, d = {d}, {paths} paths x {steps} steps, save every {every} steps, best of {repeats} ==")
    print(f"euler-jit (euler_compiled, keyed increments drawn in the kernel): {t_ours:.3f} s")
    print(f"plain numba loop (np.random.standard_normal in the loop):       {t_theirs:.3f} s")
    print(f"ratio euler-jit / plain: {ratio:.2f} (target <= 1.1)")
    emit(f"euler-jit / plain numba Euler-Maruyama, SME d = {d}", ratio, target="<= 1.1", met=ratio <= 1.1,
         note=f"{paths} paths x {steps} steps")
    for label, states in (("euler-jit", ours), ("plain", theirs)):
        error = sin2_error(states)
        late = t_interval(error[error.shape[0] // 2 :].mean(axis=0))
        print(f"late mean error, {label}: {late.mean:.5f} [{late.ci_low:.5f}, {late.ci_high:.5f}]")
    return ratio


# A fresh process: one small euler-jit run at dimension d, timed, then the cache statistics of every
# numba dispatcher of the integrator's modules that ran (one without a cache counts each of its
# signatures as compiled here).
PROBE = """
import json, sys, time
start = time.perf_counter()
import numpy as np
from amsgd import Problem
from amsgd.diffusion.coefficients import sme_coefficients
from amsgd.diffusion.sme import integrate_sme
imported = time.perf_counter()
d = int(sys.argv[1])
problem = Problem.from_spectrum(tuple(4.0 * (d - i) / d for i in range(d)), eta=2e-3 / d, mu=0.9)
coefficients = sme_coefficients(problem)
built = time.perf_counter()
integrate_sme(problem, np.ones(d) / np.sqrt(d), 40, paths=3, rng=1, scheme="euler-jit", coefficients=coefficients)
done = time.perf_counter()
import amsgd.diffusion.brownian as brownian, amsgd.diffusion.compiled as compiled, amsgd.simulate.ziggurat as ziggurat
from numba.core.registry import CPUDispatcher
stats = {}
for module in (brownian, compiled, ziggurat):
    for name, value in vars(module).items():
        if not isinstance(value, CPUDispatcher) or not value.signatures:
            continue  # not a kernel, or not called
        if value.stats.cache_path:
            stats[f"{module.__name__}.{name}"] = [sum(value.stats.cache_hits.values()), sum(value.stats.cache_misses.values())]
        else:  # no cache: each signature was compiled in this process
            stats[f"{module.__name__}.{name}"] = [0, len(value.signatures)]
print(json.dumps({"import_s": imported - start, "coefficients_s": built - imported, "first_run_s": done - built,
                  "stats": stats}))
"""


def fresh_process(d: int, cache: str) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    result = subprocess.run([sys.executable, "-c", PROBE, str(d)], env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def compilation(d: int) -> None:
    """The first small euler-jit run of a fresh process, with an empty numba cache and then with that cache."""
    with tempfile.TemporaryDirectory() as cache:
        cold, warm = fresh_process(d, cache), fresh_process(d, cache)
    print(f"compilation at d = {d} (fresh processes, one numba cache folder; import and coefficients apart):")
    for label, run in (("cold (empty cache)", cold), ("warm (second process)", warm)):
        print(f"  {label}: first euler-jit run {run['first_run_s']:.2f} s "
              f"(import {run['import_s']:.2f} s, sme_coefficients {run['coefficients_s']:.2f} s)")  # fmt: skip
    used = {name: hm for name, hm in warm["stats"].items() if sum(hm)}
    misses = sum(m for _, m in used.values())
    emit(f"euler-jit: first run in a fresh process, d = {d}, empty cache", cold["first_run_s"], unit="s")
    emit(f"euler-jit: recompilations in a second process, d = {d}", misses, unit="count", target="0",
         met=misses == 0, note=f"first run {warm['first_run_s']:.2f} s from the cache")
    print(f"  warm process: {sum(h for h, _ in used.values())} cache hits, {misses} misses "
          f"({'no recompilation' if misses == 0 else 'RECOMPILED'}) in {', '.join(sorted(used))}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=200)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--paths-50", type=int, default=200, help="paths at d = 50")
    parser.add_argument("--steps-50", type=int, default=2_000, help="steps at d = 50 (a step costs about 30 times more)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for d, paths, steps in ((4, args.paths, args.steps), (50, args.paths_50, args.steps_50)):
        compare(d, paths, steps, args.repeats)
        compilation(d)


if __name__ == "__main__":
    main()

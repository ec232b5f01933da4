"""Cost of Async-MSGD on a model against a plain synchronous JAX training loop, and of the Hessian.

The MLP 64-32-10 (tanh) on the digits, minibatches of 32, 32 replicates side by side, 2000 steps,
μ = 0.7, round-robin workers M = 8 (τ = 7). The baseline is the same model, batch and replicates in
a plain ``vmap``/``lax.scan`` loop of synchronous momentum SGD (no ring buffer, no delays, no
divergence check), timed in the same run. Both are compiled first; compile time is reported
separately. Target: the asynchronous simulator within 1.5× the baseline's cost per replicate-step;
another run length and recording interval recompile nothing (target 0).
Also timed: the minimum and the top Hessian eigenpairs of the MLP (full Hessian from
Hessian-vector products, and Lanczos for the top 10). Usage: ``python benchmarks/bench_models.py``.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from ratios import emit  # benchmarks/ is on the path when a script runs

from amsgd.core.delays import RoundRobinDelay
from amsgd.core.models import ModelProblem, load_data
from amsgd.diffusion.theory.model_point import find_minimum, model_point, top_eigenvalue
from amsgd.simulate.model_engine import simulate_model
from amsgd.simulate.models import compilations_during, model_functions

STEPS, REPLICATES, MU, ETA = 2000, 32, 0.7, 0.2


def plain_loop(problem: ModelProblem):
    """Synchronous momentum SGD, replicates side by side: the cost floor of the same arithmetic."""
    f = model_functions(problem)
    xt, yt = jnp.asarray(problem.data.x_train), jnp.asarray(problem.data.y_train)
    grad = jax.grad(f.objective)
    n = problem.data.examples

    def run(key):
        def step(state, k):
            x, prev = state
            idx = jax.random.randint(jax.random.fold_in(key, k), (problem.batch,), 0, n)
            new = x + MU * (x - prev) - ETA * grad(x, xt[idx], yt[idx])
            return (new, x), None

        x0 = f.init(key)
        return jax.lax.scan(step, (x0, x0), jnp.arange(STEPS))[0][0]

    return jax.jit(jax.vmap(run))


def timed(task) -> float:
    began = time.perf_counter()
    task()
    return time.perf_counter() - began


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # --help; no options
    problem = ModelProblem("mlp", load_data("digits"), eta=ETA, mu=MU, delay=RoundRobinDelay(8), hidden=32)
    with jax.enable_x64(True):
        loop = plain_loop(problem)
        keys = jax.random.split(jax.random.key(0), REPLICATES)
        compile_plain = timed(lambda: loop(keys).block_until_ready())
        plain = min(timed(lambda: loop(keys).block_until_ready()) for _ in range(3))
    first = timed(lambda: simulate_model(problem, STEPS, REPLICATES, rng=1, record_every=STEPS, progress=False))
    asynchronous = min(simulate_model(problem, STEPS, REPLICATES, rng=1, record_every=STEPS, progress=False).elapsed
                       for _ in range(3))  # fmt: skip
    rs = REPLICATES * STEPS
    print(f"MLP 64-32-10 on digits, batch 32, {REPLICATES} replicates x {STEPS} steps, workers:8")
    print(f"plain synchronous JAX loop : {rs / plain / 1e3:8.1f} k replicate-steps/s  (compile {compile_plain:.1f} s)")
    print(f"amsgd async simulator      : {rs / asynchronous / 1e3:8.1f} k replicate-steps/s  "
          f"(first call, compile included: {first:.1f} s)")  # fmt: skip
    print(f"ratio async/plain cost     : {asynchronous / plain:8.2f}   (target <= 1.5)")
    emit("models: async simulator / plain JAX loop (cost)", asynchronous / plain, target="<= 1.5",
         met=asynchronous / plain <= 1.5, note=f"MLP on digits, {REPLICATES} replicates, workers:8")
    began = time.perf_counter()
    _, compiled = compilations_during(lambda: simulate_model(problem, STEPS // 2 + 37, REPLICATES, rng=2,
                                                             record_every=101, progress=False))  # fmt: skip
    recompiled, seconds = sum("advance" in name for name in compiled), time.perf_counter() - began
    print(f"another run length and recording interval: {recompiled} compilations of the step program "
          f"({seconds:.1f} s; the first call's compilation {first - asynchronous:.1f} s)")  # fmt: skip
    emit("models: recompilations of the simulator for another run length and recording interval", recompiled,
         unit="count", target="0", met=recompiled == 0,
         note=f"{STEPS // 2 + 37} steps recorded every 101 after {STEPS} in one segment")  # fmt: skip
    x = find_minimum(problem)
    t_min = timed(lambda: find_minimum(problem))
    t_point = timed(lambda: model_point(problem, x))
    t_top = timed(lambda: top_eigenvalue(problem, x))
    print(f"minimum (L-BFGS)           : {t_min:8.1f} s")
    print(f"full Hessian + noise (2410 parameters, coupling of the top 10): {t_point:.1f} s")
    print(f"top eigenvalue by Lanczos  : {t_top:8.2f} s")
    print(f"top Hessian eigenvalues    : {np.round(model_point(problem, x).eigenvalues[:3], 4)}")


if __name__ == "__main__":
    main()

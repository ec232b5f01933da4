"""The diffusion limits of Async-MSGD on any model: the gradient-flow ODE and the SME ensemble.

For ``x_{k+1} = x_k + μ (x_k − x_{k−1}) − η ∇ℓ_B(x_{k−τ_k})`` (:mod:`amsgd.simulate.model_engine`)
the expansion of :func:`amsgd.derivations.recursion.derive_time_scale` holds for any gradient field
G = −∇L: in diffusion time ``t = kη`` the iterates follow

    dX = −s(μ) ∇L(X) dt + g(μ) sqrt(η) Σ_B(X)^{1/2} dW,     Σ_B(x) = Cov_n[∇ℓ_n(x)] / B,

with ``s(μ)`` the derived drift scale and ``g(μ)`` the zero-frequency gain of the momentum filter
(both ``1/(1 − μ)``), L the training objective (the mean loss plus the ridge penalty) and Σ_B the
covariance of a minibatch gradient of B examples drawn with replacement from the N training
examples (the penalty is deterministic and adds no noise). Like the streaming-PCA limit, it does
not see the delay.

The noise needs no P × P matrix: with ``w_n`` independent standard normals,
``ξ = (B N)^{−1/2} Σ_n w_n (∇ℓ_n(x) − ∇ℓ̄(x))`` is Gaussian with covariance exactly Σ_B(x), and
``Σ_n w_n ∇ℓ_n = ∇_x Σ_n w_n ℓ_n`` is one backward pass over the data (a vector–Jacobian product
shared with the drift's). The ensemble advances by Euler–Maruyama,

    X ← X − s ∇L(X) Δt + g sqrt(η Δt) ξ,    Δt = δ · η,

with a step of ``δ`` iterations (``record_every/δ`` rounded up to whole steps between records);
the ODE (no noise) is integrated with SciPy's ``solve_ivp`` instead (LSODA with the Hessian as its
Jacobian: the flow is stiff). Path p starts where replicate
p of :func:`~amsgd.simulate.model_engine.simulate_model` with the same seed starts, and draws its
noise from the JAX key of the same stream, so the limit and the algorithm can be compared run for run.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import sympy as sp

from amsgd.core import checks
from amsgd.core.errors import ProblemError, RunWarning
from amsgd.core.estimates import Estimate, json_float, t_interval
from amsgd.core.models import ModelProblem
from amsgd.core.progress import counter
from amsgd.core.seeding import RngLike, child_sequence, describe_seed, root_sequence
from amsgd.core.stationarity import Stationarity, window_split, window_stationarity
from amsgd.derivations.recursion import derive_time_scale, mu
from amsgd.diffusion.model_scheme import SchemeStability, scheme_stability
from amsgd.diffusion.sde import require_step_count
from amsgd.simulate.model_engine import start_points, stream_keys
from amsgd.simulate.models import layout_of

Limit = Literal["ode", "sde"]


@dataclass(frozen=True, eq=False)
class ModelLimitSolution:
    """The training objective along the limit, ``loss[path, record]`` at ``iterations`` (one path for
    the ODE); a path whose state becomes non-finite or leaves the divergence ball
    (:func:`~amsgd.simulate.models.divergence_ball`) is NaN from then on and counted in ``blown_up``."""

    problem: ModelProblem
    limit: str
    iterations: np.ndarray
    loss: np.ndarray
    dt: float
    window: float
    seed: str
    elapsed: float
    scheme: SchemeStability | None = None  # the Euler–Maruyama step near the minimum (SME only)

    @property
    def blown_up(self) -> int:
        return int(np.isnan(self.loss[:, -1]).sum())

    @property
    def mean_curve(self) -> np.ndarray:
        """The mean of the objective over the paths that stayed finite, per record."""
        keep = np.isfinite(self.loss[:, -1])
        return self.loss[keep].mean(axis=0) if keep.any() else np.full(self.iterations.size, np.nan)

    @property
    def stationary_loss(self) -> Estimate:
        """Each path's mean objective over the records from the fraction ``window`` of the run on, then a 95%
        t-interval over the paths (the ODE: its one value, no interval)."""
        late = self.iterations >= self.window * self.iterations[-1]
        per_path = self.loss[:, late].mean(axis=1)
        return t_interval(per_path[np.isfinite(per_path)], support=(0.0, math.inf))  # a loss is not negative

    @cached_property
    def stationarity(self) -> Stationarity | None:
        """Whether the averaging window looks stationary (the SME's paths; None for the ODE's one path):
        each path's mean over the window's records before :func:`~amsgd.core.stationarity.window_split`
        against its mean over the others, the rule of ``simulate``'s runs."""
        if self.limit == "ode":
            return None
        late = self.iterations >= self.window * self.iterations[-1]
        start, end = int(self.iterations[late][0]), int(self.iterations[-1])
        split = window_split(start, end)
        halves = [self.loss[:, late & part].mean(axis=1) if np.any(late & part) else np.full(self.loss.shape[0], np.nan)
                  for part in (self.iterations < split, self.iterations >= split)]  # fmt: skip
        return window_stationarity(halves[0], halves[1], start=start, end=end, estimate=self.stationary_loss.mean,
                                   advice="use more steps (--steps)",
                                   runs=("paths", "--paths"))  # fmt: skip

    def to_dict(self) -> dict:
        stationary = self.stationary_loss
        return {
            "limit": self.limit,
            "scheme": f"solve_ivp ({ode_method(layout_of(self.problem).size)})" if self.limit == "ode" else "euler",  # --scheme's name
            "paths": int(self.loss.shape[0]),
            "steps": int(self.iterations[-1]),
            "dt_iterations": None if self.limit == "ode" else self.dt,  # the solver's steps are adaptive
            "seed": self.seed,
            "final_loss": json_float(float(self.mean_curve[-1])),
            "stationary_loss": {**stationary.to_dict(),  # the fields of every estimate (integrate, simulate)
                                "window_iterations": [self.window * float(self.iterations[-1]),
                                                      float(self.iterations[-1])]},  # fmt: skip
            **({"stationarity": self.stationarity.to_dict()} if self.stationarity is not None else {}),
            "blown_up_paths": self.blown_up,
            "iterations": self.iterations.tolist(),
            "loss_mean": [json_float(float(v)) for v in self.mean_curve],
            "seconds": round(self.elapsed, 3),
            **({"scheme_stability": self.scheme.to_dict()} if self.scheme is not None else {}),
        }


def time_scales(momentum: float) -> tuple[float, float]:
    """``(s(μ), g(μ))``: the drift scale and the noise gain of the derived time scaling at ``momentum``."""
    timing = derive_time_scale()
    return float(timing.drift_scale.subs(mu, momentum)), float(sp.simplify(timing.noise_gain).subs(mu, momentum))


def integrate_model_limit(
    problem: ModelProblem,
    steps: int,
    paths: int = 32,
    *,
    limit: Limit = "sde",
    dt: float = 1.0,
    rng: RngLike = None,
    record_every: int | None = None,
    window: float = 0.5,
    start: np.ndarray | None = None,
    divergence_norm: float = 1e6,
    progress: bool | None = None,
    check_scheme: bool = True,
) -> ModelLimitSolution:
    """Integrate the ODE or the SME of ``problem`` (module docstring) for ``steps`` iterations.

    ``paths`` SME paths (the ODE has one), an Euler step of ``dt`` iterations, records every
    ``record_every`` iterations (default ``steps // 100``; every interval between records must be a
    whole number of steps ``dt``); ``start`` is a common start point, by
    default each path starts at the model's initialisation for its stream (as
    :func:`~amsgd.simulate.model_engine.simulate_model` with the same ``rng``); the stationary loss
    averages from the fraction ``window`` of the run to its end (as ``simulate_model``'s ``window``).
    A path that leaves the divergence ball (the simulator's rule,
    :func:`~amsgd.simulate.models.divergence_ball`: ``divergence_norm`` further from the centre than
    its start, for least squares in the targets' standard deviation) or becomes non-finite has blown
    up: NaN from then on. Before the SME runs, ``check_scheme`` asks
    whether its Euler–Maruyama step is mean-square stable near the model's minimum
    (:func:`.model_scheme.scheme_stability`, the minimum and its noise found first, seconds to tens of
    seconds): where it is not, a :class:`~amsgd.core.errors.RunWarning` says so and names a stable step.
    """
    steps = checks.positive_int("steps", steps)
    paths = checks.positive_int("paths", paths)
    if limit not in ("ode", "sde"):
        raise ProblemError(f"limit must be 'ode' or 'sde' for a model, got {limit!r}")
    if not (checks.is_number(dt) and math.isfinite(dt) and dt > 0):
        raise ProblemError(f"dt (in iterations) must be finite and > 0, got {dt!r}")
    require_step_count(steps / dt, f"dt = {dt:g} iterations", f"over {steps} iterations")
    window = checks.window_fraction(window)
    checks.positive("divergence_norm", divergence_norm)
    record_every = max(1, steps // 100) if record_every is None else min(checks.positive_int("record_every", record_every), steps)
    marks = np.array(sorted(set(range(0, steps, record_every)) | {steps}))
    if limit == "sde":
        _require_whole_steps(np.diff(marks), float(dt))
    root = root_sequence(rng)
    n_paths = 1 if limit == "ode" else paths
    from amsgd.simulate.models import check_start  # loaded for the run anyway

    start = check_start(start, problem)
    x0 = start_points(problem, n_paths, rng=root) if start is None else np.tile(start, (n_paths, 1))
    scheme = scheme_stability(problem, float(dt)) if limit == "sde" and check_scheme else None
    if scheme is not None and not scheme.stable:
        warnings.warn(scheme.warning(np.diff(marks)), RunWarning, stacklevel=2)
    began = time.perf_counter()
    if limit == "ode":
        loss = _ode(problem, x0[0], marks, progress)[None, :]
    else:
        keys = stream_keys([child_sequence(root, p) for p in range(n_paths)])
        loss = _sme(problem, x0, keys, marks, dt, float(divergence_norm), progress)
    solution = ModelLimitSolution(problem, limit, marks, loss, float(dt), float(window), describe_seed(root),
                                  time.perf_counter() - began, scheme)  # fmt: skip
    if 0 < solution.blown_up < n_paths:  # all of them: the caller says there is no estimate
        warnings.warn(f"{solution.blown_up} of the {n_paths} paths blew up: the mean loss and the stationary loss "
                      "are over the paths that stayed finite, not a sample of all paths", RunWarning, stacklevel=2)  # fmt: skip
    drift = solution.stationarity.message if solution.stationarity is not None and solution.blown_up < n_paths else None
    if drift is not None:
        warnings.warn(drift, RunWarning, stacklevel=2)
    return solution


def _require_whole_steps(intervals: np.ndarray, dt: float) -> None:
    """Refuse a step ``dt`` that does not divide every interval between records (the Euler step would
    have to shrink to land on them, and the step reported would not be the step taken)."""
    counts = intervals / dt
    bad = (np.abs(counts - np.round(counts)) > 1e-9 * np.maximum(1.0, counts)) | (np.round(counts) < 1)
    if np.any(bad):
        lengths = sorted({int(n) for n in intervals})
        raise ProblemError(f"dt = {dt:g} iterations does not divide the intervals between recorded iterations "
                           f"({', '.join(map(str, lengths[:3]))}): choose a dt that divides them (1 always does), "
                           "or a longer run (it records every steps // 100 iterations)")  # fmt: skip


def ode_method(parameters: int) -> str:
    """SciPy's method for the gradient flow of a model of ``parameters`` parameters (:func:`_ode`)."""
    from amsgd.diffusion.theory.model_point import FULL_HESSIAN_MAX

    return "LSODA" if parameters <= FULL_HESSIAN_MAX else "DOP853"


def _ode(problem: ModelProblem, x0: np.ndarray, marks: np.ndarray, progress: bool | None) -> np.ndarray:
    """``dX/dt = −s ∇L(X)``, the objective at ``t = η · marks``: by LSODA with the Jacobian ``−s ∇²L``
    (the whole Hessian, :func:`~.theory.model_point.whole_hessian`) for a model of at most
    :data:`~.theory.model_point.FULL_HESSIAN_MAX` parameters, else by DOP853. The flow is stiff where the
    curvatures spread (``λ_max/λ_min`` in the thousands for least squares on digits): an explicit method
    needs steps of ``3/(s λ_max)`` over the whole diffusion time ``η · steps``, which LSODA leaves for
    backward differences once it sees the stiffness. Progress counts the iterations ``t/η`` reached."""
    import jax
    import jax.numpy as jnp
    from scipy.integrate import solve_ivp

    from amsgd.diffusion.theory.model_point import whole_hessian
    from amsgd.simulate.models import model_derivatives

    scale, _ = time_scales(problem.mu)
    with jax.enable_x64(True):
        d = model_derivatives(problem)
        xt, yt = jnp.asarray(problem.data.x_train), jnp.asarray(problem.data.y_train)
        times = problem.eta * marks.astype(float)

        def jacobian(_t: float, x: np.ndarray) -> np.ndarray:
            return -scale * whole_hessian(d, jnp.asarray(x), xt, yt)

        method = ode_method(x0.size)
        with counter(int(marks[-1]), "iterations", "integrate", show=progress) as count:
            reached = [0]

            def flow(t: float, x: np.ndarray) -> np.ndarray:
                if (k := min(int(t / problem.eta), int(marks[-1]))) > reached[0]:
                    count.update(k - reached[0])
                    reached[0] = k
                return -scale * np.asarray(d.value_and_grad(jnp.asarray(x), xt, yt)[1])

            solution = solve_ivp(flow, (0.0, times[-1]), x0, method=method, t_eval=times, rtol=1e-9, atol=1e-12,
                                 **({"jac": jacobian} if method == "LSODA" else {}))  # fmt: skip
        if not solution.success:
            raise ProblemError(f"the ODE limit could not be integrated: {solution.message}")
        return np.array([float(d.value_and_grad(x, xt, yt)[0]) for x in solution.y.T])


def _sme(problem: ModelProblem, x0: np.ndarray, keys, marks: np.ndarray, dt: float, divergence_norm: float,
         progress: bool | None) -> np.ndarray:  # fmt: skip
    """Euler–Maruyama of the SME for every path side by side; the objective at ``marks`` (NaN once a
    path has blown up)."""
    import jax
    import jax.numpy as jnp

    from amsgd.simulate.models import divergence_ball, model_functions

    scale, gain = time_scales(problem.mu)
    centre, radii = divergence_ball(problem, divergence_norm, x0)
    eta, batch = problem.eta, problem.batch
    with jax.enable_x64(True):
        f = model_functions(problem)
        xt, yt = jnp.asarray(problem.data.x_train), jnp.asarray(problem.data.y_train)
        n = xt.shape[0]
        ridge = problem.l2 * jnp.asarray(f.layout.weight_mask())  # ∇ of (l2/2) ‖W‖²: ridge · x

        def step(x, radius, key, dt_time):
            _, pullback = jax.vjp(lambda p: f.sample_losses(p, xt, yt), x)
            w = jax.random.normal(key, (n,))
            weights = jnp.stack([jnp.full(n, 1.0 / n), w / jnp.sqrt(batch * n)])
            mean_grad, weighted = jax.vmap(pullback)(weights)[0]
            noise = weighted - jnp.sum(w) / jnp.sqrt(batch * n) * mean_grad
            drift = -scale * (mean_grad + ridge * x)
            new = x + drift * dt_time + gain * jnp.sqrt(eta * dt_time) * noise
            kept = jnp.all(jnp.isfinite(new)) & (jnp.linalg.norm(new - centre) <= radius)
            return jnp.where(kept, new, jnp.full_like(new, jnp.nan))

        def advance(x, radius, key, lo, n_sub, dt_time):
            def body(j, x):
                return step(x, radius, jax.random.fold_in(key, lo + j), dt_time)

            return jax.lax.fori_loop(0, n_sub, body, x)

        run = jax.jit(jax.vmap(advance, in_axes=(0, 0, 0, None, None, None)), static_argnums=(4,))
        measure = jax.jit(jax.vmap(lambda x: f.objective(x, xt, yt)))
        radii = jnp.asarray(radii)
        x = jnp.asarray(x0)
        rows = [np.asarray(measure(x))]
        done = 0  # Euler steps taken: step j of a path uses fold_in(key, j)
        with counter(int(marks[-1]), "iterations", "integrate", show=progress) as count:
            for lo, hi in zip(marks[:-1], marks[1:]):
                n_sub = max(1, math.ceil((hi - lo) / dt - 1e-9))
                x = run(x, radii, keys, done, n_sub, float(eta * (hi - lo) / n_sub))
                done += n_sub
                rows.append(np.asarray(measure(x)))
                count.update(int(hi - lo))
        return np.stack(rows, axis=1)
